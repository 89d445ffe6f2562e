// Types of zktx's public JS API (index.js). The native binding (binding.js, zktx.node) is private.
/**
 * Locks, fenced transactions and the coordinator: `require('zktx')` / `import ... from 'zktx'`.
 * Guides: the README and `docs/` in the repository.
 * @packageDocumentation
 * @module zktx
 */
import { EventEmitter } from 'node:events';

/**
 * Any value JSON can carry: what keys store. Encoded as `JSON.stringify` does (a `Date` becomes
 * its ISO string, `toJSON()` is used), but a `Map`, `Set`, `WeakMap`, `WeakSet`, typed array,
 * `ArrayBuffer`, `DataView` or promise anywhere inside, which JSON would store as `{}`, is
 * refused with `INVALID_ARGUMENT`.
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * Stable error codes. ZooKeeper's own names where they exist, zktx's otherwise.
 *
 * - `INVALID_ARGUMENT`: bad input; nothing was sent to the server. Includes strings (keys, paths,
 *   transaction ids) with a lone UTF-16 surrogate, which UTF-8 cannot carry; durations out of
 *   range; paths over 32768 bytes of UTF-8; and arguments that throw when read (a getter, a Proxy
 *   trap, a `then` of a function's result). Every rejection and throw of zktx is a `ZktxError`;
 *   only the errors of your own functions (updater, `fn`) pass through unchanged.
 * - `TOO_LARGE`: a value over 1,000,000 bytes of JSON; nothing written. Also an election
 *   participant id over 16384 bytes of UTF-8.
 * - `TIMEOUT`: an acquire timeout passed, or the server did not answer within the deadline.
 * - `CONNECTIONLOSS`: the connection dropped under a request (see `outcome`); or no session
 *   could be opened because every host refused the connection or does not resolve, reported at
 *   once rather than at the connect timeout, with `cause` an `Error` whose `code` is Node's
 *   (`ECONNREFUSED`, `ENOTFOUND`) and the message naming each host's failure.
 * - `SESSIONEXPIRED`: the session is gone, and with it every lock it held.
 * - `LOCK_LOST`: a write fenced on a lock that is no longer held; nothing written.
 * - `ABORTED`: cancelled by an `AbortSignal`; no lock node left behind. `cause` is the signal's `reason`.
 * - `CONFLICT`: a write kept racing with concurrent creates/deletes.
 * - `CLIENT_CLOSED`: the client was closed.
 * - `ALREADY_HELD`: this client already holds (or is acquiring) that lock; locks are not reentrant.
 *   Also `election.lead()` on an `Election` whose earlier `lead()` is pending or whose leadership
 *   was neither resigned nor lost (one candidacy per `Election` object).
 * - `LOCK_KIND_MISMATCH`: a semaphore lease (`permits` > 1) asked for on a path used as a lock
 *   (exclusive, read-write, `multiLock`), or a lock on a path used as a semaphore; likewise a
 *   lock or lease on a leader election's path, or `election.lead()` on a lock's path. A semaphore
 *   counts leases, a lock excludes holders: they cannot share a path. The first kind on the
 *   path wins (its lowest queue node decides): a contender of the other kind is refused and
 *   leaves no node behind. A contender of the path's kind behind such a refused node (gone a
 *   round trip later) waits for it instead of being refused, while a node of its kind heads the
 *   queue. (Exclusive, read, write and multiLock do mix on one path: an exclusive lock is a
 *   writer to readers.)
 * - `STALE_TOKEN`: `FencingTokenGuard.check` refused an older token.
 * - `INTERNAL`: a bug in zktx (a panic in the addon, or an addon error outside zktx's format);
 *   `outcome` is `'unknown'`, as a write may have been sent. The original error is `cause`.
 * - `NONODE`, `NODEEXISTS`, `BADVERSION`, `NOTEMPTY`, `NOAUTH`, `NOCHILDRENFOREPHEMERALS`, ...:
 *   ZooKeeper refused the request; nothing written. `NOAUTH`: a node's ACL does not grant this
 *   session's identity (see {@link ZooKeeperOptions.acl}). From `zk.znodes` also `INVALIDACL`
 *   (an ACL the server refuses, e.g. `auth` with no identity) and `UNIMPLEMENTED` (TTL nodes
 *   without `extendedTypesEnabled`, `addWatch` before 3.6); a failed `multi` has `index`.
 * - `TLS_HANDSHAKE`: a TLS handshake failed; the message has the reason (certificate not
 *   signed by `tls.ca`, not valid for the host, client certificate missing or refused), and so
 *   does `cause` (an `Error` with `code` `'ERR_TLS_HANDSHAKE'`).
 * - `NONODE` at connect: the connect string's chroot does not exist on the server; the message
 *   names it (create it first, or leave it out).
 * - `AUTHFAILED`: the server refused the session's authentication at connect (see
 *   {@link ZooKeeperOptions.auth}); every call rejects with it until the options change.
 * - `COORDINATOR_ID`: a coordinator tree's id (`<base>/id`) is lost from a tree that holds
 *   records, or was written for another tree (a copy); the coordinator makes no gid and resolves
 *   no branch until an operator restores or re-keys it (README, coordinator limits).
 */
export type ZktxErrorCode =
  | 'INVALID_ARGUMENT'
  | 'TOO_LARGE'
  | 'TIMEOUT'
  | 'CONNECTIONLOSS'
  | 'SESSIONEXPIRED'
  | 'LOCK_LOST'
  | 'ABORTED'
  | 'CONFLICT'
  | 'CLIENT_CLOSED'
  | 'ALREADY_HELD'
  | 'LOCK_KIND_MISMATCH'
  | 'STALE_TOKEN'
  | 'INTERNAL'
  | 'NONODE'
  | 'NODEEXISTS'
  | 'BADVERSION'
  | 'NOTEMPTY'
  | 'NOAUTH'
  | 'AUTHFAILED'
  | 'TLS_HANDSHAKE'
  | 'ROLLED_BACK'
  | 'PARTICIPANT_FAILED'
  | 'IN_DOUBT'
  | 'COORDINATOR_ID'
  | 'NOCHILDRENFOREPHEMERALS'
  | 'INVALIDACL'
  | 'UNIMPLEMENTED'
  | (string & {});

/**
 * Every rejection of zktx. `instanceof ZktxError` and `instanceof Error` both hold. `stack` is
 * `ZktxError [CODE]: message` followed by the frames of the code that made the call (also for
 * errors from the native side, and for a call nobody awaited).
 */
export class ZktxError extends Error {
  /** Coordinator errors (`ROLLED_BACK`, `IN_DOUBT`, ...): the distributed transaction's id. */
  txid?: string;
  /** `LOCK_LOST` from `lock.signal` / `lock.lost`: why the lock was lost. */
  reason?: LockLossReason;
  /** `LOCK_LOST` with reason `DISCONNECTED_TOO_LONG`: how long the connection had been down, in ms. */
  disconnectedMs?: number;
  /** `zk.znodes.multi`: the position of the operation that failed. */
  index?: number;
  /** `zktx/zookeeper`: the C client's return code (`-101` for `NONODE`, ...). */
  rc?: number;
  readonly name: 'ZktxError';
  /** Stable code; see {@link ZktxErrorCode}. */
  readonly code: ZktxErrorCode;
  /**
   * Whether a failed write may have been applied: `'unknown'` for `CONNECTIONLOSS` or `TIMEOUT`
   * of a write already sent (re-read to find out), `'not_applied'` otherwise.
   */
  readonly outcome: 'unknown' | 'not_applied';
  /**
   * What this error stands for, when there is one: the `AbortSignal`'s `reason` for `ABORTED`
   * (a `TimeoutError` DOMException from `AbortSignal.timeout()`, or your own reason); the error a
   * getter, Proxy trap or `toJSON` threw for `INVALID_ARGUMENT`; the addon's raw error for
   * `INTERNAL`; for a connect that failed (`CONNECTIONLOSS`, `TLS_HANDSHAKE`), an `Error` with
   * `code` `'ECONNREFUSED'`, `'ENOTFOUND'` or `'ERR_TLS_HANDSHAKE'`. A `ROLLED_BACK` of
   * `coordinator.run` that the connection caused (the transaction could not be recorded, its
   * decision not sent) has that `ZktxError` as `cause`, with its own `cause` in turn:
   * `err.cause.code === 'CONNECTIONLOSS'`, `err.cause.cause.code === 'ECONNREFUSED'` (or
   * `NONODE` naming a missing chroot, `TLS_HANDSHAKE`...).
   */
  cause?: unknown;
  constructor(code: ZktxErrorCode, message: string, outcome?: 'unknown' | 'not_applied', options?: { cause?: unknown });
}

