'use strict';
// Regression tests for the second round of attacks on the store's guarantees (issue 18, items
// 1-3, 6 and 8): compaction that reopened the ABA, ids that a replay could bypass, `not_applied`
// said of an applied commit, foreign data, and code that disagreed with its docs. Each failed on
// the code before its fix. Horizons of minutes are crossed with `advanceClock` (zktx/testing),
// never by shrinking the production limits.
const raw = require('node-zookeeper-client');
const { clientAt, unique, zkScripts } = require('./helpers/zk');
const { startProxy, advanceClock } = require('../testing');

const codeOf = (p) => p.then(() => 'resolved', (e) => e.code);
const MINUTES_11 = 11 * 60 * 1000;
const HORIZON = 10 * 60 * 1000; // compactTombstones' smallest horizon, as in production

/** Percent-encodes a key the way zktx names its value znode (kv.rs). */
const valuePath = (key) => `/zktx/kv/${[...Buffer.from(key, 'utf8')].map((b) => (/[A-Za-z0-9_-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('')}`;

/** A plain ZooKeeper client (node-zookeeper-client), as another service would use. */
async function rawClient(connect) {
  const c = raw.createClient(connect, { sessionTimeout: 5000, retries: 0 });
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('raw client: no connection')), 10000);
    c.once('connected', () => { clearTimeout(t); resolve(); });
    c.connect();
  });
  const p = (m) => (...args) => new Promise((resolve, reject) => c[m](...args, (err, ...r) => (err ? reject(err) : resolve(r))));
  return {
    setData: (path, data) => p('setData')(path, Buffer.from(data), -1),
    create: (path, data) => p('create')(path, Buffer.from(data)),
    createEphemeral: (path, data) => p('create')(path, Buffer.from(data), raw.CreateMode.EPHEMERAL),
    getData: async (path) => (await p('getData')(path))[0],
    exists: async (path) => (await p('exists')(path))[0] != null,
    remove: (path) => p('remove')(path, -1),
    close: () => c.close(),
    _c: c,
  };
}

// One server of this file's own: its compaction passes run on clocks moved hours ahead, which
// would mark and remove the tombstones of other suites sharing a server.
let server;
beforeAll(async () => { server = await zkScripts.startStandalone({ tickTime: 200 }); }, 30000);
afterAll(async () => { if (server) await server.stop(); });
const client = (options) => clientAt(server.connect, options);

/** Deletes `k` through a transaction: its znode becomes a tombstone. */
const del = (zk, k) => zk.transaction(async (tx) => { tx.delete(k); });

