'use strict';
// Bad input is typed, bounded and harmless: every refusal is a ZktxError with a documented code,
// made before anything is sent, and no input reaches a panic in the addon.
// A dedicated server, so "nothing was written" can compare whole listings.
const { ZooKeeper, ZktxError } = require('..');
const native = require('../binding');
const { clientAt, zkScripts } = require('./helpers/zk');

const MAX_WAIT_MS = 2 ** 31 - 1;
const TEN_YEARS_MS = 10 * 365 * 24 * 3600 * 1000;

/** What a call did: 'ok', or the code of the ZktxError it threw or rejected with, or 'raw: ...'. */
async function outcomeOf(f) {
  try {
    await f();
    return 'ok';
  } catch (err) {
    if (err instanceof ZktxError) return err.code;
    return `raw: ${Object.prototype.toString.call(err)} ${err && err.message}`;
  }
}

/** Every znode path on the dedicated server but /zookeeper's: to show nothing was written. */
async function tree(client, path = '/') {
  const out = [];
  for (const name of await client.children(path)) {
    const child = path === '/' ? `/${name}` : `${path}/${name}`;
    if (child === '/zookeeper') continue;
    out.push(child, ...(await tree(client, child)));
  }
  return out;
}

let server;
let zk;
beforeAll(async () => {
  server = await zkScripts.startStandalone({ tickTime: 500 });
  zk = clientAt(server.connect);
  await zk.connect();
});
afterAll(async () => {
  if (zk) await zk.close();
  if (server) await server.stop();
});

describe('durations are bounded: out of range is INVALID_ARGUMENT, never a panic', () => {
  const huge = [1e300, Number.MAX_VALUE, 1e22, MAX_WAIT_MS + 1];

  it('session timeouts above 2^31-1 ms are refused by the constructor', async () => {
    for (const t of huge) {
      for (const name of ['timeout', 'connectTimeout', 'requestTimeout']) {
        expect([name, t, await outcomeOf(() => clientAt(server.connect, { [name]: t }))]).toEqual([name, t, 'INVALID_ARGUMENT']);
      }
    }
    const ok = clientAt(server.connect, { timeout: MAX_WAIT_MS, connectTimeout: MAX_WAIT_MS, requestTimeout: MAX_WAIT_MS });
    await ok.close();
  });

  it('acquire timeouts above 2^31-1 ms are refused by every call that waits', async () => {
    for (const t of huge) {
      const opts = { timeout: t };
      const calls = {
        lock: () => zk.lock('/zktx-input/t', opts),
        readLock: () => zk.readWriteLock('/zktx-input/t').readLock(opts),
        writeLock: () => zk.readWriteLock('/zktx-input/t').writeLock(opts),
        semaphore: () => zk.semaphore('/zktx-input/t', 2).acquire(opts),
        multiLock: () => zk.multiLock(['/zktx-input/t'], opts),
        withLock: () => zk.withLock('/zktx-input/t', () => 1, opts),
        executeTransaction: () => zk.executeTransaction('t', 1, opts),
        executeTransactionUpdater: () => zk.executeTransaction('t', () => 1, opts),
      };
      for (const [name, f] of Object.entries(calls)) expect([name, t, await outcomeOf(f)]).toEqual([name, t, 'INVALID_ARGUMENT']);
    }
    expect(await zk.children('/zktx-input/t')).toEqual([]);
  });

  it('pruneTransactionIds refuses ages above 10 years', async () => {
    for (const t of [1e300, Number.MAX_VALUE, 1e22, TEN_YEARS_MS + 1, NaN, -1, '1000', undefined]) {
      expect([t, await outcomeOf(() => zk.pruneTransactionIds(t))]).toEqual([t, 'INVALID_ARGUMENT']);
    }
    expect(await zk.pruneTransactionIds(TEN_YEARS_MS)).toBe(0);
  });

  it('the binding itself refuses them too (Rust-side check, not only the facade)', async () => {
    const nativeOptions = (o) => ({ connect: server.connect, timeoutMs: 10000, hostOrderDeterministic: false, reconnectAfterExpiry: true, logLevel: 0, ...o });
    const encoded = async (f) => {
      try {
        await f();
        return 'ok';
      } catch (err) {
        return String(err.message).split('|')[0];
      }
    };
    for (const t of [1e300, Number.MAX_VALUE, MAX_WAIT_MS + 1, NaN, -1]) {
      for (const field of ['timeoutMs', 'connectTimeoutMs', 'requestTimeoutMs']) {
        expect([field, t, await encoded(() => new native.NativeClient(nativeOptions({ [field]: t })))]).toEqual([field, t, 'INVALID_ARGUMENT']);
      }
    }
    const c = new native.NativeClient(nativeOptions({}));
    try {
      for (const t of [1e22, Number.MAX_VALUE, MAX_WAIT_MS + 1]) {
        expect(await encoded(() => c.acquire('exclusive', '/zktx-input/native', undefined, t))).toBe('INVALID_ARGUMENT');
        expect(await encoded(() => c.multiLock(['/zktx-input/native'], t))).toBe('INVALID_ARGUMENT');
        expect(await encoded(() => c.executeTransaction('native', '1', t))).toBe('INVALID_ARGUMENT');
      }
      for (const t of [Number.MAX_VALUE, 1e300, TEN_YEARS_MS + 1]) {
        expect(await encoded(() => c.pruneTransactionIds(t))).toBe('INVALID_ARGUMENT');
        expect(await encoded(() => c.compactTombstones(t))).toBe('INVALID_ARGUMENT');
      }
      expect(await encoded(() => c.pruneTransactionIds(TEN_YEARS_MS))).toBe('ok');
    } finally {
      await c.close();
    }
    expect(await zk.children('/zktx-input/native')).toEqual([]);
  });
});

