'use strict';
// One contract, every lock type, on both backends (issue 20: ZooKeeper, and etcd with
// LOCK_BACKEND=etcd in the workers): exclusion across processes, fencing tokens, try-lock,
// cancellation without leftovers, loss signalling, fenced writes, no reentrancy.
const { client, unique } = require('./helpers/zk');
const { BACKENDS } = require('./helpers/backends');
const { etcdctlAt } = require('./helpers/etcd');
const { runWorkers, workerPath } = require('./helpers/procs');
const { MultiLock } = require('..');

const codeOf = (p) => p.then(() => 'resolved', (e) => e.code);

// Each entry: how to acquire an exclusive-acting lock of this type, and the worker kind.
const TYPES = [
  { name: 'lock', acquire: (zk, path, o) => zk.lock(path, o), worker: 'exclusive', reentrant: false },
  { name: 'readWriteLock().writeLock', acquire: (zk, path, o) => zk.readWriteLock(path).writeLock(o), worker: 'write', reentrant: false },
  { name: 'semaphore(path, 1)', acquire: (zk, path, o) => zk.semaphore(path, 1).acquire(o), worker: 'semaphore1', reentrant: true },
  { name: 'multiLock([path, path/b])', acquire: (zk, path, o) => zk.multiLock([`${path}/b`, path], o), worker: 'multi', reentrant: false },
];

/** Contenders left under a lock path (and under path/b for multi-locks): lock nodes on
 * ZooKeeper, keys directly under `<path>/` on etcd. */
async function leftovers(zk, path) {
  if (zk._backend === 'etcd') {
    const under = (p) => etcdctlAt(process.env.ETCD_ENDPOINTS, 'get', '--prefix', '--keys-only', `${p}/`).split('\n').filter((k) => k && !k.slice(p.length + 1).includes('/'));
    return under(path).length + under(`${path}/b`).length;
  }
  const own = (await zk.children(path)).filter((c) => c.startsWith('_c_'));
  const sub = (await zk.children(`${path}/b`)).filter((c) => c.startsWith('_c_'));
  return own.length + sub.length;
}

function assertNoOverlap(intervals) {
  intervals.sort((a, b) => a.enter - b.enter);
  for (let i = 1; i < intervals.length; i++) {
    expect(intervals[i].enter).toBeGreaterThanOrEqual(intervals[i - 1].leave);
    expect(intervals[i].token).toBeGreaterThan(intervals[i - 1].token);
  }
}

const CONTRACTS = BACKENDS.flatMap((backend) => TYPES.map((t) => ({ ...t, backend: backend.name, make: backend.client })));

