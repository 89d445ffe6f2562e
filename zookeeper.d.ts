// Types of `zktx/zookeeper`: the `zookeeper` npm package's API (v7) over zktx's native session.
/**
 * The `zookeeper` npm package's API (v7) on a zktx session: `require('zktx/zookeeper')`.
 * @packageDocumentation
 * @module zktx/zookeeper
 */
import { EventEmitter } from 'node:events';
import { ZktxError } from './index';

declare namespace ZooKeeperPromise {
  /** A Stat as the package gives it: times as Dates, the ephemeral owner in hex. Zxids are numbers, exact below 2^53. */
  interface stat {
    czxid: number;
    mzxid: number;
    pzxid: number;
    ctime: Date;
    mtime: Date;
    version: number;
    cversion: number;
    aversion: number;
    ephemeralOwner: string;
    dataLength: number;
    numChildren: number;
    /** The node is ephemeral and owned by this client's session. */
    createdInThisSession: boolean;
  }
  interface acl {
    perms: number;
    scheme: string;
    auth: string;
  }
  /** `init` / constructor options. */
  interface Config {
    /**
     * With `client_password`: resume that session (another client's `client_id` /
     * `client_password`, hex) instead of opening a new one, as the C client's `zoo_init` with a
     * clientid. A wrong password or a session the server dropped: `close` with
     * `ZOO_EXPIRED_SESSION_STATE`, calls reject `-112 session expired`. One without the other,
     * or not hex of the right size: INVALID_ARGUMENT.
     */
    client_id?: string;
    client_password?: string;
    connect?: string;
    /** Session timeout in ms (default 20000; the server clamps it to [2, 20] ticks). */
    timeout?: number;
    debug_level?: number;
    host_order_deterministic?: boolean;
    /** false: data is returned as UTF-8 strings. */
    data_as_buffer?: boolean;
    response_counter_limit?: number;
    /**
     * zktx's addition: zktx client options the package sets elsewhere (its TLS build,
     * `add_auth` before the first call), e.g. `{ tls: { ca, cert, key }, auth: [...], acl: 'creator-all' }`.
     * Applied over the options above. Not an object: INVALID_ARGUMENT.
     */
    zktx?: Omit<import('./index').ZooKeeperOptions, 'connect' | 'timeout'>;
  }
  /**
   * A watcher: `(type, state, path)`; type ZOO_CREATED_EVENT..ZOO_CHILD_EVENT (state
   * ZOO_CONNECTED_STATE) once, and, until then, `(ZOO_SESSION_EVENT, ZOO_CONNECTING_STATE, '')`
   * at each connection loss and `(ZOO_SESSION_EVENT, ZOO_CONNECTED_STATE, '')` at each reconnect
   * (as the C client); never called at expiry (only `close` is emitted).
   */
  type Watcher = (type: number, state: number, path: string) => void;
  type Constants = typeof ZooKeeperPromise.constants;
}

/**
 * The `zookeeper` package's callback class: `a_*` / `aw_*` methods call back `(rc, error, ...result)`
 * (`rc` 0 and `error` 'ok' on success). Events: `connect` (on every (re)connection), `connecting`
 * (connection lost, session may live), `close` (closed, or the session expired: make a new client,
 * as with the C client), and with `watch: true` reads, `created` / `deleted` / `changed` / `child` (`(client, path)`).
 *
 * *Guarantees*: each call is one `zk.znodes` call of zktx, with its deadline (the session
 * timeout): errors come back as the C client's codes (`-101` no node, `-7` operation timeout for
 * zktx's TIMEOUT, `-8` bad arguments for INVALID_ARGUMENT, `-116` for a closed client).
 *
 * *Watches*, as the C client keeps them: `watch: true` registers the default watcher once per
 * path and kind (data / exists / children), so one change emits one event however many watched
 * reads preceded it; each `w_*` / `aw_*` call's watcher is its own and is called once.
 *
 * *On connection loss*: calls wait for the reconnect within their deadline. Pending watchers get
 * `(ZOO_SESSION_EVENT, ZOO_CONNECTING_STATE, '')` at the loss and `(ZOO_SESSION_EVENT,
 * ZOO_CONNECTED_STATE, '')` at the reconnect and stay pending; their one-shot watches are set
 * again, and fire at once for a node changed, deleted or (exists) created meanwhile; a change
 * undone while disconnected is not reported (ZooKeeper's SetWatches). On expiry no watcher is
 * called (the package's watcher_fn returns once the session expired): `close` is emitted. While
 * initialized and not closed, the client keeps Node's event loop alive (as the C client's socket
 * does).
 */
