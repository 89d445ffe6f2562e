'use strict';
// `require('zktx/zookeeper')`: the `zookeeper` npm package's API (v7: its promise class, the
// default export, and its callback class, `.ZooKeeper`) over zktx's native session. No C client,
// no node-gyp: every call goes to `zk.znodes` of a zktx client (znode.js). Code written for that
// package runs with only the require changed; what differs is listed in README ("zktx/zookeeper").

const { EventEmitter } = require('node:events');
const { posix } = require('node:path');
const { ZooKeeper: Client, ZktxError } = require('./index');

/** The package's constants, same names and values (the C client's). */
const constants = Object.freeze({
  ZOO_PERM_READ: 1, ZOO_PERM_WRITE: 2, ZOO_PERM_CREATE: 4, ZOO_PERM_DELETE: 8, ZOO_PERM_ADMIN: 16, ZOO_PERM_ALL: 31,
  ZOO_EXPIRED_SESSION_STATE: -112, ZOO_AUTH_FAILED_STATE: -113, ZOO_CONNECTING_STATE: 1, ZOO_ASSOCIATING_STATE: 2, ZOO_CONNECTED_STATE: 3,
  ZOO_LOG_LEVEL_ERROR: 1, ZOO_LOG_LEVEL_WARN: 2, ZOO_LOG_LEVEL_INFO: 3, ZOO_LOG_LEVEL_DEBUG: 4,
  ZOO_PERSISTENT: 0, ZOO_EPHEMERAL: 1, ZOO_SEQUENCE: 2, ZOO_PERSISTENT_SEQUENTIAL: 2, ZOO_EPHEMERAL_SEQUENTIAL: 3,
  ZOO_CONTAINER: 4, ZOO_PERSISTENT_WITH_TTL: 5, ZOO_PERSISTENT_SEQUENTIAL_WITH_TTL: 6,
  ZOK: 0, ZSYSTEMERROR: -1, ZRUNTIMEINCONSISTENCY: -2, ZDATAINCONSISTENCY: -3, ZCONNECTIONLOSS: -4, ZMARSHALLINGERROR: -5,
  ZUNIMPLEMENTED: -6, ZOPERATIONTIMEOUT: -7, ZBADARGUMENTS: -8, ZINVALIDSTATE: -9, ZAPIERROR: -100, ZNONODE: -101,
  ZNOAUTH: -102, ZBADVERSION: -103, ZNOCHILDRENFOREPHEMERALS: -108, ZNODEEXISTS: -110, ZNOTEMPTY: -111,
  ZSESSIONEXPIRED: -112, ZINVALIDCALLBACK: -113, ZINVALIDACL: -114, ZAUTHFAILED: -115, ZCLOSING: -116, ZNOTHING: -117,
  ZSESSIONMOVED: -118,
  ZOO_OPEN_ACL_UNSAFE: Object.freeze([Object.freeze({ perms: 31, scheme: 'world', auth: 'anyone' })]),
  ZOO_READ_ACL_UNSAFE: Object.freeze([Object.freeze({ perms: 1, scheme: 'world', auth: 'anyone' })]),
  ZOO_CREATOR_ALL_ACL: Object.freeze([Object.freeze({ perms: 31, scheme: 'auth', auth: '' })]),
  ZOO_CREATED_EVENT: 1, ZOO_DELETED_EVENT: 2, ZOO_CHANGED_EVENT: 3, ZOO_CHILD_EVENT: 4, ZOO_SESSION_EVENT: -1, ZOO_NOTWATCHING_EVENT: -2,
  ZOOKEEPER_WRITE: 1, ZOOKEEPER_READ: 2, ZOO_CONFIG_NODE: '/zookeeper/config',
  on_closed: 'close', on_connected: 'connect', on_connecting: 'connecting', on_event_created: 'created',
  on_event_deleted: 'deleted', on_event_changed: 'changed', on_event_child: 'child', on_event_notwatching: 'notwatching',
});

