'use strict';
// Regression tests for holes an adversarial review found in the store's guarantees (issue 10):
// versions that restart after delete + re-create (lost updates), idempotent transactions that
// misreport an applied commit, self-deadlocks, ages that wrap around, requests over the server's
// size limit. Each failed on the code before its fix.
const { client, clientAt, unique, zkScripts } = require('./helpers/zk');
const { startProxy } = require('../testing');
const { recordStates } = require('./faults/util');

const codeOf = (p) => p.then(() => 'resolved', (e) => e.code);

describe('versions never restart: delete + re-create between read and commit', () => {
  let zk;
  beforeAll(() => { zk = client(); });
  afterAll(async () => { await zk.close(); });

  for (const isolation of ['serializable', 'snapshot']) {
    it(`${isolation}: T1 reads k=1, T2 deletes k, T3 creates k=100, T1 commits k+10 -> CONFLICT, never a lost update`, async () => {
      const k = unique('aba');
      await zk.set(k, 1);
      let release;
      const between = new Promise((resolve) => { release = resolve; });
      let readOnce;
      const read = new Promise((resolve) => { readOnce = resolve; });
      const t1 = zk.transaction(async (tx) => {
        const n = await tx.get(k);
        readOnce();
        await between;
        tx.set(k, n + 10);
      }, { isolation, retries: 0 });
      await read;
      await zk.transaction(async (tx) => { tx.delete(k); });
      await zk.transaction(async (tx) => { tx.create(k, 100); });
      release();
      const err = await t1.catch((e) => e);
      expect(err).toMatchObject({ name: 'ZktxError', code: 'CONFLICT', outcome: 'not_applied' });
      expect(await zk.get(k)).toBe(100);
    });
  }

  it('with retries the same interleaving ends in a serial result (110)', async () => {
    const k = unique('aba-retry');
    await zk.set(k, 1);
    let first = true;
    const result = await zk.transaction(async (tx) => {
      const n = await tx.get(k);
      if (first) {
        first = false;
        await zk.transaction(async (t) => { t.delete(k); });
        await zk.transaction(async (t) => { t.create(k, 100); });
      }
      tx.set(k, n + 10);
      return n + 10;
    });
    expect(result).toBe(110);
    expect(await zk.get(k)).toBe(110);
  });

  it('an absence read is a conflict when the key was created and deleted meanwhile', async () => {
    const [k, other] = [unique('absent'), unique('other')];
    let first = true;
    const err = await zk.transaction(async (tx) => {
      expect(await tx.get(k)).toBeUndefined();
      if (first) {
        first = false;
        await zk.transaction(async (t) => { t.create(k, 5); });
        await zk.transaction(async (t) => { t.delete(k); });
      }
      tx.set(other, 'saw k absent');
    }, { retries: 0 }).catch((e) => e);
    expect(err.code).toBe('CONFLICT');
    expect(await zk.get(other)).toBeUndefined();
  });

  it('executeTransaction is not fooled by a delete + re-create made through zk.transaction', async () => {
    const k = unique('aba-exec');
    await zk.set(k, 1);
    const err = await zk.executeTransaction(k, async (n) => {
      await zk.transaction(async (t) => { t.delete(k); });
      await zk.transaction(async (t) => { t.create(k, 100); });
      return n + 10;
    }).catch((e) => e);
    expect(err).toMatchObject({ name: 'ZktxError', outcome: 'not_applied' });
    expect(['BADVERSION', 'CONFLICT']).toContain(err.code);
    expect(await zk.get(k)).toBe(100);
    expect(await zk.children(`/zktx/locks/kv/${k}`)).toEqual([]);
  });

  it('a deleted key reads as absent everywhere and can be created, set and executeTransaction-ed again', async () => {
    const k = unique('del');
    await zk.set(k, 'a');
    await zk.transaction(async (tx) => { tx.delete(k); });
    expect(await zk.get(k)).toBeUndefined();
    expect(await zk.transaction(async (tx) => tx.get(k))).toBeUndefined();
    const r = await zk.executeTransaction(k, (cur) => (cur === undefined ? 'fresh' : 'stale'));
    expect(r).toMatchObject({ value: 'fresh', previous: undefined });
    await zk.transaction(async (tx) => { tx.delete(k); });
    await zk.transaction(async (tx) => { tx.create(k, 'again'); });
    expect(await zk.get(k)).toBe('again');
    const err = await zk.transaction(async (tx) => { tx.create(k, 'twice'); }, { retries: 0 }).catch((e) => e);
    expect(err.code).toBe('NODEEXISTS');
  });

  it('every writing commit reports its zxid, in commit order', async () => {
    const k = unique('zxid');
    let t1;
    await zk.transaction(async (tx) => { t1 = tx; tx.create(k, 1); });
    const r = await zk.executeTransaction(k, 2);
    let t3;
    await zk.transaction(async (tx) => { t3 = tx; tx.delete(k); });
    expect(typeof t1.committed.zxid).toBe('number');
    expect(r.zxid).toBeGreaterThan(t1.committed.zxid);
    expect(t3.committed.zxid).toBeGreaterThan(r.zxid);
  });

  it('compactTombstones refuses a horizon shorter than transactions may live', async () => {
    expect(await codeOf(zk.compactTombstones(1000))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(zk.compactTombstones(-1))).toBe('INVALID_ARGUMENT');
    expect(await zk.compactTombstones(3_600_000)).toEqual({ marked: 0, removed: 0, skipped: [] }); // nothing deleted an hour ago here
  });
});