describe('an addon error not in the CODE|outcome|message format becomes a ZktxError INTERNAL', () => {
  // The binding's own errors (napi's "Panic in async function", argument conversion) must not
  // leak raw. No input reaches them any more, so a stand-in binding plays the part.
  function facadeWith(fakeClient) {
    let facade;
    jest.isolateModules(() => {
      jest.doMock('../binding', () => ({ ...jest.requireActual('../binding'), NativeClient: fakeClient }));
      facade = require('..');
    });
    jest.dontMock('../binding');
    return facade;
  }

  it('rejections, sync throws and constructor throws of the addon are all INTERNAL, outcome unknown', async () => {
    const napiPanic = () => Object.assign(new Error('Panic in async function'), { code: 'GenericFailure' });
    class FakeClient {
      onState() {}
      get() { return Promise.reject(napiPanic()); }
      children() { throw new TypeError('Failed to convert JavaScript value'); }
      set() { return Promise.reject(null); } // eslint-disable-line prefer-promise-reject-errors
      connect() { return Promise.reject(new Error('INVALID_ARGUMENT|not_applied|ours: kept as is')); }
      close() { return Promise.resolve(); }
    }
    const { ZooKeeper, ZktxError } = facadeWith(FakeClient);
    const fake = new ZooKeeper({ connect: 'localhost:1' });
    const errOf = (p) => p.then(() => 'resolved', (e) => e);
    for (const err of [await errOf(fake.get('k')), await errOf(fake.children('/x')), await errOf(fake.set('k', 1))]) {
      expect(err).toBeInstanceOf(ZktxError);
      expect(err).toMatchObject({ code: 'INTERNAL', outcome: 'unknown' });
    }
    expect((await errOf(fake.get('k'))).message).toMatch(/Panic in async function/);
    expect(await errOf(fake.connect())).toMatchObject({ code: 'INVALID_ARGUMENT', outcome: 'not_applied', message: 'ours: kept as is' });
    await fake.close();

    const { ZooKeeper: Throwing, ZktxError: ThrowingError } = facadeWith(class { constructor() { throw new Error('napi: boom'); } });
    let thrown;
    try {
      new Throwing({ connect: 'localhost:1' }); // eslint-disable-line no-new
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ThrowingError);
    expect(thrown).toMatchObject({ code: 'INTERNAL' });
  });
});

