'use strict';
// The key-value store's contract, one suite run on both backends (issue 20 item 5): get / set,
// fenced set, executeTransaction (value and updater), across processes, with a holder killed
// mid-updater, a writer that skips the lock, foreign data, close mid-updater. The backend only
// changes the client's constructor (and how a test peeks at the server).
const { Etcd } = require('..');
const { unique, rejection } = require('./helpers/zk');
const { runWorkers, workerPath } = require('./helpers/procs');
const { BACKENDS, ZOOKEEPER, ETCD, etcdctl } = require('./helpers/backends');

const ENDPOINTS = process.env.ETCD_ENDPOINTS;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe.each(BACKENDS)('the key-value store on $name', (backend) => {
  const clients = [];
  const client = (o) => {
    const c = backend.client(o);
    clients.push(c);
    return c;
  };
  afterAll(() => Promise.all(clients.map((c) => c.close().catch(() => {}))));

  it('get of an absent key is undefined; set then get round-trips JSON; versions grow', async () => {
    const zk = client();
    const key = unique('kv');
    expect(await zk.get(key)).toBeUndefined();
    const v1 = await zk.set(key, { a: [1, 'two', null], b: true });
    expect(await zk.get(key)).toEqual({ a: [1, 'two', null], b: true });
    const v2 = await zk.set(key, 'x');
    expect(typeof v1).toBe('number');
    expect(v2).toBeGreaterThan(v1);
    expect(await client().get(key)).toBe('x');
  });

  it('executeTransaction with a value and with an updater: previous, value, version, token; the lock queue is empty after', async () => {
    const zk = client();
    const key = unique('etx');
    const first = await zk.executeTransaction(key, 1);
    expect(first).toMatchObject({ key, value: 1, previous: undefined });
    const second = await zk.executeTransaction(key, (cur) => cur + 41);
    expect(second).toMatchObject({ key, value: 42, previous: 1 });
    expect(second.version).toBeGreaterThan(first.version);
    expect(second.token).toBeGreaterThan(first.token);
    expect(await zk.get(key)).toBe(42);
    expect(await backend.lockEntries(zk, key)).toEqual([]);
  });

  it('4 processes x 25 executeTransaction(key, cur => cur + 1) end at exactly 100, each value seen once', async () => {
    const key = unique('counter');
    const results = await runWorkers(workerPath('counter.js'), 4, { args: () => [key, '25', backend.name] });
    for (const r of results) expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const zk = client();
    expect(await zk.get(key)).toBe(100);
    const values = results.flatMap((r) => r.lines.map((l) => l.value)).sort((a, b) => a - b);
    expect(values).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(await backend.lockEntries(zk, key)).toEqual([]);
  }, 120000);

  it('concurrent updaters on one client queue: 20 increments, none lost', async () => {
    const zk = client();
    const key = unique('local');
    await Promise.all(Array.from({ length: 20 }, () => zk.executeTransaction(key, async (cur) => {
      await sleep(1);
      return (cur ?? 0) + 1;
    })));
    expect(await zk.get(key)).toBe(20);
  });

  it('an updater that throws rejects with its own error, writes nothing and frees the lock', async () => {
    const zk = client();
    const key = unique('throws');
    await zk.set(key, 'kept');
    const boom = new Error('boom');
    await expect(zk.executeTransaction(key, () => { throw boom; })).rejects.toBe(boom);
    expect(await zk.get(key)).toBe('kept');
    expect(await backend.lockEntries(zk, key)).toEqual([]);
    expect((await zk.executeTransaction(key, 'next', { timeout: 2000 })).value).toBe('next');
  });

  it('a write that skipped the lock between read and commit: BADVERSION, and the commit writes nothing', async () => {
    const zk = client();
    const other = client();
    const key = unique('skip');
    await zk.set(key, 1);
    const err = await rejection(zk.executeTransaction(key, async (cur) => {
      await other.set(key, 'sneaked');
      return cur + 1;
    }));
    expect(err.code).toBe('BADVERSION');
    expect(err.outcome).toBe('not_applied');
    expect(await zk.get(key)).toBe('sneaked');
    expect(await backend.lockEntries(zk, key)).toEqual([]);
  });

  it('set fenced on a held lock writes; on a released lock it is LOCK_LOST and writes nothing; a lock of the other backend is INVALID_ARGUMENT', async () => {
    const zk = client();
    const key = unique('fenced');
    const lock = await zk.lock(`/zktx-test/${unique('fence')}`);
    expect(typeof (await zk.set(key, 'a', { lock }))).toBe('number');
    await lock.release();
    expect((await rejection(zk.set(key, 'b', { lock }))).code).toBe('LOCK_LOST');
    expect(await zk.get(key)).toBe('a');
    const foreignBackend = [ZOOKEEPER, ETCD].find((b) => b !== backend).client();
    clients.push(foreignBackend);
    const alien = await foreignBackend.lock(`/zktx-test/${unique('alien')}`);
    const bad = await rejection(zk.set(key, 'c', { lock: alien }));
    expect(bad.code).toBe('INVALID_ARGUMENT');
    expect(bad.message).toMatch(/other backend/);
    await alien.release();
    expect(await zk.get(key)).toBe('a');
  });

  it('a holder killed (kill -9) inside its updater: the next transaction gets in after the session ends, and the value is unchanged', async () => {
    const key = unique('killed');
    const zk = client({ timeout: 2000 });
    await zk.set(key, 5);
    const connect = process.env.ZK_CONNECT;
    const { spawn } = require('node:child_process');
    const src = `
      const { ZooKeeper, Etcd } = require(${JSON.stringify(require.resolve('..'))});
      const zk = ${backend.name === 'etcd' ? `new Etcd({ endpoints: ${JSON.stringify(ENDPOINTS)}, timeout: 2000 })` : `new ZooKeeper({ timeout: 2000, connect: ${JSON.stringify(connect)}, ...require(${JSON.stringify(require.resolve('./helpers/secure'))}).clientOptions() })`};
      zk.executeTransaction(${JSON.stringify(key)}, () => { console.log('inside'); return new Promise(() => {}); });
    `;
    const child = spawn(process.execPath, ['-e', src], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => String(d).includes('inside') && resolve());
      child.on('exit', (c) => reject(new Error(`child exited ${c} before its updater ran`)));
    });
    child.kill('SIGKILL');
    const r = await zk.executeTransaction(key, (cur) => cur + 1, { timeout: 15000 });
    expect(r).toMatchObject({ previous: 5, value: 6 });
  }, 30000);

  it('close() while an updater runs: the commit fails, nothing is written', async () => {
    const zk = client();
    const key = unique('closed');
    await zk.set(key, 'before');
    const err = await rejection(zk.executeTransaction(key, async () => {
      await zk.close();
      return 'after';
    }));
    expect(err).toBeInstanceOf(Error);
    expect(await client().get(key)).toBe('before');
  });

  it('data another client wrote (not JSON) reads as INVALID_ARGUMENT; executeTransaction with a value replaces it', async () => {
    const zk = client();
    const key = unique('foreign');
    await zk.set(key, 0); // creates the key (and on ZooKeeper the directory)
    await backend.writeForeign(zk, key, 'not json {');
    expect((await rejection(zk.get(key))).code).toBe('INVALID_ARGUMENT');
    expect((await rejection(zk.executeTransaction(key, (c) => c))).code).toBe('INVALID_ARGUMENT');
    expect((await zk.executeTransaction(key, { fixed: true })).value).toEqual({ fixed: true });
    expect(await zk.get(key)).toEqual({ fixed: true });
  });

  it('diagnostics channels report locks, executeTransaction and transaction conflicts with this client', async () => {
    const dc = require('node:diagnostics_channel');
    const zk = client();
    const other = client();
    const key = unique('diag');
    const seen = [];
    const names = ['zktx:lock:acquired', 'zktx:lock:released', 'zktx:executeTransaction:start', 'zktx:executeTransaction:commit', 'zktx:transaction:conflict', 'zktx:transaction:commit'];
    const listeners = names.map((name) => {
      const fn = (m) => { if (m.zk === zk) seen.push({ name, m }); };
      dc.subscribe(name, fn);
      return [name, fn];
    });
    try {
      const lock = await zk.lock(`/zktx-test/${unique('diag')}`);
      await lock.release();
      const done = await zk.executeTransaction(key, 1);
      let runs = 0;
      await zk.transaction(async (tx) => {
        const v = await tx.get(key);
        if (runs++ === 0) await other.set(key, 10); // one conflict, then a commit
        tx.set(key, v + 1);
      });
      const by = (n) => seen.filter((e) => e.name === n).map((e) => e.m);
      expect(by('zktx:lock:acquired')[0]).toMatchObject({ token: lock.token, path: lock.path });
      expect(by('zktx:lock:released').length).toBeGreaterThanOrEqual(1);
      expect(by('zktx:executeTransaction:start')[0]).toMatchObject({ key });
      expect(by('zktx:executeTransaction:commit')[0]).toMatchObject({ key, version: done.version, token: done.token });
      expect(by('zktx:transaction:conflict')).toHaveLength(1);
      expect(by('zktx:transaction:commit')[0]).toMatchObject({ attempts: 2, keys: [key] });
      expect(await zk.get(key)).toBe(11);
    } finally {
      for (const [name, fn] of listeners) dc.unsubscribe(name, fn);
    }
  });

  it('bad keys and values are INVALID_ARGUMENT / TOO_LARGE before anything is sent', async () => {
    const zk = client();
    for (const key of ['', '/abs/path', 'x'.repeat(1025), '\uD800', 7]) {
      expect((await rejection(zk.get(key))).code).toBe('INVALID_ARGUMENT');
      expect((await rejection(zk.executeTransaction(key, 1))).code).toBe('INVALID_ARGUMENT');
    }
    const key = unique('bad');
    expect((await rejection(zk.set(key, undefined))).code).toBe('INVALID_ARGUMENT');
    expect((await rejection(zk.set(key, new Map()))).code).toBe('INVALID_ARGUMENT');
    expect((await rejection(zk.set(key, 'x'.repeat(1_100_000)))).code).toBe('TOO_LARGE');
    expect((await rejection(zk.executeTransaction(key, () => undefined))).code).toBe('INVALID_ARGUMENT');
    expect(await zk.get(key)).toBeUndefined();
    expect(await backend.lockEntries(zk, key)).toEqual([]);
  });
});