declare class ZooKeeperCallback extends EventEmitter {
  constructor(config?: ZooKeeperPromise.Config | string);
  config: ZooKeeperPromise.Config | undefined;
  encoding: BufferEncoding | null;
  init(config?: ZooKeeperPromise.Config | string): this;
  connect(options: ZooKeeperPromise.Config | ((err: Error | null, zk?: ZooKeeperCallback) => void), cb?: (err: Error | null, zk?: ZooKeeperCallback) => void): void;
  /** Closes the session (its ephemeral nodes go at once); resolves once closed. */
  close(): Promise<void>;
  setLogger(logger: boolean | ((...args: unknown[]) => void)): void;
  setEncoding(value: BufferEncoding | null): void;
  data_as_buffer: boolean;
  /** ZOO_CONNECTING_STATE, ZOO_CONNECTED_STATE, ZOO_EXPIRED_SESSION_STATE, ZOO_AUTH_FAILED_STATE, or 0 (closed / not started). */
  readonly state: number;
  readonly timeout: number;
  /** The session id in hex. */
  readonly client_id: string;
  /** The session's password in hex (32 digits), '' before the first connect. A secret: it lets another client take the session. */
  readonly client_password: string;
  readonly is_unrecoverable: boolean;
  a_create(path: string, data: string | Buffer, flags: number, pathCb: (rc: number, error: string, path: string) => void): number;
  a_createTtl(path: string, data: string | Buffer, flags: number, ttl: number, pathCb: (rc: number, error: string, path: string) => void): number;
  a_exists(path: string, watch: boolean, statCb: (rc: number, error: string, stat: ZooKeeperPromise.stat) => void): number;
  aw_exists(path: string, watchCb: ZooKeeperPromise.Watcher, statCb: (rc: number, error: string, stat: ZooKeeperPromise.stat) => void): number;
  a_get(path: string, watch: boolean, dataCb: (rc: number, error: string, stat: ZooKeeperPromise.stat, data: string | Buffer) => void): number;
  aw_get(path: string, watchCb: ZooKeeperPromise.Watcher, dataCb: (rc: number, error: string, stat: ZooKeeperPromise.stat, data: string | Buffer) => void): number;
  a_get_children(path: string, watch: boolean, childCb: (rc: number, error: string, children: string[]) => void): number;
  aw_get_children(path: string, watchCb: ZooKeeperPromise.Watcher, childCb: (rc: number, error: string, children: string[]) => void): number;
  a_get_children2(path: string, watch: boolean, childCb: (rc: number, error: string, children: string[], stat: ZooKeeperPromise.stat) => void): number;
  aw_get_children2(path: string, watchCb: ZooKeeperPromise.Watcher, childCb: (rc: number, error: string, children: string[], stat: ZooKeeperPromise.stat) => void): number;
  a_set(path: string, data: string | Buffer, version: number | null | undefined, statCb: (rc: number, error: string, stat: ZooKeeperPromise.stat) => void): number;
  a_delete_(path: string, version: number | null | undefined, voidCb: (rc: number, error: string) => void): number;
  a_get_acl(path: string, aclCb: (rc: number, error: string, acl: ZooKeeperPromise.acl[], stat: ZooKeeperPromise.stat) => void): number;
  a_set_acl(path: string, version: number | null | undefined, acl: ZooKeeperPromise.acl[], voidCb: (rc: number, error: string) => void): number;
  a_sync(path: string, valueCb: (rc: number, error: string, value: string) => void): number;
  /** Without a callback: a promise. */
  add_auth(scheme: string, auth: string | Buffer): Promise<void>;
  add_auth(scheme: string, auth: string | Buffer, voidCb: (rc: number, error: string) => void): number;
  /** `mkdir -p`, persistent nodes; without a callback: a promise of true. */
  mkdirp(path: string): Promise<true>;
  mkdirp(path: string, cb: (err: Error | null, done?: true) => void): void;
}

/**
 * The `zookeeper` package's promise class (its default export). Each method resolves what the
 * callback would give, or rejects with a {@link ZktxError} whose message is the package's
 * (`"-101 no node"`), with zktx's `code` (`NONODE`) and the C client's `rc` (-101).
 */