describe('ill-formed UTF-16 (lone surrogates) in keys and paths is refused, not silently replaced', () => {
  const lone = ['\uD800', '\uDC00', 'a\uD800b', 'x\uDBFF', '\uDFFF\uD800'];

  it('keys, lock paths, listed paths and transaction ids: INVALID_ARGUMENT, nothing written', async () => {
    const before = await tree(zk);
    for (const s of lone) {
      const path = `/zktx-input/${s}`;
      const calls = {
        set: () => zk.set(s, 1),
        get: () => zk.get(s),
        executeTransaction: () => zk.executeTransaction(s, 1),
        lock: () => zk.lock(path),
        readWriteLock: () => zk.readWriteLock(path).writeLock(),
        semaphore: () => zk.semaphore(path, 2).acquire(),
        multiLock: () => zk.multiLock(['/zktx-input/ok', path]),
        withLock: () => zk.withLock(path, () => 1),
        children: () => zk.children(path),
        txGet: () => zk.transaction((tx) => tx.get(s)),
        txGetMany: () => zk.transaction((tx) => tx.getMany(['ok', s])),
        txSet: () => zk.transaction((tx) => tx.set(s, 1)),
        txCreate: () => zk.transaction((tx) => tx.create(s, 1)),
        txDelete: () => zk.transaction((tx) => tx.delete(s)),
        txId: () => zk.transaction((tx) => tx.set('ok', 1), { id: s }),
      };
      for (const [name, f] of Object.entries(calls)) expect([name, s, await outcomeOf(f)]).toEqual([name, s, 'INVALID_ARGUMENT']);
    }
    expect(await tree(zk)).toEqual(before);
  });

  it("U+FFFD itself and well-formed pairs stay valid keys, each its own value", async () => {
    await zk.set('\uFFFD', 'replacement char');
    await zk.set('\uD83D\uDE00', 'a pair');
    expect(await zk.get('\uFFFD')).toBe('replacement char');
    expect(await zk.get('\uD83D\uDE00')).toBe('a pair');
    expect(await outcomeOf(() => zk.get('\uD800'))).toBe('INVALID_ARGUMENT');
  });

  it('without String#isWellFormed (Node 18) the fallback check agrees', async () => {
    const saved = Object.getOwnPropertyDescriptor(String.prototype, 'isWellFormed');
    let facade;
    try {
      delete String.prototype.isWellFormed; // eslint-disable-line no-extend-native
      jest.isolateModules(() => { facade = require('..'); });
    } finally {
      if (saved) Object.defineProperty(String.prototype, 'isWellFormed', saved);
    }
    const old = new facade.ZooKeeper({ connect: server.connect });
    const codeOf = (p) => p.then(() => 'ok', (e) => (e instanceof facade.ZktxError ? e.code : `raw: ${e}`));
    try {
      for (const s of lone) expect([s, await codeOf(old.get(s))]).toEqual([s, 'INVALID_ARGUMENT']);
      for (const s of ['\uFFFD', '\uD83D\uDE00', 'plain', '\uD83D\uDE00\uD83D\uDE00']) expect([s, await codeOf(old.get(s))]).toEqual([s, 'ok']);
    } finally {
      await old.close();
    }
  });
});