/** The tutorial's constructor options, plus zktx's own (camelCase). Unknown keys are an error. */
export interface ZooKeeperOptions {
  /**
   * `host:port[,host:port...][/chroot]`. When not given: the environment variable `ZK_CONNECT`,
   * else `localhost:2181`. Explicit wins over `ZK_CONNECT`; only `ZKTX_CONNECT_OVERRIDE` (opt-in,
   * for running code that hardcodes its connect string against another ensemble) overrides it.
   *
   * Checked by the constructor, whichever of the three it comes from: hosts are names or
   * addresses (IPv6 in brackets, `[::1]:2181`), ports 1 to 65535 (2181 when left out), the
   * chroot a znode path without `//`, `.`, `..` or a trailing `/`, at most 32 KiB (every request
   * carries it, and the request size limit counts it: `TOO_LARGE`); no URL scheme (`zk://`).
   * Otherwise `INVALID_ARGUMENT`, naming the string and where it came from. A chroot that does
   * not exist on the server fails the connect with `NONODE` naming it.
   */
  connect?: string;
  /**
   * Requested session timeout in ms (default 30000). The server clamps it to
   * [2, 20] × tickTime: with the default tickTime of 2 s, the tutorial's 200000 becomes 40000.
   * At most 2^31 - 1 (2147483647, setTimeout's limit); more is `INVALID_ARGUMENT`.
   */
  timeout?: number;
  /**
   * `ZooKeeper.ZOO_LOG_LEVEL_*` (or 0 for silence; default WARN): the least severe record this
   * client logs, to `logger` when given, else to stderr. Per client.
   */
  debug_level?: number;
  /**
   * Where this client's log records go instead of stderr (the Rust core's and zookeeper-client's,
   * at `debug_level` and above): called as `logger[level](message, fields)`. `console` and
   * winston fit as they are; for pino (fields first) pass an adapter, see README "Logging".
   * A logger that throws loses that record, never the process. Secrets are never logged.
   */
  logger?: Logger;
  /** Keep the host order (zktx does not shuffle; the client still picks a random start host). */
  host_order_deterministic?: boolean;
  /** How long establishing a session may take (default min(timeout, 15000) ms; 0 to 2^31 - 1). */
  connectTimeout?: number;
  /** Deadline of each request in ms (default: the negotiated session timeout; 0 to 2^31 - 1). */
  requestTimeout?: number;
  /** Open a new session by itself after expiry, for new work (default true). */
  reconnectAfterExpiry?: boolean;
  /**
   * How long after the connection drops (`SUSPENDED`) held locks are declared lost (`lock.signal`
   * aborts, `lock.lost` resolves), as a fraction of the negotiated session timeout: `0 < f <= 1`,
   * default 1 (Curator's choice). Below 0.6 a holder cut off by a silent network learns of the
   * loss before the server can expire its session and hand the lock on; see README, Guarantees.
   * A lock declared lost this way (`reason` `DISCONNECTED_TOO_LONG`) has its node deleted when
   * the connection returns, if the session survived.
   */
  lostAfter?: number;
  /**
   * Credentials sent with every connect and replayed on every reconnect (ZooKeeper keeps them
   * per connection), e.g. `[{ scheme: 'digest', credentials: 'user:password' }]`. Never shown
   * in errors, logs or `util.inspect`.
   *
   * ZooKeeper's `digest` provider accepts any `user:password` and grants that identity: a wrong
   * password connects fine and is refused by the ACLs (`NOAUTH`). `AUTHFAILED` at connect (within
   * milliseconds) when the server has no provider for a scheme, a provider rejects the
   * credentials, or the server enforces auth (`enforce.auth.enabled`) and none was given.
   * Errors: `INVALID_ARGUMENT` for a scheme that is not a name, credentials neither a string nor
   * a Buffer, digest credentials without `user:`.
   */
  auth?: ZooKeeperAuth[];
  /**
   * ACL of every node zktx creates: lock nodes and directories, values, transaction markers, the
   * clock node. Nodes that already exist keep theirs. Default `'open'`. See README, Production
   * setup.
   * - `'open'`: `world:anyone`, all permissions.
   * - `'creator-all'` (recommended, with `auth` or `sasl`): only the identities this session
   *   authenticated as; other identities get `NOAUTH` for everything under it. Without `auth` or
   *   `sasl`: `INVALID_ARGUMENT`.
   * - `'read-only'`: `world:anyone`, read only: nobody, zktx included, may change what it
   *   created (values are write-once; zktx's directories must exist already).
   * - an explicit, non-empty list of entries.
   */
  acl?: 'open' | 'creator-all' | 'read-only' | ZooKeeperAclEntry[];
  /**
   * SASL authentication, redone on every reconnect. Only `DIGEST-MD5` (against the server's
   * `DigestLoginModule` users); Kerberos is not supported. The server checks the password: a
   * wrong one (or none, on a server enforcing SASL) is `AUTHFAILED` at connect. The identity is
   * `sasl:<username>`, which `acl: 'creator-all'` accepts like `auth`. Never shown in errors,
   * logs or `util.inspect`.
   */
  sasl?: { mechanism?: 'DIGEST-MD5'; username: string; password: string };
  /**
   * TLS to every host's `secureClientPort`. PEM text as strings or Buffers; the key is never
   * shown in errors, logs or `util.inspect`.
   * Errors: `TLS_HANDSHAKE` with the reason, within about half a second of connecting, for a
   * server certificate not signed by `ca` or not valid for the host, or a client certificate
   * missing or refused; `INVALID_ARGUMENT` for PEM without a certificate or key, `cert` without
   * `key`, or no `ca`.
   */
  tls?: {
    /** The CA certificate(s) that signed the servers' certificates (required; the system trust store is not used). */
    ca: string | Uint8Array;
    /** The client certificate (chain), for servers with `ssl.clientAuth=need`. */
    cert?: string | Uint8Array;
    /** The client's private key, with `cert`. */
    key?: string | Uint8Array;
    /** `false` skips the hostname check only; the chain is always verified against `ca`. Default `true`. */
    rejectUnauthorized?: boolean;
  };
  /**
   * Resume this session instead of opening a new one: its id in hex (`zk.znodes.sessionId()`)
   * and its password, 16 bytes, in hex or as bytes (`zk.znodes.sessionPassword()`), as another
   * client, usually another process, gave them out (the C client's `clientid_t`).
   *
   * *Guarantees*: the first connect resumes it, with its ephemeral nodes; closing this client
   * ends it. A session opened after an expiry (`reconnectAfterExpiry`) is a new one.
   *
   * *Errors*: `INVALID_ARGUMENT` for an id that is not 1–16 hex digits or a password that is not
   * 16 bytes; the connect fails `SESSIONEXPIRED` when the server no longer has the session or
   * the password is wrong (the session itself is untouched). Two clients on one session take it
   * from each other: stop using the old one.
   */
  session?: { id: string; password: string | Uint8Array };
}

/** One `auth` entry. */
export interface ZooKeeperAuth {
  /** The server's authentication provider: `'digest'`, or any other one it has (`'ip'`, `'x509'`, custom). */
  scheme: string;
  /** What the provider expects: `'user:password'` for `digest`. A string is sent as UTF-8. */
  credentials: string | Uint8Array;
}

/** One ZooKeeper ACL entry. */
export interface ZooKeeperAclEntry {
  /** Letters of `'rwcda'` (read, write, create, delete, admin), or an array of names (`'all'` for every one). */
  perms: string | Array<'read' | 'write' | 'create' | 'delete' | 'admin' | 'all' | 'r' | 'w' | 'c' | 'd' | 'a'>;
  /** `'world'` (id `'anyone'`), `'auth'` (id `''`: the creator's identities), `'digest'`, `'ip'`, ... */
  scheme: string;
  /**
   * For `digest`: `user:base64(sha1("user:password"))`, as {@link ZooKeeper.digestId} makes it —
   * never the password (an id not of that shape is `INVALID_ARGUMENT`).
   */
  id: string;
}

/** A logger for the `logger` option: one method per level, called as `logger[level](message, fields)`. */
export interface Logger {
  debug(message: string, fields: LogFields): unknown;
  info(message: string, fields: LogFields): unknown;
  warn(message: string, fields: LogFields): unknown;
  error(message: string, fields: LogFields): unknown;
}

/**
 * The structured fields of a log record: `target` (the Rust module that logged it) always;
 * `session` (the session id, hex) when known; then the record's own, such as `path`, `dir`,
 * `node`, `key`, `lock`, `error`, `timeout_ms`.
 */
export interface LogFields {
  target: string;
  session?: string;
  [field: string]: string | number | boolean | undefined;
}

// ---- diagnostics_channel events (README "Observability") ----

/** The kind of a lock in events: `zk.lock`/`multiLock` exclusive, a read-write lock's halves, a semaphore lease; `leadership` (only in `zktx:lock:lost`) an election's. */
export type LockKind = 'exclusive' | 'read' | 'write' | 'lease' | 'leadership';

/** `zktx:lock:acquire`: an acquisition starts (for `multiLock`, one per path). */
export interface LockAcquireEvent { zk: ZooKeeper; path: string; kind: LockKind; timeout: number | undefined }
/** `zktx:lock:acquired`: the lock is held, after `waitMs` (queueing included). */
export interface LockAcquiredEvent {
  zk: ZooKeeper; path: string; kind: LockKind; nodePath: string; token: number; waitMs: number;
  /** Contenders (of any kind) ahead when it joined the queue: 0 when the lock was free. From the listing sent with the create: free. */
  queuePosition: number | undefined;
}
/** `zktx:lock:failed`: the acquisition rejected (`TIMEOUT` of a try-lock, `ABORTED`, ...) after `waitMs`. */
export interface LockFailedEvent { zk: ZooKeeper; path: string; kind: LockKind; error: ZktxError; waitMs: number }
/** `zktx:lock:released`: `release()` succeeded, once per lock; held for `holdMs`. */
export interface LockReleasedEvent { zk: ZooKeeper; path: string; kind: LockKind; nodePath: string; token: number; holdMs: number }
/** `zktx:lock:lost`: the lock was lost (`reason`: see {@link LockLossReason}), after `holdMs`. */
export interface LockLostEvent { zk: ZooKeeper; path: string; kind: LockKind; nodePath: string; token: number; reason: LockLossReason; error: ZktxError; holdMs: number }
/**
 * Why a lock was lost (`err.reason` of its `LOCK_LOST` error): `NODE_DELETED`, its node deleted
 * by someone else; `SESSION_ENDED`, its session expired or was closed; `DISCONNECTED_TOO_LONG`,
 * the connection was down `lostAfter` × the session timeout (`err.disconnectedMs` says how long)
 * — the session may still live, and zktx deletes the lock node as soon as the connection returns
 * (retried while the session lives), so others, and this client, can take the lock again.
 */
export type LockLossReason = 'NODE_DELETED' | 'SESSION_ENDED' | 'DISCONNECTED_TOO_LONG';
/** `zktx:transaction:attempt`: `zk.transaction` runs its function (attempt 0, then once per retry). */
export interface TransactionAttemptEvent { zk: ZooKeeper; id: string; attempt: number }
/** `zktx:transaction:conflict`: an attempt's commit found a read changed; `willRetry` unless out of retries. */
export interface TransactionConflictEvent { zk: ZooKeeper; id: string; attempt: number; keys: string[]; error: ZktxError; willRetry: boolean }
/** `zktx:transaction:commit`: committed after `retries` conflicts; `keys` written; `durationMs` from the first attempt. */
export interface TransactionCommitEvent { zk: ZooKeeper; id: string; attempts: number; retries: number; keys: string[]; zxid: number | undefined; alreadyApplied: boolean; durationMs: number }
/** `zktx:executeTransaction:start`. */
export interface ExecuteTransactionStartEvent { zk: ZooKeeper; key: string }
/** `zktx:executeTransaction:commit`: the value written at `version`, fenced by `token`. */
export interface ExecuteTransactionCommitEvent { zk: ZooKeeper; key: string; version: number; token: number; zxid: number | undefined; durationMs: number }
/** `zktx:executeTransaction:error`: the call rejected (`error` is a ZktxError, or the updater's own error). */
export interface ExecuteTransactionErrorEvent { zk: ZooKeeper; key: string; error: unknown; durationMs: number }
/** `zktx:session:state`: a session event of a client (the same as `zk.on('state')`). */
export interface SessionStateEvent { zk: ZooKeeper; state: SessionState; connectString: string }

// ---- TracingChannels (spans; README "Observability") ----

/**
 * The context object of zktx's `diagnostics_channel.tracingChannel`s, one per operation: the
 * same object in its `start`, `end`, `asyncStart`, `asyncEnd` and `error` events, with `result`
 * (what the call resolved) or `error` (what it rejected with) added when it settles. Channels:
 * `tracing:zktx:lock` (lock, readLock, writeLock, semaphore acquire, multiLock, withLock's acquire),
 * `tracing:zktx:transaction`, `tracing:zktx:executeTransaction`, `tracing:zktx:coordinator.run`,
 * `tracing:zktx:coordinator.saga`. Nothing is built when nobody subscribes.
 */