(BACKENDS.includes(ETCD) ? describe : describe.skip)('etcd: the store next to etcdctl', () => {
  it('executeTransaction and etcdctl agree on the key and its lock (etcd layout: /zktx/kv/<key>, lock under /zktx/locks/kv/<key>/)', async () => {
    const zk = new Etcd({ endpoints: ENDPOINTS, timeout: 4000 });
    try {
      const key = unique('layout');
      await zk.executeTransaction(key, { n: 1 });
      expect(JSON.parse(etcdctl('get', '--print-value-only', `/zktx/kv/${key}`).trim())).toEqual({ n: 1 });
      // `etcdctl lock` on the key's lock name excludes executeTransaction
      const { spawn } = require('node:child_process');
      // etcdctl runs its command holding the lock: the command's last act records the time.
      const mark = require('node:path').join(require('node:os').tmpdir(), `${key}.done`);
      const holder = spawn('etcdctl', ['--endpoints', ENDPOINTS, 'lock', `/zktx/locks/kv/${key}`, '--', 'sh', '-c', `sleep 1; node -e 'console.log(Date.now())' > ${mark}`], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: 'ignore' });
      const exited = new Promise((resolve) => holder.on('exit', resolve));
      const deadline = Date.now() + 5000;
      while (etcdctl('get', '--prefix', '--keys-only', `/zktx/locks/kv/${key}/`).trim() === '' && Date.now() < deadline) await sleep(20);
      let readAt;
      const r = await zk.executeTransaction(key, (cur) => {
        readAt = Date.now();
        return { n: cur.n + 1 };
      }, { timeout: 10000 });
      expect(await exited).toBe(0);
      // Our updater ran after etcdctl's command ended, i.e. after its holder let go.
      expect(readAt).toBeGreaterThanOrEqual(Number(require('node:fs').readFileSync(mark, 'utf8')));
      require('node:fs').unlinkSync(mark);
      expect(r.value).toEqual({ n: 2 });
    } finally {
      await zk.close();
    }
  });
});