describe('self-deadlocks fail fast', () => {
  let zk;
  beforeAll(() => { zk = client(); });
  afterAll(async () => { await zk.close(); });

  it('executeTransaction(k) from inside its own updater is ALREADY_HELD, and the outer one still commits', async () => {
    const k = unique('self');
    let inner;
    const outer = await zk.executeTransaction(k, async () => {
      inner = await codeOf(zk.executeTransaction(k, 2, { timeout: 5000 }));
      return 1;
    });
    expect(inner).toBe('ALREADY_HELD');
    expect(outer.value).toBe(1);
    expect(await zk.executeTransaction(k, (n) => n + 1)).toMatchObject({ value: 2 }); // released
  });

  it('concurrent executeTransactions on one key from one client still queue and all commit', async () => {
    const k = unique('queue');
    const results = await Promise.all(Array.from({ length: 5 }, () => zk.executeTransaction(k, (n) => (n ?? 0) + 1)));
    expect(results.map((r) => r.value).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(await zk.get(k)).toBe(5);
  });

  it('zktx\'s own tree is refused as a lock path (a key\'s lock is taken by executeTransaction)', async () => {
    const k = unique('internal');
    for (const path of ['/zktx', `/zktx/locks/kv/${k}`, '/zktx/kv', '/zktx/txn-ids']) {
      expect(await codeOf(zk.lock(path, { timeout: 1000 }))).toBe('INVALID_ARGUMENT');
    }
    expect(await codeOf(zk.multiLock(['/ok-path', `/zktx/locks/kv/${k}`]))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(zk.executeTransaction(k, 1, { timeout: 5000 }))).toBe('resolved');
  });
});

describe('bounded ages and request sizes', () => {
  let zk;
  beforeAll(() => { zk = client(); });
  afterAll(async () => { await zk.close(); });

  it('pruneTransactionIds with an age past any sane bound is INVALID_ARGUMENT and deletes nothing', async () => {
    const id = unique('fresh');
    await zk.transaction(async (tx) => { tx.set(unique('p'), 1); }, { id });
    for (const age of [1.5e19, Number.MAX_VALUE, 1e300]) {
      expect(await codeOf(zk.pruneTransactionIds(age))).toBe('INVALID_ARGUMENT');
    }
    expect(await zk.children('/zktx/txn-ids')).toContain(id);
  });

  it('a read set over the request limit is split; a commit over it is TOO_LARGE with nothing sent', async () => {
    const states = recordStates(zk);
    await zk.connect();
    // 400 keys of 1,024 bytes that percent-encode to 3,072 characters: a 1.2 MB multi-read.
    const prefix = unique('long');
    const keys = Array.from({ length: 400 }, (_, i) => `${prefix}-${i}-`.padEnd(1024, '%'));
    await zk.set(keys[7], 'seven');
    const values = await zk.transaction(async (tx) => tx.getMany(keys));
    expect(values.length).toBe(400);
    expect(values[7]).toBe('seven');
    expect(values.filter((v) => v !== undefined)).toEqual(['seven']);
    const target = unique('target');
    const err = await zk.transaction(async (tx) => {
      await tx.getMany(keys);
      tx.set(target, 'x'.repeat(10_000));
    }).catch((e) => e);
    expect(err).toMatchObject({ code: 'TOO_LARGE', outcome: 'not_applied' });
    expect(await zk.get(target)).toBeUndefined();
    expect(states.names()).not.toContain('SUSPENDED'); // the connection was never dropped
  });
});

describe('idempotent transactions tell the truth', () => {
  let server;
  let proxy;
  let zk;
  beforeAll(async () => {
    server = await zkScripts.startStandalone({ tickTime: 200 });
    proxy = await startProxy(server.connect);
    zk = clientAt(proxy.connect, { timeout: 4000, requestTimeout: 600, debug_level: 0 });
    // The values and markers directories exist, so the commit under test is one multi.
    await zk.transaction(async (tx) => { tx.set(unique('warm-up'), 1); }, { id: unique('warm-up') });
  }, 30000);
  afterAll(async () => {
    if (zk) await zk.close().catch(() => {});
    if (proxy) await proxy.close();
    if (server) await server.stop();
  });

  it('a { id } commit that applied but whose answer was lost resolves as applied, with the result it recorded', async () => {
    const k = unique('idem-create');
    const id = unique('txid');
    const attempts = [];
    const result = await zk.transaction(async (tx) => {
      attempts.push(tx.attempt);
      if (tx.attempt === 1) {
        // The retry runs once the line is back (heal closes the connection that lost answers).
        const back = new Promise((resolve) => zk.on('state', (s) => s === 'RECONNECTED' && resolve()));
        proxy.heal();
        await back;
      }
      const cur = await tx.get(k);
      tx.create(k, { by: tx.attempt });
      if (tx.attempt === 0) proxy.partition({ mode: 'responses' }); // the commit applies, its answer is lost
      return { attempt: tx.attempt, sawAbsent: cur === undefined };
    }, { id });
    expect(attempts).toEqual([0, 1]);
    expect(result).toEqual({ attempt: 0, sawAbsent: true }); // the result of the run that applied
    expect(await zk.get(k)).toEqual({ by: 0 });
  }, 20000);
});

describe('close() during a slow executeTransaction updater', () => {
  it('close() resolves, the session ends, and the updater\'s write never applies', async () => {
    const zk = client();
    const observer = client();
    const k = unique('close-mid-update');
    await observer.set(k, 'before');
    let entered;
    const inUpdater = new Promise((resolve) => { entered = resolve; });
    let finish;
    const slow = new Promise((resolve) => { finish = resolve; });
    const call = zk.executeTransaction(k, async () => { entered(); await slow; return 'after close'; });
    await inUpdater;
    await zk.close();
    expect(zk.state).toBe('CLOSED');
    expect(await observer.children(`/zktx/locks/kv/${k}`)).toEqual([]); // the session's lock node is gone
    finish();
    const err = await call.catch((e) => e);
    expect(err).toMatchObject({ name: 'ZktxError', outcome: 'not_applied' });
    expect(['CLIENT_CLOSED', 'LOCK_LOST']).toContain(err.code);
    expect(await observer.get(k)).toBe('before');
    await observer.close();
  });
});

describe('close() while a commit is in flight', () => {
  let server;
  let proxy;
  beforeAll(async () => {
    server = await zkScripts.startStandalone({ tickTime: 200 });
    proxy = await startProxy(server.connect);
  }, 30000);
  afterAll(async () => {
    if (proxy) await proxy.close();
    if (server) await server.stop();
  });

  it('the commit rejects CLIENT_CLOSED (outcome unknown), and once close() resolved it can never apply', async () => {
    const zk = clientAt(proxy.connect, { timeout: 4000, debug_level: 0 });
    const observer = clientAt(server.connect, { timeout: 4000, debug_level: 0 });
    const k = unique('close-in-flight');
    await zk.transaction(async (tx) => { tx.set(unique('warm-up'), 1); }); // directories exist
    const commit = zk.transaction(async (tx) => {
      await tx.get(k);
      tx.set(k, 'written by a closed client');
      proxy.partition({ mode: 'blackhole' }); // the commit waits in the network
    }, { retries: 0 }).catch((e) => e);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await zk.close();
    const closeMs = Date.now() - t0;
    expect(zk.state).toBe('CLOSED');
    const err = await commit;
    expect(err).toMatchObject({ name: 'ZktxError', code: 'CLIENT_CLOSED', outcome: 'unknown' });
    proxy.heal(); // the held-back commit reaches the server now, after close() resolved
    await new Promise((r) => setTimeout(r, 1000));
    expect(await observer.get(k)).toBeUndefined();
    expect(closeMs).toBeLessThan(4000 * 1.4 + 3000); // bounded by the session, not by the work
    await observer.close();
  }, 30000);
});

describe('a server that dies under an established session', () => {
  it('every call settles within the documented bound (2 x requestTimeout) with a typed error', async () => {
    const server = await zkScripts.startStandalone({ tickTime: 200 });
    const REQUEST_TIMEOUT = 1500;
    const zk = clientAt(server.connect, { timeout: 4000, requestTimeout: REQUEST_TIMEOUT, debug_level: 0 });
    try {
      const k = unique('dead');
      await zk.set(k, 1);
      server.kill('SIGKILL');
      const t0 = Date.now();
      const settle = (p) => p.then(() => ({ code: 'resolved', ms: Date.now() - t0 }), (e) => ({ code: e.code, name: e.name, ms: Date.now() - t0 }));
      const results = await Promise.all([
        settle(zk.get(k)),
        settle(zk.set(k, 2)),
        settle(zk.lock(`/dead/${k}`)),
        settle(zk.executeTransaction(k, (n) => n + 1)),
        settle(zk.transaction(async (tx) => { tx.set(k, (await tx.get(k)) + 1); }, { retries: 0 })),
        settle(zk.children('/zktx')),
      ]);
      console.log(`server killed: calls settled ${JSON.stringify(results)}`);
      for (const r of results) {
        expect(r.name).toBe('ZktxError');
        expect(['CONNECTIONLOSS', 'TIMEOUT', 'SESSIONEXPIRED', 'LOCK_LOST']).toContain(r.code);
        expect(r.ms).toBeLessThan(2 * REQUEST_TIMEOUT + 1000);
      }
    } finally {
      await zk.close();
      await server.stop().catch(() => {});
    }
  }, 30000);
});