/** The C client's zerror() texts. */
const RC_TEXT = {
  0: 'ok', [-1]: 'system error', [-2]: 'run time inconsistency', [-3]: 'data inconsistency', [-4]: 'connection loss',
  [-5]: 'marshalling error', [-6]: 'unimplemented', [-7]: 'operation timeout', [-8]: 'bad arguments',
  [-9]: 'invalid zhandle state', [-100]: 'api error', [-101]: 'no node', [-102]: 'not authenticated',
  [-103]: 'bad version', [-108]: 'no children for ephemerals', [-110]: 'node exists', [-111]: 'not empty',
  [-112]: 'session expired', [-113]: 'invalid callback', [-114]: 'invalid acl', [-115]: 'authentication failed',
  [-116]: 'zookeeper is closing', [-118]: 'session moved to another server, so operation is ignored',
};

/** zktx's error codes as the C client's return codes. */
const RC_OF_CODE = {
  NONODE: -101, NODEEXISTS: -110, BADVERSION: -103, NOTEMPTY: -111, NOAUTH: -102, NOCHILDRENFOREPHEMERALS: -108,
  SESSIONEXPIRED: -112, INVALIDACL: -114, AUTHFAILED: -115, CONNECTIONLOSS: -4, TIMEOUT: -7, INVALID_ARGUMENT: -8,
  CLIENT_CLOSED: -116, UNIMPLEMENTED: -6, TOO_LARGE: -5, TLS_HANDSHAKE: -4,
};

const rcOf = (err) => RC_OF_CODE[err && err.code] ?? -1;
const textOf = (rc) => RC_TEXT[rc] ?? 'unknown error';
/** The error a promise method rejects with: the package's message (`"-101 no node"`), zktx's code, and `rc`. */
function failure(err) {
  const rc = rcOf(err);
  const e = new ZktxError(err && err.code ? err.code : 'INTERNAL', `${rc} ${textOf(rc)}`, err && err.outcome ? err.outcome : 'unknown', { cause: err });
  e.rc = rc;
  if (err && err.index !== undefined) e.index = err.index; // transaction: the failing op
  return e;
}
const badArguments = (message) => new ZktxError('INVALID_ARGUMENT', message);

const EVENT_TYPE = { created: 1, deleted: 2, changed: 3, children: 4 };
const EVENT_NAME = { created: 'created', deleted: 'deleted', changed: 'changed', children: 'child' };
// Which of the C client's watcher tables (zk_hashtable.c: data, exist, child) one server event
// collects (collectWatchers).
const TABLES_OF_EVENT = { created: ['data', 'exist'], changed: ['data', 'exist'], children: ['child'], deleted: ['data', 'exist', 'child'] };
const MODE_OF_FLAGS = {
  0: { mode: 'persistent' }, 1: { mode: 'ephemeral' }, 2: { mode: 'persistent', sequential: true },
  3: { mode: 'ephemeral', sequential: true }, 4: { mode: 'container' }, 5: { mode: 'persistent', ttl: true },
  6: { mode: 'persistent', sequential: true, ttl: true },
};
const PERM_LETTERS = ['r', 'w', 'c', 'd', 'a'];

/** A Stat as the package gives it: times as Dates, the ephemeral owner in hex, createdInThisSession. */
function statOf(s, sessionId) {
  if (!s) return s;
  return {
    czxid: s.czxid, mzxid: s.mzxid, pzxid: s.pzxid, dataLength: s.dataLength, numChildren: s.numChildren,
    version: s.version, cversion: s.cversion, aversion: s.aversion,
    ctime: new Date(s.ctime), mtime: new Date(s.mtime), ephemeralOwner: s.ephemeralOwner,
    createdInThisSession: sessionId !== undefined && s.ephemeralOwner === sessionId,
  };
}

/** The package's ACL entries (`{ perms | perm, scheme, auth }`) as zktx's. */
function aclOf(acl) {
  if (!Array.isArray(acl)) throw badArguments(`acl must be an array of { perms, scheme, auth }, got ${typeof acl}`);
  return acl.map((a) => {
    const mask = a && (a.perms ?? a.perm);
    if (!Number.isInteger(mask) || mask < 1 || mask > 31) throw badArguments(`acl perms must be a mask of ZOO_PERM_* (1..31), got ${mask}`);
    return { perms: PERM_LETTERS.filter((_, i) => mask & (1 << i)).join(''), scheme: a.scheme, id: a.auth ?? a.id ?? '' };
  });
}