describe('compaction never reopens the ABA (item 1)', () => {
  let a; // the transaction's client
  let b; // the compactor and the other writer
  beforeAll(() => { a = client(); b = client(); });
  afterAll(async () => { await a.close(); await b.close(); });
  const advanceBoth = (ms) => { advanceClock(a, ms); advanceClock(b, ms); };

  it('T reads an 11-minute-old tombstone; compaction runs; another client sets the key twice; T commits -> CONFLICT, no lost update', async () => {
    const k = unique('aba-compact');
    await a.set(k, 1);
    await del(a, k); // tombstone at version 1
    advanceBoth(MINUTES_11);
    let release;
    const between = new Promise((resolve) => { release = resolve; });
    let readOnce;
    const read = new Promise((resolve) => { readOnce = resolve; });
    const t = a.transaction(async (tx) => {
      const cur = await tx.get(k);
      readOnce();
      await between;
      tx.set(k, { t: cur ?? null });
    }, { retries: 0 });
    await read;
    const pass = await b.compactTombstones(HORIZON);
    expect(pass.marked).toBeGreaterThanOrEqual(1); // phase 1: marked, not removed
    await b.set(k, 'b1');
    await b.set(k, 'b2');
    release();
    expect(await t.catch((e) => e)).toMatchObject({ code: 'CONFLICT', outcome: 'not_applied' });
    expect(await b.get(k)).toBe('b2');
  });

  it('a reader of the marked tombstone keeps it: the pass after cannot remove what it read', async () => {
    const k = unique('aba-marked');
    await a.set(k, 1);
    await del(a, k);
    advanceBoth(MINUTES_11);
    await b.compactTombstones(HORIZON); // marked
    advanceBoth(MINUTES_11); // the mark is old enough to go
    let release;
    const between = new Promise((resolve) => { release = resolve; });
    let readOnce;
    const read = new Promise((resolve) => { readOnce = resolve; });
    const t = a.transaction(async (tx) => {
      expect(await tx.get(k)).toBeUndefined();
      readOnce();
      await between;
      tx.set(k, 't');
    }, { retries: 0 });
    await read;
    const pass = await b.compactTombstones(HORIZON);
    expect(pass.removed).toBe(0); // the reader turned the mark back into a plain tombstone
    await b.set(k, 'b1');
    await b.set(k, 'b2');
    release();
    expect(await codeOf(t)).toBe('CONFLICT');
    expect(await b.get(k)).toBe('b2');
  });

  it('executeTransaction: the same interleaving is refused (BADVERSION), nothing lost', async () => {
    for (const marked of [false, true]) {
      const k = unique('aba-exec');
      await a.set(k, 1);
      await del(a, k);
      advanceBoth(MINUTES_11);
      if (marked) {
        await b.compactTombstones(HORIZON);
        advanceBoth(MINUTES_11);
      }
      let release;
      const between = new Promise((resolve) => { release = resolve; });
      let readOnce;
      const read = new Promise((resolve) => { readOnce = resolve; });
      const t = a.executeTransaction(k, async (cur) => {
        readOnce();
        await between;
        return { t: cur ?? null };
      });
      await read;
      await b.compactTombstones(HORIZON);
      await b.set(k, 'b1'); // plain set: it takes no lock
      await b.set(k, 'b2');
      release();
      expect(await codeOf(t)).toBe('BADVERSION');
      expect(await b.get(k)).toBe('b2');
    }
  });

  it('a tombstone goes after two passes a horizon apart, and the key starts over', async () => {
    const k = unique('compacted');
    await a.set(k, 1);
    await del(a, k);
    advanceBoth(MINUTES_11);
    expect((await b.compactTombstones(HORIZON)).marked).toBeGreaterThanOrEqual(1);
    expect((await b.compactTombstones(HORIZON)).removed).toBe(0);
    advanceBoth(MINUTES_11);
    expect((await b.compactTombstones(HORIZON)).removed).toBeGreaterThanOrEqual(1);
    expect(await a.get(k)).toBeUndefined();
    const r = await a.executeTransaction(k, 5);
    expect(r).toMatchObject({ value: 5, previous: undefined, version: 0 });
  });
});

describe('with an id, the recorded result wins on every path (item 2)', () => {
  let zk;
  beforeAll(() => { zk = client(); });
  afterAll(async () => { await zk.close(); });

  it('a replay whose function sees the applied state and writes nothing resolves the recorded result', async () => {
    const [k, id] = [unique('replay'), unique('id')];
    await zk.set(k, 0);
    const fn = async (tx) => {
      const n = await tx.get(k);
      if (n === 0) tx.set(k, 1); // apply once
      return { sawN: n };
    };
    expect(await zk.transaction(fn, { id })).toEqual({ sawN: 0 });
    expect(await zk.transaction(fn, { id })).toEqual({ sawN: 0 }); // not { sawN: 1 }
    expect(await zk.get(k)).toBe(1);
  });

  it('a replay whose function throws on the changed state resolves the recorded result', async () => {
    const [k, id] = [unique('replay-throw'), unique('id')];
    await zk.set(k, 10);
    const fn = async (tx) => {
      const n = await tx.get(k);
      if (n < 10) throw new Error('insufficient funds');
      tx.set(k, n - 10);
      return 'withdrawn';
    };
    expect(await zk.transaction(fn, { id })).toBe('withdrawn');
    expect(await zk.transaction(fn, { id })).toBe('withdrawn');
    expect(await zk.get(k)).toBe(0);
    // Without an id the same replay is a new transaction, and its own error stands.
    await expect(zk.transaction(fn)).rejects.toThrow('insufficient funds');
  });

  it('a read-only transaction with an id records it: a replay gets the first result', async () => {
    const [k, id] = [unique('ro'), unique('id')];
    await zk.set(k, 'v1');
    expect(await zk.transaction(async (tx) => tx.get(k), { id })).toBe('v1');
    await zk.set(k, 'v2');
    expect(await zk.transaction(async (tx) => tx.get(k), { id })).toBe('v1');
  });
});

