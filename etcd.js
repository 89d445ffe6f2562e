'use strict';
// `new Etcd(...)`: zktx's locks on etcd v3 (crates/zktx-core/src/backend/etcd.rs through
// src/etcd.rs). The lock methods are the ZooKeeper client's own (lock, withLock,
// readWriteLock, semaphore): written once over the native client's `acquire`, which both
// backends offer with the same surface. Built by index.js, which passes its helpers.

const { EventEmitter } = require('node:events');

module.exports = function etcdFacade(z) {
  const { ZktxError, call, callSync, invalid, describe, readOptions, readTls, checkTimeout, native, channels, open, installExitHook, MAX_WAIT_MS, ZooKeeper, traceMethods, constructed, closing } = z;

  const OPTION_NAMES = ['endpoints', 'timeout', 'requestTimeout', 'connectTimeout', 'lostAfter', 'auth', 'tls', 'debug_level'];
  const ENDPOINT = /^(?:https?:\/\/)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/;

  /** The endpoints as a list, each `host:port` or `http(s)://host:port`, else INVALID_ARGUMENT. */
  function readEndpoints(given, source, tls) {
    const list = typeof given === 'string' ? given.split(',').map((s) => s.trim()).filter(Boolean) : given;
    if (!Array.isArray(list) || list.length === 0) throw invalid(`${source} must be a non-empty list of etcd client endpoints ("host:port" or "http://host:port"), got ${describe(given)}`);
    return list.map((e) => {
      const m = typeof e === 'string' ? ENDPOINT.exec(e.trim()) : null;
      if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) throw invalid(`${source}: ${describe(e)} is not an etcd endpoint ("host:port" or "http://host:port")`);
      if (e.trim().startsWith('https://') && !tls) throw invalid(`${source}: ${describe(e)} is https: pass tls: { ca } (and cert, key when the cluster checks client certificates)`);
      if (e.trim().startsWith('http://') && tls) throw invalid(`${source}: ${describe(e)} is plain http, but tls was given`);
      return e.trim();
    });
  }

  /**
   * A session on etcd v3: a lease kept alive by this client, and zktx's locks on it (etcd's own
   * lock recipe: `etcdctl lock` and Go's `concurrency.Mutex` on the same name exclude them).
   */
  class Etcd extends EventEmitter {
    constructor(userOptions) {
      super();
      const options = readOptions(userOptions, OPTION_NAMES);
      const tls = readTls(options.tls);
      if (tls && tls.rejectUnauthorized === false) throw invalid('tls.rejectUnauthorized: false is not supported on etcd (its members\' certificates are always verified); pass the CA that signed them as tls.ca');
      if (tls && (tls.cert === undefined) !== (tls.key === undefined)) throw invalid('tls: a client certificate needs both cert and key');
      const fromEnv = options.endpoints === undefined && process.env.ETCD_ENDPOINTS;
      const endpoints = readEndpoints(fromEnv ? process.env.ETCD_ENDPOINTS : (options.endpoints ?? ['127.0.0.1:2379']), fromEnv ? 'ETCD_ENDPOINTS (environment variable)' : 'endpoints', tls);
      const timeout = options.timeout === undefined ? 30000 : options.timeout;
      if (typeof timeout !== 'number' || !(timeout > 0 && timeout <= MAX_WAIT_MS)) throw invalid(`timeout must be a positive number of milliseconds up to ${MAX_WAIT_MS}, got ${describe(timeout)}`);
      const { lostAfter, auth } = options;
      if (lostAfter !== undefined && !(typeof lostAfter === 'number' && lostAfter > 0 && lostAfter <= 1)) {
        throw invalid(`lostAfter must be a fraction of the lease TTL in (0, 1], got ${describe(lostAfter)}`);
      }
      if (auth !== undefined && !(auth && typeof auth.user === 'string' && auth.user !== '' && typeof auth.password === 'string')) {
        throw invalid(`auth must be { user, password } (etcd's user and password), got ${describe(auth)}`);
      }
      const level = options.debug_level === undefined ? 2 : options.debug_level;
      if (!Number.isInteger(level) || level < 0 || level > 4) throw invalid(`debug_level must be one of ZooKeeper.ZOO_LOG_LEVEL_*, got ${describe(level)}`);
      this._native = callSync(() => new native.NativeEtcdClient({
        endpoints,
        timeoutMs: timeout,
        requestTimeoutMs: checkTimeout(options.requestTimeout, 'requestTimeout'),
        connectTimeoutMs: checkTimeout(options.connectTimeout, 'connectTimeout'),
        lostAfter,
        user: auth && auth.user,
        password: auth && auth.password,
        tls: tls && { ca: tls.ca, cert: tls.cert, key: tls.key },
        logLevel: level,
      }));
      /** The endpoints this client uses. */
      this.endpoints = endpoints;
      this._closed = false;
      callSync(() => this._native.onState((state) => {
        if (channels.sessionState.hasSubscribers) channels.sessionState.publish({ zk: this, state, connectString: endpoints.join(',') });
        this.emit('state', state);
      }));
      open.add(this);
      constructed(this);
      installExitHook();
    }

    /** The latest session event: `NOT_CONNECTED`, `CONNECTED`, `SUSPENDED`, `RECONNECTED`, `EXPIRED` or `CLOSED`. */
    get state() {
      return callSync(() => this._native.state);
    }

    /** Connects and grants the session's lease now (otherwise the first lock does). */
    connect() {
      if (this._closed) return Promise.reject(new ZktxError('CLIENT_CLOSED', 'client is closed'));
      return call(() => this._native.connect());
    }

    /** Closes the session: revokes its lease, so etcd deletes its lock keys at once. Idempotent. */
    async close() {
      this._closed = true;
      if (this._coordinators) for (const c of this._coordinators) c.close();
      closing(this);
      try {
        await call(() => this._native.close());
      } finally {
        open.delete(this);
      }
    }

    /** `await using etcd = new Etcd(...)` closes the session at scope exit. */
    [Symbol.asyncDispose]() {
      return this.close();
    }
  }

  // The locks, the key-value store and transactions are the ZooKeeper client's methods, over the
  // native client's `acquire`, `get`, `set`, `fence`, `executeTransaction`, `begin`,
  // `transaction` and `transactionRecord` (same surface).
  const SHARED = ['lock', '_lock', '_acquire', '_acquireUntraced', 'readWriteLock', 'semaphore', 'multiLock', '_multiLock', '_multiLockUntraced', 'withLock', '_withLock',
    'get', '_get', 'set', '_set', 'executeTransaction', '_executeTransaction', '_executeTransactionUntraced', '_keyTransaction',
    'transaction', '_transaction', '_transactionUntraced', '_settleFailure', 'pruneTransactionIds', '_pruneTransactionIds', 'coordinator'];
  for (const name of SHARED) {
    const method = Object.getOwnPropertyDescriptor(ZooKeeper.prototype, name);
    if (method) Object.defineProperty(Etcd.prototype, name, method);
  }
  /** Which locks a fenced write accepts: this backend's. */
  Etcd.prototype._backend = 'etcd';
  traceMethods(Etcd, ['connect', 'close']);

  return { Etcd };
};