const versionOf = (v) => (v === undefined || v === null ? undefined : v);

/**
 * The `zookeeper` package's callback class (`require('zktx/zookeeper').ZooKeeper`): `a_*` and
 * `aw_*` methods calling back `(rc, error, ...result)`, events `connect`, `connecting`, `close`.
 */
class ZooKeeper extends EventEmitter {
  /** `config`: a connect string or `{ connect, timeout, debug_level, host_order_deterministic, data_as_buffer }`. */
  constructor(config) {
    super();
    this.config = typeof config === 'string' ? { connect: config } : config;
    this.encoding = null;
    this._client = undefined;
    this._state = 0;
    this._sessionId = undefined;
    this._keepAlive = undefined;
    this.logger = undefined;
    // The default watcher (`watch: true`) as the C client keeps it: once per table and path
    // (add_to_list skips a watcher already listed), so one change emits one event however many
    // watched reads preceded it. path -> the registration its one-shot watches belong to.
    this._defaultWatches = { data: new Map(), exist: new Map(), child: new Map() };
    // Watcher functions (`w_*` / `aw_*`) whose event has not come yet: the C client calls each
    // of them with every session event, without consuming it.
    this._pendingWatchers = new Set();
  }

  setLogger(logger) {
    if (logger === true) this.logger = (str) => console.info(`ZOOKEEPER_LOG: ${str}`);
    else if (logger === false) this.logger = undefined;
    else if (typeof logger === 'function') this.logger = logger;
    else throw badArguments('InvalidArgument: logger must be a function or true/false to utilize default logger');
  }

  log(...args) {
    if (this.logger) this.logger(...args);
  }

  /** Opens the session (in the background); `connect` is emitted once it is established. */
  init(config) {
    if (typeof config === 'string') config = { connect: config };
    if (this.config) config = config ? Object.assign(config, this.config) : this.config;
    config = config || {};
    if (this._client) throw badArguments('init: this client is already initialized (make a new one, as with the C client)');
    const resume = config.client_id !== undefined || config.client_password !== undefined;
    if (resume && (typeof config.client_id !== 'string' || typeof config.client_password !== 'string')) {
      throw badArguments('init: client_id and client_password resume a session together: both hex strings, as client_id / client_password of the client that opened it give them');
    }
    if (config.data_as_buffer !== undefined) this.data_as_buffer = config.data_as_buffer;
    const options = {
      timeout: config.timeout || 20000,
      debug_level: config.debug_level === undefined ? constants.ZOO_LOG_LEVEL_WARN : config.debug_level,
      host_order_deterministic: config.host_order_deterministic === true,
      // As with the C client: an expired session is the end of this client (make a new one).
      reconnectAfterExpiry: false,
    };
    if (config.connect !== undefined) options.connect = config.connect;
    // The C client's zoo_init(clientid): resume that session if the server still has it; a
    // wrong password or a session it dropped ends this client with ZOO_EXPIRED_SESSION_STATE.
    if (resume) options.session = { id: config.client_id, password: config.client_password };
    // zktx's addition: what the C client sets elsewhere (its TLS build, zoo_add_auth before the
    // first request) as zktx client options: `zktx: { tls, auth, sasl, acl, logger, ... }`.
    if (config.zktx !== undefined) {
      if (config.zktx === null || typeof config.zktx !== 'object' || Array.isArray(config.zktx)) throw badArguments(`init: zktx must be an object of zktx client options (tls, auth, sasl, acl, ...), got ${config.zktx === null ? 'null' : typeof config.zktx}`);
      Object.assign(options, config.zktx);
    }
    this._timeout = options.timeout;
    const client = new Client(options);
    this._client = client;
    this._znodes = client.znodes;
    // The C client's socket keeps Node's loop alive until close(): so does this (a program that
    // only waits for a watcher must not exit).
    this._keepAlive = setInterval(() => {}, 1 << 30);
    client.on('state', (state) => this._onState(state));
    this._state = constants.ZOO_CONNECTING_STATE;
    this._connect();
    return this;
  }