describe('not_applied only when nothing can have applied (item 3)', () => {
  let proxy;
  let zk;
  beforeAll(async () => {
    proxy = await startProxy(server.connect);
  }, 30000);
  beforeEach(async () => {
    zk = clientAt(proxy.connect, { timeout: 4000, requestTimeout: 600, debug_level: 0 });
    await zk.transaction(async (tx) => { tx.set(unique('warm-up'), 1); }, { id: unique('warm-up') });
  });
  afterEach(async () => {
    proxy.heal();
    await zk.close().catch(() => {});
  });
  afterAll(async () => {
    if (proxy) await proxy.close();
  });

  it('commit answer lost, the retry\'s read fails: the call says unknown, and the first commit did apply', async () => {
    const [k, id] = [unique('lost-answer'), unique('id')];
    const err = await zk.transaction(async (tx) => {
      if (tx.attempt === 1) proxy.partition({ mode: 'blackhole' }); // the retry cannot read
      await tx.get(k);
      tx.create(k, tx.attempt);
      if (tx.attempt === 0) proxy.partition({ mode: 'responses' }); // applies, answer lost
    }, { id }).catch((e) => e);
    expect(err).toMatchObject({ name: 'ZktxError', outcome: 'unknown' });
    proxy.heal();
    expect(await zk.get(k)).toBe(0); // it had applied: 'not_applied' would have been a lie
  }, 30000);

  it('commit answer lost, close() during the retry: unknown, not CLIENT_CLOSED not_applied', async () => {
    const [k, id] = [unique('lost-close'), unique('id')];
    const err = await zk.transaction(async (tx) => {
      if (tx.attempt === 1) {
        proxy.heal();
        await zk.close();
      }
      await tx.get(k);
      tx.create(k, tx.attempt);
      if (tx.attempt === 0) proxy.partition({ mode: 'responses' });
    }, { id }).catch((e) => e);
    expect(err).toMatchObject({ name: 'ZktxError', outcome: 'unknown' });
    const other = clientAt(server.connect, { timeout: 4000 });
    try {
      expect(await other.get(k)).toBe(0);
    } finally {
      await other.close();
    }
  }, 30000);

  it('commit answer lost, the retry\'s function throws once the line is back: the marker settles it, resolved', async () => {
    const [k, id] = [unique('lost-throw'), unique('id')];
    const result = await zk.transaction(async (tx) => {
      if (tx.attempt === 1) {
        const back = new Promise((resolve) => zk.on('state', (s) => s === 'RECONNECTED' && resolve()));
        proxy.heal();
        await back;
        if ((await tx.get(k)) !== undefined) throw new Error('already there');
      }
      await tx.get(k);
      tx.create(k, tx.attempt);
      if (tx.attempt === 0) proxy.partition({ mode: 'responses' });
      return `attempt ${tx.attempt}`;
    }, { id });
    expect(result).toBe('attempt 0');
    expect(await zk.get(k)).toBe(0);
  }, 30000);
});

