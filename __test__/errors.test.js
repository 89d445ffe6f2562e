'use strict';
// Every error code, triggered from JS, with nothing written where a write was refused.
const { spawn } = require('node:child_process');
const net = require('node:net');
const { types } = require('node:util');
const readline = require('node:readline');
const { ZooKeeper, ZktxError } = require('..');
const { client, clientAt, unique, zkScripts } = require('./helpers/zk');
const { workerPath } = require('./helpers/procs');

const codeOf = (p) => p.then(() => 'resolved', (e) => e.code);

describe('errors: every rejection is a ZktxError with a stable code', () => {
  let zk;
  beforeAll(() => { zk = client(); });
  afterAll(async () => { await zk.close(); });

  it('INVALID_ARGUMENT: bad constructor options throw synchronously', () => {
    for (const opts of [{ bogus: 1 }, { timeout: -5 }, { timeout: 'x' }, { debug_level: 9 }, { host_order_deterministic: 'yes' }, { connect: '' }]) {
      expect(() => new ZooKeeper(opts)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });

  it('INVALID_ARGUMENT: bad keys and values are refused and nothing is written', async () => {
    const key = unique('invalid');
    const circular = {};
    circular.self = circular;
    const calls = [
      zk.set('', 1), zk.set(42, 1), zk.get(null), zk.get(''),
      zk.set(key, () => 1), zk.set(key, undefined), zk.set(key, circular), zk.set(key, 10n), zk.set(key, Symbol('s')),
      zk.executeTransaction(key, () => undefined), zk.executeTransaction(key, () => () => 1),
      zk.executeTransaction(key, async () => 10n), zk.executeTransaction('', 1),
      zk.executeTransaction(key, 1, { bogus: true }), zk.set(key, 1, { lock: {} }),
      zk.lock('relative'), zk.lock('/a//b'), zk.lock('/a/'), zk.lock('/zookeeper/x'), zk.lock(7),
      zk.lock('/a', { timeout: -1 }), zk.lock('/a', { signal: 'nope' }), zk.withLock('/a', 'not a function'),
      zk.set('k'.repeat(1025), 1),
    ];
    const codes = await Promise.all(calls.map(codeOf));
    expect(codes).toEqual(calls.map(() => 'INVALID_ARGUMENT'));
    expect(await zk.get(key)).toBeUndefined();
    expect(await zk.children(`/zktx/locks/kv/${key}`)).toEqual([]);
  });

  it('errors are ZktxError instances with code, outcome and message', async () => {
    const err = await zk.set('', 1).catch((e) => e);
    expect(err).toBeInstanceOf(ZktxError);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ name: 'ZktxError', code: 'INVALID_ARGUMENT', outcome: 'not_applied' });
    expect(err.message).toMatch(/non-empty string/);
  });

  it('an updater that throws passes its error through unchanged and writes nothing', async () => {
    const key = unique('throws');
    await zk.set(key, 'before');
    const boom = new Error('boom');
    await expect(zk.executeTransaction(key, () => { throw boom; })).rejects.toBe(boom);
    await expect(zk.executeTransaction(key, async () => { throw boom; })).rejects.toBe(boom);
    expect(await zk.get(key)).toBe('before');
    expect(await zk.children(`/zktx/locks/kv/${key}`)).toEqual([]);
  });

  it('TOO_LARGE: a value over the limit writes nothing and releases the lock', async () => {
    const key = unique('large');
    await zk.set(key, 'small');
    const big = 'x'.repeat(1_000_001);
    expect(await codeOf(zk.set(key, big))).toBe('TOO_LARGE');
    expect(await codeOf(zk.executeTransaction(key, big))).toBe('TOO_LARGE');
    expect(await codeOf(zk.executeTransaction(key, () => big))).toBe('TOO_LARGE');
    expect(await zk.get(key)).toBe('small');
    expect(await zk.children(`/zktx/locks/kv/${key}`)).toEqual([]);
  });

  it('TIMEOUT: a held lock times out a second contender, leaving only the holder node', async () => {
    const path = `/zktx-test/${unique('timeout')}`;
    const other = client();
    try {
      const held = await zk.lock(path);
      const err = await other.lock(path, { timeout: 150 }).catch((e) => e);
      expect(err).toMatchObject({ code: 'TIMEOUT', outcome: 'not_applied' });
      expect(await codeOf(other.lock(path, { timeout: 0 }))).toBe('TIMEOUT'); // tryLock
      expect(await codeOf(other.executeTransaction('x', 1, { timeout: -1 }))).toBe('INVALID_ARGUMENT');
      expect(await zk.children(path)).toEqual([held.nodePath.split('/').pop()]);
      await held.release();
      expect(await zk.children(path)).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('LOCK_KIND_MISMATCH: a semaphore lease on a path held as a lock is refused and leaves only the holder node', async () => {
    const path = `/zktx-test/${unique('kind')}`;
    const held = await zk.lock(path);
    const err = await zk.semaphore(path, 3).acquire({ timeout: 1000 }).catch((e) => e);
    expect(err).toBeInstanceOf(ZktxError);
    expect(err).toMatchObject({ code: 'LOCK_KIND_MISMATCH', outcome: 'not_applied' });
    expect(await zk.children(path)).toEqual([held.nodePath.split('/').pop()]);
    await held.release();
  });

  it('TIMEOUT: a call against a server that accepts but never answers rejects at the connect timeout', async () => {
    // A black hole: the TCP connection opens, no ZooKeeper answers (a hung server, a wrong port
    // of some other service that waits for its client to speak first).
    const silent = [];
    const hole = net.createServer((socket) => silent.push(socket));
    await new Promise((r) => hole.listen(0, '127.0.0.1', r));
    const dead = clientAt(`127.0.0.1:${hole.address().port}`, { timeout: 1500, connectTimeout: 1500 });
    const t0 = Date.now();
    try {
      const err = await dead.get('x').catch((e) => e);
      expect(err).toMatchObject({ code: 'TIMEOUT', outcome: 'not_applied' });
      expect(err.message).toContain(`127.0.0.1:${hole.address().port}`);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
      expect(Date.now() - t0).toBeLessThan(10000); // bounded, never hangs
    } finally {
      await dead.close();
      for (const s of silent) s.destroy();
      hole.close();
    }
  });

  it('CONNECTIONLOSS with cause ECONNREFUSED: a port nobody listens on fails at once, not at the connect timeout', async () => {
    const port = await zkScripts.freePort();
    const dead = clientAt(`127.0.0.1:${port}`, { timeout: 20000, connectTimeout: 15000 });
    const t0 = Date.now();
    const err = await dead.get('x').catch((e) => e);
    const ms = Date.now() - t0;
    await dead.close();
    expect(err).toBeInstanceOf(ZktxError);
    expect(err).toMatchObject({ code: 'CONNECTIONLOSS', outcome: 'not_applied' });
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(err.message).toMatch(/every host refused the connection \(ECONNREFUSED\)/);
    expect(types.isNativeError(err.cause)).toBe(true);
    expect(err.cause).toMatchObject({ code: 'ECONNREFUSED', message: `connect ECONNREFUSED 127.0.0.1:${port}` });
    expect(ms).toBeLessThan(2000); // the connect timeout is 15 s
  });

  it('CONNECTIONLOSS only when every host refuses: one live host among refused ones connects', async () => {
    const port = await zkScripts.freePort();
    const mixed = clientAt(`127.0.0.1:${port},${process.env.ZK_CONNECT.split('/')[0]}`, { timeout: 10000 });
    try {
      const key = unique('mixed-hosts');
      await mixed.set(key, 1);
      expect(await mixed.get(key)).toBe(1);
    } finally {
      await mixed.close();
    }
  });

  it('CONNECTIONLOSS with cause ENOTFOUND: a host name that does not resolve says so at once', async () => {
    const dead = clientAt('zktx-no-such-host.invalid:2181', { timeout: 20000, connectTimeout: 15000 });
    const t0 = Date.now();
    const err = await dead.connect().catch((e) => e);
    await dead.close();
    expect(err).toMatchObject({ code: 'CONNECTIONLOSS', outcome: 'not_applied' });
    expect(err.message).toMatch(/no host name resolves \(ENOTFOUND\)/);
    expect(err.message).toContain('zktx-no-such-host.invalid');
    expect(err.cause).toMatchObject({ code: 'ENOTFOUND', message: 'getaddrinfo ENOTFOUND zktx-no-such-host.invalid' });
    expect(Date.now() - t0).toBeLessThan(6000); // a resolver's answer, not the 15 s connect timeout
  });

  it('ABORTED: an AbortSignal cancels a waiting acquire and leaves no node behind', async () => {
    const path = `/zktx-test/${unique('abort')}`;
    const other = client();
    try {
      const held = await zk.lock(path);
      const ac = new AbortController();
      const waiting = other.lock(path, { signal: ac.signal });
      setTimeout(() => ac.abort(), 100);
      const err = await waiting.catch((e) => e);
      expect(err.code).toBe('ABORTED');
      expect(await codeOf(other.lock(path, { signal: AbortSignal.abort() }))).toBe('ABORTED');
      expect(await codeOf(other.executeTransaction(unique('k'), 1, { signal: AbortSignal.abort() }))).toBe('ABORTED');
      expect(await zk.children(path)).toEqual([held.nodePath.split('/').pop()]);
      await held.release();
      // Not aborted: the signal is only listened to while acquiring.
      const ac2 = new AbortController();
      const lock = await other.lock(path, { signal: ac2.signal });
      ac2.abort();
      expect(await lock.isHeld()).toBe(true);
      await lock.release();
    } finally {
      await other.close();
    }
  });

  it('CLIENT_CLOSED: calls after close() reject', async () => {
    const c = client();
    await c.connect();
    await c.close();
    await c.close(); // idempotent
    expect(await codeOf(c.get('x'))).toBe('CLIENT_CLOSED');
    expect(await codeOf(c.lock('/zktx-test/closed'))).toBe('CLIENT_CLOSED');
    expect(await codeOf(c.executeTransaction('x', 1))).toBe('CLIENT_CLOSED');
  });

  it('LOCK_LOST: a write fenced on a released lock is refused and writes nothing', async () => {
    const key = unique('lost');
    const lock = await zk.lock(`/zktx-test/${unique('lost')}`);
    expect(await zk.set(key, 'while held', { lock })).toBe(0);
    await lock.release();
    await lock.release(); // idempotent
    expect(await codeOf(zk.set(key, 'after release', { lock }))).toBe('LOCK_LOST');
    expect(await zk.get(key)).toBe('while held');
  });

  it('BADVERSION: a write that bypassed the lock makes the transaction fail and write nothing', async () => {
    const key = unique('badversion');
    await zk.set(key, 1);
    const rogue = client();
    try {
      const err = await zk.executeTransaction(key, async (cur) => {
        await rogue.set(key, 'rogue'); // unlocked write between our read and our commit
        return cur + 1;
      }).catch((e) => e);
      expect(err.code).toBe('BADVERSION');
      expect(await zk.get(key)).toBe('rogue');
      // NODEEXISTS: same race on a key that did not exist yet.
      const fresh = unique('nodeexists');
      const err2 = await zk.executeTransaction(fresh, async () => {
        await rogue.set(fresh, 'rogue');
        return 'mine';
      }).catch((e) => e);
      expect(err2.code).toBe('NODEEXISTS');
      expect(await zk.get(fresh)).toBe('rogue');
      expect(await zk.children(`/zktx/locks/kv/${key}`)).toEqual([]);
    } finally {
      await rogue.close();
    }
  });

  it("NONODE and NOCHILDRENFOREPHEMERALS: ZooKeeper's own codes pass through", async () => {
    const chroot = `/${unique('missing-chroot')}`;
    const chrooted = clientAt(`${process.env.ZK_CONNECT.split('/')[0]}${chroot}`);
    try {
      // A chroot that does not exist: the connect says so, naming it, instead of a bare NONODE later.
      const err = await chrooted.lock('/a').catch((e) => e);
      expect(err).toMatchObject({ code: 'NONODE', outcome: 'not_applied' });
      expect(err.message).toContain(`chroot ${chroot}`);
      expect(err.message).toMatch(/does not exist on the server: create it first/);
    } finally {
      await chrooted.close();
    }
    const lock = await zk.lock(`/zktx-test/${unique('eph')}`);
    expect(await codeOf(zk.lock(lock.nodePath))).toBe('NOCHILDRENFOREPHEMERALS');
    await lock.release();
  });

  it('CONNECTIONLOSS: a write in flight when the server dies has outcome "unknown"', async () => {
    const server = await zkScripts.startStandalone({ tickTime: 200 });
    const c = clientAt(server.connect, { timeout: 2000, debug_level: 0 });
    try {
      await c.set('k', 1);
      server.kill('SIGSTOP'); // the request below gets sent but never answered...
      const pending = c.set('k', 2).catch((e) => e);
      await new Promise((r) => setTimeout(r, 200));
      server.kill('SIGKILL'); // ...then the connection drops under it
      const err = await pending;
      expect(err).toMatchObject({ code: 'CONNECTIONLOSS', outcome: 'unknown' });
    } finally {
      await c.close();
      await server.stop();
    }
  });
});

describe('SESSIONEXPIRED: a holder frozen past its session timeout cannot write', () => {
  let server;
  beforeAll(async () => { server = await zkScripts.startStandalone({ tickTime: 200 }); });
  afterAll(async () => { if (server) await server.stop(); });

  it('its fenced write is refused after SIGCONT, and another process took the lock meanwhile', async () => {
    const path = '/zktx-test/frozen';
    const key = 'frozen-key';
    const child = spawn(process.execPath, [workerPath('holder.js'), path, key, '1000'], {
      env: { ...process.env, ZK_CONNECT: server.connect },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = JSON.parse((await lines.next()).value);
    expect(first.ready).toBe(true);
    process.kill(child.pid, 'SIGSTOP');
    const zk = clientAt(server.connect, { timeout: 4000 });
    try {
      const t0 = Date.now();
      const lock = await zk.lock(path, { timeout: 20000 }); // granted once the frozen session expires
      const takeoverMs = Date.now() - t0;
      expect(lock.token).toBeGreaterThan(first.token);
      await zk.set(key, 'fresh', { lock });
      process.kill(child.pid, 'SIGCONT');
      child.stdin.end('go\n');
      const result = JSON.parse((await lines.next()).value);
      expect(result).toMatchObject({ written: false, code: 'SESSIONEXPIRED' });
      expect(await zk.get(key)).toBe('fresh');
      await lock.release();
      expect(takeoverMs).toBeGreaterThan(0);
    } finally {
      await zk.close();
      child.kill('SIGKILL');
    }
  });
});
