'use strict';
// The public JS facade of zktx: option checking, JSON encoding, AbortSignal plumbing, error
// objects. Everything that talks to ZooKeeper is in Rust (crates/zktx-core via src/lib.rs).

const { randomUUID, createHash } = require('node:crypto');
const { EventEmitter } = require('node:events');
const { AsyncLocalStorage } = require('node:async_hooks');
const { types } = require('node:util');
const { constants: osConstants } = require('node:os');
const diagnostics = require('node:diagnostics_channel');
const { performance } = require('node:perf_hooks');
const native = require('./binding');
const { tracing, traceAsync, TRACING_CHANNELS } = require('./tracing');

// Observability: events on node:diagnostics_channel, as undici and Node core publish theirs.
// Every publish is behind `hasSubscribers`: with nobody listening, an event costs that check.
// Names and payloads are documented in README ("Observability") and index.d.ts.
const channels = {
  lockAcquire: diagnostics.channel('zktx:lock:acquire'),
  lockAcquired: diagnostics.channel('zktx:lock:acquired'),
  lockFailed: diagnostics.channel('zktx:lock:failed'),
  lockReleased: diagnostics.channel('zktx:lock:released'),
  lockLost: diagnostics.channel('zktx:lock:lost'),
  transactionAttempt: diagnostics.channel('zktx:transaction:attempt'),
  transactionConflict: diagnostics.channel('zktx:transaction:conflict'),
  transactionCommit: diagnostics.channel('zktx:transaction:commit'),
  executeTransactionStart: diagnostics.channel('zktx:executeTransaction:start'),
  executeTransactionCommit: diagnostics.channel('zktx:executeTransaction:commit'),
  executeTransactionError: diagnostics.channel('zktx:executeTransaction:error'),
  sessionState: diagnostics.channel('zktx:session:state'),
};

const LOG_LEVELS = { ZOO_LOG_LEVEL_ERROR: 1, ZOO_LOG_LEVEL_WARN: 2, ZOO_LOG_LEVEL_INFO: 3, ZOO_LOG_LEVEL_DEBUG: 4 };

// `await using` looks up Symbol.asyncDispose. Node >= 18.18 defines it (as
// Symbol.for('nodejs.asyncDispose')); on older Node, define that same symbol, so TypeScript's
// lowered `await using` and any later polyfill find zktx's dispose methods.
if (typeof Symbol.asyncDispose !== 'symbol') {
  Object.defineProperty(Symbol, 'asyncDispose', { value: Symbol.for('nodejs.asyncDispose'), configurable: false, enumerable: false, writable: false });
}

/** Every error zktx rejects with. `code` is stable; `outcome` says whether a write may have applied. */
class ZktxError extends Error {
  /** `options.cause`: the lower-level error or abort reason this one stands for (as Error's). */
  constructor(code, message, outcome = 'not_applied', options = undefined) {
    super(message, options);
    this.name = 'ZktxError';
    this.code = code;
    this.outcome = outcome;
  }
}

// `CODE|outcome|message`, then its cause chain, each link after `\u001f`: a zktx error it wraps
// (`CODE|outcome|message`: ROLLED_BACK because of a CONNECTIONLOSS) or a lower-level failure
// (`CAUSE_CODE|cause message`: a refused connection, a failed TLS handshake). See to_js_error in
// src/lib.rs.
const NATIVE_ERROR = /^([A-Z_]+)\|(unknown|not_applied)\|([\s\S]*)$/;
const NATIVE_CAUSE = /^([A-Za-z_0-9]+)\|([\s\S]*)$/;

/** The lower-level error a native error stands for: an Error with Node's `code` (ECONNREFUSED...). */
function causeOf(code, message) {
  const cause = new Error(message);
  cause.code = code;
  return cause;
}

/** Rebuilds a ZktxError from the binding's `CODE|outcome|message` encoding (see src/lib.rs). */
function fromNative(err) {
  if (err instanceof ZktxError) return err;
  const links = err && typeof err.message === 'string' ? err.message.split('\u001f') : [];
  const m = links.length ? NATIVE_ERROR.exec(links[0]) : null;
  if (!m) {
    // Not our encoding: napi's own error (a panic it caught, an argument it could not convert).
    // Never raw; the outcome is unknown, as the call may have sent a write before failing.
    return new ZktxError('INTERNAL', `zktx internal error: ${errorText(err)}`, 'unknown', { cause: err });
  }
  let cause;
  for (const link of links.slice(1).reverse()) {
    const z = NATIVE_ERROR.exec(link);
    const c = z ? null : NATIVE_CAUSE.exec(link);
    cause = z ? new ZktxError(z[1], z[3], z[2], cause === undefined ? undefined : { cause })
      : c ? causeOf(c[1], c[2]) : causeOf('INTERNAL', link);
  }
  const e = new ZktxError(m[1], m[3], m[2], cause === undefined ? undefined : { cause });
  if (err.stack) e.stack = `${e.name} [${e.code}]: ${m[3]}\n${err.stack.split('\n').slice(1).join('\n')}`;
  return e;
}

/** The message of anything thrown, without ever throwing itself. */
function errorText(err) {
  try {
    if (err && typeof err.message === 'string') return err.message;
  } catch {
    // a throwing getter: fall through
  }
  return describe(err);
}

async function call(fn) {
  try {
    return await fn();
  } catch (err) {
    throw fromNative(err);
  }
}

// Stack traces that point at the caller. An error made by the addon, or in the facade after an
// await, has no frame of the code that called zktx: a forgotten `await` would crash with no file
// or line. Each public call records its call site (Error.captureStackTrace on a bare object:
// frames are collected, formatted only if the call fails) and a ZktxError it rejects with gets
// those frames. The first public call an error passes through sets them: zktx's own calls use
// the untraced methods (`_name`), so the frames are always of the code that called zktx, and a
// zktx call failing inside a withLock / transaction function keeps its own, more precise site.
const sited = new WeakSet();

function atCallSite(err, site) {
  if (!(err instanceof ZktxError) || sited.has(err)) return err; // the caller's own errors pass unchanged
  sited.add(err);
  const frames = site.stack;
  const at = frames.indexOf('\n');
  err.stack = `${err.name} [${err.code}]: ${err.message}${at === -1 ? '' : frames.slice(at)}`;
  return err;
}

/** `impl` (returning a promise) as a public call whose rejections carry the caller's frames. */
function traced(impl, name) {
  const wrapper = function (...args) {
    const site = {};
    Error.captureStackTrace(site, wrapper);
    return impl.apply(this, args).then(undefined, (err) => { throw atCallSite(err, site); });
  };
  Object.defineProperty(wrapper, 'name', { value: name });
  return wrapper;
}

/** Replaces the methods `names` of `cls` by traced ones; the untraced stay as `_name` for zktx's own calls. */
function traceMethods(cls, names) {
  for (const name of names) {
    const impl = cls.prototype[name];
    Object.defineProperty(cls.prototype, `_${name}`, { value: impl, writable: true, configurable: true });
    cls.prototype[name] = traced(impl, name);
  }
}

function invalid(message, cause) {
  return new ZktxError('INVALID_ARGUMENT', message, 'not_applied', cause === undefined ? undefined : { cause });
}

// A lone surrogate cannot be encoded as UTF-8: it would reach Rust as U+FFFD, so '\uD800',
// '\uDC00' and '\uFFFD' would silently name one key. Node 18 lacks String#isWellFormed.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const isWellFormed = typeof String.prototype.isWellFormed === 'function' ? (s) => s.isWellFormed() : (s) => !LONE_SURROGATE.test(s);

/** INVALID_ARGUMENT unless `s` (a string) is well-formed UTF-16. */
function checkWellFormed(s, what) {
  if (!isWellFormed(s)) throw invalid(`${what} must be well-formed Unicode (it has a lone surrogate), got ${describe(s)}`);
}

function checkKey(key) {
  if (typeof key !== 'string' || key.length === 0) throw invalid(`key must be a non-empty string, got ${describe(key)}`);
  checkWellFormed(key, 'key');
  // A key is a name in zktx's JSON store (stored under /zktx/kv), never a znode: reading
  // '/config/app' here would answer undefined for a znode that exists (issue 19).
  if (key.startsWith('/')) {
    throw invalid(`key ${describe(key)} looks like a znode path: keys of zktx's JSON store are names (stored under /zktx/kv), not znodes. For the znode itself use zk.znodes (zk.znodes.getData(${describe(key)}), setData, create, ...); for a store key, drop the leading '/'`);
  }
}

/** A checked copy of an array of strings (a hole is refused at once, like undefined). */
function stringsOf(array, check, what) {
  const out = [];
  for (let i = 0; i < array.length; i++) {
    check(array[i], what);
    out.push(array[i]);
  }
  return out;
}

/**
 * Longest znode path argument accepted, in UTF-8 bytes: far above any real path, far below
 * ZooKeeper's 1 MiB request limit (a request over it makes the server drop the connection).
 */
const MAX_PATH_BYTES = 32768;
/** The longest key or transaction id, in UTF-8 bytes (the core's MAX_KEY_BYTES). */
const MAX_KEY_BYTES = 1024;

/** A znode path argument: a well-formed, bounded string (its shape is checked in Rust). */
function checkPath(path, what) {
  if (typeof path !== 'string') throw invalid(`${what} must be a string, got ${describe(path)}`);
  if (path.length > MAX_PATH_BYTES || Buffer.byteLength(path, 'utf8') > MAX_PATH_BYTES) throw invalid(`${what} is longer than ${MAX_PATH_BYTES} bytes of UTF-8, got ${describe(path)}`);
  checkWellFormed(path, what);
}

/**
 * Awaits what a caller's function returned. Reading a hostile `then` (a throwing getter, a
 * Proxy trap) is INVALID_ARGUMENT; a rejection is the caller's own error and passes unchanged.
 */