declare class ZooKeeperPromise extends ZooKeeperCallback {
  /** @deprecated resolves on `connect`. */
  on_connected(): Promise<this>;
  /** Resolves the created path. `flags`: ZOO_PERSISTENT, ZOO_EPHEMERAL, ZOO_SEQUENCE (or'ed), ZOO_CONTAINER, ZOO_PERSISTENT_WITH_TTL (with `ttl`). */
  create(path: string, data: string | Buffer, flags: number, ttl?: number): Promise<string>;
  /** Rejects `-101 no node` when absent (a watch asked for is set either way, as with the C client). */
  exists(path: string, watch: boolean): Promise<ZooKeeperPromise.stat>;
  pathExists(path: string, watch: boolean): Promise<boolean>;
  w_exists(path: string, watchCb: ZooKeeperPromise.Watcher): Promise<ZooKeeperPromise.stat>;
  w_pathExists(path: string, watchCb: ZooKeeperPromise.Watcher): Promise<boolean>;
  get(path: string, watch: boolean): Promise<[ZooKeeperPromise.stat, string | Buffer]>;
  w_get(path: string, watchCb: ZooKeeperPromise.Watcher): Promise<[ZooKeeperPromise.stat, string | Buffer]>;
  get_children(path: string, watch: boolean): Promise<string[]>;
  w_get_children(path: string, watchCb: ZooKeeperPromise.Watcher): Promise<string[]>;
  get_children2(path: string, watch: boolean): Promise<[string[], ZooKeeperPromise.stat]>;
  w_get_children2(path: string, watchCb: ZooKeeperPromise.Watcher): Promise<[string[], ZooKeeperPromise.stat]>;
  set(path: string, data: string | Buffer, version: number | null | undefined): Promise<ZooKeeperPromise.stat>;
  delete_(path: string, version: number | null | undefined): Promise<void>;
  get_acl(path: string): Promise<[ZooKeeperPromise.acl[], ZooKeeperPromise.stat]>;
  set_acl(path: string, version: number | null | undefined, acl: ZooKeeperPromise.acl[]): Promise<void>;
  sync(path: string): Promise<string>;
  /** zktx's addition (the package has no multi): `zk.znodes.multi`'s operations, all or nothing. */
  transaction(ops: import('./index').MultiOp[]): Promise<import('./index').MultiResult[]>;