  _connect() {
    this._client.connect().then(() => this._onState('CONNECTED'), (err) => {
      if (this._closing || err.code === 'CLIENT_CLOSED' || err.code === 'AUTHFAILED' || err.code === 'SESSIONEXPIRED') {
        if (err.code === 'AUTHFAILED') this._end(constants.ZOO_AUTH_FAILED_STATE);
        // Only a resumed session can be expired before it connected (client_id / client_password).
        if (err.code === 'SESSIONEXPIRED' && !this._closing) this._end(constants.ZOO_EXPIRED_SESSION_STATE);
        return;
      }
      // As the C client: keep trying the hosts until it connects or is closed.
      this.log(`connect failed: ${err.message}; retrying`);
      setTimeout(() => { if (!this._closing) this._connect(); }, 1000).unref();
    });
  }

  _onState(state) {
    if (state === 'CONNECTED' || state === 'RECONNECTED') {
      if (this._state === constants.ZOO_CONNECTED_STATE) return;
      const was = this._state;
      this._state = constants.ZOO_CONNECTED_STATE;
      if (was === constants.ZOO_CONNECTING_STATE) this._sessionEvent(constants.ZOO_CONNECTED_STATE);
      Promise.all([this._znodes.sessionId(), this._znodes.sessionPassword()]).then(([id, password]) => {
        this._sessionId = id;
        this._sessionPassword = password;
        this.emit('connect', this);
      }, () => {});
    } else if (state === 'SUSPENDED') {
      this._state = constants.ZOO_CONNECTING_STATE;
      this._sessionEvent(constants.ZOO_CONNECTING_STATE);
      this.emit('connecting', this);
    } else if (state === 'EXPIRED') {
      this._end(constants.ZOO_EXPIRED_SESSION_STATE);
    } else if (state === 'CLOSED') {
      this._end(0);
    }
  }

  _end(code) {
    if (this._ended) return;
    this._ended = true;
    this._state = code;
    clearInterval(this._keepAlive);
    this.emit('close', this, code);
  }

  /** (callback API) `connect(options, cb)`: init, then `cb(err, this)` once connected. */
  connect(options, cb) {
    let callback;
    if (typeof options === 'function') {
      callback = options;
      this.init({});
    } else {
      callback = cb;
      this.init(options);
    }
    this.errorHandler = (err) => {
      this.removeListener('error', this.errorHandler);
      this.removeListener('connect', this.connectHandler);
      callback(err);
    };
    this.connectHandler = () => {
      this.removeListener('error', this.errorHandler);
      this.removeListener('connect', this.connectHandler);
      callback(null, this);
    };
    this.on('error', this.errorHandler);
    this.on('connect', this.connectHandler);
  }

  /** Closes the session: its ephemeral nodes go at once. Resolves once closed. */
  close() {
    this._closing = true;
    clearInterval(this._keepAlive);
    if (!this._client) return Promise.resolve();
    return this._client.close().then(() => this._end(0), () => this._end(0));
  }

  get state() { return this._state; }
  get timeout() { return this._timeout === undefined ? -1 : this._timeout; }
  /** The session id in hex, as the package gives it. */
  get client_id() { return this._sessionId === undefined ? '0' : this._sessionId; }
  /** The session's password in hex, as the package gives it ('' before the first connect). */
  get client_password() { return this._sessionPassword === undefined ? '' : this._sessionPassword; }
  get is_unrecoverable() { return this._state === constants.ZOO_EXPIRED_SESSION_STATE || this._state === constants.ZOO_AUTH_FAILED_STATE; }
  setEncoding(value) { this.encoding = value; }
  get data_as_buffer() { return !this.encoding; }
  set data_as_buffer(v) { this.encoding = v === true ? null : 'utf8'; }