describe('hostile values at every entry point: a ZktxError with a documented code, nothing written', () => {
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const trap = () => { throw new Error('trap'); };
  const HOSTILE = {
    nullProto: Object.create(null),
    throwingToString: { toString() { throw 1; } }, // eslint-disable-line no-throw-literal
    throwingEverything: { toString: trap, valueOf: trap, toJSON: trap, get [Symbol.toStringTag]() { return trap(); } },
    throwingGetters: { get timeout() { return trap(); }, get signal() { return trap(); }, get lock() { return trap(); } },
    proxyThatThrows: new Proxy({}, { get: trap, has: trap, ownKeys: trap, getPrototypeOf: trap, getOwnPropertyDescriptor: trap }),
    revokedProxy: revoked.proxy,
    symbol: Symbol('hostile'),
    bigint: 10n,
    maxValue: Number.MAX_VALUE,
    huge: 1e300,
    nan: NaN,
    infinity: -Infinity,
    negativeZero: -0,
    negative: -1,
    emptyArray: [],
    array: ['/zktx-input/h', 2],
    sparseArray: new Array(2 ** 32 - 1), // eslint-disable-line no-sparse-arrays
    function: () => 1,
    loneSurrogate: '\uD800',
    veryLong: 'x'.repeat(2_000_000),
    veryLongPath: `/${'x'.repeat(2_000_000)}`,
    empty: '',
    null: null,
    undefined,
    fakeLock: Object.create(require('..').Lock.prototype),
  };
  // Codes bad input may get: anything else (INTERNAL, CONNECTIONLOSS, a raw error) is a bug.
  const DOCUMENTED = ['INVALID_ARGUMENT', 'TOO_LARGE', 'NODEEXISTS', 'STALE_TOKEN'];
  const P = '/zktx-input/h';
  const K = 'hostile-key';
  const isUndefined = (v) => v === undefined;
  // An options bag without own keys is valid, whatever its prototype.
  const isEmptyBag = (v) => v === undefined || v === HOSTILE.nullProto || v === HOSTILE.fakeLock;
  const isWaitTime = (v) => v === undefined || Object.is(v, -0);
  const isJson = (v) => {
    try {
      return typeof v !== 'function' && JSON.stringify(v) !== undefined && JSON.stringify(v).length <= 1_000_000;
    } catch {
      return false;
    }
  };
  const release = (l) => l.release();
  const { FencingTokenGuard, executeTransaction } = require('..');

  // Each entry point takes the hostile value in one argument; `ok` says where it is valid input
  // (then the call may succeed, and undoes itself).
  const entries = () => ({
    // (Without `connect` they use ZK_CONNECT, the shared server; none connects: each is closed at once.)
    'new ZooKeeper(v)': { run: (v) => new ZooKeeper(v).close(), ok: isEmptyBag },
    ...Object.fromEntries(['connect', 'timeout', 'debug_level', 'host_order_deterministic', 'connectTimeout', 'requestTimeout', 'reconnectAfterExpiry'].map((o) => [
      `new ZooKeeper({ ${o}: v })`,
      { run: (v) => new ZooKeeper({ [o]: v }).close(), ok: (v) => v === undefined || (o === 'connect' && v === HOSTILE.veryLong) /* a (long) host name */ || (['debug_level', 'connectTimeout', 'requestTimeout'].includes(o) && Object.is(v, -0)) },
    ])),
    'lock(v)': { run: (v) => zk.lock(v).then(release) },
    'lock(p, v)': { run: (v) => zk.lock(P, v).then(release), ok: isEmptyBag },
    'lock(p, { timeout: v })': { run: (v) => zk.lock(P, { timeout: v }).then(release), ok: isWaitTime },
    'lock(p, { signal: v })': { run: (v) => zk.lock(P, { signal: v }).then(release), ok: isUndefined },
    'readWriteLock(v)': { run: (v) => zk.readWriteLock(v).readLock().then(release) },
    'readWriteLock(p).writeLock(v)': { run: (v) => zk.readWriteLock(P).writeLock(v).then(release), ok: isEmptyBag },
    'readWriteLock(p).readLock({ timeout: v })': { run: (v) => zk.readWriteLock(P).readLock({ timeout: v }).then(release), ok: isWaitTime },
    'semaphore(v, 2)': { run: (v) => zk.semaphore(v, 2).acquire().then(release) },
    'semaphore(p, v)': { run: (v) => zk.semaphore(P, v).acquire().then(release) },
    'semaphore(p, 2).acquire({ timeout: v })': { run: (v) => zk.semaphore(P, 2).acquire({ timeout: v }).then(release), ok: isWaitTime },
    'multiLock(v)': { run: (v) => zk.multiLock(v).then(release) },
    'multiLock([p, v])': { run: (v) => zk.multiLock([P, v]).then(release) },
    'multiLock([p], v)': { run: (v) => zk.multiLock([P], v).then(release), ok: isEmptyBag },
    'multiLock([p], { timeout: v })': { run: (v) => zk.multiLock([P], { timeout: v }).then(release), ok: isWaitTime },
    'withLock(v, fn)': { run: (v) => zk.withLock(v, () => 1) },
    'withLock(p, v)': { run: (v) => zk.withLock(P, v), ok: (v) => v === HOSTILE.function },
    'withLock(p, () => v)': { run: (v) => zk.withLock(P, () => v), ok: (v) => v !== HOSTILE.proxyThatThrows && v !== HOSTILE.revokedProxy },
    'withLock(p, fn, v)': { run: (v) => zk.withLock(P, () => 1, v), ok: isEmptyBag },
    'get(v)': { run: (v) => zk.get(v) },
    'set(v, 1)': { run: (v) => zk.set(v, 1) },
    'set(k, v)': { run: (v) => zk.set(K, v), ok: isJson },
    'set(k, 1, v)': { run: (v) => zk.set(K, 1, v), ok: isEmptyBag },
    'set(k, 1, { lock: v })': { run: (v) => zk.set(K, 1, { lock: v }), ok: isUndefined },
    'executeTransaction(v, 1)': { run: (v) => zk.executeTransaction(v, 1) },
    'executeTransaction(k, v)': { run: (v) => zk.executeTransaction(K, v), ok: (v) => isJson(v) || v === HOSTILE.function },
    'executeTransaction(k, () => v)': { run: (v) => zk.executeTransaction(K, () => v), ok: isJson },
    'executeTransaction(k, 1, v)': { run: (v) => zk.executeTransaction(K, 1, v), ok: isEmptyBag },
    'executeTransaction(k, 1, { timeout: v })': { run: (v) => zk.executeTransaction(K, 1, { timeout: v }), ok: isWaitTime },
    'module executeTransaction(v, 1)': { run: (v) => executeTransaction(v, 1) },
    'transaction(v)': { run: (v) => zk.transaction(v), ok: (v) => v === HOSTILE.function },
    'transaction(() => v)': { run: (v) => zk.transaction(() => v), ok: (v) => v !== HOSTILE.proxyThatThrows && v !== HOSTILE.revokedProxy },
    'transaction(fn, v)': { run: (v) => zk.transaction(() => 1, v), ok: isEmptyBag },
    ...Object.fromEntries(['retries', 'isolation', 'lock', 'id', 'idempotent', 'signal'].map((o) => [
      `transaction(fn, { ${o}: v })`,
      { run: (v) => zk.transaction((tx) => tx.set(K, 1), { [o]: v }), ok: (v) => v === undefined || (o === 'retries' && Object.is(v, -0)) },
    ])),
    'tx.get(v)': { run: (v) => zk.transaction((tx) => tx.get(v)) },
    'tx.getMany(v)': { run: (v) => zk.transaction((tx) => tx.getMany(v)), ok: (v) => v === HOSTILE.emptyArray },
    'tx.getMany([k, v])': { run: (v) => zk.transaction((tx) => tx.getMany([K, v])) },
    'tx.set(v, 1)': { run: (v) => zk.transaction((tx) => tx.set(v, 1)) },
    'tx.set(k, v)': { run: (v) => zk.transaction((tx) => tx.set(K, v)), ok: isJson },
    'tx.create(v, 1)': { run: (v) => zk.transaction((tx) => tx.create(v, 1)) },
    'tx.delete(v)': { run: (v) => zk.transaction((tx) => tx.delete(v)) },
    'children(v)': { run: (v) => zk.children(v) },
    'pruneTransactionIds(v)': { run: (v) => zk.pruneTransactionIds(v), ok: (v) => Object.is(v, -0) },
    'compactTombstones(v)': { run: (v) => zk.compactTombstones(v) },
    'guard.check(v, stale)': { run: (v) => { const g = new FencingTokenGuard(); g.check(v, 5); g.check(v, 1); } },
    'guard.check(r, v)': { run: (v) => new FencingTokenGuard().check('r', v), ok: (v) => typeof v === 'number' && Number.isFinite(v) },
  });

  it('every entry point refuses every hostile value it cannot take', async () => {
    // What valid calls create once (lock directories, the key) exists before the snapshot.
    await (await zk.lock(P)).release();
    await zk.executeTransaction(K, 0);
    const before = await tree(zk);
    const bugs = [];
    const moduleLevel = clientAt(server.connect); // the module-level executeTransaction's client
    try {
      for (const [name, { run, ok = () => false }] of Object.entries(entries())) {
        for (const [label, v] of Object.entries(HOSTILE)) {
          const got = await outcomeOf(() => run(v));
          const fine = got === 'ok' ? ok(v) : DOCUMENTED.includes(got);
          if (!fine) bugs.push(`${name} with ${label}: ${got}`);
        }
      }
    } finally {
      await moduleLevel.close();
    }
    expect(bugs).toEqual([]);
    expect(await tree(zk)).toEqual(before);
  }, 120000);
});