  static readonly constants: {
    readonly ZOO_PERM_READ: 1; readonly ZOO_PERM_WRITE: 2; readonly ZOO_PERM_CREATE: 4; readonly ZOO_PERM_DELETE: 8; readonly ZOO_PERM_ADMIN: 16; readonly ZOO_PERM_ALL: 31;
    readonly ZOO_EXPIRED_SESSION_STATE: -112; readonly ZOO_AUTH_FAILED_STATE: -113; readonly ZOO_CONNECTING_STATE: 1; readonly ZOO_ASSOCIATING_STATE: 2; readonly ZOO_CONNECTED_STATE: 3;
    readonly ZOO_LOG_LEVEL_ERROR: 1; readonly ZOO_LOG_LEVEL_WARN: 2; readonly ZOO_LOG_LEVEL_INFO: 3; readonly ZOO_LOG_LEVEL_DEBUG: 4;
    readonly ZOO_PERSISTENT: 0; readonly ZOO_EPHEMERAL: 1; readonly ZOO_SEQUENCE: 2; readonly ZOO_PERSISTENT_SEQUENTIAL: 2; readonly ZOO_EPHEMERAL_SEQUENTIAL: 3;
    readonly ZOO_CONTAINER: 4; readonly ZOO_PERSISTENT_WITH_TTL: 5; readonly ZOO_PERSISTENT_SEQUENTIAL_WITH_TTL: 6;
    readonly ZOK: 0; readonly ZSYSTEMERROR: -1; readonly ZRUNTIMEINCONSISTENCY: -2; readonly ZDATAINCONSISTENCY: -3; readonly ZCONNECTIONLOSS: -4; readonly ZMARSHALLINGERROR: -5;
    readonly ZUNIMPLEMENTED: -6; readonly ZOPERATIONTIMEOUT: -7; readonly ZBADARGUMENTS: -8; readonly ZINVALIDSTATE: -9; readonly ZAPIERROR: -100; readonly ZNONODE: -101;
    readonly ZNOAUTH: -102; readonly ZBADVERSION: -103; readonly ZNOCHILDRENFOREPHEMERALS: -108; readonly ZNODEEXISTS: -110; readonly ZNOTEMPTY: -111;
    readonly ZSESSIONEXPIRED: -112; readonly ZINVALIDCALLBACK: -113; readonly ZINVALIDACL: -114; readonly ZAUTHFAILED: -115; readonly ZCLOSING: -116; readonly ZNOTHING: -117; readonly ZSESSIONMOVED: -118;
    readonly ZOO_OPEN_ACL_UNSAFE: readonly ZooKeeperPromise.acl[]; readonly ZOO_READ_ACL_UNSAFE: readonly ZooKeeperPromise.acl[]; readonly ZOO_CREATOR_ALL_ACL: readonly ZooKeeperPromise.acl[];
    readonly ZOO_CREATED_EVENT: 1; readonly ZOO_DELETED_EVENT: 2; readonly ZOO_CHANGED_EVENT: 3; readonly ZOO_CHILD_EVENT: 4; readonly ZOO_SESSION_EVENT: -1; readonly ZOO_NOTWATCHING_EVENT: -2;
    readonly ZOOKEEPER_WRITE: 1; readonly ZOOKEEPER_READ: 2; readonly ZOO_CONFIG_NODE: '/zookeeper/config';
    readonly on_closed: 'close'; readonly on_connected: 'connect'; readonly on_connecting: 'connecting'; readonly on_event_created: 'created';
    readonly on_event_deleted: 'deleted'; readonly on_event_changed: 'changed'; readonly on_event_child: 'child'; readonly on_event_notwatching: 'notwatching';
  };
  /** The callback class. */
  static readonly ZooKeeper: typeof ZooKeeperCallback;
  static readonly Promise: typeof ZooKeeperPromise;
  /** @deprecated */
  static readonly ZK: typeof ZooKeeperPromise;
  static readonly ZOO_PERSISTENT: 0; static readonly ZOO_EPHEMERAL: 1; static readonly ZOO_SEQUENCE: 2; static readonly ZOO_PERSISTENT_SEQUENTIAL: 2;
  static readonly ZOO_EPHEMERAL_SEQUENTIAL: 3; static readonly ZOO_CONTAINER: 4; static readonly ZOO_PERSISTENT_WITH_TTL: 5; static readonly ZOO_PERSISTENT_SEQUENTIAL_WITH_TTL: 6;
  static readonly ZOO_LOG_LEVEL_ERROR: 1; static readonly ZOO_LOG_LEVEL_WARN: 2; static readonly ZOO_LOG_LEVEL_INFO: 3; static readonly ZOO_LOG_LEVEL_DEBUG: 4;
  static readonly ZOO_CONNECTING_STATE: 1; static readonly ZOO_ASSOCIATING_STATE: 2; static readonly ZOO_CONNECTED_STATE: 3; static readonly ZOO_EXPIRED_SESSION_STATE: -112; static readonly ZOO_AUTH_FAILED_STATE: -113;
  static readonly ZOO_CREATED_EVENT: 1; static readonly ZOO_DELETED_EVENT: 2; static readonly ZOO_CHANGED_EVENT: 3; static readonly ZOO_CHILD_EVENT: 4; static readonly ZOO_SESSION_EVENT: -1; static readonly ZOO_NOTWATCHING_EVENT: -2;
  static readonly ZOO_PERM_READ: 1; static readonly ZOO_PERM_WRITE: 2; static readonly ZOO_PERM_CREATE: 4; static readonly ZOO_PERM_DELETE: 8; static readonly ZOO_PERM_ADMIN: 16; static readonly ZOO_PERM_ALL: 31;
  static readonly ZOK: 0; static readonly ZSYSTEMERROR: -1; static readonly ZCONNECTIONLOSS: -4; static readonly ZOPERATIONTIMEOUT: -7; static readonly ZBADARGUMENTS: -8;
  static readonly ZNONODE: -101; static readonly ZNOAUTH: -102; static readonly ZBADVERSION: -103; static readonly ZNOCHILDRENFOREPHEMERALS: -108; static readonly ZNODEEXISTS: -110;
  static readonly ZNOTEMPTY: -111; static readonly ZSESSIONEXPIRED: -112; static readonly ZINVALIDACL: -114; static readonly ZAUTHFAILED: -115; static readonly ZCLOSING: -116;
  static readonly ZOO_OPEN_ACL_UNSAFE: readonly ZooKeeperPromise.acl[]; static readonly ZOO_READ_ACL_UNSAFE: readonly ZooKeeperPromise.acl[]; static readonly ZOO_CREATOR_ALL_ACL: readonly ZooKeeperPromise.acl[];
}

export = ZooKeeperPromise;