  /** Runs `op` (a promise) and calls back `(rc, error, ...results)`. */
  _cb(cb, op, results) {
    if (typeof cb !== 'function') return constants.ZBADARGUMENTS;
    let p;
    try {
      if (!this._znodes) throw new ZktxError('INVALID_ARGUMENT', 'call init() first');
      p = op();
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then((v) => cb(0, textOf(0), ...results(v)), (err) => {
      const rc = rcOf(err);
      cb(rc, textOf(rc));
    });
    return constants.ZOK;
  }

  _data(buf) {
    return buf && this.encoding ? buf.toString(this.encoding) : buf;
  }

  /** Tells every pending watcher function of a session event (`path` '', as the C client). */
  _sessionEvent(state) {
    for (const w of [...this._pendingWatchers]) w(constants.ZOO_SESSION_EVENT, state, '');
  }

  /**
   * Delivers a watched read's one-shot watch (`table`: the C client's table it went into) to
   * `watcher`, or to the default watcher (the client's events) when there is none.
   */
  _deliver(watch, path, watcher, table) {
    if (!watch) return;
    if (watcher) {
      // A fresh context per call, as the package's aw_* make one: not de-duplicated.
      const w = (...args) => watcher(...args);
      this._pendingWatchers.add(w);
      watch.then((ev) => {
        this._pendingWatchers.delete(w);
        // Closed, aborted, or expired: the package's watcher_fn returns early once the session
        // expired, so a watcher is never told of the expiry (only `close` is emitted).
        if (!EVENT_TYPE[ev.type]) return;
        w(EVENT_TYPE[ev.type], constants.ZOO_CONNECTED_STATE, ev.path);
      });
      return;
    }
    const tables = this._defaultWatches;
    const registration = tables[table].get(path) || {};
    tables[table].set(path, registration);
    watch.then((ev) => {
      if (!EVENT_TYPE[ev.type]) return;
      // Another one-shot of the same registration already delivered this change (or the
      // table was collected and set again since): the C client calls its watcher once.
      if (tables[table].get(path) !== registration) return;
      for (const t of TABLES_OF_EVENT[ev.type]) tables[t].delete(path);
      this.emit(EVENT_NAME[ev.type], this, ev.path);
    });
  }

  _createOptions(flags, ttl) {
    const f = MODE_OF_FLAGS[flags];
    if (!f) throw badArguments(`flags must be ZOO_PERSISTENT, ZOO_EPHEMERAL, ZOO_SEQUENCE, ZOO_CONTAINER or a TTL mode, got ${flags}`);
    const o = { mode: f.mode };
    if (f.sequential) o.sequential = true;
    if (f.ttl) {
      if (!(ttl > 0)) throw badArguments('a TTL mode needs a positive ttl');
      o.ttl = ttl;
    } else if (ttl !== undefined) {
      throw badArguments('ttl needs ZOO_PERSISTENT_WITH_TTL or ZOO_PERSISTENT_SEQUENTIAL_WITH_TTL');
    }
    return o;
  }

  a_create(path, data, flags, pathCb) {
    return this._cb(pathCb, () => this._znodes.create(path, data, this._createOptions(flags)), (p) => [p]);
  }

  a_createTtl(path, data, flags, ttl, pathCb) {
    return this._cb(pathCb, () => this._znodes.create(path, data, this._createOptions(flags, ttl)), (p) => [p]);
  }

  _exists(path, watch, watcher) {
    return this._znodes.exists(path, { watch }).then((r) => {
      this._deliver(r.watch, path, watcher, r.stat ? 'data' : 'exist');
      if (!r.stat) throw Object.assign(new ZktxError('NONODE', 'node does not exist'), { code: 'NONODE' });
      return statOf(r.stat, this._sessionId);
    });
  }

  a_exists(path, watch, statCb) {
    return this._cb(statCb, () => this._exists(path, Boolean(watch)), (s) => [s]);
  }

  aw_exists(path, watchCb, statCb) {
    return this._cb(statCb, () => this._exists(path, typeof watchCb === 'function', watchCb), (s) => [s]);
  }

  _get(path, watch, watcher) {
    return this._znodes.getData(path, { watch }).then((r) => {
      this._deliver(r.watch, path, watcher, 'data');
      return [statOf(r.stat, this._sessionId), this._data(r.data)];
    });
  }

  a_get(path, watch, dataCb) {
    return this._cb(dataCb, () => this._get(path, Boolean(watch)), (r) => r);
  }

  aw_get(path, watchCb, dataCb) {
    return this._cb(dataCb, () => this._get(path, typeof watchCb === 'function', watchCb), (r) => r);
  }

  _children(path, watch, watcher) {
    return this._znodes.getChildren(path, { watch }).then((r) => {
      this._deliver(r.watch, path, watcher, 'child');
      return [r.children, statOf(r.stat, this._sessionId)];
    });
  }

  a_get_children(path, watch, childCb) {
    return this._cb(childCb, () => this._children(path, Boolean(watch)), (r) => [r[0]]);
  }

  aw_get_children(path, watchCb, childCb) {
    return this._cb(childCb, () => this._children(path, typeof watchCb === 'function', watchCb), (r) => [r[0]]);
  }

  a_get_children2(path, watch, childCb) {
    return this._cb(childCb, () => this._children(path, Boolean(watch)), (r) => r);
  }

  aw_get_children2(path, watchCb, childCb) {
    return this._cb(childCb, () => this._children(path, typeof watchCb === 'function', watchCb), (r) => r);
  }

  a_set(path, data, version, statCb) {
    return this._cb(statCb, () => this._znodes.setData(path, data, { version: versionOf(version) }).then((s) => statOf(s, this._sessionId)), (s) => [s]);
  }

  a_delete_(path, version, voidCb) {
    return this._cb(voidCb, () => this._znodes.delete(path, { version: versionOf(version) }), () => []);
  }

  a_get_acl(path, aclCb) {
    return this._cb(aclCb, () => this._znodes.getAcl(path), (r) => [r.acl.map((a) => ({ perms: a.perms, scheme: a.scheme, auth: a.id })), statOf(r.stat, this._sessionId)]);
  }

  a_set_acl(path, version, acl, voidCb) {
    return this._cb(voidCb, () => this._znodes.setAcl(path, aclOf(acl), { version: versionOf(version) }), () => []);
  }

  add_auth(scheme, auth, voidCb) {
    if (typeof voidCb !== 'function') return this._promise(() => this._znodes.addAuth(scheme, auth));
    return this._cb(voidCb, () => this._znodes.addAuth(scheme, auth), () => []);
  }

  a_sync(path, valueCb) {
    return this._cb(valueCb, () => this._znodes.sync(path), () => [path]);
  }

  /** `mkdir -p`: creates every missing node of `path` (persistent, no data); `cb(err, true)`. Without `cb`, a promise. */
  mkdirp(path, cb) {
    const run = async () => {
      const dirs = posix.normalize(path).split(posix.sep).slice(1).filter(Boolean);
      for (let i = 0; i < dirs.length; i++) {
        const sub = `/${dirs.slice(0, i + 1).join('/')}`;
        try {
          await this._znodes.create(sub, 'created by zk-mkdir-p');
        } catch (err) {
          if (err.code !== 'NODEEXISTS') throw err;
        }
      }
      return true;
    };
    if (typeof cb !== 'function') return this._promise(run);
    run().then(() => cb(null, true), (err) => cb(failure(err)));
    return undefined;
  }

  _promise(op) {
    if (!this._znodes) return Promise.reject(failure(new ZktxError('INVALID_ARGUMENT', 'call init() first')));
    let p;
    try {
      p = op();
    } catch (err) {
      p = Promise.reject(err);
    }
    return p.then(undefined, (err) => { throw failure(err); });
  }
}

for (const [k, v] of Object.entries(constants)) {
  if (!k.startsWith('on_')) ZooKeeper[k] = v;
}

/**
 * The `zookeeper` package's promise class (its default export): the same client, each method
 * resolving what the callback gave, or rejecting with `Error("<rc> <text>")` (a ZktxError
 * here, with `code` and `rc`).
 */
class ZooKeeperPromise extends ZooKeeper {
  /** @deprecated as in the package: resolves on `connect`. */
  on_connected() {
    return new Promise((resolve) => this.once('connect', () => resolve(this)));
  }