export interface ZktxTracingContext {
  /** The client (absent for coordinator operations, which have `coordinator`). */
  zk?: ZooKeeper;
  /** `tracing:zktx:lock`: the lock path (multiLock: its first path). */
  path?: string;
  /** `tracing:zktx:lock`: every path (one, or multiLock's). */
  paths?: string[];
  /** `tracing:zktx:lock`: `exclusive`, `read`, `write`, `lease` (a semaphore) or `multi`. */
  kind?: 'exclusive' | 'read' | 'write' | 'lease' | 'multi';
  /** `tracing:zktx:lock`, semaphores: the permits. */
  permits?: number;
  /** `tracing:zktx:transaction`: the `id` option, if given. */
  id?: string;
  /** `tracing:zktx:executeTransaction`: the key. */
  key?: string;
  /** `tracing:zktx:coordinator.*`: the coordinator. */
  coordinator?: Coordinator;
  /** `tracing:zktx:coordinator.*`: its name. */
  name?: string;
  /** `tracing:zktx:coordinator.saga`: the saga. */
  saga?: string;
  /** `tracing:zktx:coordinator.run`: the transaction id, once begun. */
  txid?: string;
  /** What the call resolved (asyncStart, asyncEnd). */
  result?: unknown;
  /** What the call rejected with (error, asyncStart, asyncEnd): a ZktxError, or your function's own error. */
  error?: unknown;
  /** Subscribers may add their own fields (a span). */
  [field: string]: unknown;
}

/** The TracingChannel names zktx publishes on (`diagnostics_channel.tracingChannel(name)`). */
export type ZktxTracingChannel = 'zktx:lock' | 'zktx:transaction' | 'zktx:executeTransaction' | 'zktx:coordinator.run' | 'zktx:coordinator.saga';

/** Every channel zktx publishes on, and its message type: `diagnostics_channel.subscribe(name, (m: ZktxChannels[typeof name]) => ...)`. */
export interface ZktxChannels {
  'zktx:lock:acquire': LockAcquireEvent;
  'zktx:lock:acquired': LockAcquiredEvent;
  'zktx:lock:failed': LockFailedEvent;
  'zktx:lock:released': LockReleasedEvent;
  'zktx:lock:lost': LockLostEvent;
  'zktx:transaction:attempt': TransactionAttemptEvent;
  'zktx:transaction:conflict': TransactionConflictEvent;
  'zktx:transaction:commit': TransactionCommitEvent;
  'zktx:executeTransaction:start': ExecuteTransactionStartEvent;
  'zktx:executeTransaction:commit': ExecuteTransactionCommitEvent;
  'zktx:executeTransaction:error': ExecuteTransactionErrorEvent;
  'zktx:session:state': SessionStateEvent;
  'zktx:coordinator:run': CoordinatorRunEvent;
  'zktx:coordinator:saga': CoordinatorSagaEvent;
  'zktx:coordinator:recovery': CoordinatorRecoveryEvent;
}

/** `zktx:coordinator:run`: a distributed transaction ended (`in_doubt`: see `IN_DOUBT`; `failed`: the function or a call failed, rolled back). */
export interface CoordinatorRunEvent { coordinator: Coordinator; txid: string; outcome: 'committed' | 'rolled_back' | 'in_doubt' | 'failed'; error?: unknown; pending: string[]; durationMs: number }
/** `zktx:coordinator:saga`: a saga ended. */
export interface CoordinatorSagaEvent { coordinator: Coordinator; saga: string; txid: string | undefined; outcome: 'done' | 'compensated' | 'in_doubt' | 'failed'; error?: ZktxError; durationMs: number }
/** `zktx:coordinator:recovery`: a background recovery pass of this process ran. */
export interface CoordinatorRecoveryEvent { coordinator: Coordinator; report: RecoveryReport }

/** Options of calls that acquire a lock. */
export interface AcquireOptions {
  /**
   * Give up after this many ms with `TIMEOUT`; `0` is a try-lock. Default: wait forever.
   * From 0 to 2^31 - 1 (2147483647, about 24.8 days, setTimeout's limit); else `INVALID_ARGUMENT`.
   */
  timeout?: number;
  /** Abort acquiring with `ABORTED`; the contender's node is removed. */
  signal?: AbortSignal;
}

/**
 * A held exclusive lock.
 *
 * A Lock garbage-collected without `release()` is released in the background (its node is
 * deleted while the session lives): it never blocks the queue, nor this client. Still call
 * `release()`: garbage collection happens at no particular time. Its `signal` and `lost` keep it:
 * a Lock whose signal the holder still holds is not collected (nor released).
 */