function settle(value, what) {
  const then = checked(() => (value !== null && (typeof value === 'object' || typeof value === 'function') ? value.then : undefined), what);
  if (typeof then !== 'function') return Promise.resolve(value);
  return new Promise((resolve, reject) => {
    then.call(value, (v) => settle(v, what).then(resolve, reject), reject);
  });
}

/**
 * A short description of any value for an error message. Total: it never throws and never runs
 * the value's own code (toString, valueOf), so a hostile argument still gets its ZktxError.
 */
function describe(v) {
  try {
    switch (typeof v) {
      case 'string': return v.length > 80 ? `${JSON.stringify(v.slice(0, 80))}... (${v.length} characters)` : JSON.stringify(v);
      case 'function': return 'a function';
      case 'bigint': return `${v}n`;
      case 'symbol': return 'a symbol';
      case 'number': return Object.is(v, -0) ? '-0' : String(v);
      case 'object':
        if (v === null) return 'null';
        if (Array.isArray(v)) return `an array of length ${v.length}`;
        return Object.prototype.toString.call(v);
      default: return String(v); // undefined, boolean
    }
  } catch {
    return `a value of type ${typeof v}`; // a revoked Proxy, a throwing Symbol.toStringTag
  }
}

/**
 * Runs argument checks: whatever they throw that is not a ZktxError (a getter, a Proxy trap, a
 * toString of the caller's) becomes INVALID_ARGUMENT.
 */
function checked(f, what) {
  try {
    return f();
  } catch (err) {
    if (err instanceof ZktxError) throw err;
    throw invalid(`${what} could not be read: ${errorText(err)}`, err);
  }
}

/**
 * What JSON.stringify would store as something else without a word: `{}` for a Map, a Set, a
 * WeakMap, a typed array, an ArrayBuffer, a DataView, a promise (a forgotten `await`). The name,
 * or undefined for what JSON encodes faithfully or by a rule of its own (Date → ISO string,
 * toJSON, boxed primitives; a Buffer has a toJSON).
 */
function mangledKind(v) {
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === Array.prototype || proto === null) return undefined; // the common case, at once
  if (types.isMap(v)) return 'a Map';
  if (types.isSet(v)) return 'a Set';
  if (types.isWeakMap(v)) return 'a WeakMap';
  if (types.isWeakSet(v)) return 'a WeakSet';
  if (types.isTypedArray(v)) return `a ${Object.prototype.toString.call(v).slice(8, -1)}`;
  if (types.isDataView(v)) return 'a DataView';
  if (types.isAnyArrayBuffer(v)) return 'an ArrayBuffer';
  if (types.isPromise(v)) return 'a Promise (a missing await?)';
  return undefined;
}

/**
 * Whether `v` is made of primitives, plain objects and arrays only: nothing JSON could mangle.
 * Called after JSON.stringify succeeded, so `v` has no cycle and the walk is bounded by the JSON
 * text's size. Anything else (a class instance, a Date, a toJSON, a getter that throws now)
 * answers false, and the value is encoded again through refuseMangled.
 */