  create(path, data, flags, ttl = undefined) {
    return this._promise(() => this._znodes.create(path, data, this._createOptions(flags, ttl)));
  }

  /** The node's stat; rejects `-101 no node` when absent (the watch, if asked for, is set either way). */
  exists(path, watch) {
    return this._promise(() => this._exists(path, Boolean(watch)));
  }

  async pathExists(path, watch) {
    try {
      return Boolean(await this.exists(path, watch));
    } catch {
      return false;
    }
  }

  w_exists(path, watchCb) {
    return this._promise(() => this._exists(path, typeof watchCb === 'function', watchCb));
  }

  async w_pathExists(path, watchCb) {
    try {
      return Boolean(await this.w_exists(path, watchCb));
    } catch {
      return false;
    }
  }

  /** `[stat, data]`. */
  get(path, watch) {
    return this._promise(() => this._get(path, Boolean(watch)));
  }

  w_get(path, watchCb) {
    return this._promise(() => this._get(path, typeof watchCb === 'function', watchCb));
  }

  get_children(path, watch) {
    return this._promise(() => this._children(path, Boolean(watch)).then((r) => r[0]));
  }

  w_get_children(path, watchCb) {
    return this._promise(() => this._children(path, typeof watchCb === 'function', watchCb).then((r) => r[0]));
  }