describe('foreign data under zktx\'s tree (item 6)', () => {
  let zk;
  let other;
  beforeAll(async () => {
    zk = client();
    other = await rawClient(server.connect);
    await zk.set(unique('warm-up'), 1); // /zktx/kv exists
  });
  afterAll(async () => {
    await zk.close();
    other.close();
  });

  it('a value another client wrote (not JSON) is replaced by tx.set, tx.delete and executeTransaction, never read as JSON', async () => {
    const [a, b, c, d] = [unique('f-a'), unique('f-b'), unique('f-c'), unique('f-d')];
    for (const k of [a, b, c, d]) await other.create(valuePath(k), 'plain text, not JSON');
    expect(await codeOf(zk.get(a))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(zk.transaction(async (tx) => tx.get(a)))).toBe('INVALID_ARGUMENT');
    await zk.transaction(async (tx) => { tx.set(a, { replaced: true }); tx.delete(b); });
    expect(await zk.get(a)).toEqual({ replaced: true });
    expect(await zk.get(b)).toBeUndefined();
    expect(await zk.executeTransaction(c, 3)).toMatchObject({ value: 3, previous: undefined });
    expect(await zk.get(c)).toBe(3);
    // An updater cannot compute from it: INVALID_ARGUMENT, the lock released, the data kept.
    expect(await codeOf(zk.executeTransaction(d, (cur) => cur))).toBe('INVALID_ARGUMENT');
    expect((await other.getData(valuePath(d))).toString()).toBe('plain text, not JSON');
    expect(await zk.executeTransaction(d, 4, { timeout: 2000 })).toMatchObject({ value: 4 });
    // create refuses it: the key exists.
    const e = unique('f-e');
    await other.create(valuePath(e), 'x');
    expect(await codeOf(zk.transaction(async (tx) => { tx.create(e, 1); }))).toBe('NODEEXISTS');
  });

  it('a foreign child under an aged tombstone is skipped and reported; the other tombstones are compacted', async () => {
    const [a, b] = [unique('fc-a'), unique('fc-b')];
    for (const k of [a, b]) {
      await zk.set(k, 1);
      await del(zk, k);
    }
    await other.create(`${valuePath(a)}/child`, 'theirs');
    advanceClock(zk, MINUTES_11);
    await zk.compactTombstones(HORIZON);
    advanceClock(zk, MINUTES_11);
    const pass = await zk.compactTombstones(HORIZON);
    expect(pass.skipped).toEqual(expect.arrayContaining([{ key: a, reason: expect.stringContaining('NOTEMPTY') }]));
    expect(pass.skipped.map((s) => s.key)).not.toContain(b);
    expect(await other.exists(valuePath(b))).toBe(false);
    // Every later pass goes on compacting (and reports it again until the child goes).
    const k = unique('fc-later');
    await zk.set(k, 1);
    await del(zk, k);
    advanceClock(zk, MINUTES_11);
    await zk.compactTombstones(HORIZON);
    advanceClock(zk, MINUTES_11);
    const later = await zk.compactTombstones(HORIZON);
    expect(later.skipped.map((s) => s.key)).toContain(a);
    expect(await other.exists(valuePath(k))).toBe(false);
    await other.remove(`${valuePath(a)}/child`);
  });
});

describe('code and docs agree (item 8)', () => {
  let zk;
  beforeAll(() => { zk = client(); });
  afterAll(async () => { await zk.close(); });

  it('a transaction id over 1024 bytes is INVALID_ARGUMENT before fn runs, also for a read-only transaction', async () => {
    const id = 'i'.repeat(1025);
    let ran = 0;
    for (const fn of [async (tx) => { ran++; tx.set(unique('k'), 1); }, async (tx) => { ran++; await tx.get(unique('k')); }]) {
      const err = await zk.transaction(fn, { id }).catch((e) => e);
      expect(err).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect(err.message).toMatch(/^transaction id is 1025 bytes/);
    }
    expect(ran).toBe(0);
    expect(await zk.transaction(async () => 'ok', { id: 'é'.repeat(512) })).toBe('ok'); // 1024 bytes
  });

  it('a re-created key continues from its tombstone\'s version, as the types say', async () => {
    const k = unique('recreated');
    expect((await zk.executeTransaction(k, 1)).version).toBe(0); // new key
    await del(zk, k); // tombstone: version 1
    expect((await zk.executeTransaction(k, 2)).version).toBe(2);
  });

  it('tx.delete(k) then tx.create(k) is a set; tx.create after the transaction\'s own set is NODEEXISTS at once', async () => {
    const k = unique('del-create');
    await zk.set(k, 1);
    await zk.transaction(async (tx) => { tx.delete(k); tx.create(k, 2); });
    expect(await zk.get(k)).toBe(2);
    const err = await zk.transaction(async (tx) => { tx.set(k, 3); tx.create(k, 4); }).catch((e) => e);
    expect(err).toMatchObject({ name: 'ZktxError', code: 'NODEEXISTS' });
    expect(await zk.get(k)).toBe(2);
  });
});