function isPlainJson(v) {
  if (typeof v !== 'object' || v === null) return true;
  try {
    const proto = Object.getPrototypeOf(v);
    if (proto === Array.prototype) {
      for (let i = 0; i < v.length; i++) {
        const x = v[i];
        if (typeof x === 'object' && x !== null && !isPlainJson(x)) return false;
      }
      return true;
    }
    if ((proto !== Object.prototype && proto !== null) || typeof v.toJSON === 'function') return false;
    for (const k of Object.keys(v)) {
      const x = v[k];
      if (typeof x === 'object' && x !== null && !isPlainJson(x)) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * JSON.stringify's replacer sees every value it is about to encode (after toJSON), at any depth,
 * once per occurrence: exactly what JSON would mangle, nothing it would skip. It makes
 * JSON.stringify 2-3 times slower, so it runs only for values that are not plain JSON.
 */
function refuseMangled(key, v) {
  if (typeof v === 'object' && v !== null) {
    const kind = mangledKind(v);
    if (kind !== undefined) throw new MangledValue(`${key === '' ? 'it' : `the value at key ${JSON.stringify(key)}`} is ${kind}, which JSON would store as {}: convert it first (Object.fromEntries(map), [...set], Array.from(typedArray))`);
  }
  return v;
}

class MangledValue extends Error {}

/** JSON text of a value, or INVALID_ARGUMENT for what JSON cannot carry or would mangle. */
function encodeValue(value, what = 'value') {
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') {
    throw invalid(`${what} must be JSON-encodable, got ${value === undefined ? 'undefined' : typeof value}`);
  }
  let json;
  try {
    json = JSON.stringify(value); // refuses cycles and BigInt
    if (!isPlainJson(value)) json = JSON.stringify(value, refuseMangled);
  } catch (err) {
    if (err instanceof MangledValue) throw invalid(`${what} cannot be stored as JSON: ${err.message}`);
    throw invalid(`${what} cannot be encoded as JSON: ${errorText(err)}`, err);
  }
  if (json === undefined) throw invalid(`${what} cannot be encoded as JSON`);
  return json;
}

const decode = (json) => (json == null ? undefined : JSON.parse(json));

/** Longest wait or timeout accepted, in ms: setTimeout's limit, 2^31 - 1 (about 24.8 days). */
const MAX_WAIT_MS = 2 ** 31 - 1;
/** Longest age `pruneTransactionIds` accepts: 10 years of 365 days, in ms. */
const MAX_PRUNE_AGE_MS = 10 * 365 * 24 * 3600 * 1000;

function checkTimeout(t, name = 'timeout', max = MAX_WAIT_MS) {
  if (t === undefined) return undefined;
  if (typeof t !== 'number' || !(t >= 0 && t <= max)) throw invalid(`${name} must be a number of milliseconds from 0 to ${max}, got ${describe(t)}`);
  return t === 0 ? 0 : t; // -0 is 0
}

/**
 * A plain copy of an options object (its own enumerable keys, each known), read once: a throwing
 * getter or Proxy trap is INVALID_ARGUMENT, and a getter cannot answer differently later.
 */
function readOptions(opts, allowed) {
  if (opts === undefined) return {};
  return checked(() => {
    if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw invalid(`options must be an object, got ${describe(opts)}`);
    const copy = {};
    for (const k of Object.keys(opts)) {
      if (!allowed.includes(k)) throw invalid(`unknown option ${describe(k)} (known: ${allowed.join(', ')})`);
      copy[k] = opts[k];
    }
    return copy;
  }, 'options');
}

function checkCallOptions(opts, allowed) {
  const copy = readOptions(opts, allowed);
  checked(() => {
    const { signal } = copy;
    if (signal !== undefined && !(signal && typeof signal.addEventListener === 'function' && typeof signal.removeEventListener === 'function' && 'aborted' in signal)) {
      throw invalid(`signal must be an AbortSignal, got ${describe(signal)}`);
    }
  }, 'signal');
  return copy;
}

/** Whether an (already checked) AbortSignal is aborted; a throwing getter is INVALID_ARGUMENT. */
const isAborted = (signal) => checked(() => signal.aborted === true, 'signal');

/** The signal's reason (an abort's `cause`); undefined if reading it throws. */
function abortReason(signal) {
  try {
    return signal.reason;
  } catch {
    return undefined;
  }
}

/** ABORTED, caused by the signal's reason (a TimeoutError of AbortSignal.timeout(), the caller's own reason). */
function aborted(message, signal) {
  return new ZktxError('ABORTED', message, 'not_applied', { cause: abortReason(signal) });
}

/** Runs `run(cancelId)` with an AbortSignal wired to the native cancellation token. */
async function withSignal(signal, run) {
  if (!signal) return run(undefined);
  if (isAborted(signal)) throw aborted('operation was aborted before it started', signal);
  const id = callSync(() => native.newCancel());
  let fired = false;
  const onAbort = () => {
    fired = true;
    native.cancel(id);
  };
  try {
    checked(() => signal.addEventListener('abort', onAbort, { once: true }), 'signal');
    return await run(id);
  } catch (err) {
    // The native side knows only that it was cancelled; the reason is the signal's.
    if (fired && err instanceof ZktxError && err.code === 'ABORTED' && err.cause === undefined) {
      Object.defineProperty(err, 'cause', { value: abortReason(signal), writable: true, configurable: true }); // as Error's own
    }
    throw err;
  } finally {
    try {
      signal.removeEventListener('abort', onAbort);
    } catch {
      // a signal that throws here cannot fire any more either
    }
    native.dropCancel(id);
  }
}

// `etcd`: the words of the etcd backend (a lease and keys, not a session and nodes).
const LOSS_MESSAGES = {
  NODE_DELETED: (ms, etcd) => `its lock ${etcd ? 'key' : 'node'} was deleted by someone else`,
  SESSION_ENDED: (ms, etcd) => (etcd ? 'its etcd lease expired or was revoked (client closed)' : 'its ZooKeeper session expired or was closed'),
  // The session may have lived on: say so, or a reader hunts for an expiry that never happened.
  DISCONNECTED_TOO_LONG: (ms, etcd) => (etcd
    ? `declared lost after ${ms} ms without an answered keep-alive from etcd (lostAfter); its lease may still live, and its lock key is deleted as soon as etcd answers again`
    : `declared lost after ${ms} ms without a connection to ZooKeeper (lostAfter); its session may still live, and its lock node is deleted as soon as the connection returns`),
};

/**
 * A watched lock's loss state ({ controller, resolveLost, lock }), keyed by its `signal` and its
 * `lost` promise: while the holder can reach either, the Lock is not garbage, so it is not
 * released behind a holder that kept only the signal for its guarded work (a Lock collected is
 * released, its signal never aborted: a successor acquired ~100 ms after a GC while the holder's
 * signal stayed unaborted, etcd-lost-gap-attacks).
 */
const lossOwners = new WeakMap();

/**
 * The native loss callback, made outside any Lock method: the native side keeps it until the
 * loss, so it must not reach the Lock (a closure made inside a method shares its scope, `this`
 * included), nor the signal or promise that keep it (see `lossOwners`: it holds their state
 * weakly), or a Lock garbage-collected while watched would never be released (see Lock's Drop
 * in zktx-core).
 */
function lossCallback(path, stateRef, event) {
  const what = event.kind === 'leadership' ? `leadership of ${path}` : `lock ${path}`;
  return (native) => {
    const [reason, detail] = String(native).split(':');
    const describeLoss = LOSS_MESSAGES[reason];
    const etcd = Boolean(event.zk && event.zk.constructor && event.zk.constructor.name === 'Etcd');
    const err = new ZktxError('LOCK_LOST', `${what} lost: ${describeLoss ? describeLoss(detail, etcd) : reason}`);
    err.reason = reason;
    if (reason === 'DISCONNECTED_TOO_LONG') err.disconnectedMs = Number(detail);
    if (channels.lockLost.hasSubscribers) {
      const { acquiredAt, ...fields } = event;
      channels.lockLost.publish({ ...fields, reason, error: err, holdMs: performance.now() - acquiredAt });
    }
    const state = stateRef.deref();
    if (!state) return; // the lock, its signal and its promise are all garbage: nobody to tell
    state.controller.abort(err);
    state.resolveLost(err);
  };
}

/** A held lock. `token` grows strictly from one holder of the path to the next (fencing). */
class Lock {
  constructor(nativeLock, kind = 'exclusive', zk = undefined) {
    this._native = nativeLock;
    /** The lock's path, as passed to `zk.lock`. */
    this.path = callSync(() => nativeLock.path);
    /** This holder's lock node. */
    this.nodePath = callSync(() => nativeLock.nodePath);
    /** Fencing token: the zxid that created this holder's node. */
    this.token = callSync(() => nativeLock.token);
    this._loss = null;
    this._kind = kind;
    this._zk = zk;
    this._acquiredAt = performance.now();
    this._releaseReported = false;
    this._lossTimer = undefined;
  }

  /** Starts watching for loss on first use: a lock nobody asks about costs no extra request. */
  _watchLoss() {
    if (this._loss) return this._loss;
    const controller = new AbortController();
    let resolveLost;
    const lost = new Promise((resolve) => { resolveLost = resolve; });
    this._loss = { signal: controller.signal, lost };
    const event = { zk: this._zk, path: this.path, kind: this._kind, nodePath: this.nodePath, token: this.token, acquiredAt: this._acquiredAt };
    const state = { controller, resolveLost, lock: this };
    lossOwners.set(controller.signal, state);
    lossOwners.set(lost, state);
    const onLost = lossCallback(this.path, new WeakRef(state), event);
    callSync(() => this._native.onLost(onLost));
    return this._loss;
  }

  /** Aborts (reason: ZktxError LOCK_LOST) when the lock is lost; pass it on to guarded work. */
  get signal() {
    return this._watchLoss().signal;
  }

  /** Resolves with a LOCK_LOST ZktxError when the lock is lost; never after a plain release. */
  get lost() {
    return this._watchLoss().lost;
  }

  /** Whether `release()` was called (or the lock was consumed by a transaction commit). */
  get released() {
    return callSync(() => this._native.released);
  }

  /** Releases the lock. Idempotent. */
  async release() {
    if (this._lossTimer !== undefined) {
      clearTimeout(this._lossTimer);
      this._lossTimer = undefined;
    }
    await call(() => this._native.release());
    if (this._releaseReported) return;
    this._releaseReported = true;
    if (channels.lockReleased.hasSubscribers) {
      channels.lockReleased.publish({ zk: this._zk, path: this.path, kind: this._kind, nodePath: this.nodePath, token: this.token, holdMs: performance.now() - this._acquiredAt });
    }
  }

  /** Asks the server whether the lock node still exists. */
  isHeld() {
    return call(() => this._native.isHeld());
  }

  /** `await using lock = await zk.lock(path)` releases the lock at scope exit. */
  [Symbol.asyncDispose]() {
    return this.release();
  }
}

/** Several exclusive locks held together (`zk.multiLock`); the same surface as a Lock. */
class MultiLock {
  constructor(locks) {
    /** The locks, in acquisition (sorted path) order. */
    this.locks = locks;
    /** The paths held, sorted. */
    this.paths = locks.map((l) => l.path);
    /** Each lock's fencing token, in `paths` order. */
    this.tokens = locks.map((l) => l.token);
    /** Aborts when any of the locks is lost. */
    this.signal = AbortSignal.any(locks.map((l) => l.signal));
    /** Resolves with the first loss. */
    this.lost = Promise.race(locks.map((l) => l.lost));
  }

  get released() {
    return this.locks.every((l) => l.released);
  }

  /** Releases every lock (idempotent). */
  async release() {
    const results = await Promise.allSettled(this.locks.map((l) => l._release()));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Whether every lock node still exists. */
  async isHeld() {
    return (await Promise.all(this.locks.map((l) => l._isHeld()))).every(Boolean);
  }

  /** `await using` releases every lock at scope exit. */
  [Symbol.asyncDispose]() {
    return this.release();
  }
}

/** The native locks behind a `{ lock }` option (a Lock or a MultiLock of this library). */
function nativeLocks(lock, backend = 'zookeeper') {
  return checked(() => {
    let natives;
    if (lock instanceof Lock) natives = [lock._native];
    else if (lock instanceof MultiLock && Array.isArray(lock.locks)) natives = lock.locks.map((l) => l && l._native);
    if (!natives || !natives.every((n) => n instanceof native.NativeLock)) throw invalid(`lock must be a Lock or MultiLock from this library, got ${describe(lock)}`);
    if (!natives.every((n) => n.backend === backend)) {
      throw invalid(`lock must be a Lock or MultiLock of this client's coordinator (${backend === 'zookeeper' ? 'ZooKeeper' : 'etcd'}): a lock on the other backend cannot fence this write`);
    }
    return natives;
  }, 'lock');
}

/**
 * The keys whose executeTransaction updater the current async context runs inside, per client:
 * a nested executeTransaction on one of them would wait for its own lock forever.
 */
const updaterContext = new AsyncLocalStorage();

const ISOLATIONS = ['serializable', 'snapshot', 'read-committed'];
/** Most re-runs `zk.transaction` accepts (`retries`): backoff is at most 250 ms per retry. */
const MAX_RETRIES = 1000;
const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  if (signal) checked(() => signal.addEventListener('abort', () => { clearTimeout(t); reject(aborted('transaction was aborted', signal)); }, { once: true }), 'signal');
});

/**
 * One attempt of `zk.transaction(fn)`: reads record versions, writes are buffered until commit.
 * `tx.get` calls made in the same tick are sent as one multi-read (one round trip).
 */
class Transaction {
  constructor(nativeTx, id, attempt) {
    this._native = nativeTx;
    this._writes = new Map(); // key -> { kind, key, json }
    this._pending = null; // gets queued this tick
    this._done = false;
    /** The transaction's id: the same across retries (the idempotence key with `{ idempotent: true }`). */
    this.id = id;
    /** 0 for the first attempt, n for the n-th retry. */
    this.attempt = attempt;
    /** After commit: `{ zxid, versions: {key: version}, reads: {key: version|-1}, roundTrips, alreadyApplied }`. */
    this.committed = undefined;
    /** A read refused with CONFLICT (etcd: the attempt's revision was compacted): the attempt is retried. */
    this._conflict = undefined;
  }

  _checkOpen() {
    if (this._done) throw new ZktxError('INVALID_ARGUMENT', 'transaction is finished: use tx only inside its function');
  }

  /** The value of `key` (this attempt's own writes included); `undefined` when absent. */
  get(key) {
    try {
      this._checkOpen();
      checkKey(key);
    } catch (err) {
      return Promise.reject(err);
    }
    const own = this._writes.get(key);
    if (own) return Promise.resolve(decode(own.json));
    if (!this._pending) {
      const batch = { keys: [], promise: null };
      this._pending = batch;
      batch.promise = new Promise((resolve) => process.nextTick(resolve)).then(() => {
        this._pending = null;
        return call(() => this._native.getMany(batch.keys)).catch((err) => {
          // The attempt cannot go on with consistent reads: whatever the function does with
          // this error, the loop retries it as a conflict.
          if (err && err.code === 'CONFLICT') this._conflict = err;
          throw err;
        });
      });
    }
    const batch = this._pending;
    const i = batch.keys.push(key) - 1;
    return batch.promise.then((values) => decode(values[i]));
  }

  /** Reads several keys in one round trip; resolves an array of values. */
  getMany(keys) {
    let list;
    try {
      list = checked(() => {
        if (!Array.isArray(keys)) throw invalid(`getMany needs an array of keys, got ${describe(keys)}`);
        return stringsOf(keys, checkKey); // all checked before any is read
      }, 'keys');
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.all(list.map((k) => this._get(k)));
  }

  _write(kind, key, value) {
    this._checkOpen();
    checkKey(key);
    const own = this._writes.get(key);
    if (own) {
      // Writes of one key combine as this transaction sees it. After its own delete the key is
      // absent (a create is a set); after its own set or create it exists (a create is
      // NODEEXISTS). A create keeps its "must be absent" through later writes: create + set is a
      // create of the new value, create + delete ('absent') still fails if the key exists.
      const created = own.kind === 'create' || own.kind === 'absent';
      if (kind === 'create') {
        if (own.kind === 'set' || own.kind === 'create') throw new ZktxError('NODEEXISTS', `create: key ${JSON.stringify(key)} was already written by this transaction`);
        kind = own.kind === 'delete' ? 'set' : 'create';
      } else if (created) {
        kind = kind === 'set' ? 'create' : 'absent';
      }
    }
    this._writes.delete(key); // keep the order of last writes
    this._writes.set(key, { kind, key, json: kind === 'delete' || kind === 'absent' ? undefined : encodeValue(value) });
  }

  /** Sets `key` (creates it if absent) at commit. */
  set(key, value) {
    this._write('set', key, value);
  }

  /**
   * Creates `key` at commit; the commit fails with `NODEEXISTS` if it exists. After this
   * transaction's own `delete(key)` it is a `set`; after its own `set` or `create` it throws
   * `NODEEXISTS` at once.
   */
  create(key, value) {
    this._write('create', key, value);
  }

  /** Deletes `key` at commit (no-op if absent). */
  delete(key) {
    this._write('delete', key);
  }
}

/**
 * Fencing for systems outside ZooKeeper: remembers the highest lock token seen per resource and
 * refuses older ones, so a holder that lost its lock (and whose successor already wrote) cannot
 * write late. Keep one guard where the writes land (a store, a service), not in the clients.
 */
class FencingTokenGuard {
  constructor() {
    this._highest = new Map();
  }

  /** Whether `token` may write `resource` now (it is at least the highest seen); remembers it. */
  accept(resource, token) {
    if (typeof token !== 'number' || !Number.isFinite(token)) throw invalid(`token must be a number, got ${describe(token)}`);
    const highest = this._highest.get(resource);
    if (highest !== undefined && token < highest) return false;
    this._highest.set(resource, token);
    return true;
  }

  /** Like `accept`, but throws a `STALE_TOKEN` ZktxError instead of returning false. */
  check(resource, token) {
    if (!this.accept(resource, token)) {
      throw new ZktxError('STALE_TOKEN', `token ${token} for ${describe(resource)} is older than ${this._highest.get(resource)}: a newer lock holder already wrote`);
    }
  }

  /** The highest token seen for `resource`, or undefined. */
  highest(resource) {
    return this._highest.get(resource);
  }
}

// ---- security: the auth and acl options ----

/**
 * ZooKeeper's digest identity for `user`/`password`: `user:base64(sha1("user:password"))`, the
 * id of a `digest` ACL entry (what zkCli's `DigestAuthenticationProvider` prints).
 */
function digestId(user, password) {
  if (typeof user !== 'string' || user === '' || user.includes(':')) throw invalid(`digestId: user must be a non-empty string without ':', got ${describe(user)}`);
  if (typeof password !== 'string') throw invalid('digestId: password must be a string');
  return `${user}:${createHash('sha1').update(`${user}:${password}`).digest('base64')}`;
}

/**
 * The `auth` option as `{ scheme, credentials: Buffer }` entries. Error messages never show
 * credentials: they end up in logs.
 */
function readAuth(auth) {
  if (auth === undefined) return [];
  return checked(() => {
    if (!Array.isArray(auth)) throw invalid(`auth must be an array of { scheme, credentials }, got ${describe(auth)}`);
    return Array.from(auth, (entry, i) => {
      if (entry === null || typeof entry !== 'object') throw invalid(`auth[${i}] must be an object { scheme, credentials }, got ${describe(entry)}`);
      const { scheme, credentials } = entry;
      for (const k of Object.keys(entry)) if (k !== 'scheme' && k !== 'credentials') throw invalid(`auth[${i}]: unknown key ${describe(k)} (known: scheme, credentials)`);
      if (typeof scheme !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(scheme)) throw invalid(`auth[${i}].scheme must be a provider name such as "digest", got ${describe(scheme)}`);
      let bytes;
      if (typeof credentials === 'string') bytes = Buffer.from(credentials, 'utf8');
      else if (credentials instanceof Uint8Array) bytes = Buffer.from(credentials);
      else throw invalid(`auth[${i}].credentials must be a string or a Buffer, got ${credentials === null ? 'null' : typeof credentials}`);
      if (scheme === 'digest' && !(bytes.indexOf(':') > 0)) throw invalid(`auth[${i}]: digest credentials must have the form "user:password"`);
      return { scheme, credentials: bytes };
    });
  }, 'auth');
}

/** The `sasl` option as `{ mechanism, username, password }`; messages never show the password. */
function readSasl(sasl) {
  if (sasl === undefined) return undefined;
  return checked(() => {
    if (sasl === null || typeof sasl !== 'object' || Array.isArray(sasl)) throw invalid(`sasl must be an object { mechanism: 'DIGEST-MD5', username, password }, got ${describe(sasl)}`);
    for (const k of Object.keys(sasl)) if (!['mechanism', 'username', 'password'].includes(k)) throw invalid(`sasl: unknown key ${describe(k)} (known: mechanism, username, password)`);
    const { mechanism = 'DIGEST-MD5', username, password } = sasl;
    if (mechanism !== 'DIGEST-MD5') throw invalid(`sasl.mechanism: only 'DIGEST-MD5' is supported (Kerberos/GSSAPI is not), got ${describe(mechanism)}`);
    if (typeof username !== 'string' || username === '') throw invalid(`sasl.username must be a non-empty string, got ${describe(username)}`);
    if (typeof password !== 'string') throw invalid('sasl.password must be a string');
    return { mechanism, username, password };
  }, 'sasl');
}

/** The `tls` option: PEM text (string or Buffer) for ca, cert, key. Never echoes a key. */
function readTls(tls) {
  if (tls === undefined) return undefined;
  return checked(() => {
    if (tls === null || typeof tls !== 'object' || Array.isArray(tls)) throw invalid(`tls must be an object { ca, cert, key, rejectUnauthorized }, got ${describe(tls)}`);
    for (const k of Object.keys(tls)) if (!['ca', 'cert', 'key', 'rejectUnauthorized'].includes(k)) throw invalid(`tls: unknown key ${describe(k)} (known: ca, cert, key, rejectUnauthorized)`);
    const pem = (v, name) => {
      if (v === undefined) return undefined;
      if (typeof v === 'string') return v;
      if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
      throw invalid(`tls.${name} must be PEM text (a string or a Buffer), got ${v === null ? 'null' : typeof v}`);
    };
    const ca = pem(tls.ca, 'ca');
    if (ca === undefined) throw invalid('tls.ca is required: the PEM of the CA that signed the servers\' certificates');
    const { rejectUnauthorized } = tls;
    if (rejectUnauthorized !== undefined && typeof rejectUnauthorized !== 'boolean') throw invalid(`tls.rejectUnauthorized must be a boolean, got ${describe(rejectUnauthorized)}`);
    return { ca, cert: pem(tls.cert, 'cert'), key: pem(tls.key, 'key'), rejectUnauthorized };
  }, 'tls');
}

const PERM_BITS = { r: 1, w: 2, c: 4, d: 8, a: 16 };
const PERM_NAMES = { read: 1, write: 2, create: 4, delete: 8, admin: 16, all: 31 };
/** The `acl` presets: who may do what with the nodes zktx creates. */
const ACL_PRESETS = {
  open: [{ perms: 31, scheme: 'world', id: 'anyone' }],
  'creator-all': [{ perms: 31, scheme: 'auth', id: '' }],
  'read-only': [{ perms: 1, scheme: 'world', id: 'anyone' }],
};

function readPerms(perms, where) {
  const bad = () => invalid(`${where}.perms must be letters of "rwcda" or an array of "read", "write", "create", "delete", "admin", "all", got ${describe(perms)}`);
  let mask = 0;
  if (typeof perms === 'string') {
    for (const ch of perms) {
      if (!(ch in PERM_BITS)) throw bad();
      mask |= PERM_BITS[ch];
    }
  } else if (Array.isArray(perms)) {
    for (const p of Array.from(perms)) {
      const bit = typeof p === 'string' ? PERM_NAMES[p] || PERM_BITS[p] : undefined;
      if (!bit) throw bad();
      mask |= bit;
    }
  } else {
    throw bad();
  }
  if (mask === 0) throw bad();
  return mask;
}

/** The `acl` option as `{ perms: mask, scheme, id }` entries; `[]` for the default (`open`). */
function readAcl(acl) {
  if (acl === undefined) return [];
  return checked(() => {
    if (typeof acl === 'string') {
      if (!Object.hasOwn(ACL_PRESETS, acl)) throw invalid(`acl must be one of ${Object.keys(ACL_PRESETS).map((k) => `'${k}'`).join(', ')} or an array of { perms, scheme, id }, got ${describe(acl)}`);
      return ACL_PRESETS[acl];
    }
    if (!Array.isArray(acl) || acl.length === 0) throw invalid(`acl must be a preset name or a non-empty array of { perms, scheme, id }, got ${describe(acl)}`);
    return Array.from(acl, (entry, i) => {
      const where = `acl[${i}]`;
      if (entry === null || typeof entry !== 'object') throw invalid(`${where} must be an object { perms, scheme, id }, got ${describe(entry)}`);
      for (const k of Object.keys(entry)) if (!['perms', 'scheme', 'id'].includes(k)) throw invalid(`${where}: unknown key ${describe(k)} (known: perms, scheme, id)`);
      const { scheme, id } = entry;
      if (typeof scheme !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(scheme)) throw invalid(`${where}.scheme must be a scheme name such as "digest", "world", "auth", "ip", got ${describe(scheme)}`);
      if (typeof id !== 'string') throw invalid(`${where}.id must be a string, got ${describe(id)}`);
      // The commonest mistake, and one that would put a password into the server's ACL: an id
      // that is "user:password" instead of the digest. Do not echo it.
      if (scheme === 'digest' && !/^[^:]+:[A-Za-z0-9+/]{27}=$/.test(id)) {
        throw invalid(`${where}.id of a digest entry must be "user:" + base64(sha1("user:password")), not the password itself: build it with ZooKeeper.digestId(user, password)`);
      }
      return { perms: readPerms(entry.perms, where), scheme, id };
    });
  }, 'acl');
}

const OPTION_NAMES = ['connect', 'timeout', 'debug_level', 'host_order_deterministic', 'connectTimeout', 'requestTimeout', 'reconnectAfterExpiry', 'lostAfter', 'auth', 'acl', 'sasl', 'tls', 'logger', 'session'];

/**
 * The `session` option (a session to resume): `{ id, password }`, the id in hex (what
 * `zk.znodes.sessionId()` gives), the password in hex or as bytes (`sessionPassword()`).
 * Messages never show the password.
 */
function readSession(session) {
  if (session === undefined) return undefined;
  return checked(() => {
    if (session === null || typeof session !== 'object' || Array.isArray(session)) throw invalid(`session must be an object { id, password } (a session to resume), got ${describe(session)}`);
    for (const k of Object.keys(session)) if (!['id', 'password'].includes(k)) throw invalid(`session: unknown key ${describe(k)} (known: id, password)`);
    const { id, password } = session;
    if (typeof id !== 'string' || !/^[0-9a-fA-F]{1,16}$/.test(id) || /^0+$/.test(id)) throw invalid(`session.id must be a session id in hex (1 to 16 digits, not 0), got ${describe(id)}`);
    let bytes;
    if (typeof password === 'string' && /^([0-9a-fA-F]{2})+$/.test(password)) bytes = Buffer.from(password, 'hex');
    else if (password instanceof Uint8Array) bytes = Buffer.from(password);
    else throw invalid('session.password must be the session\'s password in hex or as bytes');
    if (bytes.length !== 16) throw invalid(`session.password must be 16 bytes (32 hex digits; ZooKeeper's session passwords), got ${bytes.length} bytes`);
    return { id: id.toLowerCase(), password: bytes };
  }, 'session');
}

const LOGGER_METHODS = ['debug', 'info', 'warn', 'error'];

/** The `logger` option: undefined, or an object with debug/info/warn/error functions (console, pino, winston). */
function checkLogger(logger) {
  if (logger === undefined) return undefined;
  return checked(() => {
    if (logger === null || (typeof logger !== 'object' && typeof logger !== 'function')) throw invalid(`logger must be an object with ${LOGGER_METHODS.join('/')} methods, got ${describe(logger)}`);
    for (const m of LOGGER_METHODS) {
      if (typeof logger[m] !== 'function') throw invalid(`logger.${m} must be a function (a logger has ${LOGGER_METHODS.join(', ')}), got ${describe(logger[m])}`);
    }
    return logger;
  }, 'logger');
}

/**
 * The native log callback of a client with a logger: `logger[level](message, fields)`, called as
 * a method (pino and winston need their `this`). A logger that throws loses that record; it
 * never crashes the process (this runs outside any caller's stack).
 */
function logRecords(logger) {
  return (json) => {
    try {
      const { level, message, fields } = JSON.parse(json);
      logger[level](message, fields);
    } catch {
      // a broken logger must not take the process down
    }
  };
}

const open = new Set();
let lastConstructed = null;
let exitHookInstalled = false;

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // When the event loop runs dry (the script is done), close what is still open so its session
  // ends cleanly and its ephemeral nodes go at once: the tutorial's script never calls close().
  process.on('beforeExit', () => {
    if (open.size === 0) return;
    Promise.all([...open].map((zk) => zk.close().catch(() => {}))).catch(() => {});
  });
  // process.exit() skips beforeExit: close synchronously so no session (and lock) outlives us.
  // All clients at once, in one bound (2 s): one after another, a frozen server made an exit
  // with 10 clients take 20 s. Clients whose close() is still in flight are among them: that
  // close may not have run yet, and closing twice is harmless (the second waits for the first).
  process.on('exit', () => {
    if (open.size === 0) return;
    const clients = [...open];
    try {
      native.closeAllSync(clients.filter((c) => c instanceof ZooKeeper).map((zk) => zk._native.id));
    } catch {
      // exiting anyway
    }
    try {
      // Etcd clients: their leases revoked, all at once, in one 2 s bound.
      native.closeEtcdSync(clients.filter((c) => !(c instanceof ZooKeeper)).map((c) => c._native.id));
    } catch {
      // exiting anyway
    }
  });
}

/** Longest a closeOnSignals handler waits for close() before letting the signal end the process. */
const SIGNAL_CLOSE_MAX_MS = 5000;

/**
 * The close() calls closeOnSignals handlers started, per signal: the signal is re-raised once
 * every one of them settled (or SIGNAL_CLOSE_MAX_MS passed), not when the first did, so a
 * client whose close is slower is not cut off by another's.
 */
const signalCloses = new Map();

/**
 * Ends the process by `sig` as if it had not been caught, unless a listener of the service's is
 * still there (then that one decides). Once per signal and process, however many clients.
 */
function reraise(sig) {
  if (process.listenerCount(sig) > 0) return;
  process.kill(process.pid, sig);
}

/**
 * A ZooKeeper session with locks and a key-value store. Accepts the tutorial's options.
 */
/** How a connect string's source reads in an error message. */
const CONNECT_SOURCES = {
  connect: 'the `connect` option',
  ZK_CONNECT: 'ZK_CONNECT (environment variable)',
  ZKTX_CONNECT_OVERRIDE: 'ZKTX_CONNECT_OVERRIDE (environment variable)',
};
// Dot-separated labels, optionally ending in the root dot of a fully qualified name
// (`zk-0.zk-hs.ns.svc.cluster.local.`: Kubernetes configs write it to skip resolv.conf's search
// domains; zookeeper-client and getaddrinfo take it as is).
const LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?';
const HOSTNAME = new RegExp(`^(?=.{1,254}$)${LABEL}(?:\\.${LABEL})*\\.?$`);
const IPV6 = /^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/;
// Characters ZooKeeper refuses in a path (PathUtils.validatePath).
const BAD_PATH_CHAR = /[\u0000-\u001f\u007f-\u009f\ud800-\uf8ff\ufff0-\uffff]/;

/**
 * INVALID_ARGUMENT unless `c` is a ZooKeeper connect string, `host[:port][,host[:port]...][/chroot]`
 * (ports 1-65535, 2181 when left out; IPv6 hosts in brackets), naming the string and where it
 * came from (`source`: the option or an environment variable). Checked here, in the
 * constructor, rather than at the first call, where zookeeper-client's "invalid address" names
 * neither. Returns the string as the core gets it: each host trimmed (as ZooKeeper's own
 * ConnectStringParser does), so that what is accepted here is what zookeeper-client parses.
 */
function checkConnectString(c, source) {
  const where = CONNECT_SOURCES[source] || source;
  const bad = (why) => invalid(`${where} is not a ZooKeeper connect string: ${why}; expected "host:port[,host:port...][/chroot]", e.g. "zk1:2181,zk2:2181/app", got ${describe(c)}`);
  if (typeof c !== 'string') throw bad('not a string');
  checkWellFormed(c, where);
  if (c.trim() === '') throw bad('it is empty');
  const scheme = /^\s*([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(c);
  if (scheme) throw bad(`a URL scheme ("${scheme[1]}://") is not part of it`);
  const slash = c.indexOf('/');
  const hosts = slash === -1 ? c : c.slice(0, slash);
  const chroot = slash === -1 ? '' : c.slice(slash);
  const trimmed = [];
  for (const raw of hosts.split(',')) {
    const h = raw.trim();
    trimmed.push(h);
    if (h === '') throw bad('it has an empty host (a stray comma?)');
    let host = h;
    let port;
    if (h.startsWith('[')) {
      const close = h.indexOf(']');
      if (close === -1) throw bad(`host ${JSON.stringify(h)} opens "[" without "]"`);
      host = h.slice(1, close);
      const rest = h.slice(close + 1);
      if (rest !== '' && !rest.startsWith(':')) throw bad(`host ${JSON.stringify(h)} has ${JSON.stringify(rest)} after "]"`);
      if (rest !== '') port = rest.slice(1);
      if (!IPV6.test(host)) throw bad(`${JSON.stringify(host)} in ${JSON.stringify(h)} is not an IPv6 address`);
    } else {
      const colon = h.lastIndexOf(':');
      if (colon !== -1) {
        host = h.slice(0, colon);
        port = h.slice(colon + 1);
      }
      if (host.includes(':')) throw bad(`host ${JSON.stringify(h)} has several ":" (write an IPv6 address in brackets: "[::1]:2181")`);
      if (!HOSTNAME.test(host)) throw bad(`${JSON.stringify(host)} in ${JSON.stringify(h)} is not a host name or address`);
    }
    if (port !== undefined && !(/^[0-9]{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) {
      throw bad(`port ${JSON.stringify(port)} of ${JSON.stringify(h)} is not a number from 1 to 65535`);
    }
  }
  if (chroot !== '' && chroot !== '/') {
    if (chroot.endsWith('/')) throw bad(`chroot ${JSON.stringify(chroot)} ends with "/"`);
    const names = chroot.slice(1).split('/');
    if (names.some((n) => n === '')) throw bad(`chroot ${JSON.stringify(chroot)} has an empty node name ("//")`);
    if (names.some((n) => n === '.' || n === '..')) throw bad(`chroot ${JSON.stringify(chroot)} has a relative node name ("." or "..")`);
    if (BAD_PATH_CHAR.test(chroot)) throw bad(`chroot ${JSON.stringify(chroot)} has a character ZooKeeper refuses in a path`);
    if (chroot.includes(',')) throw bad(`chroot ${JSON.stringify(chroot)} has a "," (hosts go before the chroot)`);
  }
  return trimmed.join(',') + chroot;
}

class ZooKeeper extends EventEmitter {
  constructor(userOptions) {
    super();
    const options = readOptions(userOptions, OPTION_NAMES);
    const checkConnect = checkConnectString;
    // Explicit beats the environment (as libpq's parameters beat PGHOST): ZK_CONNECT only fills
    // in a missing `connect`. ZKTX_CONNECT_OVERRIDE, opt-in and named for it, beats both: it runs
    // code that hardcodes its connect string (the tutorial) against another ensemble.
    if (options.connect !== undefined) checkConnect(options.connect, 'connect'); // even when overridden
    const { ZKTX_CONNECT_OVERRIDE, ZK_CONNECT } = process.env;
    const [given, source] = ZKTX_CONNECT_OVERRIDE ? [ZKTX_CONNECT_OVERRIDE, 'ZKTX_CONNECT_OVERRIDE']
      : options.connect !== undefined ? [options.connect, 'connect']
        : ZK_CONNECT ? [ZK_CONNECT, 'ZK_CONNECT']
          : ['localhost:2181', 'connect'];
    const connect = checkConnect(given, source); // trimmed: the core gets what was checked
    const timeout = options.timeout === undefined ? 30000 : options.timeout;
    if (typeof timeout !== 'number' || !(timeout > 0 && timeout <= MAX_WAIT_MS)) throw invalid(`timeout must be a positive number of milliseconds up to ${MAX_WAIT_MS}, got ${describe(timeout)}`);
    const level = options.debug_level === undefined ? LOG_LEVELS.ZOO_LOG_LEVEL_WARN : options.debug_level;
    if (!Number.isInteger(level) || level < 0 || level > 4) throw invalid(`debug_level must be one of ZooKeeper.ZOO_LOG_LEVEL_*, got ${describe(level)}`);
    for (const k of ['host_order_deterministic', 'reconnectAfterExpiry']) {
      if (options[k] !== undefined && typeof options[k] !== 'boolean') throw invalid(`${k} must be a boolean, got ${describe(options[k])}`);
    }
    const logger = checkLogger(options.logger);
    const { lostAfter } = options;
    if (lostAfter !== undefined && !(typeof lostAfter === 'number' && lostAfter > 0 && lostAfter <= 1)) {
      throw invalid(`lostAfter must be a fraction of the session timeout in (0, 1], got ${describe(lostAfter)}`);
    }
    this._native = callSync(() => new native.NativeClient({
      connect,
      timeoutMs: timeout,
      connectTimeoutMs: checkTimeout(options.connectTimeout, 'connectTimeout'),
      requestTimeoutMs: checkTimeout(options.requestTimeout, 'requestTimeout'),
      hostOrderDeterministic: options.host_order_deterministic === true,
      reconnectAfterExpiry: options.reconnectAfterExpiry !== false,
      lostAfter,
      logLevel: level,
      auth: readAuth(options.auth),
      acl: readAcl(options.acl),
      sasl: readSasl(options.sasl),
      tls: readTls(options.tls),
      resume: readSession(options.session),
    }));
    this.connectString = connect;
    this._closed = false;
    if (logger !== undefined) callSync(() => this._native.setLogger(logRecords(logger)));
    callSync(() => this._native.onState((state) => {
      if (channels.sessionState.hasSubscribers) channels.sessionState.publish({ zk: this, state, connectString: this.connectString });
      this.emit('state', state);
    }));
    open.add(this);
    lastConstructed = this;
    installExitHook();
  }

  /**
   * The latest session event: `NOT_CONNECTED`, `CONNECTED`, `SUSPENDED`, `RECONNECTED`,
   * `EXPIRED` or `CLOSED`. Listen with `zk.on('state', (state) => ...)`.
   */
  get state() {
    return callSync(() => this._native.state);
  }

  /** Establishes the session now (otherwise the first call does). */
  connect() {
    return call(() => this._native.connect());
  }

  /** Closes the session; the server deletes its lock nodes at once. Idempotent. */
  async close() {
    this._closed = true;
    if (this._coordinators) for (const c of this._coordinators) c.close();
    if (lastConstructed === this) lastConstructed = null;
    // Stays in `open` until closed: a process.exit() meanwhile (its close queued behind other
    // calls, or a service's signal listener exiting) must still close it in the exit hook.
    try {
      await call(() => this._native.close());
    } finally {
      open.delete(this);
    }
  }

  /**
   * Opt-in: on any of `signals` (default SIGTERM and SIGINT), close this client, so its locks go
   * at once instead of at session expiry, then let the signal end the process as it would have:
   * re-raised once no other listener for it is left (the service's own handler, if any, decides
   * instead). A second signal during the close gets Node's default: it ends the process at once.
   * Returns a function that removes the handlers. zktx installs none by itself.
   */
  closeOnSignals(signals = ['SIGTERM', 'SIGINT']) {
    const list = checked(() => {
      if (!Array.isArray(signals) || signals.length === 0) throw invalid(`signals must be a non-empty array of signal names, got ${describe(signals)}`);
      return stringsOf(signals, (sig) => {
        if (typeof sig !== 'string' || !Object.hasOwn(osConstants.signals, sig)) throw invalid(`unknown signal ${describe(sig)}`);
      });
    }, 'signals');
    const undo = () => {
      for (const sig of list) process.removeListener(sig, onSignal);
    };
    const onSignal = (sig) => {
      undo();
      if (!signalCloses.has(sig)) signalCloses.set(sig, new Set());
      const pending = signalCloses.get(sig);
      // Every client's handler runs in this same emit, before any close can settle: all closes
      // run together, within one SIGNAL_CLOSE_MAX_MS.
      const closing = this.close().catch(() => {});
      pending.add(closing);
      const deadline = setTimeout(() => reraise(sig), SIGNAL_CLOSE_MAX_MS);
      closing.finally(() => {
        clearTimeout(deadline);
        pending.delete(closing);
        if (pending.size === 0) reraise(sig);
      });
    };
    for (const sig of list) process.on(sig, onSignal);
    return undo;
  }

  /** `await using zk = new ZooKeeper(...)` closes the session at scope exit. */
  [Symbol.asyncDispose]() {
    return this.close();
  }

  /**
   * Internal (the `zktx` CLI): a znode's data (UTF-8) and its Stat, or null when absent; a read
   * of `zk.znodes`, the raw API.
   */
  async _znode(path) {
    try {
      const { data, stat } = await this.znodes.getData(path);
      return { ...stat, ephemeralOwner: `0x${stat.ephemeralOwner}`, data: data.toString('utf8') };
    } catch (err) {
      if (err.code === 'NONODE') return null;
      throw err;
    }
  }

  /** Acquires the exclusive lock at `path` (an absolute znode path). */
  lock(path, options) {
    return this._acquire('exclusive', path, undefined, options);
  }

  _acquire(kind, path, permits, options) {
    return traceAsync(tracing.lock, () => ({ zk: this, path, paths: [path], kind, permits }), () => this._acquireUntraced(kind, path, permits, options));
  }

  async _acquireUntraced(kind, path, permits, options) {
    const opts = checkCallOptions(options, ['timeout', 'signal']);
    checkPath(path, 'lock path');
    const timeout = checkTimeout(opts.timeout);
    const start = performance.now();
    if (channels.lockAcquire.hasSubscribers) channels.lockAcquire.publish({ zk: this, path, kind, timeout });
    let nativeLock;
    try {
      nativeLock = await withSignal(opts.signal, (id) => call(() => this._native.acquire(kind, path, permits, timeout, id)));
      const refused = delivered([nativeLock], path);
      if (refused) await refused;
    } catch (err) {
      if (channels.lockFailed.hasSubscribers) channels.lockFailed.publish({ zk: this, path, kind, error: err, waitMs: performance.now() - start });
      throw err;
    }
    return acquired(new Lock(nativeLock, kind, this), start);
  }

  /** A read-write lock at `path`: many readers or one writer, writers not starved. */
  readWriteLock(path) {
    checkPath(path, 'lock path');
    return {
      path,
      readLock: traced((options) => this._acquire('read', path, undefined, options), 'readLock'),
      writeLock: traced((options) => this._acquire('write', path, undefined, options), 'writeLock'),
    };
  }

  /** A counting semaphore at `path` with `permits` leases (every user must pass the same number). */
  semaphore(path, permits) {
    checkPath(path, 'semaphore path');
    if (!Number.isInteger(permits) || permits < 1 || permits > 10000) throw invalid(`permits must be an integer from 1 to 10000, got ${describe(permits)}`);
    return { path, permits, acquire: traced((options) => this._acquire('lease', path, permits, options), 'acquire') };
  }

  /** Exclusive locks on all `paths`, all or nothing, acquired in sorted order (no deadlock). */
  multiLock(paths, options) {
    return traceAsync(tracing.lock, () => ({ zk: this, path: Array.isArray(paths) ? paths[0] : undefined, paths, kind: 'multi' }), () => this._multiLockUntraced(paths, options));
  }

  async _multiLockUntraced(paths, options) {
    const opts = checkCallOptions(options, ['timeout', 'signal']);
    const list = checked(() => {
      if (!Array.isArray(paths) || paths.length === 0) throw invalid(`multiLock needs a non-empty array of lock paths, got ${describe(paths)}`);
      return stringsOf(paths, checkPath, 'lock path');
    }, 'paths');
    const timeout = checkTimeout(opts.timeout);
    const start = performance.now();
    if (channels.lockAcquire.hasSubscribers) for (const path of list) channels.lockAcquire.publish({ zk: this, path, kind: 'exclusive', timeout });
    let natives;
    try {
      natives = await withSignal(opts.signal, (id) => call(() => this._native.multiLock(list, timeout, id)));
      const refused = delivered(natives, list.join(', '));
      if (refused) await refused;
    } catch (err) {
      if (channels.lockFailed.hasSubscribers) for (const path of list) channels.lockFailed.publish({ zk: this, path, kind: 'exclusive', error: err, waitMs: performance.now() - start });
      throw err;
    }
    return new MultiLock(natives.map((n) => acquired(new Lock(n, 'exclusive', this), start)));
  }

  /** Runs `fn(lock)` while holding the lock at `path`; always releases. */
  async withLock(path, fn, options) {
    if (typeof fn !== 'function') throw invalid('withLock needs a function');
    const lock = await this._acquire('exclusive', path, undefined, options);
    try {
      return await settle(fn(lock), 'withLock result');
    } finally {
      await lock._release();
    }
  }

  /**
   * Runs `fn(tx)` as an optimistic multi-key transaction and commits its writes in one `multi`.
   * On a conflict `fn` runs again with fresh reads (it must have no side effects outside `tx`).
   * Resolves what `fn` returned.
   */
  transaction(fn, options) {
    return traceAsync(tracing.transaction, () => ({ zk: this, id: options !== null && typeof options === 'object' ? options.id : undefined }), () => this._transactionUntraced(fn, options));
  }

  async _transactionUntraced(fn, options) {
    const opts = checkCallOptions(options, ['retries', 'signal', 'isolation', 'lock', 'id', 'idempotent']);
    if (typeof fn !== 'function') throw invalid('transaction needs a function');
    const retries = opts.retries === undefined ? 10 : opts.retries;
    if (!Number.isInteger(retries) || retries < 0 || retries > MAX_RETRIES) throw invalid(`retries must be an integer from 0 to ${MAX_RETRIES}, got ${describe(retries)}`);
    const isolation = opts.isolation === undefined ? 'serializable' : opts.isolation;
    if (!ISOLATIONS.includes(isolation)) throw invalid(`isolation must be one of ${ISOLATIONS.join(', ')}, got ${describe(isolation)}`);
    const locks = opts.lock === undefined ? [] : nativeLocks(opts.lock, this._backend);
    if (opts.id !== undefined && (typeof opts.id !== 'string' || opts.id === '')) throw invalid('id must be a non-empty string');
    if (opts.id !== undefined) checkWellFormed(opts.id, 'id');
    if (opts.id !== undefined && Buffer.byteLength(opts.id, 'utf8') > MAX_KEY_BYTES) {
      throw invalid(`transaction id is ${Buffer.byteLength(opts.id, 'utf8')} bytes of UTF-8; the limit is ${MAX_KEY_BYTES}`);
    }
    if (opts.idempotent !== undefined && typeof opts.idempotent !== 'boolean') throw invalid(`idempotent must be a boolean, got ${describe(opts.idempotent)}`);
    const id = opts.id === undefined ? randomUUID() : opts.id;
    const marker = opts.id !== undefined || opts.idempotent === true ? id : undefined;
    const start = performance.now();
    // The first error after which a commit of this call may have applied (outcome unknown). From
    // then on the call never reports `not_applied`: only the id's marker can settle it.
    let uncertain;
    for (let attempt = 0; ; attempt++) {
      if (opts.signal && isAborted(opts.signal)) return this._settleFailure(aborted('transaction was aborted', opts.signal), marker, uncertain);
      if (channels.transactionAttempt.hasSubscribers) channels.transactionAttempt.publish({ zk: this, id, attempt });
      const tx = new Transaction(callSync(() => this._native.transaction()), id, attempt);
      for (const n of locks) callSync(() => tx._native.addLock(n));
      let result;
      try {
        result = await settle(fn(tx), 'transaction result');
      } catch (err) {
        // With an id, a function that throws may be a replay seeing what the id's commit left:
        // the recorded result wins. A read refused with CONFLICT is retried below.
        if (!tx._conflict) return this._settleFailure(err, marker, uncertain, true);
      } finally {
        tx._done = true;
      }
      try {
        if (tx._conflict) throw tx._conflict;
        const r = await call(() => tx._native.commit([...tx._writes.values()], isolation, marker, marker === undefined ? undefined : recordable(result)));
        tx.committed = {
          zxid: r.zxid ?? undefined,
          versions: Object.fromEntries(r.versions.map((v) => [v.key, v.version])),
          reads: Object.fromEntries(r.reads.map((v) => [v.key, v.version])),
          roundTrips: r.roundTrips,
          alreadyApplied: r.alreadyApplied,
        };
        if (channels.transactionCommit.hasSubscribers) {
          channels.transactionCommit.publish({ zk: this, id, attempts: attempt + 1, retries: attempt, keys: [...tx._writes.keys()], zxid: tx.committed.zxid, alreadyApplied: r.alreadyApplied, durationMs: performance.now() - start });
        }
        // An earlier commit with this id applied (a retry after a lost answer, or a replay):
        // nothing was applied now, and this run's result, computed from the state that commit
        // left, is not what was committed. Resolve with the result that commit recorded.
        if (r.alreadyApplied) return recordedResult(r.recordedResult, marker);
        return result;
      } catch (err) {
        // With an id marker, a commit whose outcome is unknown can be retried: it applies at most once.
        const unknown = marker !== undefined && err.outcome === 'unknown';
        if (unknown && uncertain === undefined) uncertain = err;
        const retryable = err.code === 'CONFLICT' || unknown;
        if (err.code === 'CONFLICT' && channels.transactionConflict.hasSubscribers) {
          channels.transactionConflict.publish({ zk: this, id, attempt, keys: [...tx._writes.keys()], error: err, willRetry: attempt < retries });
        }
        if (!retryable) return this._settleFailure(err, marker, uncertain);
        if (attempt >= retries) {
          if (err.code === 'CONFLICT') err.message = `${err.message} (gave up after ${attempt + 1} attempts)`;
          return this._settleFailure(err, marker, uncertain);
        }
        try {
          await sleep(callSync(() => native.retryDelayMs(attempt)), opts.signal);
        } catch (abort) {
          return this._settleFailure(abort, marker, uncertain);
        }
      }
    }
  }

  /**
   * How `transaction()` ends after `err`. Without an id: rejects with `err`. With one (`marker`),
   * the id's marker decides when something may have applied — an earlier attempt whose outcome
   * was unknown (`uncertain`), or (`fromFn`) a function that threw, as a replay may on the state
   * the id's commit left: marker present, resolve its recorded result; absent after an unknown
   * outcome, reject with outcome `unknown` (that commit may still apply: retry with the same id,
   * which applies at most once); unreadable, reject with outcome `unknown`.
   */
  async _settleFailure(err, marker, uncertain, fromFn = false) {
    if (marker === undefined || (uncertain === undefined && !fromFn)) throw err;
    let record;
    try {
      record = await call(() => this._native.transactionRecord(marker));
    } catch (readErr) {
      throw new ZktxError(readErr.code, `${uncertain === undefined ? 'the transaction function threw' : `a commit of transaction ${JSON.stringify(marker)} may have applied (${uncertain.message})`}, and its id's marker could not be read (${readErr.message}): whether it applied is unknown; retry with the same id, which applies at most once`, 'unknown', { cause: fromFn ? err : readErr });
    }
    if (record.applied) return recordedResult(record.resultJson, marker);
    if (uncertain === undefined) throw err;
    if (err instanceof ZktxError) {
      err.message = `${err.message} (after an attempt whose commit outcome is unknown: ${uncertain.message}; its id's marker is not there yet, but that commit may still apply: retry with the same id, which applies at most once)`;
      err.outcome = 'unknown';
      throw err;
    }
    throw new ZktxError(uncertain.code, `a commit of transaction ${JSON.stringify(marker)} has an unknown outcome (${uncertain.message}) and the retry's function threw: retry with the same id, which applies at most once`, 'unknown', { cause: err });
  }

  /**
   * Deletes the idempotence markers (`{ id }` / `idempotent: true` transactions) created more than
   * `olderThanMs` ago; resolves how many. Ages use the server's creation time against this
   * machine's clock: keep the margin well above clock skew and any retry window.
   */
  pruneTransactionIds(olderThanMs) {
    try {
      checkTimeout(olderThanMs, 'olderThanMs', MAX_PRUNE_AGE_MS);
      if (olderThanMs === undefined) throw invalid('olderThanMs is required');
    } catch (err) {
      return Promise.reject(err);
    }
    return call(() => this._native.pruneTransactionIds(olderThanMs));
  }

  /**
   * Compacts tombstones in two phases: marks those of keys deleted more than `olderThanMs` ago
   * (server clock), removes marks older than `olderThanMs`; resolves `{ marked, removed,
   * skipped }` (`skipped`: `[{ key, reason }]` of tombstones that cannot be removed, such as one
   * with a child node another client created). Deleting a key leaves a tombstone so its version
   * never restarts (no lost update through delete + re-create); run this now and then to bound
   * their number. `olderThanMs` must be at least 600000 (10 min): transactions older than 5 min
   * are refused at commit.
   */
  compactTombstones(olderThanMs) {
    try {
      checkTimeout(olderThanMs, 'olderThanMs', MAX_PRUNE_AGE_MS);
      if (olderThanMs === undefined) throw invalid('olderThanMs is required');
    } catch (err) {
      return Promise.reject(err);
    }
    return call(() => this._native.compactTombstones(olderThanMs));
  }

  /** Lists the children of a znode, sorted (e.g. a lock path's queue); `[]` when absent. */
  children(path) {
    try {
      checkPath(path, 'path');
    } catch (err) {
      return Promise.reject(err);
    }
    return call(() => this._native.children(path));
  }

  /** The raw ZooKeeper API on this client's session: znodes by path, Stats, ACLs, multi, watches. */
  get znodes() {
    if (!this._znodes) Object.defineProperty(this, '_znodes', { value: new Znodes(this) });
    return this._znodes;
  }

  /** Reads `key`; `undefined` when absent. */
  async get(key) {
    checkKey(key);
    const v = await call(() => this._native.get(key));
    return v == null ? undefined : JSON.parse(v.json);
  }

  /** Writes `key`; with `{ lock }`, only while that lock is still held (fenced). Resolves the new version. */
  async set(key, value, options) {
    const opts = checkCallOptions(options, ['lock']);
    checkKey(key);
    const json = encodeValue(value);
    if (opts.lock !== undefined) {
      const natives = nativeLocks(opts.lock, this._backend);
      const fence = callSync(() => this._native.fence());
      for (const n of natives) callSync(() => fence.add(n));
      return call(() => fence.set(key, json));
    }
    return call(() => this._native.set(key, json));
  }

  /**
   * Locks `key`, computes the new value (a value, or `updater(current)`, may be async), writes it
   * fenced on the lock, releases. Resolves `{ key, value, previous, version, token }`.
   */
  executeTransaction(key, valueOrUpdater, options) {
    return traceAsync(tracing.executeTransaction, () => ({ zk: this, key }), () => this._executeTransactionUntraced(key, valueOrUpdater, options));
  }

  async _executeTransactionUntraced(key, valueOrUpdater, options) {
    const opts = checkCallOptions(options, ['timeout', 'signal']);
    checkKey(key);
    const timeout = checkTimeout(opts.timeout);
    if (!channels.executeTransactionStart.hasSubscribers && !channels.executeTransactionCommit.hasSubscribers && !channels.executeTransactionError.hasSubscribers) {
      return this._keyTransaction(key, valueOrUpdater, opts, timeout);
    }
    const start = performance.now();
    channels.executeTransactionStart.publish({ zk: this, key });
    try {
      const r = await this._keyTransaction(key, valueOrUpdater, opts, timeout);
      channels.executeTransactionCommit.publish({ zk: this, key, version: r.version, token: r.token, zxid: r.zxid, durationMs: performance.now() - start });
      return r;
    } catch (err) {
      channels.executeTransactionError.publish({ zk: this, key, error: err, durationMs: performance.now() - start });
      throw err;
    }
  }

  /** executeTransaction once its arguments are checked. */
  async _keyTransaction(key, valueOrUpdater, opts, timeout) {
    const inside = updaterContext.getStore();
    if (inside && inside.zk === this && inside.keys.has(key)) {
      throw new ZktxError('ALREADY_HELD', `executeTransaction(${JSON.stringify(key)}) called from inside its own updater would wait for itself: this client holds that key's lock until the updater returns`);
    }
    if (typeof valueOrUpdater !== 'function') {
      const json = encodeValue(valueOrUpdater);
      const r = await withSignal(opts.signal, (id) => call(() => this._native.executeTransaction(key, json, timeout, id)));
      return committed(r);
    }
    const tx = await withSignal(opts.signal, (id) => call(() => this._native.begin(key, timeout, id)));
    let json;
    try {
      const keys = new Set(inside && inside.zk === this ? inside.keys : []).add(key);
      const next = await updaterContext.run({ zk: this, keys }, () => settle(valueOrUpdater(decode(callSync(() => tx.currentJson))), 'updater result'));
      json = encodeValue(next, 'updater result');
    } catch (err) {
      // The updater's error is the answer: nothing was written. A release etcd or ZooKeeper did
      // not confirm is retried in the background (and ends with the session at the latest); its
      // CONNECTIONLOSS, outcome 'unknown', would hide the caller's error and suggest a write.
      await call(() => tx.abort()).catch(() => {});
      throw err;
    }
    return committed(await call(() => tx.commit(json)));
  }
}

/**
 * Null if every one of `natives`, just acquired, provably holds now, else a promise that rejects
 * LOCK_LOST once they are released (or half a second passed): held means an
 * etcd lock's lease renewed within `lostAfter` × TTL, a ZooKeeper lock's session shown alive by
 * an answer to a request made within `lostAfter` × the session timeout (at least 300 ms, at most
 * the TTL / 0.9 × the timeout). The
 * acquisition was decided on zktx's I/O thread some time before this continuation runs, and a
 * process paused in between (SIGSTOP, a long GC) past its lease took the lock while the next
 * contender held it (etcd-waiter-attacks: 2 of 8 rounds under load).
 */
function delivered(natives, what) {
  if (natives.every((n) => callSync(() => n.provablyHeld))) return null;
  // The rejection waits for the release (at most half a second; etcd silent, it goes on in the
  // background): until etcd confirms the delete the path stays registered, and acquiring again
  // at once, as the error says, was ALREADY_HELD (etcd-delivered-attacks: 5 of 5 rounds).
  const releases = Promise.all(natives.map((n) => call(() => n.release()).catch(() => {})));
  const err = new ZktxError('LOCK_LOST', `lock ${what}: acquired, but its session (ZooKeeper) or lease (etcd) could not be shown alive when the acquisition was delivered (the process was paused, or the server silent, past lostAfter): released; acquire again`, 'not_applied');
  return Promise.race([releases, new Promise((r) => setTimeout(r, 500).unref())]).then(() => { throw err; });
}

/** Publishes `zktx:lock:acquired` (and watches for loss when someone listens for it). */
function acquired(lock, start) {
  if (channels.lockAcquired.hasSubscribers) {
    channels.lockAcquired.publish({ zk: lock._zk, path: lock.path, kind: lock._kind, nodePath: lock.nodePath, token: lock.token, waitMs: lock._acquiredAt - start, queuePosition: callSync(() => lock._native.queuePosition) ?? undefined });
  }
  if (channels.lockLost.hasSubscribers && !lock._loss) {
    // Watching costs a request per lock (about +30% on a short lock cycle): watch only locks
    // held long enough for a loss to matter. A node deleted before the watch starts is found
    // gone when it starts, so nothing is missed but the loss of a lock released within the delay.
    lock._lossTimer = setTimeout(() => {
      lock._lossTimer = undefined;
      if (!lock._releaseReported) lock._watchLoss();
    }, LOSS_WATCH_DELAY_MS);
    lock._lossTimer.unref();
  }
  return lock;
}

/** How long a lock is held before a zktx:lock:lost subscriber makes zktx watch it for loss. */
const LOSS_WATCH_DELAY_MS = 1000;

function committed(r) {
  return { key: r.key, value: JSON.parse(r.json), previous: decode(r.previousJson), version: r.version, token: r.token, zxid: r.zxid ?? undefined };
}

/** JSON text of a transaction's result for its idempotence marker; undefined if JSON cannot carry it or it is over 64 KiB. */
/** The result an id's marker recorded (JSON text, or none); a marker another client overwrote is INVALID_ARGUMENT. */
function recordedResult(json, id) {
  if (json == null) return undefined;
  try {
    return JSON.parse(json);
  } catch (err) {
    throw new ZktxError('INVALID_ARGUMENT', `transaction id ${JSON.stringify(id)} was applied, but its marker holds data zktx did not write (not JSON): its result cannot be returned`, 'not_applied', { cause: err });
  }
}

function recordable(result) {
  if (result === undefined) return undefined;
  try {
    const json = JSON.stringify(result);
    return json !== undefined && Buffer.byteLength(json) <= 64 * 1024 ? json : undefined;
  } catch {
    return undefined;
  }
}

function callSync(fn) {
  try {
    return fn();
  } catch (err) {
    throw fromNative(err);
  }
}

const { Coordinator, PostgresParticipant, createBarrierTable, barrier } = require('./coordinator')({
  ZktxError, call, callSync, invalid, describe, errorText, Transaction, checkTimeout,
});

/**
 * A transaction coordinator for work across services (PostgreSQL databases, HTTP sagas), with
 * ZooKeeper recording every decision: see README "Transactions across services".
 */
ZooKeeper.prototype.coordinator = function coordinator(name, options) {
  if (this._closed) throw new ZktxError('CLIENT_CLOSED', 'client is closed');
  const c = new Coordinator(this, name, options);
  (this._coordinators ||= new Set()).add(c);
  return c;
};

Object.assign(ZooKeeper, LOG_LEVELS);
/** Which locks a fenced write accepts: this backend's. */
ZooKeeper.prototype._backend = 'zookeeper';

const { Election, Leadership } = require('./election')({
  ZktxError, Lock, call, callSync, invalid, describe, checkPath, checkWellFormed, readOptions, checkCallOptions, checkTimeout, withSignal, isAborted, traceMethods,
});

/**
 * A leader election at `path` (Curator's LeaderLatch layout), in which this client takes part as
 * `options.id`: see docs/election.md. Nothing is sent until a call.
 */
ZooKeeper.prototype.election = function election(path, options) {
  if (this._closed) throw new ZktxError('CLIENT_CLOSED', 'client is closed');
  return new Election(this, path, options);
};

const { Znodes } = require('./znode')({
  ZktxError, call, callSync, fromNative, invalid, describe, checked, checkPath, checkWellFormed, readAcl, readOptions, native,
});
traceMethods(Znodes, ['create', 'getData', 'exists', 'getChildren', 'setData', 'delete', 'getAcl', 'setAcl', 'multi', 'sync', 'addAuth', 'sessionId', 'sessionPassword', 'addWatch', 'treeCache']);

/**
 * The tutorial's call: uses the most recently constructed client (a ZooKeeper, or an Etcd), else
 * a ZooKeeper from ZK_CONNECT (or localhost:2181).
 */
const executeTransaction = traced(function executeTransaction(key, valueOrUpdater, options) {
  try {
    checkKey(key); // before opening a client for it
    if (!lastConstructed || lastConstructed._closed) new ZooKeeper(); // connects to ZK_CONNECT, else localhost:2181
  } catch (err) {
    return Promise.reject(err);
  }
  return lastConstructed._executeTransaction(key, valueOrUpdater, options);
}, 'executeTransaction');

traceMethods(ZooKeeper, ['connect', 'close', 'lock', 'multiLock', 'withLock', 'transaction', 'pruneTransactionIds', 'compactTombstones', 'children', 'get', 'set', 'executeTransaction']);
traceMethods(Lock, ['release', 'isHeld']);
traceMethods(MultiLock, ['release', 'isHeld']);
traceMethods(Transaction, ['get', 'getMany']);

const { Etcd } = require('./etcd')({
  ZktxError, call, callSync, invalid, describe, readOptions, readTls, checkTimeout, native, channels, open, installExitHook, MAX_WAIT_MS, ZooKeeper, traceMethods,
  // The tutorial's executeTransaction() uses the client constructed last, of either backend.
  constructed: (client) => { lastConstructed = client; },
  closing: (client) => { if (lastConstructed === client) lastConstructed = null; },
});
Object.assign(Etcd, LOG_LEVELS);

module.exports = { ZooKeeper, Etcd, ZktxError, Lock, MultiLock, Election, Leadership, Transaction, FencingTokenGuard, Znodes, executeTransaction, Coordinator, PostgresParticipant, createBarrierTable, barrier, ...LOG_LEVELS };
module.exports.default = ZooKeeper;
ZooKeeper.digestId = digestId;