  /** `[children, stat]`. */
  get_children2(path, watch) {
    return this._promise(() => this._children(path, Boolean(watch)));
  }

  w_get_children2(path, watchCb) {
    return this._promise(() => this._children(path, typeof watchCb === 'function', watchCb));
  }

  set(path, data, version) {
    return this._promise(() => this._znodes.setData(path, data, { version: versionOf(version) }).then((s) => statOf(s, this._sessionId)));
  }

  delete_(path, version) {
    return this._promise(() => this._znodes.delete(path, { version: versionOf(version) }));
  }

  /** `[acl, stat]`, as the callback gives them. */
  get_acl(path) {
    return this._promise(() => this._znodes.getAcl(path).then((r) => [r.acl.map((a) => ({ perms: a.perms, scheme: a.scheme, auth: a.id })), statOf(r.stat, this._sessionId)]));
  }

  set_acl(path, version, acl) {
    return this._promise(() => this._znodes.setAcl(path, aclOf(acl), { version: versionOf(version) }));
  }

  sync(path) {
    return this._promise(() => this._znodes.sync(path).then(() => path));
  }

  /**
   * zktx's addition (the package has none): commits ZooKeeper ops all or nothing. `ops` are
   * zk.znodes.multi's `{ op: 'create' | 'set' | 'delete' | 'check', path, data, version, ... }`.
   */
  transaction(ops) {
    return this._promise(() => this._znodes.multi(ops));
  }

}

// One assignment per name, spelled out: Node's ES module loader finds a CommonJS module's named
// exports by reading such lines (cjs-module-lexer), so `import { ZOO_EPHEMERAL } from 'zktx/zookeeper'` works.
module.exports = ZooKeeperPromise;
module.exports.constants = constants;
/** The callback class. */
module.exports.ZooKeeper = ZooKeeper;
module.exports.Promise = ZooKeeperPromise;
/** @deprecated as in the package */
module.exports.ZK = ZooKeeperPromise;
module.exports.ZOO_PERM_READ = constants.ZOO_PERM_READ;
module.exports.ZOO_PERM_WRITE = constants.ZOO_PERM_WRITE;
module.exports.ZOO_PERM_CREATE = constants.ZOO_PERM_CREATE;
module.exports.ZOO_PERM_DELETE = constants.ZOO_PERM_DELETE;
module.exports.ZOO_PERM_ADMIN = constants.ZOO_PERM_ADMIN;
module.exports.ZOO_PERM_ALL = constants.ZOO_PERM_ALL;
module.exports.ZOO_EXPIRED_SESSION_STATE = constants.ZOO_EXPIRED_SESSION_STATE;
module.exports.ZOO_AUTH_FAILED_STATE = constants.ZOO_AUTH_FAILED_STATE;
module.exports.ZOO_CONNECTING_STATE = constants.ZOO_CONNECTING_STATE;
module.exports.ZOO_ASSOCIATING_STATE = constants.ZOO_ASSOCIATING_STATE;
module.exports.ZOO_CONNECTED_STATE = constants.ZOO_CONNECTED_STATE;
module.exports.ZOO_LOG_LEVEL_ERROR = constants.ZOO_LOG_LEVEL_ERROR;
module.exports.ZOO_LOG_LEVEL_WARN = constants.ZOO_LOG_LEVEL_WARN;
module.exports.ZOO_LOG_LEVEL_INFO = constants.ZOO_LOG_LEVEL_INFO;
module.exports.ZOO_LOG_LEVEL_DEBUG = constants.ZOO_LOG_LEVEL_DEBUG;
module.exports.ZOO_PERSISTENT = constants.ZOO_PERSISTENT;
module.exports.ZOO_EPHEMERAL = constants.ZOO_EPHEMERAL;
module.exports.ZOO_SEQUENCE = constants.ZOO_SEQUENCE;
module.exports.ZOO_PERSISTENT_SEQUENTIAL = constants.ZOO_PERSISTENT_SEQUENTIAL;
module.exports.ZOO_EPHEMERAL_SEQUENTIAL = constants.ZOO_EPHEMERAL_SEQUENTIAL;
module.exports.ZOO_CONTAINER = constants.ZOO_CONTAINER;
module.exports.ZOO_PERSISTENT_WITH_TTL = constants.ZOO_PERSISTENT_WITH_TTL;
module.exports.ZOO_PERSISTENT_SEQUENTIAL_WITH_TTL = constants.ZOO_PERSISTENT_SEQUENTIAL_WITH_TTL;
module.exports.ZOK = constants.ZOK;
module.exports.ZSYSTEMERROR = constants.ZSYSTEMERROR;
module.exports.ZRUNTIMEINCONSISTENCY = constants.ZRUNTIMEINCONSISTENCY;
module.exports.ZDATAINCONSISTENCY = constants.ZDATAINCONSISTENCY;
module.exports.ZCONNECTIONLOSS = constants.ZCONNECTIONLOSS;
module.exports.ZMARSHALLINGERROR = constants.ZMARSHALLINGERROR;
module.exports.ZUNIMPLEMENTED = constants.ZUNIMPLEMENTED;
module.exports.ZOPERATIONTIMEOUT = constants.ZOPERATIONTIMEOUT;
module.exports.ZBADARGUMENTS = constants.ZBADARGUMENTS;
module.exports.ZINVALIDSTATE = constants.ZINVALIDSTATE;
module.exports.ZAPIERROR = constants.ZAPIERROR;
module.exports.ZNONODE = constants.ZNONODE;
module.exports.ZNOAUTH = constants.ZNOAUTH;
module.exports.ZBADVERSION = constants.ZBADVERSION;
module.exports.ZNOCHILDRENFOREPHEMERALS = constants.ZNOCHILDRENFOREPHEMERALS;
module.exports.ZNODEEXISTS = constants.ZNODEEXISTS;
module.exports.ZNOTEMPTY = constants.ZNOTEMPTY;
module.exports.ZSESSIONEXPIRED = constants.ZSESSIONEXPIRED;
module.exports.ZINVALIDCALLBACK = constants.ZINVALIDCALLBACK;
module.exports.ZINVALIDACL = constants.ZINVALIDACL;
module.exports.ZAUTHFAILED = constants.ZAUTHFAILED;
module.exports.ZCLOSING = constants.ZCLOSING;
module.exports.ZNOTHING = constants.ZNOTHING;
module.exports.ZSESSIONMOVED = constants.ZSESSIONMOVED;
module.exports.ZOO_OPEN_ACL_UNSAFE = constants.ZOO_OPEN_ACL_UNSAFE;
module.exports.ZOO_READ_ACL_UNSAFE = constants.ZOO_READ_ACL_UNSAFE;
module.exports.ZOO_CREATOR_ALL_ACL = constants.ZOO_CREATOR_ALL_ACL;
module.exports.ZOO_CREATED_EVENT = constants.ZOO_CREATED_EVENT;
module.exports.ZOO_DELETED_EVENT = constants.ZOO_DELETED_EVENT;
module.exports.ZOO_CHANGED_EVENT = constants.ZOO_CHANGED_EVENT;
module.exports.ZOO_CHILD_EVENT = constants.ZOO_CHILD_EVENT;
module.exports.ZOO_SESSION_EVENT = constants.ZOO_SESSION_EVENT;
module.exports.ZOO_NOTWATCHING_EVENT = constants.ZOO_NOTWATCHING_EVENT;
module.exports.ZOOKEEPER_WRITE = constants.ZOOKEEPER_WRITE;
module.exports.ZOOKEEPER_READ = constants.ZOOKEEPER_READ;
module.exports.ZOO_CONFIG_NODE = constants.ZOO_CONFIG_NODE;
