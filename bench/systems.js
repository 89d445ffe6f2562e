'use strict';
// The systems under comparison, behind one small interface the scenarios use:
//
//   const sys = await SYSTEMS[name].open(connect);
//   const lock = await sys.lock(name); await lock.release();   // exclusive lock named `name`
//   await sys.readLock(name); await sys.writeLock(name);        // a read-write lock's two sides
//   await sys.executeTransaction(key, valueOrUpdater);          // lock, read, write, unlock
//   await sys.get(key); await sys.set(key, value);              // one key, JSON values
//   await sys.transfer(from, to, amount);                       // a 2-key transaction
//   await sys.close();
//   sys.znodes: { root, get(path), set(path, buf), create(path, buf), remove(path) }
//                                                               // the client's raw znode calls
//
// `open(connect, servers)`: `connect` is ZooKeeper's connect string, `servers.etcd` the etcd
// member's endpoints (["127.0.0.1:PORT"]). `backend` says which server a system talks to: the
// ZooKeeper scenarios run the zookeeper systems, the etcd scenarios name theirs (scenarios.js).
//
// zktx keeps its keys under /zktx (its own layout) and its bench locks under /zktx-bench (it
// refuses lock paths inside /zktx); the baselines keep theirs under /bench-baseline and the wire
// probe under /bench-probe, so the systems never share a znode.

const path = require('node:path');

const BASELINE_ROOT = '/bench-baseline';
/** The zktx package to measure: this checkout, or another build of it (`npm run bench -- --zktx DIR`). */
const zktxPackage = () => process.env.ZKTX_BENCH_PACKAGE || path.join(__dirname, '..');
const SESSION_TIMEOUT_MS = 30_000;

/** `require` that turns a missing or unbuildable package into a reason instead of a crash. */
function tryRequire(id, what = id) {
  try {
    return { module: require(id) };
  } catch (err) {
    return { reason: `${what} cannot be loaded (${err.message.split('\n')[0]})` };
  }
}

/** zktx with the checkout's addon, or (`native`) with another build of it: before/after in one run. */
const zktxSystem = (name, native) => ({
  name,
  backend: 'zookeeper',
  package: zktxPackage,
  load() {
    if (native) return tryRequire(native, `addon ${native}`);
    return tryRequire(zktxPackage());
  },
  async open(connect) {
    if (native) process.env.ZKTX_NATIVE = native; // binding.js reads it; a worker opens one system
    const { ZooKeeper } = require(zktxPackage());
    const zk = new ZooKeeper({ connect, timeout: SESSION_TIMEOUT_MS, debug_level: ZooKeeper.ZOO_LOG_LEVEL_ERROR });
    await zk.connect();
    return {
      raw: zk,
      lock: (name) => zk.lock(`/zktx-bench/${name}`),
      readLock: (name) => zk.readWriteLock(`/zktx-bench/${name}`).readLock(),
      writeLock: (name) => zk.readWriteLock(`/zktx-bench/${name}`).writeLock(),
      // under a zktx lock, writes are fenced on it (one multi: check lock node + write)
      setUnder: (lock, key, value) => zk.set(key, value, { lock }),
      executeTransaction: (key, v) => zk.executeTransaction(key, v),
      get: (key) => zk.get(key),
      set: (key, value) => zk.set(key, value),
      // optimistic: versioned reads, one multi that checks them and writes both keys
      transfer: (from, to, amount) => transfer(zk, from, to, amount),
      // the raw calls of zk.znodes, as an application calls them
      znodes: {
        root: '/zktx-bench/znodes',
        get: (p) => zk.znodes.getData(p),
        set: (p, data) => zk.znodes.setData(p, data),
        create: (p, data) => zk.znodes.create(p, data),
        remove: (p) => zk.znodes.delete(p),
      },
      close: () => zk.close(),
    };
  },
});
const zktx = zktxSystem('zktx');