// Breaks found by the adversarial review of the mechanisms above (a helper whose only job was to
// break them), each fixed and kept here as a regression test.
describe('attacks on the second layer, fixed', () => {
  const { startProxy: proxyTo } = require('../testing');
  /** A gate: `hold()` returns a promise the test releases with `open()`; `at` resolves once held. */
  function gate() {
    let open;
    const opened = new Promise((resolve) => { open = resolve; });
    let reached;
    const at = new Promise((resolve) => { reached = resolve; });
    return { open, at, hold: () => { reached(); return opened; } };
  }

  describe('a reader whose session ended while it waited (its host asleep past the session timeout)', () => {
    // The reader's monotonic clock does not count a suspended host, but the server's clock does:
    // the compactor may mark and remove the tombstone it read in what looks like seconds to it.
    // Its session expired meanwhile, so the commit, on a new session, is refused.
    let proxy;
    let a;
    let c;
    beforeAll(async () => {
      proxy = await proxyTo(server.connect);
      a = clientAt(proxy.connect, { timeout: 1500, debug_level: 0 });
      c = client();
      await a.set(unique('warm-up'), 1);
    }, 30000);
    afterAll(async () => { proxy.heal(); await a.close(); await c.close(); await proxy.close(); });

    const sleepPastSession = async () => {
      const expired = new Promise((resolve) => a.on('state', (s) => s === 'EXPIRED' && resolve()));
      proxy.partition({ mode: 'blackhole' });
      await expired;
      proxy.heal();
    };

    for (const how of ['transaction', 'executeTransaction']) {
      it(`${how}: read tombstone v1, session expires, mark, remove, re-create to v1, commit -> refused, nothing lost`, async () => {
        const k = unique(`asleep-${how}`);
        await c.set(k, 1);
        await del(c, k);
        const g = gate();
        const t = how === 'transaction'
          ? a.transaction(async (tx) => { const cur = await tx.get(k); await g.hold(); tx.set(k, { t: cur ?? null }); }, { retries: 0 })
          : a.executeTransaction(k, async (cur) => { await g.hold(); return { t: cur ?? null }; });
        await g.at;
        await sleepPastSession();
        advanceClock(c, MINUTES_11); // only the awake world's clock moves
        expect((await c.compactTombstones(HORIZON)).marked).toBeGreaterThanOrEqual(1);
        advanceClock(c, MINUTES_11);
        expect((await c.compactTombstones(HORIZON)).removed).toBeGreaterThanOrEqual(1);
        await c.set(k, 'b1');
        await c.set(k, 'b2');
        g.open();
        const err = await t.catch((e) => e);
        expect(err).toMatchObject({ name: 'ZktxError', outcome: 'not_applied' });
        expect(how === 'transaction' ? ['CONFLICT'] : ['LOCK_LOST', 'SESSIONEXPIRED']).toContain(err.code);
        expect(await c.get(k)).toBe('b2');
      }, 30000);
    }
  });

  describe('a create keeps its "must be absent" through later writes of the key', () => {
    let zk;
    beforeAll(() => { zk = client(); });
    afterAll(async () => { await zk.close(); });

    it('create(k, 1); set(k, 2) on an existing key is NODEEXISTS; on an absent one it creates 2', async () => {
      const k = unique('create-set');
      await zk.set(k, 'theirs');
      expect(await codeOf(zk.transaction(async (tx) => { tx.create(k, 1); tx.set(k, 2); }, { retries: 0 }))).toBe('NODEEXISTS');
      expect(await zk.get(k)).toBe('theirs');
      const fresh = unique('create-set-fresh');
      await zk.transaction(async (tx) => { tx.create(fresh, 1); tx.set(fresh, 2); });
      expect(await zk.get(fresh)).toBe(2);
    });

    it('create(k, 1); delete(k) on an existing key is NODEEXISTS; on an absent one it leaves it absent', async () => {
      const k = unique('create-del');
      await zk.set(k, 'theirs');
      expect(await codeOf(zk.transaction(async (tx) => { tx.create(k, 1); tx.delete(k); }, { retries: 0 }))).toBe('NODEEXISTS');
      expect(await zk.get(k)).toBe('theirs');
      const fresh = unique('create-del-fresh');
      await zk.transaction(async (tx) => { tx.create(fresh, 1); tx.delete(fresh); expect(await tx.get(fresh)).toBeUndefined(); });
      expect(await zk.get(fresh)).toBeUndefined();
    });
  });

  describe('a replay of an applied id that is refused before its marker is checked', () => {
    let zk;
    let other;
    beforeAll(async () => { zk = client(); other = await rawClient(server.connect); });
    afterAll(async () => { await zk.close(); other.close(); });

    it('call 1 (id X, lock L) commits; L is lost; call 2 (id X, lock L) resolves the recorded result', async () => {
      const [k, id, path] = [unique('lost-lock'), unique('id'), `/second-layer/${unique('lock')}`];
      const lock = await zk.lock(path);
      const fn = async (tx) => { tx.set(k, ((await tx.get(k)) ?? 0) + 1); return 'first'; };
      expect(await zk.transaction(fn, { id, lock })).toBe('first');
      const nodes = await new Promise((resolve, reject) => other._c.getChildren(path, (e, c) => (e ? reject(e) : resolve(c))));
      for (const n of nodes) await other.remove(`${path}/${n}`);
      await lock.lost.catch(() => {});
      expect(await zk.transaction(fn, { id, lock })).toBe('first');
      expect(await zk.get(k)).toBe(1);
    });

    it('a replay slower than the 5-minute age limit with retries: 0 resolves the recorded result', async () => {
      const [k, id] = [unique('slow-replay'), unique('id')];
      let slow = false;
      const fn = async (tx) => {
        const n = (await tx.get(k)) ?? 0;
        if (slow) advanceClock(zk, 6 * 60 * 1000); // a function that took 6 minutes
        tx.set(k, n + 1);
        return 'first';
      };
      expect(await zk.transaction(fn, { id })).toBe('first');
      slow = true;
      expect(await zk.transaction(fn, { id, retries: 0 })).toBe('first');
      expect(await zk.get(k)).toBe(1);
    });
  });

  describe('an ephemeral znode another client created at a key', () => {
    let a;
    let c;
    beforeAll(async () => { a = client(); c = client(); await c.set(unique('warm-up'), 1); });
    afterAll(async () => { await a.close(); await c.close(); });

    it('is neither read nor written (its version would restart when its owner leaves); create finds it', async () => {
      const k = unique('ephemeral');
      const other = await rawClient(server.connect);
      await other.createEphemeral(valuePath(k), '"json or not"');
      for (const attempt of [
        () => c.get(k),
        () => c.transaction(async (tx) => { tx.set(k, 1); }),
        () => c.transaction(async (tx) => { tx.delete(k); }),
        () => c.executeTransaction(k, 1, { timeout: 2000 }),
      ]) expect(await codeOf(attempt())).toBe('INVALID_ARGUMENT');
      expect(await codeOf(c.transaction(async (tx) => { tx.create(k, 1); }, { retries: 0 }))).toBe('NODEEXISTS');
      // Compaction leaves it alone.
      advanceClock(c, MINUTES_11);
      await c.compactTombstones(HORIZON);
      expect(await other.exists(valuePath(k))).toBe(true);
      other.close();
    });
  });

  describe('one tick of reads is one state, also when it meets a marked tombstone', () => {
    let proxy;
    let t;
    let w;
    beforeAll(async () => {
      proxy = await proxyTo(server.connect);
      t = clientAt(proxy.connect, { timeout: 10000, requestTimeout: 5000 });
      w = client();
      await t.set(unique('warm-up'), 1);
    }, 30000);
    afterAll(async () => { proxy.heal(); await t.close(); await w.close(); await proxy.close(); });

    it('snapshot: T reads acct and a marked k in one tick while W moves 5 from acct to k: T sees 10 in all, never 15', async () => {
      const [acct, k, total] = [unique('acct'), unique('marked'), unique('total')];
      await w.set(k, 1);
      await del(w, k);
      advanceClock(t, MINUTES_11);
      advanceClock(w, MINUTES_11);
      expect((await w.compactTombstones(HORIZON)).marked).toBeGreaterThanOrEqual(1);
      await w.set(acct, 10);
      proxy.delay(300);
      let seen;
      const tx = t.transaction(async (x) => {
        const [a, b] = await x.getMany([acct, k]);
        seen = { acct: a, k: b ?? 0 };
        x.set(total, a + (b ?? 0));
      }, { isolation: 'snapshot', retries: 0 });
      await new Promise((r) => setTimeout(r, 450)); // the multi-read was answered; its answer travels
      await w.transaction(async (x) => { x.set(acct, 5); x.set(k, 5); });
      await tx;
      proxy.delay(0);
      expect(seen.acct + seen.k).toBe(10);
      expect(await w.get(total)).toBe(10);
    }, 30000);
  });
});