describe.each(CONTRACTS)('lock contract on $backend: $name', ({ acquire, worker, reentrant, backend, make }) => {
  let zk;
  let other;
  const env = backend === 'etcd' ? { LOCK_BACKEND: 'etcd' } : {};
  const client = () => make();
  beforeAll(() => { zk = client(); other = client(); });
  afterAll(async () => { await zk.close(); await other.close(); });

  it('has one holder at a time across 4 processes, with increasing tokens', async () => {
    const path = `/zktx-test/${unique(worker)}`;
    const results = await runWorkers(workerPath('locker.js'), 4, { args: () => [worker, path, '10'], env });
    for (const r of results) expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const intervals = results.flatMap((r) => r.lines);
    expect(intervals).toHaveLength(40);
    assertNoOverlap(intervals);
    expect(await leftovers(zk, path)).toBe(0);
  });

  it('try-lock (timeout 0) and abort fail fast and leave only the holder behind', async () => {
    const path = `/zktx-test/${unique('try')}`;
    const held = await acquire(zk, path);
    const before = await leftovers(zk, path);
    expect(before).toBeGreaterThanOrEqual(1); // the holder's own entry is seen
    expect(await codeOf(acquire(other, path, { timeout: 0 }))).toBe('TIMEOUT');
    expect(await codeOf(acquire(other, path, { timeout: 50 }))).toBe('TIMEOUT');
    const ac = new AbortController();
    const waiting = acquire(other, path, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    expect(await codeOf(waiting)).toBe('ABORTED');
    expect(await leftovers(zk, path)).toBe(before);
    await held.release();
    await held.release(); // idempotent
    expect(held.released).toBe(true);
    expect(await leftovers(zk, path)).toBe(0);
  });

  it('fences writes: allowed while held, LOCK_LOST after release, nothing written', async () => {
    const path = `/zktx-test/${unique('fence')}`;
    const key = unique('fenced-key');
    const lock = await acquire(zk, path);
    await zk.set(key, 'held', { lock });
    await zk.transaction(async (tx) => { tx.set(key, 'held-tx'); }, { lock });
    await lock.release();
    expect(await codeOf(zk.set(key, 'stale', { lock }))).toBe('LOCK_LOST');
    expect(await codeOf(zk.transaction(async (tx) => { tx.set(key, 'stale'); }, { lock }))).toBe('LOCK_LOST');
    expect(await zk.get(key)).toBe('held-tx');
  });

  it('signals loss (signal + lost) when its session is closed, but not on release', async () => {
    const path = `/zktx-test/${unique('loss')}`;
    const c = client();
    const lock = await acquire(c, path);
    const released = await acquire(zk, `${path}-other`);
    await released.release();
    await c.close();
    const err = await lock.lost;
    expect(err.code).toBe('LOCK_LOST');
    expect(lock.signal.aborted).toBe(true);
    expect(lock.signal.reason.code).toBe('LOCK_LOST');
    expect(released.signal.aborted).toBe(false);
    const next = await acquire(zk, path, { timeout: 5000 }); // the server freed it at once
    await next.release();
  });

  it(reentrant ? 'may be acquired again by the same client (leases)' : 'is not reentrant: the same client fails fast with ALREADY_HELD', async () => {
    const path = `/zktx-test/${unique('reentrant')}`;
    const lock = await acquire(zk, path);
    if (reentrant) {
      expect(await codeOf(acquire(zk, path, { timeout: 0 }))).toBe('TIMEOUT'); // 1 permit, like anyone else
    } else {
      expect(await codeOf(acquire(zk, path))).toBe('ALREADY_HELD');
    }
    await lock.release();
    const again = await acquire(zk, path, { timeout: 1000 });
    await again.release();
  });
});

describe('read-write lock', () => {
  let zk;
  let other;
  beforeAll(() => { zk = client(); other = client(); });
  afterAll(async () => { await zk.close(); await other.close(); });

  it('readers share; a waiting writer blocks later readers (no writer starvation)', async () => {
    const path = `/zktx-test/${unique('rw')}`;
    const third = client();
    try {
      const r1 = await zk.readWriteLock(path).readLock();
      const r2 = await other.readWriteLock(path).readLock({ timeout: 1000 }); // shared
      const writer = third.readWriteLock(path).writeLock();
      let writerHeld = false;
      writer.then(() => { writerHeld = true; }, () => {});
      // Until the writer is in the queue (a new client's first call: its connect, TLS in secure
      // mode, may take longer than any fixed pause on a loaded machine).
      for (let i = 0; (await zk.children(path)).filter((c) => c.startsWith('_c_')).length < 3; i++) {
        if (i > 200) throw new Error('the writer never queued');
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(writerHeld).toBe(false);
      // A reader arriving after the writer queues behind it.
      const late = client();
      expect(await codeOf(late.readWriteLock(path).readLock({ timeout: 100 }))).toBe('TIMEOUT');
      await late.close();
      await r1.release();
      await r2.release();
      const w = await writer;
      expect(await codeOf(other.readWriteLock(path).readLock({ timeout: 0 }))).toBe('TIMEOUT');
      await w.release();
      const r3 = await other.readWriteLock(path).readLock({ timeout: 1000 });
      await r3.release();
    } finally {
      await third.close();
    }
  });

  it('a 90/10 read/write mix across 4 processes never deadlocks and writers exclude everyone', async () => {
    const path = `/zktx-test/${unique('rwmix')}`;
    const results = await runWorkers(workerPath('locker.js'), 4, { args: () => ['rw-mixed', path, '25'] });
    for (const r of results) expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const all = results.flatMap((r) => r.lines);
    expect(all).toHaveLength(100);
    for (const w of all.filter((i) => i.side === 'write')) {
      for (const o of all) {
        if (o === w) continue;
        const overlap = o.enter < w.leave && w.enter < o.leave;
        expect(overlap).toBe(false);
      }
    }
  });
});

describe('semaphore and multiLock specifics', () => {
  let zk;
  beforeAll(() => { zk = client(); });
  afterAll(async () => { await zk.close(); });

  it('a semaphore with 2 permits lets two hold and the third wait until one leaves', async () => {
    const path = `/zktx-test/${unique('sem')}`;
    const sem = zk.semaphore(path, 2);
    const [a, b] = [await sem.acquire(), await sem.acquire()];
    expect(await codeOf(sem.acquire({ timeout: 50 }))).toBe('TIMEOUT');
    const third = sem.acquire({ timeout: 5000 });
    await a.release(); // the first holder leaves: the waiter gets its permit
    const c = await third;
    await Promise.all([b.release(), c.release()]);
    expect(() => zk.semaphore(path, 0)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('two clients naming the same paths in opposite orders never deadlock', async () => {
    const [p1, p2] = [`/zktx-test/${unique('m1')}`, `/zktx-test/${unique('m2')}`];
    const other = client();
    try {
      const loop = (c, paths) => (async () => {
        for (let i = 0; i < 20; i++) {
          const m = await c.multiLock(paths, { timeout: 10000 });
          expect(m).toBeInstanceOf(MultiLock);
          expect(m.paths).toEqual([p1, p2].sort());
          await m.release();
        }
      })();
      await Promise.all([loop(zk, [p1, p2]), loop(other, [p2, p1])]);
      expect(await zk.children(p1)).toEqual([]);
      expect(await zk.children(p2)).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('all or nothing: a multiLock that cannot get one path releases the others', async () => {
    const [p1, p2] = [`/zktx-test/${unique('a1')}`, `/zktx-test/${unique('a2')}`];
    const other = client();
    try {
      const blocker = await other.lock(p2);
      expect(await codeOf(zk.multiLock([p1, p2], { timeout: 100 }))).toBe('TIMEOUT');
      expect(await zk.children(p1)).toEqual([]);
      await blocker.release();
      expect(await codeOf(zk.multiLock([]))).toBe('INVALID_ARGUMENT');
    } finally {
      await other.close();
    }
  });
});

describe('FencingTokenGuard (downstream fencing)', () => {
  it("refuses a stale holder's token once a newer holder wrote, with STALE_TOKEN", async () => {
    const { FencingTokenGuard } = require('..');
    const zk = client();
    const other = client();
    try {
      const path = `/zktx-test/${unique('guard')}`;
      const guard = new FencingTokenGuard();
      const first = await zk.lock(path);
      const firstToken = first.token;
      await first.release();
      const second = await other.lock(path);
      guard.check('orders-db', second.token); // the new holder writes first
      expect(guard.accept('orders-db', firstToken)).toBe(false);
      expect(() => guard.check('orders-db', firstToken)).toThrow(expect.objectContaining({ code: 'STALE_TOKEN' }));
      expect(guard.accept('orders-db', second.token)).toBe(true); // same holder again: fine
      expect(guard.accept('other-db', firstToken)).toBe(true); // per resource
      expect(guard.highest('orders-db')).toBe(second.token);
      expect(() => guard.accept('x', 'not a number')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
      await second.release();
    } finally {
      await zk.close();
      await other.close();
    }
  });
});

describe('process exit', () => {
  it('a holder that calls process.exit() frees its lock at once, not after its 20 s session timeout', async () => {
    const { execFileSync } = require('node:child_process');
    const path = `/zktx-test/${unique('exit')}`;
    execFileSync(process.execPath, [workerPath('exit-holder.js'), path], { stdio: 'inherit', timeout: 30000 });
    const zk = client();
    try {
      const lock = await zk.lock(path, { timeout: 3000 });
      await lock.release();
    } finally {
      await zk.close();
    }
  });
});

describe('losing a lock is noticed in time', () => {
  const { startProxy } = require('../testing');

  it('rejects a lostAfter outside (0, 1]', () => {
    for (const lostAfter of [0, -0.5, 1.5, NaN, '0.5']) {
      expect(() => client({ lostAfter })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });

  it('with lostAfter, a holder silently cut off learns it lost the lock before the next holder gets it', async () => {
    const proxy = await startProxy(process.env.ZK_CONNECT.split(',')[0]);
    const { clientAt } = require('./helpers/zk');
    const cutOff = clientAt(proxy.connect, { timeout: 4000, lostAfter: 0.25, debug_level: 0 });
    const next = client();
    try {
      const path = `/zktx-test/${unique('lost-after')}`;
      const lock = await cutOff.lock(path);
      let lostAt;
      lock.signal.addEventListener('abort', () => { lostAt = Date.now(); });
      await new Promise((r) => setTimeout(r, 100));
      const stalled = Date.now();
      proxy.partition({ mode: 'blackhole' });
      const successor = await next.lock(path, { timeout: 30000 });
      const acquiredAt = Date.now();
      expect(lock.signal.aborted).toBe(true);
      expect(lock.signal.reason.code).toBe('LOCK_LOST');
      expect(lostAt - stalled).toBeLessThan(acquiredAt - stalled);
      await successor.release();
    } finally {
      proxy.heal();
      await cutOff.close().catch(() => {});
      await next.close();
      await proxy.close();
    }
  }, 30000);
  it('a lock declared lost after a silence shorter than the session leaves the server when the connection returns: another client, then the same one, acquire it', async () => {
    const proxy = await startProxy(process.env.ZK_CONNECT.split(',')[0]);
    const { clientAt } = require('./helpers/zk');
    // Silence noticed after 2/5 of 6 s, declared lost 0.6 s later; the server keeps the session 6 s.
    const holder = clientAt(proxy.connect, { timeout: 6000, lostAfter: 0.1, debug_level: 0 });
    const other = client();
    const states = [];
    holder.on('state', (s) => states.push(s));
    try {
      const path = `/zktx-test/${unique('declared-lost')}`;
      const lock = await holder.lock(path);
      await other.connect();
      let grantedAt;
      const waiting = other.lock(path, { timeout: 20000 }).then((l) => { grantedAt = Date.now(); return l; });
      while ((await other.children(path)).length < 2) await new Promise((r) => setTimeout(r, 20));
      const cut = Date.now();
      proxy.partition({ mode: 'blackhole' });
      const err = await lock.lost;
      const declaredAfter = Date.now() - cut;
      const healedAt = Date.now();
      proxy.heal();
      expect(err).toMatchObject({ name: 'ZktxError', code: 'LOCK_LOST', reason: 'DISCONNECTED_TOO_LONG' });
      expect(err.message).toMatch(/declared lost after \d+ ms without a connection to ZooKeeper/);
      expect(err.disconnectedMs).toBeGreaterThanOrEqual(500);
      const successor = await Promise.race([waiting, new Promise((_, reject) => setTimeout(() => reject(new Error(`no one got the lock within 3 s of the heal (holder states: ${states})`)), 3000))]);
      // The session lived through the silence: the lock went because zktx deleted its node.
      expect(states).toContain('RECONNECTED');
      expect(states).not.toContain('EXPIRED');
      expect(await lock.isHeld()).toBe(false);
      console.log(`[locks] silence ${declaredAfter} ms -> declared lost; another client acquired ${grantedAt - healedAt} ms after the connection came back`);
      await successor.release();
      const again = await holder.lock(path, { timeout: 3000 });
      expect(again.token).toBeGreaterThan(successor.token);
      await again.release();
      expect(await other.children(path)).toEqual([]);
    } finally {
      proxy.heal();
      await holder.close().catch(() => {});
      await other.close();
      await proxy.close();
    }
  }, 30000);
});

describe('lock kinds mixed on one path', () => {
  // Exclusive lock, both sides of a read-write lock and multiLock are one family: an exclusive
  // lock is a writer to readers. A semaphore (2 permits here) counts leases, not holders, so a
  // path is either a semaphore or a lock: mixing them is refused.
  const KINDS = {
    exclusive: (zk, p, o) => zk.lock(p, o),
    read: (zk, p, o) => zk.readWriteLock(p).readLock(o),
    write: (zk, p, o) => zk.readWriteLock(p).writeLock(o),
    multiLock: (zk, p, o) => zk.multiLock([p, `${p}-other`], o),
    lease: (zk, p, o) => zk.semaphore(p, 2).acquire(o),
  };
  const names = Object.keys(KINDS);
  const pairs = names.flatMap((first) => names.map((second) => [first, second]));
  const expected = (a, b) => {
    if (a === 'lease' && b === 'lease') return 'shared';
    if (a === 'lease' || b === 'lease') return 'refused';
    return a === 'read' && b === 'read' ? 'shared' : 'excluded';
  };
  let zk;
  let other;
  beforeAll(() => { zk = client(); other = client(); });
  afterAll(async () => { await zk.close(); await other.close(); });

  it.each(pairs)('%s held, then %s on the same path', async (first, second) => {
    const path = `/zktx-test/${unique(`mixed-${first}-${second}`)}`;
    const held = await KINDS[first](zk, path);
    const before = await leftovers(zk, path);
    const outcome = expected(first, second);
    if (outcome === 'refused') {
      const err = await KINDS[second](other, path, { timeout: 2000 }).then(() => null, (e) => e);
      expect(err).toMatchObject({ name: 'ZktxError', code: 'LOCK_KIND_MISMATCH', outcome: 'not_applied' });
      expect(err.message).toMatch(/semaphore/);
      expect(await leftovers(zk, path)).toBe(before); // nothing left behind
    } else if (outcome === 'shared') {
      const both = await KINDS[second](other, path, { timeout: 2000 });
      await both.release();
    } else {
      let got = null;
      const waiting = KINDS[second](other, path, { timeout: 10000 }).then((l) => { got = l; return l; });
      await new Promise((r) => setTimeout(r, 300));
      expect(got).toBeNull(); // excluded while the first one holds
      await held.release();
      await (await waiting).release(); // and served once it is free
    }
    await held.release();
    expect(await leftovers(zk, path)).toBe(0);
  }, 20000);
});

describe('a Lock garbage-collected without release()', () => {
  const { execFileSync } = require('node:child_process');
  const run = (mode) => {
    const path = `/zktx-test/${unique(`gc-${mode}`)}`;
    const out = execFileSync(process.execPath, ['--expose-gc', workerPath('gc-lock.js'), path, mode], { encoding: 'utf8', timeout: 30000 });
    return JSON.parse(out.trim().split('\n').pop());
  };

  it('is released in the background: its node goes and the same client can lock the path again', () => {
    expect(run('plain')).toEqual({ result: 'acquired', leftover: 0 });
  });

  it('also when its loss signal was being watched', () => {
    expect(run('watched')).toEqual({ result: 'acquired', leftover: 0 });
  });
});

describe('no ghost lock nodes', () => {
  const { startProxy } = require('../testing');
  const { clientAt } = require('./helpers/zk');

  it("a release whose delete got no answer rejects with outcome 'unknown', and the node still goes", async () => {
    const proxy = await startProxy(process.env.ZK_CONNECT.split(',')[0]);
    // requestTimeout far below the client's dead-connection detection (2/5 of 6 s).
    const zk = clientAt(proxy.connect, { timeout: 6000, requestTimeout: 300, debug_level: 0 });
    const observer = client();
    try {
      const path = `/zktx-test/${unique('ghost-release')}`;
      const lock = await zk.lock(path);
      proxy.partition({ mode: 'blackhole' });
      const err = await lock.release().then(() => null, (e) => e);
      expect(err).toEqual(expect.objectContaining({ outcome: 'unknown' }));
      expect(['TIMEOUT', 'CONNECTIONLOSS']).toContain(err.code);
      expect(lock.released).toBe(false);
      await new Promise((r) => setTimeout(r, 500));
      proxy.heal();
      const until = Date.now() + 10000;
      while ((await observer.children(path)).length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(await observer.children(path)).toEqual([]);
      // The background removal confirms it (its own retry may have been in the stall too).
      while (!lock.released && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(lock.released).toBe(true);
      await lock.release(); // idempotent
    } finally {
      proxy.heal();
      await zk.close().catch(() => {});
      await observer.close();
      await proxy.close();
    }
  }, 30000);
});