describe('sync calls into the addon cannot panic across the boundary', () => {
  // A panic in a sync #[napi] fn or getter unwinds into C and aborts Node: each body must run in
  // no_panic (async ones in guarded, see the Rust unit tests). Read from the source, so a new
  // binding fn that forgets it fails here.
  it('every sync #[napi] fn, constructor and getter of src/lib.rs runs its body in no_panic', () => {
    const src = require('node:fs').readFileSync(require('node:path').join(__dirname, '..', 'src', 'lib.rs'), 'utf8');
    const fns = [...src.matchAll(/#\[napi(?:\([^)]*\))?\]\s*(?:\/\/\/[^\n]*\s*)*pub fn (\w+)[^{]*\{\s*\n\s*([^\n]*)/g)];
    expect(fns.length).toBeGreaterThan(15);
    const unguarded = fns.filter((m) => !m[2].startsWith('no_panic(')).map((m) => m[1]);
    expect(unguarded).toEqual([]);
  });

  it("the facade turns an error of the addon's sync getters into a ZktxError too", () => {
    let facade;
    jest.isolateModules(() => {
      jest.doMock('../binding', () => ({
        ...jest.requireActual('../binding'),
        NativeClient: class {
          onState() {}
          get state() { throw new Error('napi: getter failed'); }
          close() { return Promise.resolve(); }
        },
      }));
      facade = require('..');
    });
    jest.dontMock('../binding');
    const fake = new facade.ZooKeeper({ connect: 'localhost:1' });
    let thrown;
    try {
      fake.state; // eslint-disable-line no-unused-expressions
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(facade.ZktxError);
    expect(thrown).toMatchObject({ code: 'INTERNAL' });
    return fake.close();
  });
});

describe('the module-level executeTransaction', () => {
  it('rejects (never throws) and refuses a bad key before it opens a client', async () => {
    let made = 0;
    let facade;
    jest.isolateModules(() => {
      jest.doMock('../binding', () => ({
        ...jest.requireActual('../binding'),
        NativeClient: class {
          constructor() { made++; }
          onState() {}
          close() { return Promise.resolve(); }
        },
      }));
      facade = require('..');
    });
    jest.dontMock('../binding');
    const codeOf = (f) => {
      let p;
      try {
        p = f();
      } catch (err) {
        return Promise.resolve(`threw ${err && err.code}`);
      }
      return p.then(() => 'ok', (e) => (e instanceof facade.ZktxError ? e.code : `raw: ${e}`));
    };
    expect(await codeOf(() => facade.executeTransaction('\uD800', 1))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(() => facade.executeTransaction(Object.create(null), 1))).toBe('INVALID_ARGUMENT');
    expect(made).toBe(0);
    const saved = process.env.ZK_CONNECT;
    process.env.ZK_CONNECT = ','; // a connect string the constructor refuses
    try {
      expect(await codeOf(() => facade.executeTransaction('k', 1))).toBe('INVALID_ARGUMENT');
    } finally {
      process.env.ZK_CONNECT = saved;
    }
    expect(made).toBe(0);
  });
});

describe('auth credentials over the request limit are TOO_LARGE, never sent', () => {
  // zookeeper-client keeps an auth packet and sends it again on every reconnect: a packet over
  // jute.maxbuffer made the server drop the connection, the call timed out, and every later
  // call of the client failed CONNECTIONLOSS (the packet went out again on each reconnect).
  it('addAuth with 3 MB credentials: TOO_LARGE at once, and the client still works', async () => {
    const own = clientAt(server.connect, { timeout: 4000 });
    try {
      await own.connect();
      const t0 = Date.now();
      const err = await own.znodes.addAuth('digest', `u:${'p'.repeat(3e6)}`).then(() => null, (e) => e);
      expect([err?.code, err?.outcome, Date.now() - t0 < 1000]).toEqual(['TOO_LARGE', 'not_applied', true]);
      expect(err.message).not.toContain('pppp'); // never echo credentials
      expect((await own.znodes.exists('/')).stat).not.toBeNull();
    } finally {
      await own.close();
    }
  });

  it('the auth option with 3 MB credentials: TOO_LARGE from the constructor', () => {
    let err;
    try {
      new ZooKeeper({ connect: server.connect, auth: [{ scheme: 'digest', credentials: `u:${'p'.repeat(3e6)}` }] }).close();
    } catch (e) {
      err = e;
    }
    expect([err?.code, String(err?.message).includes('pppp')]).toEqual(['TOO_LARGE', false]);
  });
});

describe('the chroot counts toward the request limit', () => {
  // Every path a client sends carries its connect string's chroot. The size checks counted the
  // path alone: a write sized just under the limit went over jute.maxbuffer in a 16 KB chroot, the
  // server dropped the connection, and the call failed CONNECTIONLOSS (outcome unknown) instead of
  // TOO_LARGE (nothing sent).
  it('a setData, create and multi under the limit without the chroot, over it with: TOO_LARGE, the connection kept', async () => {
    const chroot = `/${'c'.repeat(16000)}`;
    const admin = clientAt(server.connect);
    const own = clientAt(`${server.connect}${chroot}`, { timeout: 4000 });
    try {
      await admin.znodes.create(chroot).catch((e) => { if (e.code !== 'NODEEXISTS') throw e; });
      await own.znodes.create('/n', Buffer.from('small'));
      const id = await own.znodes.sessionId();
      const data = Buffer.alloc(1_040_000 - 64 - '/n'.length, 1); // kv.rs MAX_REQUEST_BYTES, OP_OVERHEAD_BYTES
      const errs = [
        await own.znodes.setData('/n', data).then(() => null, (e) => e),
        await own.znodes.create('/m', data).then(() => null, (e) => e),
        await own.znodes.multi([{ op: 'set', path: '/n', data }]).then(() => null, (e) => e),
      ];
      expect(errs.map((e) => [e?.code, e?.outcome])).toEqual([['TOO_LARGE', 'not_applied'], ['TOO_LARGE', 'not_applied'], ['TOO_LARGE', 'not_applied']]);
      expect((await own.znodes.getData('/n')).data.toString()).toBe('small');
      expect((await own.znodes.exists('/m')).stat).toBeNull();
      expect(await own.znodes.sessionId()).toBe(id);
    } finally {
      await own.znodes.delete('/n').catch(() => {});
      await own.close();
      await admin.znodes.delete(chroot).catch(() => {});
      await admin.close();
    }
  });

  it('a chroot over 32 KiB is refused when the client is made', () => {
    let err;
    try {
      new ZooKeeper({ connect: `${server.connect}/${'c'.repeat(40000)}` }).close();
    } catch (e) {
      err = e;
    }
    expect([err?.code, /chroot is 40001 bytes; at most 32768/.test(String(err?.message))]).toEqual(['INVALID_ARGUMENT', true]);
  });
});