function baseline(pkg, root = BASELINE_ROOT) {
  const file = path.join(__dirname, 'baselines', `${pkg}.js`);
  return {
    name: pkg,
    backend: 'zookeeper',
    load: () => tryRequire(file, `npm package ${pkg}`),
    async open(connect) {
      const recipes = await require(file).open(connect, root, { sessionTimeout: SESSION_TIMEOUT_MS });
      return {
        raw: recipes,
        lock: (name) => recipes.lock(`${BASELINE_ROOT}/locks/${name}`),
        readLock: (name) => recipes.sharedLock(`${BASELINE_ROOT}/locks/${name}`, 'read'),
        writeLock: (name) => recipes.sharedLock(`${BASELINE_ROOT}/locks/${name}`, 'write'),
        setUnder: (lock, key, value) => recipes.set(key, value),
        executeTransaction: (key, v) => recipes.executeTransaction(key, v),
        get: (key) => recipes.get(key),
        set: (key, value) => recipes.set(key, value),
        transfer: (from, to, amount) => recipes.transfer(from, to, amount),
        znodes: {
          root: `${root}/znodes`,
          get: (p) => recipes.client.rawGet(p),
          set: (p, data) => recipes.client.rawSet(p, data),
          create: (p, data) => recipes.client.rawCreate(p, data),
          remove: (p) => recipes.client.rawRemove(p),
        },
        close: async () => recipes.client.close(),
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// etcd: zktx's Etcd against the `etcd3` npm package (baselines/etcd3.js), on the same member

/** Moves `amount` between two keys with zktx's `transaction` (either backend's client). */
function transfer(client, from, to, amount) {
  return client.transaction(
    async (tx) => {
      const [a, b] = await tx.getMany([from, to]);
      if ((a ?? 0) < amount) return false;
      tx.set(from, a - amount);
      tx.set(to, (b ?? 0) + amount);
      return true;
    },
    { retries: 1000 }
  );
}

const ETCD3 = path.join(__dirname, 'baselines', 'etcd3.js');
const ETCD_LEASE_TTL_MS = 30_000; // etcd3's lock lease is 30 s; zktx's lease = its timeout

/** zktx's `Etcd`: its locks, its key-value store and its transactions. */
const zktxEtcd = {
  name: 'zktx-etcd',
  backend: 'etcd',
  load() {
    const z = tryRequire(zktxPackage());
    if (z.reason) return z;
    if (typeof z.module.Etcd !== 'function') return { reason: 'this zktx has no Etcd class' };
    return tryRequire(ETCD3, 'npm package etcd3 (npm install)');
  },
  async open(connect, { etcd: endpoints }) {
    const { Etcd } = require(zktxPackage());
    const etcd = new Etcd({ endpoints, timeout: ETCD_LEASE_TTL_MS });
    await etcd.connect(); // grants the session's lease, as ZooKeeper's connect opens the session
    return {
      raw: etcd,
      lock: (name) => etcd.lock(`/zktx-bench/${name}`),
      get: (key) => etcd.get(key),
      set: (key, value) => etcd.set(key, value),
      // one Txn of Ranges, then one Txn comparing both mod revisions and writing both keys
      transfer: (from, to, amount) => transfer(etcd, from, to, amount),
      close: () => etcd.close(),
    };
  },
};

/** The `etcd3` npm package: its lock (retried while held) and its get/put. */
const etcd3System = {
  name: 'etcd3',
  backend: 'etcd',
  load: () => tryRequire(ETCD3, 'npm package etcd3 (npm install)'),
  async open(connect, { etcd: endpoints }) {
    const base = require(ETCD3);
    const client = base.connect(endpoints);
    await client.get('/bench-etcd3/connect').string(); // connected before the warm-up, as the others
    const kv = base.kv(client);
    return {
      raw: client,
      lock: (name) => base.lock(client, `/bench-etcd3/locks/${name}`),
      get: kv.get,
      set: kv.set,
      transfer: (from, to, amount) => base.transfer(client, from, to, amount),
      close: async () => client.close(),
    };
  },
};

/**
 * In report order: zktx first, then the floor, then the libraries (npm package names).
 * `wire-probe` (baselines/wire-probe.js) is ZooKeeper's protocol by hand on Node's socket: what
 * a Node process can reach at best. It keeps its znodes under /bench-probe.
 */
const SYSTEMS = {
  zktx,
  // `npm run bench -- --compare other.node`: the same scenarios on another build of the addon
  ...(process.env.ZKTX_BENCH_COMPARE ? { 'zktx@compare': zktxSystem('zktx@compare', process.env.ZKTX_BENCH_COMPARE) } : {}),
  'wire-probe': baseline('wire-probe', '/bench-probe'),
  'node-zookeeper-client': baseline('node-zookeeper-client'),
  zookeeper: baseline('zookeeper'),
  'zktx-etcd': zktxEtcd,
  etcd3: etcd3System,
};

/** The system every zktx row is compared with as "best possible". */
const FLOOR = 'wire-probe';

module.exports = { SYSTEMS, FLOOR };
