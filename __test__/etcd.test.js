'use strict';
// zktx's locks on etcd v3, against a real etcd (ETCD_ENDPOINTS: the one `npm test` starts, or
// yours): the lock contract (exclusion across processes, growing tokens, try-lock, cancellation
// without leftovers, loss signalled), etcd's own recipe shared with `etcdctl lock`, and a holder
// frozen past its lease.
const { spawn, execFileSync } = require('node:child_process');
const path = require('node:path');
const { Etcd, ZktxError } = require('..');
const { unique, rejection, within } = require('./helpers/zk');
const { runWorkers, workerPath } = require('./helpers/procs');

// `npm test` (scripts/etcd.js run) and jest's global-setup both set it: never skipped.
const ENDPOINTS = process.env.ETCD_ENDPOINTS;
if (!ENDPOINTS) throw new Error('ETCD_ENDPOINTS is not set: run through npm test, or jest with its global-setup');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const clients = [];
const etcd = (options = {}) => {
  const c = new Etcd({ endpoints: ENDPOINTS, timeout: 4000, ...options });
  clients.push(c);
  return c;
};
afterAll(() => Promise.all(clients.map((c) => c.close().catch(() => {}))));

/** `etcdctl` (API v3) on the test cluster; its stdout. */
function etcdctl(...args) {
  return execFileSync('etcdctl', ['--endpoints', ENDPOINTS, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' });
}
/** The keys under a lock path. */
const keysUnder = (p) => etcdctl('get', '--prefix', '--keys-only', `${p}/`).split('\n').filter(Boolean);

function assertNoOverlap(intervals) {
  intervals.sort((a, b) => a.enter - b.enter);
  for (let i = 1; i < intervals.length; i++) {
    expect(intervals[i].enter).toBeGreaterThanOrEqual(intervals[i - 1].leave);
    expect(intervals[i].token).toBeGreaterThan(intervals[i - 1].token);
  }
}

describe('locks on etcd', () => {
  it('bad options are INVALID_ARGUMENT before anything is sent', () => {
    for (const endpoints of [[], 'nohost', ['h:0'], ['h:99999'], [42]]) {
      expect(() => new Etcd({ endpoints })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
    expect(() => new Etcd({ endpoints: ENDPOINTS, timeout: -1 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => new Etcd({ endpoints: ENDPOINTS, auth: { user: '' } })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => new Etcd({ endpoints: ENDPOINTS, nope: 1 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('a bad lock path is INVALID_ARGUMENT and leaves nothing on the server', async () => {
    const e = etcd();
    for (const p of ['relative', '/trailing/', '/a//b', '', `/${'x'.repeat(5000)}`]) {
      const err = await rejection(e.lock(p));
      expect(err).toBeInstanceOf(ZktxError);
      expect(err.code).toBe('INVALID_ARGUMENT');
    }
    expect(etcdctl('get', '--prefix', '--keys-only', 'relative')).toBe('');
  });

  it('one holder at a time across processes, tokens growing from one holder to the next', async () => {
    const p = `/locks/${unique('etcd-x')}`;
    const results = await runWorkers(workerPath('locker.js'), 4, { args: () => ['exclusive', p, '15'], env: { LOCK_BACKEND: 'etcd' } });
    for (const r of results) expect(r.code).toBe(0);
    const intervals = results.flatMap((r) => r.lines);
    expect(intervals).toHaveLength(60);
    assertNoOverlap(intervals);
    expect(keysUnder(p)).toEqual([]);
  });

  it('readers share, writers exclude everyone (processes, 90% reads)', async () => {
    const p = `/locks/${unique('etcd-rw')}`;
    const results = await runWorkers(workerPath('locker.js'), 4, { args: () => ['rw-mixed', p, '15'], env: { LOCK_BACKEND: 'etcd' } });
    for (const r of results) expect(r.code).toBe(0);
    const all = results.flatMap((r) => r.lines);
    const writes = all.filter((i) => i.side === 'write');
    for (const w of writes) {
      for (const o of all) {
        if (o === w) continue;
        expect(o.leave <= w.enter || o.enter >= w.leave).toBe(true);
      }
    }
    expect(all.some((i) => i.side === 'read')).toBe(true);
  });

  it('a semaphore lets at most its permits in', async () => {
    const p = `/locks/${unique('etcd-sem')}`;
    const es = [etcd(), etcd(), etcd(), etcd()];
    let inside = 0;
    let most = 0;
    await Promise.all(es.map(async (e) => {
      for (let i = 0; i < 6; i++) {
        const lease = await e.semaphore(p, 2).acquire();
        inside += 1;
        most = Math.max(most, inside);
        await sleep(5);
        inside -= 1;
        await lease.release();
      }
    }));
    expect(most).toBe(2);
    expect(keysUnder(p)).toEqual([]);
  });

  it("one client's waiters on a path share its watch of the queue, and each is let in as a permit frees up, in queue order", async () => {
    const p = `/locks/${unique('etcd-sem-shared')}`;
    const holder = etcd();
    const waiter = etcd(); // its three waiters follow the queue through one watch
    const held = [await holder.semaphore(p, 2).acquire(), await holder.semaphore(p, 2).acquire()];
    const order = [];
    const waits = [];
    for (let i = 0; i < 3; i++) {
      waits.push(waiter.semaphore(p, 2).acquire().then((lease) => { order.push(i); return lease; }));
      while (keysUnder(p).length < 3 + i) await sleep(20); // queued in this order
    }
    await held[0].release();
    const first = await waits[0];
    await held[1].release();
    const second = await waits[1];
    expect(order).toEqual([0, 1]); // both permits taken: the third still waits
    await first.release();
    const third = await waits[2];
    expect(order).toEqual([0, 1, 2]);
    await Promise.all([second.release(), third.release()]);
    expect(keysUnder(p)).toEqual([]);
  });

  it('excludes `etcdctl lock` on the same name, both ways (etcd\'s own recipe)', async () => {
    const p = `/locks/${unique('etcd-ctl')}`;
    const e = etcd();
    const lock = await e.lock(p);
    expect(lock.nodePath).toMatch(new RegExp(`^${p}/[0-9a-f]+$`)); // <name>/<lease id in hex>, as Go names it
    const started = Date.now();
    const ctl = spawn('etcdctl', ['--endpoints', ENDPOINTS, 'lock', p, '--', 'echo', 'etcdctl-holds'], { env: { ...process.env, ETCDCTL_API: '3' } });
    let out = '';
    ctl.stdout.on('data', (d) => { out += d; });
    const exited = new Promise((r) => ctl.on('exit', r));
    await sleep(1500);
    expect(out).toBe(''); // still waiting behind zktx
    await lock.release();
    expect(await within(exited, 10000, 'etcdctl lock')).toBe(0);
    expect(out).toContain('etcdctl-holds');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);

    // etcdctl holds (its command sleeps): zktx waits, times out, then gets in after it.
    const holder = spawn('etcdctl', ['--endpoints', ENDPOINTS, 'lock', p, '--', 'sh', '-c', 'echo in; sleep 2'], { env: { ...process.env, ETCDCTL_API: '3' } });
    await new Promise((r) => holder.stdout.once('data', r));
    const err = await rejection(e.lock(p, { timeout: 500 }));
    expect(err.code).toBe('TIMEOUT');
    const after = await e.lock(p, { timeout: 10000 });
    expect(after.token).toBeGreaterThan(lock.token);
    await after.release();
  });

  it('try-lock, timeout and abort leave no key behind', async () => {
    const p = `/locks/${unique('etcd-cancel')}`;
    const [a, b] = [etcd(), etcd()];
    const held = await a.lock(p);
    expect((await rejection(b.lock(p, { timeout: 0 }))).code).toBe('TIMEOUT');
    expect((await rejection(b.lock(p, { timeout: 300 }))).code).toBe('TIMEOUT');
    const ac = new AbortController();
    const pending = b.lock(p, { signal: ac.signal });
    await sleep(200);
    ac.abort(new Error('changed my mind'));
    const err = await rejection(pending);
    expect(err.code).toBe('ABORTED');
    expect(err.cause.message).toBe('changed my mind');
    expect(keysUnder(p)).toEqual([held.nodePath]);
    await held.release();
    expect(keysUnder(p)).toEqual([]);
  });

  it('multiLock takes all paths or none, in one order whatever order they are named in', async () => {
    const base = `/locks/${unique('etcd-multi')}`;
    const [a, b] = [etcd(), etcd()];
    const both = await a.multiLock([`${base}/y`, `${base}/x`]);
    expect(both.tokens).toHaveLength(2);
    const blocker = await b.lock(`${base}/z`);
    // b wants x, y, z in another order: times out on x, and keeps nothing (z was its own already)
    expect((await rejection(b.multiLock([`${base}/z2`, `${base}/y`, `${base}/x`], { timeout: 300 }))).code).toBe('TIMEOUT');
    expect(keysUnder(`${base}/z2`)).toEqual([]);
    await both.release();
    const all = await b.multiLock([`${base}/y`, `${base}/x`], { timeout: 5000 });
    expect(Math.min(...all.tokens)).toBeGreaterThan(Math.max(...both.tokens));
    await Promise.all([all.release(), blocker.release()]);
    expect((await rejection(a.multiLock([]))).code).toBe('INVALID_ARGUMENT');
  });

  it('locks are not reentrant on one client (ALREADY_HELD), and a released path can be taken again', async () => {
    const p = `/locks/${unique('etcd-re')}`;
    const e = etcd();
    const lock = await e.lock(p);
    expect((await rejection(e.lock(p, { timeout: 0 }))).code).toBe('ALREADY_HELD');
    await lock.release();
    await (await e.lock(p)).release();
  });

  it('a lock whose key is deleted is lost: signal aborts with LOCK_LOST / NODE_DELETED, isHeld is false', async () => {
    const p = `/locks/${unique('etcd-del')}`;
    const e = etcd();
    const lock = await e.withLock(p, async (l) => {
      const { signal } = l;
      etcdctl('del', l.nodePath);
      await within(new Promise((r) => signal.addEventListener('abort', r)), 5000, 'loss signal');
      expect(signal.reason.code).toBe('LOCK_LOST');
      expect(signal.reason.reason).toBe('NODE_DELETED');
      expect(await l.isHeld()).toBe(false);
      return l;
    });
    expect(lock.released).toBe(true);
  });

  it('close() revokes the lease: a waiter gets in at once and the holder learns SESSION_ENDED', async () => {
    const p = `/locks/${unique('etcd-close')}`;
    const [a, b] = [etcd(), etcd()];
    const held = await a.lock(p);
    const lost = held.lost;
    const waiting = b.lock(p);
    await sleep(100);
    const t0 = Date.now();
    await a.close();
    const next = await within(waiting, 3000, 'waiter after close');
    expect(Date.now() - t0).toBeLessThan(3000); // not a lease TTL (4 s): the close revoked it
    expect(next.token).toBeGreaterThan(held.token);
    expect((await lost).reason).toBe('SESSION_ENDED');
    expect((await rejection(a.lock(p))).code).toBe('CLIENT_CLOSED');
    await next.release();
  });

  it('a holder killed with -9 frees the lock when its lease expires', async () => {
    const p = `/locks/${unique('etcd-kill')}`;
    const child = spawn(process.execPath, [path.join(__dirname, 'workers', 'etcd-holder.js'), p], { env: { ...process.env, ETCD_ENDPOINTS: ENDPOINTS }, stdio: ['ignore', 'pipe', 'inherit'] });
    const held = JSON.parse(await new Promise((r) => child.stdout.once('data', r)));
    const e = etcd();
    expect((await rejection(e.lock(p, { timeout: 200 }))).code).toBe('TIMEOUT');
    const killedAt = Date.now();
    child.kill('SIGKILL');
    const lock = await e.lock(p, { timeout: 15000 });
    const took = Date.now() - killedAt;
    expect(lock.token).toBeGreaterThan(held.token);
    expect(took).toBeGreaterThan(500); // only the lease's expiry frees it (TTL 2 s)
    await lock.release();
  });

  it('process.exit() without close() frees the lock at once: the exit hook revokes the lease', async () => {
    const p = `/locks/${unique('etcd-exit')}`;
    const e = etcd();
    const child = spawn(process.execPath, [path.join(__dirname, 'workers', 'etcd-holder.js'), p, 'exit'], { env: { ...process.env, ETCD_ENDPOINTS: ENDPOINTS }, stdio: ['ignore', 'pipe', 'inherit'] });
    const held = JSON.parse(await new Promise((r) => child.stdout.once('data', r)));
    const code = await new Promise((r) => child.on('exit', r));
    expect(code).toBe(0);
    const exitedAt = Date.now();
    const lock = await e.lock(p, { timeout: 1500 }); // the lease's TTL is 2 s: only a revoke frees it sooner
    expect(Date.now() - exitedAt).toBeLessThan(1500);
    expect(lock.token).toBeGreaterThan(held.token);
    await lock.release();
  });

  it('a holder frozen (SIGSTOP) past its lease loses the lock to the next one, and learns it when it wakes', async () => {
    const p = `/locks/${unique('etcd-stop')}`;
    const child = spawn(process.execPath, [path.join(__dirname, 'workers', 'etcd-holder.js'), p, 'watch'], { env: { ...process.env, ETCD_ENDPOINTS: ENDPOINTS }, stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = [];
    child.stdout.on('data', (d) => lines.push(...String(d).split('\n').filter(Boolean).map((l) => JSON.parse(l))));
    while (lines.length === 0) await sleep(20);
    const e = etcd();
    child.kill('SIGSTOP');
    const lock = await e.lock(p, { timeout: 20000 });
    expect(lock.token).toBeGreaterThan(lines[0].token);
    child.kill('SIGCONT');
    const exit = new Promise((r) => child.on('exit', r));
    await within(exit, 15000, 'frozen holder exit');
    // After waking it is told the lock was lost (its lease expired; the next holder has it).
    expect(lines.find((l) => l.lost)).toEqual(expect.objectContaining({ lost: 'LOCK_LOST' }));
    await lock.release();
  });
});

test('an endpoint that refuses connections: CONNECTIONLOSS, nothing applied, the socket error as the cause', async () => {
  const net = require('node:net');
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  const c = etcd({ endpoints: `127.0.0.1:${port}`, timeout: 2000 });
  const err = await c.lock('/locks/refused').catch((e) => e);
  expect(err).toMatchObject({ name: 'ZktxError', code: 'CONNECTIONLOSS', outcome: 'not_applied', cause: { code: 'ECONNREFUSED' } });
  expect(err.message).toMatch(/cannot connect to etcd .*ECONNREFUSED/);
});