export class Lock {
  /** The lock's path, as passed to `zk.lock`. */
  readonly path: string;
  /** This holder's ephemeral-sequential lock node. */
  readonly nodePath: string;
  /**
   * Fencing token: the zxid that created this holder's lock node. Strictly increasing from one
   * holder of `path` to the next; hand it to downstream stores so they refuse stale holders.
   */
  readonly token: number;
  /**
   * Whether the lock was released (by `release()` or a transaction commit) and its node is known
   * to be gone. After a `release()` that failed, it turns true once the background removal did.
   */
  readonly released: boolean;
  /**
   * Aborts, with a `LOCK_LOST` ZktxError as its reason, when the lock is lost: its session
   * expired or was closed, or its node was deleted by someone else. Not aborted by `release()`.
   * Pass it on to the work the lock protects (fetch, database calls) to stop it when unprotected.
   * Detection: at once for a deletion or a close; for a network partition, at most the session
   * timeout after the connection dropped (`SUSPENDED`), or `lostAfter` × it (see
   * `ZooKeeperOptions.lostAfter`). The error's `reason` says which ({@link LockLossReason}); a
   * lock declared lost while its session lives on is deleted from the server once the
   * connection returns. Loss is watched from the first read of `signal` or `lost`.
   */
  readonly signal: AbortSignal;
  /**
   * Resolves with the `LOCK_LOST` error when the lock is lost; never after a plain release, even
   * one whose delete cannot reach the server during a silence longer than `lostAfter`.
   */
  readonly lost: Promise<ZktxError>;
  /**
   * Releases the lock: resolves once its node is deleted. Idempotent; succeeds when the session
   * already lost it.
   * Errors: `TIMEOUT` / `CONNECTIONLOSS` with `outcome: 'unknown'` when the delete's answer was
   * lost, or a ZooKeeper error such as `THROTTLED`; the node is then deleted in the background
   * while the session lives (never left as a ghost), and a second `release()` resolves once it is.
   */
  release(): Promise<void>;
  /** One round trip: does the lock node still exist? */
  isHeld(): Promise<boolean>;
  /** `await using lock = await zk.lock(path)`: released at scope exit (as `release()`). */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Exclusive locks on several paths, held together (`zk.multiLock`). */
export class MultiLock {
  /** The locks, in acquisition (sorted path) order. */
  readonly locks: Lock[];
  /** The paths, sorted. */
  readonly paths: string[];
  /** Each lock's fencing token, in `paths` order. */
  readonly tokens: number[];
  /** Aborts when any of the locks is lost. */
  readonly signal: AbortSignal;
  /** Resolves with the first loss. */
  readonly lost: Promise<ZktxError>;
  readonly released: boolean;
  /** Releases every lock. Idempotent. */
  release(): Promise<void>;
  /** Whether every lock node still exists. */
  isHeld(): Promise<boolean>;
  /** `await using locks = await zk.multiLock(paths)`: all released at scope exit. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** One candidate of a leader election. */
export interface ElectionParticipant {
  /** Its participant id: its node's data as UTF-8 (what Curator's `Participant.getId()` gives). */
  id: string;
  /** Its node's name under the election path (`_c_<uuid>-latch-<sequence>`). */
  node: string;
  /** Whether it leads: the lowest sequence among the candidates when read. */
  isLeader: boolean;
}

/** The leader of an election, as `election.leader()` gives it. */
export interface ElectionLeader {
  id: string;
  node: string;
}

/** What `election.watch()` yields: the leader (or `null`) and every candidate, the leader first. */
export interface ElectionState {
  leader: ElectionLeader | null;
  participants: ElectionParticipant[];
}

/**
 * Leadership of an election: a {@link Lock} on this candidate's node, so it fences writes
 * (`zk.set(key, value, { lock: leadership })`, transactions' `lock` option) and its `signal`
 * aborts, with a `LOCK_LOST` ZktxError, when leadership is lost.
 *
 * Lost when the candidate node is deleted by someone else, when the session expires or is
 * closed, or when the connection stayed down `lostAfter` × the session timeout (from `SUSPENDED`,
 * leadership is in doubt: another candidate may lead once the server expires this session). A
 * fenced write is refused (`LOCK_LOST`, or `NONODE`/`SESSIONEXPIRED` from the server) from the
 * moment the node is gone, whatever this process believes.
 */
export class Leadership extends Lock {
  /** The participant id this process leads as. */
  readonly id: string;
  /**
   * Gives leadership up: deletes the candidate node, so the next candidate leads. Idempotent.
   * Errors as `Lock.release()` (the node is then deleted in the background).
   */
  resign(): Promise<void>;
  /** One round trip: does this candidate's node still exist (does it still lead)? */
  isLeader(): Promise<boolean>;
}

/**
 * A leader election at one path (`zk.election(path, { id })`), with the node layout of Curator's
 * `LeaderLatch`: zktx candidates and Java services using `LeaderLatch` on the same path agree on
 * one leader. Each candidate is a protected ephemeral-sequential node `_c_<uuid>-latch-<seq>`
 * holding its id; every child of the path is a participant, ordered as Curator orders them (by
 * the text after `latch-` in the name, else the whole name: the candidates by sequence, a
 * foreign child such as a plain sequential `0000000000` where that puts it, with its data as
 * id); the first leads; every other candidate watches its predecessor.
 *
 * Events (observing starts with the first `leader` or `participants` listener, stops with the
 * last one removed or `close()`; while observing, the process stays alive until `close()` or
 * `zk.close()`): `leader` (`ElectionLeader | null`) with the current leader first, then on
 * every change of leader; `participants` (`ElectionParticipant[]`) on every change of the
 * candidates; a listener added while events flow gets the current state at once. Connection
 * loss is waited out; `error` (`ZktxError`) if observing fails for good (`SESSIONEXPIRED` with
 * `reconnectAfterExpiry: false`, `NOAUTH`), only when a listener is attached. A listener that
 * throws stops neither the others nor the events (the error becomes a process warning).
 */
export class Election extends EventEmitter {
  /** The election's path. */
  readonly path: string;
  /** This participant's id. */
  readonly id: string;
  /**
   * Takes part and resolves with the {@link Leadership} once this participant leads.
   *
   * Guarantees: at most one leader at a time among live sessions, zktx and Curator candidates
   * alike; candidates lead in arrival order; one round trip when nobody else takes part.
   * Errors: `TIMEOUT` (`timeout` passed), `ABORTED` (`signal`), `CLIENT_CLOSED` (the client
   * closed meanwhile), `SESSIONEXPIRED`, `CONNECTIONLOSS`, `ALREADY_HELD` (this object already
   * takes part: a `lead()` pending, or a leadership neither resigned nor lost; from the lost
   * leadership's `signal` abort handler on, it may take part again), `LOCK_KIND_MISMATCH` (the
   * path is in use as a lock or semaphore).
   * Cancellation: timeout, abort, close and errors never leave the candidate node behind.
   * On connection loss: a waiting candidate keeps its place (its watch is restored on reconnect);
   * a session expiry rejects with `SESSIONEXPIRED` (call `lead()` again to take part anew).
   */
  lead(options?: AcquireOptions): Promise<Leadership>;
  /**
   * The current leader, or `null` when nobody takes part. One listing and one pipelined read of
   * the candidates (two round trips). Errors: `TIMEOUT`, `CONNECTIONLOSS`, `CLIENT_CLOSED`,
   * `SESSIONEXPIRED`, `NOAUTH`.
   */
  leader(): Promise<ElectionLeader | null>;
  /** Every candidate, the leader first, with its id. Errors as `leader()`. */
  participants(): Promise<ElectionParticipant[]>;
  /**
   * The state now, then once per change of the candidates (several changes between two reads of
   * the iterator arrive as one). Keeps going through connection loss (the watch is restored, a
   * request that timed out is retried; the first read too) and, with `reconnectAfterExpiry`,
   * through expiry. Ends on `signal`, `break` / `return()` (at once, a pending `next()` resolves
   * `done`), `election.close()`, or when the client closes; throws `SESSIONEXPIRED` when the
   * session expired for good, `NOAUTH`.
   */
  watch(options?: { signal?: AbortSignal }): AsyncIterableIterator<ElectionState>;
  /** Stops the `leader` / `participants` events and ends every `watch()` iterator. Does not resign. */
  close(): void;
  on(event: 'leader', listener: (leader: ElectionLeader | null) => void): this;
  on(event: 'participants', listener: (participants: ElectionParticipant[]) => void): this;
  on(event: 'error', listener: (err: ZktxError) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** Both sides of a read-write lock at one path. */
export interface ReadWriteLock {
  readonly path: string;
  /**
   * Shared: held together with other readers, never with a writer or an exclusive lock
   * (`lock(path)`, `multiLock`) on the same path. `LOCK_KIND_MISMATCH` on a semaphore's path.
   */
  readLock(options?: AcquireOptions): Promise<Lock>;
  /** Exclusive: waits for every reader and writer that arrived before it. */
  writeLock(options?: AcquireOptions): Promise<Lock>;
}

/** A counting semaphore. Every user of the path must pass the same `permits`. */
export interface Semaphore {
  readonly path: string;
  readonly permits: number;
  /**
   * One lease: a Lock (token, signal, lost, release) of which at most `permits` exist at once.
   * `LOCK_KIND_MISMATCH` (nothing left behind) when the path is in use as a lock (exclusive,
   * read-write, multiLock), unless `permits` is 1 (then the lease is an exclusive lock).
   */
  acquire(options?: AcquireOptions): Promise<Lock>;
}

/**
 * Downstream fencing: remembers the highest lock token seen per resource and refuses older
 * ones. Keep it where the writes land (a store, a service).
 */
export class FencingTokenGuard {
  /** Whether `token` may write `resource` (>= the highest seen); remembers it. */
  accept(resource: unknown, token: number): boolean;
  /** Like `accept`, but throws a `STALE_TOKEN` ZktxError. */
  check(resource: unknown, token: number): void;
  /** The highest token seen for `resource`. */
  highest(resource: unknown): number | undefined;
}

/** Session events, as Curator names them. */
/**
 * A znode's Stat, every field. Zxids and times are plain numbers: exact below 2^53 (a zxid is
 * epoch << 32 | counter, so exact until the leader epoch passes 2^21). `ephemeralOwner` is the
 * owning session's id in hex (session ids use all 64 bits), `'0'` for a node that is not ephemeral.
 */
export interface Stat {
  czxid: number;
  mzxid: number;
  pzxid: number;
  /** Creation time, ms since the epoch (the server's clock). */
  ctime: number;
  mtime: number;
  /** Data version (bumped by every setData; restarts at 0 when a node is re-created). */
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: string;
  dataLength: number;
  numChildren: number;
}

/** Data for a znode: bytes as is, a string as UTF-8; `undefined` / `null`: no data. */
export type ZnodeData = Buffer | Uint8Array | string | null | undefined;

/**
 * What a one-shot watch saw: `created`, `deleted`, `changed` (data), `children` (a child created
 * or deleted) for the watched `path`; or how it ended without one: `expired` (the session
 * expired: the watch is gone and changes may have been missed: re-read, which sets a new watch on
 * the new session), `closed` (the client was closed), `aborted` (your AbortSignal).
 */
export interface WatchEvent {
  type: 'created' | 'deleted' | 'changed' | 'children' | 'expired' | 'closed' | 'aborted';
  path: string;
}

/**
 * `{ watch: true }` sets a one-shot watch with the read (the result then has `watch`, a promise
 * of the one {@link WatchEvent}; it never rejects). `{ watch: listener }` does the same and also
 * calls `listener(event)` once, as node-zookeeper-client's watchers are called (the result still
 * has the promise). `signal` removes the watch (event `aborted`).
 *
 * @example
 * await zk.znodes.getData('/config/app', { watch: (ev) => console.log(ev.type, ev.path) });
 */
export interface WatchOptions {
  watch?: boolean | ((event: WatchEvent) => void);
  signal?: AbortSignal;
}

/** How to create a znode. */
export interface ZnodeCreateOptions {
  /** Default `persistent`; `ephemeral` goes with the session; `container` goes after its last child (3.5.3+). */
  mode?: 'persistent' | 'ephemeral' | 'container';
  /** Appends the parent's 10-digit counter to the name (the path may end in `/`). */
  sequential?: boolean;
  /** Persistent nodes only: removed once childless and unmodified this long (ms, 1..2^40-1); needs `extendedTypesEnabled=true` on the server, else `UNIMPLEMENTED`. */
  ttl?: number;
  /** The node's ACL (a preset or entries, as the client's `acl` option); default: the client's. */
  acl?: ZooKeeperOptions['acl'];
}

/** One operation of {@link Znodes.multi}. */
export type MultiOp =
  | ({ op: 'create'; path: string; data?: ZnodeData } & ZnodeCreateOptions)
  | { op: 'set'; path: string; data?: ZnodeData; version?: number }
  | { op: 'delete'; path: string; version?: number }
  | { op: 'check'; path: string; version: number };

/** What one operation of a committed multi produced. */
export type MultiResult = { op: 'create'; path: string; stat: Stat } | { op: 'set'; stat: Stat } | { op: 'delete' } | { op: 'check' };

/**
 * The raw ZooKeeper API of one client (`zk.znodes`): every call reads or writes exactly the znode
 * it names, on the client's session, with its request deadline (`requestTimeout`, default the
 * session timeout).
 *
 * *Guarantees*: ZooKeeper's: writes of one session apply in order; a read sees every write of its
 * own session answered before it; `sync()` first to see other clients' latest writes.
 *
 * *Errors*: ZktxError with ZooKeeper's codes: `NONODE`, `NODEEXISTS`, `BADVERSION`, `NOTEMPTY`,
 * `NOAUTH`, `INVALIDACL`, `NOCHILDRENFOREPHEMERALS`, `UNIMPLEMENTED`; `INVALID_ARGUMENT` for a
 * bad path (not absolute, empty / `.` / `..` segment, trailing `/`), data, version or option,
 * before anything is sent; `TIMEOUT` when no answer comes within the deadline; `CLIENT_CLOSED`.
 *
 * *On connection loss*: calls wait for the reconnect within their deadline. A write that fails
 * with `CONNECTIONLOSS` or `TIMEOUT` has `outcome: 'unknown'` (it may have applied): re-read. A
 * one-shot watch is set again on the reconnect with the last zxid seen, and fires at once if the
 * node's data changed, it was deleted, or (`exists` on a missing node) it exists now; a change
 * undone while disconnected (created and deleted again) is not reported, the watch stays set
 * (ZooKeeper's SetWatches compares states, not histories). On expiry it resolves `expired`, and
 * every ephemeral node is gone.
 *
 * *Size*: `TOO_LARGE` for a write or multi over the server's request limit (`jute.maxbuffer`,
 * 1 MiB), before anything is sent (the server would drop the connection); a path over 32 KiB is
 * `INVALID_ARGUMENT`.
 *
 * *Watch modes on one path* (ZooKeeper 3.6–3.8 keeps one per session and path: ZOOKEEPER-4466): a
 * one-shot watch read on a path with a persistent watch of this client sets the persistent one
 * again right after the read, and is never removed early (aborted, it is left to fire and be
 * ignored); if a change came in between, the persistent watch yields `resync` (`overlapped`).
 */
export class Znodes {
  private constructor();
  /** Creates a znode; resolves the created path (with the sequence suffix when `sequential`). A sequential create whose outcome is unknown may have made a node: do not retry it blindly. */
  create(path: string, data?: ZnodeData, options?: ZnodeCreateOptions): Promise<string>;
  /** Reads data and Stat. `NONODE` when absent (no watch is left then: use `exists` to wait for creation). */
  getData(path: string, options?: WatchOptions): Promise<{ data: Buffer; stat: Stat; watch?: Promise<WatchEvent> }>;
  /** The Stat, or `null` when absent; a watch fires on creation, data change or deletion. */
  exists(path: string, options?: WatchOptions): Promise<{ stat: Stat | null; watch?: Promise<WatchEvent> }>;
  /** Child names (in the server's order) and the node's Stat; a watch fires when a child is created or deleted. */
  getChildren(path: string, options?: WatchOptions): Promise<{ children: string[]; stat: Stat; watch?: Promise<WatchEvent> }>;
  /** Replaces data; with `version` only at that data version (`BADVERSION` otherwise; -1: any). Resolves the new Stat. */
  setData(path: string, data: ZnodeData, options?: { version?: number }): Promise<Stat>;
  /** Deletes a node; with `version` only at that data version. `NOTEMPTY` with children. */
  delete(path: string, options?: { version?: number }): Promise<void>;
  /** The node's ACL (perms as ZooKeeper's bit mask: r=1 w=2 c=4 d=8 a=16) and Stat. */
  getAcl(path: string): Promise<{ acl: Array<{ perms: number; scheme: string; id: string }>; stat: Stat }>;
  /** Replaces the node's ACL; with `version` only at that ACL version (`stat.aversion`). Needs ADMIN. */
  setAcl(path: string, acl: NonNullable<ZooKeeperOptions['acl']>, options?: { version?: number }): Promise<Stat>;
  /**
   * Commits the operations all or nothing. *Errors*: the failing operation's code, with `index`
   * (its position) on the error; nothing was applied. *On connection loss*: all or nothing may
   * have applied (`outcome: 'unknown'`).
   */
  multi(ops: MultiOp[]): Promise<MultiResult[]>;
  /** Resolves once the server this session talks to has caught up with the leader (default path `/`). */
  sync(path?: string): Promise<void>;
  /** Adds an identity to the session (`addAuthInfo`); kept across reconnects, not across an expiry (use the `auth` option for that). */
  addAuth(scheme: string, credentials: string | Buffer): Promise<void>;
  /** The session's id in hex (connects first if needed); a new one after an expiry. */
  sessionId(): Promise<string>;
  /**
   * The session's password in hex (connects first if needed). With `sessionId()`, what another
   * client needs to resume this session (the `session` option). A secret: whoever has both can
   * take the session, its ephemeral nodes and its locks.
   */
  sessionPassword(): Promise<string>;
  /**
   * Sets a persistent watch (ZooKeeper 3.6+ `addWatch`): `recursive` covers the node and every
   * descendant (created / deleted / changed), otherwise the node only (also `children`).
   * Resolves once set, with the watch: an async iterator of its events and an EventEmitter of
   * them (see {@link PersistentWatch}).
   *
   * *Guarantees*: events in the server's order while the watch is set.
   *
   * *On connection loss*: zookeeper-client 0.11 does not set persistent watches again after a
   * reconnect; zktx does, then yields `{ type: 'resync', reason: 'reconnected' }`: events during
   * the disconnection may be lost (ZOOKEEPER-4698), re-read. After an expiry it is set on the new
   * session: `{ type: 'resync', reason: 'expired' }`. A one-shot watch read on the same path
   * that let a change through before the persistent watch was set again (ZOOKEEPER-4466):
   * `{ type: 'resync', reason: 'overlapped' }`.
   *
   * *Errors*: `UNIMPLEMENTED` before ZooKeeper 3.6, `NOAUTH`, `INVALID_ARGUMENT`, connection errors.
   *
   * *Cancellation*: `signal`, `watch.close()` or `break` out of `for await` remove it (the last
   * event is `aborted`). A pending watch keeps Node running.
   */
  addWatch(path: string, options?: { recursive?: boolean; signal?: AbortSignal }): Promise<PersistentWatch>;
  /**
   * A local copy of the subtree at `path` (Curator's CuratorCache), resolved once its first
   * snapshot is loaded. See {@link TreeCache}.
   *
   * *Errors*: as `addWatch` and `getData`. *Cancellation*: `signal` or `cache.close()`.
   */
  treeCache(path: string, options?: { signal?: AbortSignal }): Promise<TreeCache>;
}

/** A cached znode: its data and the Stat read with it. */
export interface CachedNode {
  data: Buffer;
  stat: Stat;
}

/**
 * A local copy of a subtree, kept by a persistent recursive watch: every event re-reads its node;
 * a `resync` (reconnect or expiry) re-reads the whole subtree and applies the differences.
 *
 * *Guarantees*: converges to what the server holds once writes stop (tested under concurrent
 * writers, a connection loss and an expiry); per node, never goes back to an older version
 * (compared by zxid). A node's cached `stat.numChildren` / `cversion` can lag (a recursive watch
 * sends no child events for the parent): use `children(path)` for the cached children.
 *
 * *On connection loss*: stale until the reconnect, then re-read (`resync`). A failed re-read is
 * emitted as `error` (if listened to) and retried with a backoff (0.5 s doubling to 30 s). A node
 * below the root this session may not read is left out and emitted once as `error` (code
 * `NOAUTH`, `err.path`); it is read again on its next event or resync.
 *
 * Events: `created`, `changed`, `deleted` `(path, node)`; `resync` `(reason)`; `error` `(err)`.
 */
export class TreeCache extends EventEmitter {
  private constructor();
  readonly root: string;
  /** The cached node at `path`, or undefined. */
  get(path: string): CachedNode | undefined;
  /** Every cached path, sorted. */
  paths(): string[];
  /** Names of the cached children of `path`, sorted. */
  children(path: string): string[];
  /** Stops watching; the cache keeps its last state. */
  close(): void;
}

/**
 * Events of a persistent watch: node events, `resync` after it was set again, and last `closed`
 * (client closed), `ended` (the session ended for good: `reconnectAfterExpiry: false`) or `aborted`.
 */
export type PersistentWatchEvent =
  | { type: 'created' | 'deleted' | 'changed' | 'children'; path: string }
  | { type: 'resync'; reason: 'reconnected' | 'expired' | 'overlapped'; path: string }
  | { type: 'closed' | 'ended' | 'aborted'; path: string };

/**
 * A persistent watch (see {@link Znodes.addWatch}), two ways to read it: `for await (const event
 * of watch)`, or as an EventEmitter: every event is emitted under its `type` (`'created'`,
 * `'deleted'`, `'changed'`, `'children'`, `'resync'`, and last `'closed'` / `'ended'` /
 * `'aborted'`) and as `'event'`.
 *
 * *Guarantees*: both see the same events in the same order. The iterator queues events only
 * while nobody listens or a `for await` is under way: a watch read only through listeners keeps
 * no backlog. A listener that throws does not stop the others nor the iterator (its error is
 * rethrown on the next tick, as an uncaught exception).
 *
 * @example
 * const watch = await zk.znodes.addWatch('/services', { recursive: true });
 * watch.on('event', (ev) => console.log(ev.type, ev.path));
 * watch.on('resync', () => reload()); // events may have been missed: read again
 * watch.close();                      // last event: 'aborted'
 */
export interface PersistentWatch extends AsyncIterableIterator<PersistentWatchEvent>, EventEmitter {
  readonly path: string;
  /** True once the last event (`closed`, `ended` or `aborted`) came. */
  readonly ended: boolean;
  /** Removes the watch; the iteration ends after an `aborted` event. */
  close(): void;
  on(event: 'event', listener: (event: PersistentWatchEvent) => void): this;
  on(event: 'created' | 'deleted' | 'changed' | 'children', listener: (event: { type: 'created' | 'deleted' | 'changed' | 'children'; path: string }) => void): this;
  on(event: 'resync', listener: (event: { type: 'resync'; reason: 'reconnected' | 'expired' | 'overlapped'; path: string }) => void): this;
  on(event: 'closed' | 'ended' | 'aborted', listener: (event: { type: 'closed' | 'ended' | 'aborted'; path: string }) => void): this;
  once(event: 'event', listener: (event: PersistentWatchEvent) => void): this;
  once(event: 'created' | 'deleted' | 'changed' | 'children', listener: (event: { type: 'created' | 'deleted' | 'changed' | 'children'; path: string }) => void): this;
  once(event: 'resync', listener: (event: { type: 'resync'; reason: 'reconnected' | 'expired' | 'overlapped'; path: string }) => void): this;
  once(event: 'closed' | 'ended' | 'aborted', listener: (event: { type: 'closed' | 'ended' | 'aborted'; path: string }) => void): this;
}

export type SessionState = 'CONNECTED' | 'SUSPENDED' | 'RECONNECTED' | 'EXPIRED' | 'CLOSED';

/** What `executeTransaction` resolves with. */
export interface TransactionResult<T extends Json = Json> {
  key: string;
  /** The value now stored. */
  value: T;
  /** The value before, `undefined` if the key did not exist. */
  previous: Json | undefined;
  /**
   * The znode data version of the new value: 0 for a key written for the first time; a key
   * deleted and written again continues from its tombstone's version (versions never restart).
   */
  version: number;
  /** Fencing token of the lock the write was made under. */
  token: number;
  /**
   * The commit's zxid: its place in ZooKeeper's total order of writes (comparable with
   * `tx.committed.zxid` of `zk.transaction`). `undefined` only when the commit's answer was lost
   * and its outcome was settled afterwards.
   */
  zxid?: number;
}

/** The new value, or a function of the current one (`undefined` when absent); may be async. */
export type ValueOrUpdater<T extends Json = Json> = T | ((current: Json | undefined) => T | Promise<T>);

/** Options of `zk.transaction`. */
export interface TransactionOptions {
  /** Re-runs after a conflict before failing with `CONFLICT` (default 10, at most 1000). Backoff is jittered. */
  retries?: number;
  /** Stops retrying (and waiting between retries) with `ABORTED`. */
  signal?: AbortSignal;
  /**
   * `'serializable'` (default): every key read is checked at commit (absent keys too).
   * `'snapshot'`: only written keys are checked; write skew is possible. What the function reads
   * is one state of the store: on ZooKeeper, reads made in several ticks are checked at commit
   * too (a change between them is a conflict, and the function runs again); on etcd every read
   * of an attempt is made at its first read's revision.
   * `'read-committed'`: nothing is checked; lost updates are possible.
   */
  isolation?: 'serializable' | 'snapshot' | 'read-committed';
  /** Also fence the commit on this lock (`LOCK_LOST` if it is no longer held). */
  lock?: Lock | MultiLock;
  /**
   * Idempotence key: the commit also creates a marker `/zktx/txn-ids/<id>`, so a commit retried
   * after an unknown outcome (or a replay with the same id) applies at most once. The marker
   * records `fn`'s result (as JSON, up to 64 KiB): when a commit with this id had already
   * applied — this call's earlier attempt whose answer was lost, or an earlier call — nothing is
   * applied now and the call resolves with the result that commit recorded (`undefined` if it
   * recorded none), never with a result computed from the state it left — also when the
   * function writes nothing or throws on that state. A transaction with an id always commits
   * its marker, even when it writes no key. At most 1024 bytes of UTF-8 (longer:
   * `INVALID_ARGUMENT` before `fn` runs). Markers stay until
   * `zk.pruneTransactionIds(olderThanMs)` deletes them.
   */
  id?: string;
  /** Same as passing `id: tx.id` (a fresh uuid per `transaction` call). */
  idempotent?: boolean;
}

/**
 * A resource that takes part in a coordinator's two-phase commit. Every method must be
 * idempotent: after a crash, recovery (maybe in another process) calls them again.
 */
export interface Participant<Handle = unknown> {
  /** Starts the branch `gid` and returns what the transaction's function works with. */
  begin?(gid: string): Handle | Promise<Handle>;
  /** Makes the branch durable and ready to commit; rejects if it cannot (the transaction aborts). */
  prepare(gid: string): Promise<void>;
  /** Commits a prepared branch; an already committed branch is success. */
  commit(gid: string): Promise<void>;
  /** Rolls back a branch, prepared or not; a branch already gone is success. */
  rollback(gid: string): Promise<void>;
  /** Gids of branches prepared and not yet resolved (zktx keeps its own: `zktx:<coordinator>:...`). */
  inDoubt(): Promise<string[]>;
}

/** What a saga step's action and compensation get besides the saga's input. */
export interface SagaStepContext {
  /** The saga run's id. */
  txid: string;
  /** `<coordinator>:<txid>`: the barrier's transaction key. */
  transaction: string;
  /** The step's index as text: the barrier's branch key. */
  branch: string;
  step: number;
  op: 'action' | 'compensate';
  /** Idempotency key of this step of this run (the same for its action and compensation). */
  key: string;
  input: Json;
  /** Runs `fn(client)` in one local transaction behind the PostgreSQL barrier (see `barrier`). */
  barrier<T>(pool: PgPoolLike, fn: (client: PgClientLike) => Promise<T>): Promise<{ ran: boolean; value: T | undefined }>;
}

export interface SagaStep<Input extends Json = Json> {
  name?: string;
  action(input: Input, ctx: SagaStepContext): Promise<void>;
  compensate(input: Input, ctx: SagaStepContext): Promise<void>;
}

export interface CoordinatorOptions {
  /** Participants by name (1-64 characters of [A-Za-z0-9_.-]). */
  participants?: Record<string, Participant>;
  /** Sagas by name: their steps in order. */
  sagas?: Record<string, SagaStep<any>[]>;
  /** How often this process runs a recovery pass in the background (default 5000; 0: never). */
  recoveryIntervalMs?: number;
  /**
   * Deadline of every participant call (begin, prepare, commit, rollback, inDoubt; default
   * 30000, more than 0); a `tx.participant(name)` past it rejects with `TIMEOUT`. A call past it counts as failed with `TIMEOUT` (its outcome unknown: a prepare
   * past it aborts the run, a commit past it is left to recovery), never as done; a recovery
   * pass calls a participant that missed it no more in that pass, so a frozen database does not
   * hold up the others' recovery.
   */
  participantTimeoutMs?: number;
}

/** What `fn` of `coordinator.run(fn)` gets. */
export interface RunContext {
  /** The transaction id (32 hex digits). */
  readonly id: string;
  /** zktx's own keys, committed in the same ZooKeeper multi (or etcd Txn) as the decision. */
  readonly store: Transaction;
  /** Enlists participant `name` and resolves its handle (a pg client inside BEGIN for PostgresParticipant). */
  participant<Handle = any>(name: string): Promise<Handle>;
}

export interface RecoveryReport {
  committed: number;
  rolledBack: number;
  aborted: number;
  active: number;
  compensated: number;
  errors: string[];
}

export type TransactionOutcome = 'committed' | 'aborted' | 'forgotten' | 'active' | 'unknown' | 'saga:done' | 'saga:compensated' | 'saga:running' | 'saga:compensating';

/** A transaction coordinator: two-phase commit and sagas across services, decided in ZooKeeper or etcd. */
export class Coordinator {
  readonly name: string;
  /** Runs `fn` as one distributed transaction and resolves its result once every branch committed (or was recorded committed). */
  run<T>(fn: (tx: RunContext) => Promise<T> | T): Promise<T>;
  /** Runs saga `name`; resolves its txid. */
  saga(name: string, input?: Json): Promise<string>;
  /** One recovery pass; `null` if another process kept the recovery lock past `waitMs`. */
  recover(waitMs?: number): Promise<RecoveryReport | null>;
  /**
   * The outcome of a transaction, asked by the gid of one of its branches
   * (`zktx:<name>:<id>:<txid>:<participant>`, as `pg_prepared_xacts` lists it) or by its txid
   * (32 hex digits, either case).
   *
   * Guarantees: `aborted` only once the transaction can no longer commit, and only for this
   * coordinator's own transactions: one with no record and no active node gets its abort
   * recorded here (as recovery does), so a run whose active node was still being written is then
   * `ROLLED_BACK`; a run of this process still in progress is `active`. `forgotten` only for
   * txids older than the prune horizon (5 minutes' margin for clock skew), and never presumed
   * `aborted` then: the horizon covers the txid time of every record `prune` deleted, so a
   * record made on a machine whose clock ran ahead moves it ahead of the present, and until the
   * present passes it a txid with no record is `forgotten` (no answer) rather than `aborted`
   * (docs/coordinator.md). `unknown`: a bare
   * txid this coordinator did not make (another coordinator's, or one made before txids carried
   * their coordinator's tag) and has no record of; nothing is written, and it licenses no
   * rollback: ask by gid. A gid is this coordinator's only if its name and id are (or a decision
   * here records that id, from before a re-key).
   * @throws ZktxError `INVALID_ARGUMENT` for a malformed txid or gid, or another coordinator's
   * gid (another name, another tree's id); `COORDINATOR_ID` for a tree whose id is lost or
   * copied; connection errors.
   */
  outcome(txid: string): Promise<TransactionOutcome>;
  /**
   * Deletes records of transactions that ended more than `olderThanMs` (at least 3600000) ago;
   * resolves how many. First moves the horizon `outcome` answers `forgotten` by past the txid
   * time of every record it deletes (ahead of the present if a machine's clock ran ahead).
   */
  prune(olderThanMs: number): Promise<number>;
  /** Stops background recovery. */
  close(): void;
  on(event: 'recovery', listener: (report: RecoveryReport) => void): this;
  on(event: 'recoveryFailed', listener: (error: ZktxError) => void): this;
}

/** The parts of a `pg` Pool zktx uses. */
export interface PgPoolLike {
  connect(): Promise<PgClientLike>;
  query(text: string, values?: unknown[]): Promise<{ rows: any[]; rowCount: number | null; command?: string }>;
}
/** The parts of a `pg` PoolClient zktx uses. */
export interface PgClientLike {
  query(text: string, values?: unknown[]): Promise<{ rows: any[]; rowCount: number | null; command?: string }>;
  release(err?: unknown): void;
}

export interface PostgresParticipantOptions {
  /**
   * The pool COMMIT/ROLLBACK PREPARED and the listing of prepared branches use; never the work
   * pool (a prepared branch holds its row locks: resolving it must not wait behind work that
   * waits for those locks). Default: a pool of 2 connections made with the work pool's settings
   * (`pool.options`), which lets the process exit when idle; `end()` closes it.
   */
  resolver?: PgPoolLike;
}

/**
 * A PostgreSQL database as a participant, on your own `pg` Pool (`max_prepared_transactions > 0`).
 * PREPARE also writes the gid into table `zktx_committed` (created if missing) inside the branch:
 * a `COMMIT PREPARED` that finds nothing prepared is success only if that row exists (else it
 * fails: someone else rolled the branch back), and a rollback of a branch that committed fails.
 * @throws ZktxError `INVALID_ARGUMENT` for a pool without `connect`/`query`, a resolver that is the work pool, or a pool without `options` and no resolver.
 */
export class PostgresParticipant<Client extends PgClientLike = PgClientLike> implements Participant<Client> {
  constructor(pool: PgPoolLike, options?: PostgresParticipantOptions);
  /** Closes the resolver pool it made (never the pools you passed). */
  end(): Promise<void>;
  begin(gid: string): Promise<Client>;
  prepare(gid: string): Promise<void>;
  commit(gid: string): Promise<void>;
  rollback(gid: string): Promise<void>;
  inDoubt(): Promise<string[]>;
}

/** Creates the `zktx_barrier` table saga steps' barriers use, if missing. */
export function createBarrierTable(pool: PgPoolLike): Promise<void>;
/** DTM's sub-transaction barrier: `fn` runs at most once per (saga run, step, op), never for a null compensation or a hanging action. */
export function barrier<T>(pool: PgPoolLike, ctx: SagaStepContext, fn: (client: PgClientLike) => Promise<T>): Promise<{ ran: boolean; value: T | undefined }>;

/** What one `compactTombstones` call did. */
export interface Compaction {
  /** Tombstones older than the horizon marked now (a call at least the horizon later removes them). */
  marked: number;
  /** Marked tombstones removed now. */
  removed: number;
  /** Tombstones that could not be removed, with why (e.g. a child node another client created). */
  skipped: Array<{ key: string; reason: string }>;
}

/** One attempt of a transaction: reads are versioned, writes are buffered until the commit. */
export class Transaction {
  /** Same across retries of one `zk.transaction` call. */
  readonly id: string;
  /** 0 on the first run of the function, n on the n-th retry. */
  readonly attempt: number;
  /** Filled after a successful commit. */
  readonly committed?: {
    /** The commit's zxid (its place in ZooKeeper's total order); undefined for read-only ones. */
    zxid?: number;
    /** New versions of the keys set. */
    versions: Record<string, number>;
    /** Versions read (-1: read as absent, whether never written or deleted). */
    reads: Record<string, number>;
    /** Round trips of the commit itself (0 for a read-only transaction read in one batch). */
    roundTrips: number;
    /**
     * A commit with the same id had already applied; this attempt's writes were not applied and
     * the call resolved with that commit's recorded result.
     */
    alreadyApplied: boolean;
  };
  /**
   * The value of `key`, seeing this attempt's own writes; `undefined` when absent.
   * Calls made in the same tick are sent as one multi-read (one round trip, one consistent state).
   */
  get<T extends Json = Json>(key: string): Promise<T | undefined>;
  /** Several keys in one round trip. */
  getMany(keys: string[]): Promise<Array<Json | undefined>>;
  /** Creates or overwrites `key` at commit. */
  set(key: string, value: Json): void;
  /**
   * Creates `key` at commit; the commit fails with `NODEEXISTS` if it exists. After this
   * transaction's own `delete(key)` it is a set; after its own `set` or `create` it throws
   * `NODEEXISTS` at once. A later `set(key, v)` keeps the create (of `v`), a later `delete(key)`
   * keeps its check (the key must be absent, and stays so).
   */
  create(key: string, value: Json): void;
  /** Deletes `key` at commit (no-op if absent). */
  delete(key: string): void;
}

/** Options of {@link Etcd}. Unknown keys are refused with `INVALID_ARGUMENT`. */
export interface EtcdOptions {
  /**
   * etcd client endpoints, `"host:port"` or `"http(s)://host:port"`, as a list or a
   * comma-separated string. Default: `ETCD_ENDPOINTS` from the environment, else
   * `127.0.0.1:2379`. `https://` needs `tls`.
   */
  endpoints?: string[] | string;
  /**
   * The session's lease TTL in ms (default 30000), rounded up to whole seconds, at least 2 s:
   * how long etcd keeps this client's locks after it stops answering (as ZooKeeper's session
   * timeout).
   */
  timeout?: number;
  /** Deadline of every request in ms (default: `timeout`). */
  requestTimeout?: number;
  /** How long connecting may take in ms (default: `requestTimeout`). */
  connectTimeout?: number;
  /** After this fraction of the TTL without keep-alive answers a held lock counts as lost (default 1). */
  lostAfter?: number;
  /** etcd's own authentication (`etcdctl user add`, `auth enable`); a wrong password is `NOAUTH`. */
  auth?: { user: string; password: string };
  /**
   * TLS to the members' client URLs (endpoints become `https://`): the CA that signed their
   * certificates, and a client certificate and key for clusters that check them
   * (`--client-cert-auth`). Certificates are always verified (`rejectUnauthorized: false` is
   * refused).
   */
  tls?: { ca: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
  /** Log level, as ZooKeeper's `debug_level` (`ZooKeeper.ZOO_LOG_LEVEL_*`). */
  debug_level?: number;
}

/**
 * zktx's locks on etcd v3. A session is a lease kept alive by this client; a lock is etcd's own
 * recipe: a key `<path>/<lease id in hex>` under the lease, contenders ordered by create
 * revision, each watching the key just ahead. So `etcd.lock('/locks/orders')`,
 * `etcdctl lock /locks/orders` and a Go service's `concurrency.Mutex` on that name exclude each
 * other. The lock methods and their guarantees are {@link ZooKeeper}'s; the fencing token is
 * the key's create revision (global, never restarts). See docs/etcd.md for where etcd differs.
 *
 * Also `get`, `set`, `executeTransaction`, `transaction` and `pruneTransactionIds` on the same JSON
 * store layout, and `coordinator` (its records in etcd). Not on etcd yet: leader election and the
 * raw API (ZooKeeper-only in this release).
 *
 * Events: `state` with `CONNECTED` (a lease was granted), `SUSPENDED` (keep-alives unanswered),
 * `RECONNECTED`, `EXPIRED` (the lease ended: every lock on it is lost; the next call grants a new
 * one), `CLOSED`.
 */
export class Etcd extends EventEmitter {
  /** The log levels of `debug_level`, as on {@link ZooKeeper}. */
  static readonly ZOO_LOG_LEVEL_ERROR: 1;
  static readonly ZOO_LOG_LEVEL_WARN: 2;
  static readonly ZOO_LOG_LEVEL_INFO: 3;
  static readonly ZOO_LOG_LEVEL_DEBUG: 4;
  /** @throws ZktxError `INVALID_ARGUMENT` for a bad option or endpoint. */
  constructor(options?: EtcdOptions);
  /** The endpoints this client uses. */
  readonly endpoints: string[];
  /** The latest session event, or `NOT_CONNECTED`. */
  readonly state: SessionState | 'NOT_CONNECTED';
  on(event: 'state', listener: (state: SessionState) => void): this;
  /** Connects and grants the lease now (otherwise the first lock does). */
  connect(): Promise<void>;
  /**
   * Revokes the lease (etcd deletes every lock key of this client at once) and closes. Idempotent:
   * a call made while another is in progress (a second call, the exit hook's) resolves when that
   * one does. Writes in flight (`set`, commits, a prune's deletes) are answered first (each
   * within its request deadline): no write of this client applies after `close()` resolved,
   * except one whose deadline passed (it failed with outcome `unknown`). Writes not yet sent fail
   * with `CLIENT_CLOSED` (a `pruneTransactionIds` stops there: what it deleted stays deleted).
   * The revoke is retried on a lost connection (another member, within the request deadline), so
   * a lock key still on its way to the lease goes with it; if etcd stays unreachable, the lease
   * (no longer kept alive) ends with its TTL.
   */
  close(): Promise<void>;
  /** `await using etcd = new Etcd(options)`: closed at scope exit. */
  [Symbol.asyncDispose](): Promise<void>;
  /**
   * As {@link ZooKeeper.lock}; also excludes `etcdctl lock` / Go's Mutex on `path`. Rejects
   * `LOCK_LOST` (the key released) when the lock was taken but its lease could not be shown
   * alive at the moment the acquisition reached JS (no keep-alive answered within `lostAfter`
   * × TTL: the process was paused, or etcd silent): acquire again.
   */
  lock(path: string, options?: AcquireOptions): Promise<Lock>;
  /** As {@link ZooKeeper.readWriteLock}. */
  readWriteLock(path: string): ReadWriteLock;
  /** As {@link ZooKeeper.semaphore}. */
  semaphore(path: string, permits: number): Semaphore;
  /** As {@link ZooKeeper.multiLock}: exclusive locks on all `paths`, all or nothing, in sorted order. */
  multiLock(paths: string[], options?: AcquireOptions): Promise<MultiLock>;
  /** As {@link ZooKeeper.withLock}. */
  withLock<R>(path: string, fn: (lock: Lock) => R | Promise<R>, options?: AcquireOptions): Promise<R>;
  /**
   * Reads `key` (a linearizable read of etcd key `/zktx/kv/<key>`); `undefined` when absent.
   * As {@link ZooKeeper.get}.
   */
  get<T extends Json = Json>(key: string): Promise<T | undefined>;
  /**
   * Writes `key`; with `{ lock }` (locks of this etcd client's backend), one `Txn` that first
   * compares every lock key's create revision with its token: a holder that lost its lock gets
   * `LOCK_LOST` / `SESSIONEXPIRED` and writes nothing. Resolves the key's new mod revision.
   */
  set(key: string, value: Json, options?: { lock?: Lock | MultiLock }): Promise<number>;
  /**
   * As {@link ZooKeeper.executeTransaction}, on etcd: the key's lock is etcd's lock recipe under
   * `/zktx/locks/kv/<key>/`; the commit is one `Txn` that compares the lock key's create revision
   * and the value's mod revision as read, then puts the value and deletes the lock key. `version`
   * and `zxid` are the commit's revision (revisions never restart: no tombstones, and no limit on
   * the time between read and commit). A commit whose answer was lost is settled by deleting the
   * lock key (then it can never apply) or, if it is already gone, by etcd's history.
   */
  executeTransaction<T extends Json = Json>(key: string, valueOrUpdater: ValueOrUpdater<T>, options?: AcquireOptions): Promise<TransactionResult<T>>;
  /**
   * As {@link ZooKeeper.transaction} (same retry loop, isolation levels, ids and errors), committed
   * as one etcd `Txn`: compares for the locks (create revision = token), the id's marker (absent),
   * the keys read (mod revision as read; 0 for absent) and the keys created (absent), then the
   * writes. `committed.zxid` and `committed.versions` are the commit's revision. All reads of an
   * attempt are one revision of the store (later batches read at the first one's), so a
   * read-only transaction commits nothing whatever its size and `'snapshot'` reads a snapshot; a
   * read whose revision was compacted is a `CONFLICT` (retried). No tombstones and
   * no 5-minute limit (revisions never restart). `TOO_LARGE` over etcd's default limits: 128
   * compares or writes (`--max-txn-ops`), 1.5 MiB (`--max-request-bytes`). Locks in `options.lock`
   * must be this backend's.
   */
  transaction<R>(fn: (tx: Transaction) => R | Promise<R>, options?: TransactionOptions): Promise<R>;
  /**
   * As {@link ZooKeeper.pruneTransactionIds}, by etcd's own clock: etcd keeps no time for a key,
   * so each call records the store's revision with a lease's countdown, and deletes the markers
   * committed at or before the latest such mark at least `olderThanMs` old (plus a second: the
   * countdown is in whole seconds). No machine's clock is trusted. Call it periodically: the
   * first call deletes nothing unless `olderThanMs` is 0. Resolves how many markers it deleted.
   */
  pruneTransactionIds(olderThanMs: number): Promise<number>;
  /**
   * As {@link ZooKeeper.coordinator}, with etcd recording every decision: the records are keys
   * under `/zktx/coordinators/<name>/`, a transaction's active record is a key on this client's
   * lease (it ends with the lease), and every decision is one `Txn` of compares (docs/etcd.md).
   * `prune(olderThanMs)` deletes records last written before an earlier `prune` call at least
   * `olderThanMs` ago by etcd's own clock (etcd keeps no time per key; a lease's countdown
   * serves, so no machine's clock matters): call it periodically.
   */
  coordinator(name: string, options?: CoordinatorOptions): Coordinator;
}

/** A ZooKeeper session with locks and a JSON key-value store. */
export class ZooKeeper extends EventEmitter {
  static readonly ZOO_LOG_LEVEL_ERROR: 1;
  static readonly ZOO_LOG_LEVEL_WARN: 2;
  static readonly ZOO_LOG_LEVEL_INFO: 3;
  static readonly ZOO_LOG_LEVEL_DEBUG: 4;

  /**
   * ZooKeeper's digest identity of `user` / `password`: `user:base64(sha1("user:password"))`,
   * the `id` of a `digest` ACL entry.
   * @throws ZktxError `INVALID_ARGUMENT` for an empty user, a user with `:`, or a non-string.
   */
  static digestId(user: string, password: string): string;

  /**
   * Validates options and returns at once; the session is opened by `connect()` or the first call.
   * @throws ZktxError `INVALID_ARGUMENT` for unknown or malformed options.
   */
  constructor(options?: ZooKeeperOptions);

  /** The connect string in use: `ZKTX_CONNECT_OVERRIDE`, else `connect`, else `ZK_CONNECT`, else `localhost:2181`. */
  readonly connectString: string;

  /**
   * The latest session event, or `NOT_CONNECTED` before the first connection.
   * `SUSPENDED`: the connection dropped, the session (and its locks) may still live.
   * `EXPIRED`: every lock held on the session is lost (each Lock's `signal` aborts); the next
   * call opens a new session unless `reconnectAfterExpiry: false`.
   */
  readonly state: SessionState | 'NOT_CONNECTED';

  /** Session events; the listener never keeps Node alive. */
  on(event: 'state', listener: (state: SessionState) => void): this;

  /**
   * Opens the session now.
   * Errors: `TIMEOUT` when no server answers within `connectTimeout`; `AUTHFAILED` when the
   * server refuses the `auth` given (or its absence); `TLS_HANDSHAKE` (see `tls`).
   */
  connect(): Promise<void>;

  /**
   * Closes the session; the server deletes its lock nodes at once. Idempotent.
   * A script that never calls it is closed for it when Node's event loop empties.
   *
   * Guarantees: every pending call of this client (a `lock()` waiting in the queue, calls
   * waiting to connect) rejects with `CLIENT_CLOSED`, and its queue nodes go with the session.
   * Resolves once the server acknowledged the close (one round trip), after which `state` is
   * `CLOSED` and no write of this client can apply; when disconnected, once the client gave the
   * session up (7/5 of the session timeout after the last answer; the server has expired it by
   * then). The exit hook (`process.exit()`) does not wait for that: it closes every client not
   * yet fully closed (a `close()` still in flight included) at once and blocks at most 2 s in
   * total, however many clients there are. Calls in flight (a `release()` whose delete waits on
   * a frozen server, a commit) do not hold the close up: CloseSession is sent within that bound.
   */
  close(): Promise<void>;

  /**
   * Opt-in shutdown: on any of `signals` (default `['SIGTERM', 'SIGINT']`), close this client, so
   * its locks are free for other processes at once instead of at session expiry, then let the
   * signal end the process as it would have (re-raised when no other listener for it is left;
   * a listener of yours decides instead). Waits at most 5 s for the close; with several clients
   * opted in, they close together and the signal is re-raised once all of them closed (still at
   * most 5 s). A second signal during the close ends the process at once (Node's default). zktx
   * installs no handler unless asked.
   * Returns a function that removes the handlers.
   * @throws ZktxError `INVALID_ARGUMENT` for an empty list or an unknown signal name.
   */
  closeOnSignals(signals?: NodeJS.Signals[]): () => void;

  /** `await using zk = new ZooKeeper(options)`: closed at scope exit (as `close()`). */
  [Symbol.asyncDispose](): Promise<void>;

  /**
   * Acquires the exclusive lock at `path` (an absolute znode path, up to 32768 bytes of UTF-8,
   * without lone surrogates).
   *
   * Guarantees: one holder at a time; waiters served in arrival order, each watching only its
   * predecessor; one round trip when uncontended. Not reentrant. Excludes the read and write
   * sides of `readWriteLock(path)` and `multiLock` on the same path too (it is a writer).
   * Errors: `INVALID_ARGUMENT`, `TIMEOUT`, `ABORTED`, `SESSIONEXPIRED`, `CONNECTIONLOSS`;
   * `LOCK_KIND_MISMATCH` when `path` is in use as a semaphore; `LOCK_LOST` (the node released)
   * when the lock was taken but its session could not be shown alive at the moment the
   * acquisition reached JS (no request answered by the server that was made within `lostAfter`
   * × the session timeout, at least 300 ms: the process was paused, or the server silent; its
   * session may have expired and a successor hold the lock): acquire again.
   * Cancellation: timeout and abort never leave a lock node behind.
   */
  lock(path: string, options?: AcquireOptions): Promise<Lock>;

  /**
   * A read-write lock at `path`: many readers or one writer; writers are not starved. An
   * exclusive lock (`lock`, `multiLock`) on the same path counts as a writer: readers wait for it.
   * `LOCK_KIND_MISMATCH` when `path` is in use as a semaphore.
   */
  readWriteLock(path: string): ReadWriteLock;

  /**
   * A counting semaphore at `path` with `permits` (1..10000) leases. A path is a semaphore or a
   * lock, not both: a lease on a path with lock nodes ahead (exclusive, read-write, multiLock)
   * rejects `LOCK_KIND_MISMATCH`, and so does a lock behind leases. With 1 permit it is an
   * exclusive lock (and mixes with locks as `lock` does).
   */
  semaphore(path: string, permits: number): Semaphore;

  /**
   * Exclusive locks on all `paths`, all or nothing. Paths are acquired in sorted order, so two
   * callers naming them in different orders cannot deadlock. On failure, none is held.
   */
  multiLock(paths: string[], options?: AcquireOptions): Promise<MultiLock>;

  /**
   * A leader election at `path` (an absolute znode path, not inside zktx's own tree), in which
   * this client takes part as `options.id` (a string, default `''` as Curator's; stored as the
   * candidate node's data, UTF-8, up to 16384 bytes). Nothing is sent until a call. Several
   * `Election` objects on one client and path are several candidates. See {@link Election}.
   * Errors (thrown): `INVALID_ARGUMENT` for a bad path or id, `TOO_LARGE`, `CLIENT_CLOSED`.
   */
  election(path: string, options?: { id?: string }): Election;

  /** Runs `fn(lock)` holding the lock at `path`, and always releases it. */
  withLock<R>(path: string, fn: (lock: Lock) => R | Promise<R>, options?: AcquireOptions): Promise<R>;

  /** Reads `key`; `undefined` when absent. */
  get<T extends Json = Json>(key: string): Promise<T | undefined>;

  /**
   * Writes `key`. With `{ lock }`, the write is one `multi` that first checks the lock node:
   * a holder that lost its lock gets `LOCK_LOST` / `SESSIONEXPIRED` and writes nothing.
   * Resolves the new znode version.
   * On connection loss: `CONNECTIONLOSS` with `outcome: 'unknown'`.
   */
  set(key: string, value: Json, options?: { lock?: Lock | MultiLock }): Promise<number>;

  /**
   * Locks `key`, computes the new value, writes it fenced on the lock and releases the lock
   * in one `multi` (two round trips in all when uncontended).
   *
   * Guarantees: concurrent transactions on one key are serializable; on any failure the stored
   * value is unchanged (but `CONNECTIONLOSS`/`TIMEOUT` with `outcome: 'unknown'`). An updater
   * that throws rejects with its own error, unchanged.
   * Concurrent calls on one key queue (also from one client); a call on the key from inside
   * its own updater would wait for itself and rejects with `ALREADY_HELD` at once.
   * Errors: `INVALID_ARGUMENT` (bad key, value JSON cannot encode or would mangle, updater returning
   * `undefined` or a function), `TOO_LARGE`, `LOCK_LOST`, `SESSIONEXPIRED`, `BADVERSION` /
   * `NODEEXISTS` (someone wrote or deleted the key without its lock — versions never restart,
   * so a delete + re-create in between is seen too), `CONFLICT` (more than 5 min between the
   * read and the commit), `ALREADY_HELD`, `TIMEOUT`, `ABORTED`.
   */
  executeTransaction<T extends Json = Json>(key: string, valueOrUpdater: ValueOrUpdater<T>, options?: AcquireOptions): Promise<TransactionResult<T>>;

  /**
   * Runs `fn(tx)` as an optimistic multi-key transaction and commits its writes in one `multi`:
   * checks of the versions read (per `isolation`), then all writes. On `CONFLICT` the function
   * runs again with fresh reads, so it must have no side effects outside `tx`.
   * Resolves what `fn` returned.
   *
   * Guarantees: all writes apply or none; with `'serializable'`, committed transactions are
   * equivalent to running one at a time in commit-zxid order. A key's version never restarts
   * (a delete leaves a tombstone), so a key deleted and re-created between a read and the commit
   * is a conflict, not a lost update. A read-only transaction writes nothing (with an `id`, it
   * writes the id's marker). A function that throws writes nothing and rejects with its own
   * error. Read sets too large for one request are read in several (each consistent; the commit
   * checks them all). A key holding data another client wrote (not JSON) rejects `tx.get` with
   * `INVALID_ARGUMENT`, and `tx.set` / `tx.delete` replace it; an ephemeral znode another client
   * created at a key is `INVALID_ARGUMENT` for reads and writes (`NODEEXISTS` for a create).
   * With an `id`, a function that throws rejects with its own error unless the id's marker shows
   * the id applied (then its recorded result resolves); when the marker cannot be read, the call
   * rejects with that read's error, `outcome: 'unknown'` and the function's error as `cause`.
   *
   * With an `id` (or `idempotent: true`), the id's recorded result wins on every path: a retry or
   * a replay whose commit finds the id's marker, whose function writes nothing, or whose
   * function throws after the id committed, resolves the result the id's commit recorded. Once an
   * attempt's commit outcome was unknown, the call never rejects with `outcome: 'not_applied'`:
   * either the marker settles it (resolved) or it rejects with `outcome: 'unknown'` (retry with
   * the same id: it applies at most once).
   * Errors: `CONFLICT` after `retries` (also: more than 5 min between the first read and the
   * commit, or a commit that would go out on another session than the first read's, after the
   * old one expired), `LOCK_LOST`, `NODEEXISTS` (create of an existing key), `TOO_LARGE` (the commit
   * would exceed ZooKeeper's 1 MiB request limit: nothing sent), `CONNECTIONLOSS` with
   * `outcome: 'unknown'` (retried safely when an `id` is set), `ABORTED`, `INVALID_ARGUMENT`.
   */
  transaction<R>(fn: (tx: Transaction) => R | Promise<R>, options?: TransactionOptions): Promise<R>;

  /**
   * Deletes the idempotence markers of `{ id }` / `idempotent: true` transactions created more
   * than `olderThanMs` ago; resolves how many. Ages are measured by the server's clock (this
   * machine's clock does not matter): keep the margin above any retry window. Ages above ten
   * years (315360000000 ms) are `INVALID_ARGUMENT`.
   */
  pruneTransactionIds(olderThanMs: number): Promise<number>;

  /**
   * Compacts tombstones, in two phases: a tombstone of a key deleted more than `olderThanMs`
   * ago (by the server's clock) is *marked* (its version bumped, so every transaction that read
   * it fails its check); a mark older than `olderThanMs` is *removed*. A tombstone therefore
   * goes after two calls at least `olderThanMs` apart. A deleted key keeps a tombstone znode so
   * its version never restarts; run this now and then (e.g. hourly) to bound their number.
   *
   * Guarantees: no transaction that read a key can commit over the key re-created after its
   * tombstone was removed (README, "Versions never restart"). Every write is version-checked (a
   * key written since is kept). Safe from several clients at once. A tombstone that cannot be
   * removed (a child node another client created under it, no permission) is listed in
   * `skipped` on every call until fixed; it never fails the call.
   * Errors: `INVALID_ARGUMENT` when `olderThanMs` is below 600000 (10 min: transactions older
   * than 5 min are refused at commit) or above ten years; connection errors.
   */
  compactTombstones(olderThanMs: number): Promise<Compaction>;

  /** Lists a znode's children, sorted (e.g. a lock's queue); `[]` when absent. `path`: up to 32768 bytes of UTF-8. */
  children(path: string): Promise<string[]>;

  /**
   * The raw ZooKeeper API on this client's session: znodes by absolute path, data as Buffers,
   * Stats, ACLs, multi, sync, one-shot watches. Separate from the JSON store (`get`/`set` take
   * key names and refuse keys starting with `/`). See {@link Znodes}.
   */
  readonly znodes: Znodes;

  /**
   * A transaction coordinator named `name` (1-64 characters of [A-Za-z0-9_.-]): two-phase commit
   * across `participants` and sagas, with ZooKeeper recording every decision. Every process that
   * registers the same name runs recovery for its transactions. See README "Transactions across services".
   */
  coordinator(name: string, options?: CoordinatorOptions): Coordinator;
}

/**
 * The tutorial's module-level call: runs on the most recently constructed `ZooKeeper`, or on a new
 * one without options (`ZK_CONNECT`, else `localhost:2181`; `ZKTX_CONNECT_OVERRIDE` beats both).
 */
export function executeTransaction<T extends Json = Json>(key: string, valueOrUpdater: ValueOrUpdater<T>, options?: AcquireOptions): Promise<TransactionResult<T>>;

export const ZOO_LOG_LEVEL_ERROR: 1;
export const ZOO_LOG_LEVEL_WARN: 2;
export const ZOO_LOG_LEVEL_INFO: 3;
export const ZOO_LOG_LEVEL_DEBUG: 4;

export default ZooKeeper;
