'use strict';
// The raw ZooKeeper API: `zk.znodes`. Znodes by absolute path, data as Buffers, Stats, ACLs, a
// raw multi, sync and one-shot watches, on the client's own session (crates/zktx-core/src/
// znode.rs through src/znode.rs). Kept apart from zktx's JSON key-value store on purpose: a key
// of the store is a name (`zk.get('config')`), a znode is a path (`zk.znodes.getData('/config')`),
// and the store refuses keys that look like paths. Built by index.js, which passes its helpers.

const { EventEmitter } = require('node:events');

module.exports = function znodeFacade(z) {
  const { ZktxError, call, callSync, fromNative, invalid, describe, checked, checkPath, readAcl, readOptions, native } = z;

  const MODES = ['persistent', 'ephemeral', 'container'];
  /** ZooKeeper's limit on a TTL (its id space), in ms. */
  const TTL_MAX_MS = 0xffffffffff;
  const WATCH_KINDS = new Set(['created', 'deleted', 'changed', 'children', 'expired', 'closed', 'aborted']);

  /**
   * The native call `fn`, its result through `map`, its errors as ZktxErrors: `call` without the
   * async function's extra turns (the hot path of every read and write, issue 19).
   */
  function callThen(fn, map) {
    let p;
    try {
      p = fn();
    } catch (err) {
      return Promise.reject(fromNative(err));
    }
    return p.then(map, (err) => { throw fromNative(err); });
  }

  /** Bytes of a packed stat (src/znode.rs STAT_BYTES and put_stat: the two change together). */
  const STAT_BYTES = 88;

  /** The stat packed at `at` of `b` (10 f64 LE, then the ephemeral owner as u64 LE). */
  function statAt(b, at) {
    const lo = b.readUInt32LE(at + 80);
    const hi = b.readUInt32LE(at + 84);
    return {
      czxid: b.readDoubleLE(at), mzxid: b.readDoubleLE(at + 8), pzxid: b.readDoubleLE(at + 16),
      ctime: b.readDoubleLE(at + 24), mtime: b.readDoubleLE(at + 32),
      version: b.readDoubleLE(at + 40), cversion: b.readDoubleLE(at + 48), aversion: b.readDoubleLE(at + 56),
      ephemeralOwner: hi === 0 ? lo.toString(16) : hi.toString(16) + lo.toString(16).padStart(8, '0'),
      dataLength: b.readDoubleLE(at + 64), numChildren: b.readDoubleLE(at + 72),
    };
  }

  /** getData's Buffer: the data (a view, offset 0), then the packed stat. */
  const dataOf = (b) => ({ data: b.subarray(0, b.length - STAT_BYTES), stat: statAt(b, b.length - STAT_BYTES) });
  const statOf = (b) => statAt(b, 0);
  const existsOf = (b) => ({ stat: b ? statAt(b, 0) : null });

  /** `data` as a Buffer: a Buffer / Uint8Array as is, a string as UTF-8, undefined / null as empty. */
  function toData(data, what = 'data') {
    if (data === undefined || data === null) return Buffer.alloc(0);
    if (Buffer.isBuffer(data)) return data;
    if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (typeof data === 'string') {
      z.checkWellFormed(data, what);
      return Buffer.from(data, 'utf8');
    }
    throw invalid(`${what} must be a Buffer, a Uint8Array or a string, got ${describe(data)}`);
  }

  function checkVersion(version, what = 'version') {
    if (version === undefined) return undefined;
    if (!Number.isInteger(version) || version < -1 || version > 2147483647) throw invalid(`${what} must be an integer from -1 (any) to 2^31-1, got ${describe(version)}`);
    return version;
  }

  function checkSignal(signal) {
    if (signal === undefined) return undefined;
    checked(() => {
      if (!(signal && typeof signal.addEventListener === 'function' && typeof signal.removeEventListener === 'function' && 'aborted' in signal)) {
        throw invalid(`signal must be an AbortSignal, got ${describe(signal)}`);
      }
    }, 'signal');
    return signal;
  }

  /** The native create options from `{ mode, sequential, ttl, acl }`. */
  function createOptions(opts, where = 'options') {
    const mode = opts.mode === undefined ? 'persistent' : opts.mode;
    if (!MODES.includes(mode)) throw invalid(`${where}.mode must be one of ${MODES.map((m) => `'${m}'`).join(', ')}, got ${describe(mode)}`);
    if (opts.sequential !== undefined && typeof opts.sequential !== 'boolean') throw invalid(`${where}.sequential must be a boolean, got ${describe(opts.sequential)}`);
    const sequential = opts.sequential === true;
    if (sequential && mode === 'container') throw invalid(`${where}: a container node cannot be sequential`);
    let ttlMs;
    if (opts.ttl !== undefined) {
      if (mode !== 'persistent') throw invalid(`${where}.ttl is only for persistent nodes (mode 'persistent'), got mode ${describe(mode)}`);
      if (!Number.isInteger(opts.ttl) || opts.ttl < 1 || opts.ttl > TTL_MAX_MS) throw invalid(`${where}.ttl must be an integer number of milliseconds from 1 to ${TTL_MAX_MS}, got ${describe(opts.ttl)}`);
      ttlMs = opts.ttl;
    }
    const acl = opts.acl === undefined ? undefined : readAcl(opts.acl);
    return { mode: sequential ? `${mode}_sequential` : mode, ttlMs, acl };
  }

  /** Adds `err.index` (the failing operation) to a multi's error. */
  function withIndex(err) {
    const m = err && typeof err.message === 'string' ? /multi op (\d+)/.exec(err.message) : null;
    if (m) err.index = Number(m[1]);
    return err;
  }

  /**
   * A one-shot watch: `[callback for the native call, promise of the event, cancel id]`. The
   * promise resolves once (never rejects): a node event, or `expired` / `closed` / `aborted`.
   */
  function oneShot(path, signal, listener) {
    let resolve;
    const event = new Promise((r) => { resolve = r; });
    let cancelId;
    let onAbort;
    if (signal) {
      cancelId = callSync(() => native.newCancel());
      onAbort = () => callSync(() => native.cancel(cancelId));
      signal.addEventListener('abort', onAbort, { once: true });
    }
    // Every path out (the event, or the read failing so no watch was set) lets go of the
    // caller's signal: a long-lived signal must not collect a listener per read.
    let released = false;
    const release = () => {
      if (!signal || released) return;
      released = true;
      signal.removeEventListener('abort', onAbort);
      callSync(() => native.dropCancel(cancelId));
    };
    const cb = (text) => {
      const s = typeof text === 'string' ? text : '';
      const bar = s.indexOf('|');
      const type = bar === -1 ? s : s.slice(0, bar);
      release();
      const ev = { type: WATCH_KINDS.has(type) ? type : 'closed', path: bar === -1 || s.slice(bar + 1) === '' ? path : s.slice(bar + 1) };
      resolve(ev);
      if (listener) {
        try {
          listener(ev);
        } catch (err) {
          process.nextTick(() => { throw err; }); // the caller's bug, reported as any callback's would be
        }
      }
    };
    return { cb, event, cancelId, release };
  }

  /** Runs a watched read: its result gets `watch` (the promise of the event) when asked for. */
  async function watchedRead(path, opts, run) {
    if (!opts.watch) return run(undefined, undefined);
    const signal = checkSignal(opts.signal);
    if (signal && signal.aborted) throw new ZktxError('ABORTED', 'watch aborted before it was set', 'not_applied', { cause: signal.reason });
    const w = oneShot(path, signal, typeof opts.watch === 'function' ? opts.watch : undefined);
    try {
      const r = await run(w.cb, w.cancelId);
      r.watch = w.event;
      return r;
    } catch (err) {
      w.release();
      throw err;
    }
  }

  function readOpts(options, allowed) {
    const opts = readOptions(options, allowed);
    if (opts.watch !== undefined && typeof opts.watch !== 'boolean' && typeof opts.watch !== 'function') throw invalid(`watch must be a boolean or a function (called with the event), got ${describe(opts.watch)}`);
    if (opts.signal !== undefined && !opts.watch) throw invalid('signal cancels a watch: pass it with { watch: true } or { watch: listener }');
    return opts;
  }

  /** Rejects with what `f` throws (argument checks) instead of throwing synchronously. */
  const rejecting = (f) => {
    try {
      return f();
    } catch (err) {
      return Promise.reject(err);
    }
  };

  const PERSISTENT_KINDS = new Set(['created', 'deleted', 'changed', 'children', 'resync', 'closed', 'ended', 'aborted']);
  const LAST = new Set(['closed', 'ended', 'aborted']);

  /**
   * A persistent watch, as an async iterator of events and as an EventEmitter: node events,
   * `resync` after it was set again (re-read), and last `closed` / `ended` / `aborted` (then the
   * iteration ends). Each event is emitted twice: under its type (`'changed'`, `'resync'`, ...)
   * and as `'event'`. The iterator's queue only holds events while nobody listens or an
   * iteration is under way, so a watch used only through listeners does not collect them.
   */
  class PersistentWatch extends EventEmitter {
    constructor(path, cancelId, signal, onAbort) {
      super();
      this.path = path;
      this._cancelId = cancelId;
      this._signal = signal;
      this._onAbort = onAbort;
      this._queue = [];
      this._waiters = [];
      this._done = false;
      this._iterating = false;
    }

    /** True once the watch has ended (its last event came). */
    get ended() {
      return this._done;
    }

    _push(text) {
      const s = typeof text === 'string' ? text : '';
      const bar = s.indexOf('|');
      const type = bar === -1 ? s : s.slice(0, bar);
      const rest = bar === -1 ? '' : s.slice(bar + 1);
      const event = type === 'resync' ? { type, reason: rest, path: this.path } : { type: PERSISTENT_KINDS.has(type) ? type : 'closed', path: rest || this.path };
      if (LAST.has(event.type)) this._finish();
      const w = this._waiters.shift();
      if (w) w({ value: event, done: false });
      else if (this._iterating || this.listenerCount('event') + this.listenerCount(event.type) === 0) this._queue.push(event);
      if (this._done) for (const waiter of this._waiters.splice(0)) waiter({ value: undefined, done: true });
      // A listener that throws must not stop the other listeners' events, nor the iterator's:
      // its error goes to the process as an uncaught exception, as a timer callback's would.
      this._emitSafely(event.type, event);
      this._emitSafely('event', event);
    }

    _emitSafely(name, event) {
      if (this.listenerCount(name) === 0) return;
      try {
        this.emit(name, event);
      } catch (err) {
        process.nextTick(() => { throw err; });
      }
    }

    _finish() {
      if (this._done) return;
      this._done = true;
      if (this._signal) this._signal.removeEventListener('abort', this._onAbort);
      callSync(() => native.dropCancel(this._cancelId));
    }

    /** Removes the watch; the iteration ends (after an `aborted` event). */
    close() {
      if (!this._done) callSync(() => native.cancel(this._cancelId));
    }

    next() {
      this._iterating = true;
      if (this._queue.length > 0) return Promise.resolve({ value: this._queue.shift(), done: false });
      if (this._done) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => this._waiters.push(resolve));
    }

    /** `break` out of `for await`: removes the watch. */
    return() {
      this.close();
      this._queue.length = 0;
      return Promise.resolve({ value: undefined, done: true });
    }

    [Symbol.asyncIterator]() {
      return this;
    }
  }

  /**
   * A local copy of the subtree at `root` (Curator's CuratorCache): an initial snapshot, then
   * kept current by a persistent recursive watch. Every event makes it re-read that node, and a
   * `resync` (reconnect or expiry) re-reads the whole subtree and applies the differences, so it
   * converges to what the server holds. Emits `created`, `changed`, `deleted` (`path`, node) and
   * `resync` once a re-read after a resync is applied.
   */
  class TreeCache extends EventEmitter {
    constructor(znodes, root) {
      super();
      this.root = root;
      this._z = znodes;
      this._nodes = new Map();
      this._chain = Promise.resolve();
      this._watch = undefined;
      this._closed = false;
    }

    /** The cached node at `path`: `{ data, stat }`, or undefined. */
    get(path) {
      return this._nodes.get(path);
    }

    /** Every cached path, sorted. */
    paths() {
      return [...this._nodes.keys()].sort();
    }

    /** The direct children cached under `path` (names, sorted). */
    children(path) {
      const prefix = path === '/' ? '/' : `${path}/`;
      return this.paths().filter((p) => p.startsWith(prefix) && p !== path && !p.slice(prefix.length).includes('/')).map((p) => p.slice(prefix.length));
    }

    /** Stops watching. */
    close() {
      this._closed = true;
      if (this._watch) this._watch.close();
    }

    /**
     * Runs `work` after all work queued before it. A failure (a timeout while disconnected) is
     * reported as `error` when someone listens, and repaired by a full re-read, retried with a
     * backoff (0.5 s doubling to 30 s, reset by a re-read that succeeds): the cache never settles
     * on a state it could not confirm, and a failure that lasts does not load the server.
     */
    _enqueue(work) {
      this._chain = this._chain.then(work).catch((err) => {
        if (this._closed) return;
        if (this.listenerCount('error') > 0) this.emit('error', err);
        this._failures = (this._failures || 0) + 1;
        const delay = Math.min(500 * 2 ** (this._failures - 1), 30000);
        setTimeout(() => { if (!this._closed) this._enqueue(() => this._reload()); }, delay).unref();
      });
      return this._chain;
    }

    /**
     * A node below the root this session may not read (NOAUTH): left out of the cache (ZooKeeper
     * sends no events about it either; an ACL change sends none) and reported as `error` (code
     * NOAUTH, `path`) at each full read, instead of failing the read, and the retry, forever.
     */
    _unreadable(path, err) {
      this._remove(path);
      // Next turn: one found by the first load reaches a listener added once treeCache() resolved.
      setImmediate(() => { if (!this._closed && this.listenerCount('error') > 0) this.emit('error', Object.assign(err, { path })); });
    }

    _set(path, node) {
      const old = this._nodes.get(path);
      if (old && old.stat.czxid === node.stat.czxid && old.stat.mzxid >= node.stat.mzxid && old.stat.pzxid >= node.stat.pzxid) return;
      this._nodes.set(path, node);
      this.emit(old && old.stat.czxid === node.stat.czxid ? 'changed' : 'created', path, node);
    }

    _remove(path) {
      const prefix = `${path}/`;
      for (const p of [...this._nodes.keys()]) {
        if (p === path || p.startsWith(prefix)) {
          const node = this._nodes.get(p);
          this._nodes.delete(p);
          this.emit('deleted', p, node);
        }
      }
    }

    /** Re-reads one node (after an event about it). */
    async _refresh(path) {
      try {
        const { data, stat } = await this._z._getData(path);
        this._set(path, { data, stat });
      } catch (err) {
        if (err.code === 'NOAUTH' && path !== this.root) return this._unreadable(path, err);
        if (err.code !== 'NONODE') throw err;
        this._remove(path);
      }
    }

    /** Reads the whole subtree and applies the differences. */
    async _reload() {
      const seen = new Map();
      const unreadable = [];
      const walk = async (path) => {
        let node;
        let children;
        try {
          const [d, c] = await Promise.all([this._z._getData(path), this._z._getChildren(path)]);
          node = { data: d.data, stat: d.stat };
          children = c.children;
        } catch (err) {
          if (err.code === 'NONODE') return; // deleted meanwhile: its event comes later
          if (err.code === 'NOAUTH' && path !== this.root) return void unreadable.push([path, err]);
          throw err;
        }
        seen.set(path, node);
        await Promise.all(children.map((c) => walk(path === '/' ? `/${c}` : `${path}/${c}`)));
      };
      await walk(this.root);
      for (const p of [...this._nodes.keys()]) if (!seen.has(p) && this._nodes.has(p)) this._remove(p);
      for (const [p, node] of seen) this._set(p, node);
      this._failures = 0;
      for (const [p, err] of unreadable) this._unreadable(p, err);
    }

    async _run() {
      for await (const ev of this._watch) {
        if (ev.type === 'created' || ev.type === 'changed') this._enqueue(() => this._refresh(ev.path));
        else if (ev.type === 'deleted') this._enqueue(() => this._remove(ev.path));
        else if (ev.type === 'resync') this._enqueue(async () => { await this._reload(); this.emit('resync', ev.reason); });
      }
    }
  }

  /** The raw ZooKeeper API of one client: see index.d.ts `Znodes`. */
  class Znodes {
    constructor(zk) {
      Object.defineProperty(this, '_zk', { value: zk });
    }

    get _native() {
      if (!this._n) Object.defineProperty(this, '_n', { value: callSync(() => this._zk._native.znodes()) });
      return this._n;
    }

    create(path, data, options) {
      return rejecting(() => {
        checkPath(path, 'path');
        const opts = readOptions(options, ['mode', 'sequential', 'ttl', 'acl']);
        const bytes = toData(data);
        const native = createOptions(opts);
        return callThen(() => this._native.create(path, bytes, native), undefined);
      });
    }

    getData(path, options) {
      return rejecting(() => {
        checkPath(path, 'path');
        const opts = readOpts(options, ['watch', 'signal']);
        return watchedRead(path, opts, (cb, id) => callThen(() => this._native.getData(path, cb, id), dataOf));
      });
    }

    exists(path, options) {
      return rejecting(() => {
        checkPath(path, 'path');
        const opts = readOpts(options, ['watch', 'signal']);
        return watchedRead(path, opts, (cb, id) => callThen(() => this._native.exists(path, cb, id), existsOf));
      });
    }

    getChildren(path, options) {
      return rejecting(() => {
        checkPath(path, 'path');
        const opts = readOpts(options, ['watch', 'signal']);
        return watchedRead(path, opts, (cb, id) => call(() => this._native.getChildren(path, cb, id)).then((r) => ({ children: r.children, stat: r.stat })));
      });
    }

    setData(path, data, options) {
      return rejecting(() => {
        checkPath(path, 'path');
        const opts = readOptions(options, ['version']);
        const bytes = toData(data);
        const version = checkVersion(opts.version);
        return callThen(() => this._native.setData(path, bytes, version), statOf);
      });
    }

    delete(path, options) {
      return rejecting(() => {
        checkPath(path, 'path');
        const opts = readOptions(options, ['version']);
        const version = checkVersion(opts.version);
        return callThen(() => this._native.delete(path, version), () => undefined);
      });
    }

    getAcl(path) {
      return rejecting(() => {
        checkPath(path, 'path');
        return call(() => this._native.getAcl(path));
      });
    }

    setAcl(path, acl, options) {
      return rejecting(() => {
        checkPath(path, 'path');
        const opts = readOptions(options, ['version']);
        const entries = readAcl(acl);
        if (entries.length === 0) throw invalid('acl must not be empty');
        const version = checkVersion(opts.version, 'version (the ACL version)');
        return call(() => this._native.setAcl(path, entries, version));
      });
    }

    multi(ops) {
      return rejecting(() => {
        const list = checked(() => {
          if (!Array.isArray(ops) || ops.length === 0) throw invalid(`ops must be a non-empty array of { op, path, ... }, got ${describe(ops)}`);
          return Array.from(ops, (o, i) => {
            const where = `ops[${i}]`;
            if (o === null || typeof o !== 'object') throw invalid(`${where} must be an object, got ${describe(o)}`);
            const kind = o.op;
            const allowed = { create: ['op', 'path', 'data', 'mode', 'sequential', 'ttl', 'acl'], set: ['op', 'path', 'data', 'version'], delete: ['op', 'path', 'version'], check: ['op', 'path', 'version'] }[kind];
            if (!allowed) throw invalid(`${where}.op must be 'create', 'set', 'delete' or 'check', got ${describe(kind)}`);
            const opts = readOptions(o, allowed);
            checkPath(opts.path, `${where}.path`);
            const out = { op: kind, path: opts.path };
            if (kind === 'create' || kind === 'set') out.data = toData(opts.data, `${where}.data`);
            if (kind === 'create') out.create = createOptions(opts, where);
            if (kind !== 'create') out.version = checkVersion(opts.version, `${where}.version`);
            if (kind === 'check' && (out.version === undefined || out.version < 0)) throw invalid(`${where}.version must be a data version >= 0, got ${describe(opts.version)}`);
            return out;
          });
        }, 'ops');
        return call(() => this._native.multi(list)).then(
          (rs) => rs.map((r) => (r.op === 'create' ? { op: 'create', path: r.path, stat: r.stat } : r.op === 'set' ? { op: 'set', stat: r.stat } : { op: r.op })),
          (err) => { throw withIndex(err); },
        );
      });
    }

    sync(path = '/') {
      return rejecting(() => {
        checkPath(path, 'path');
        return call(() => this._native.sync(path)).then(() => undefined);
      });
    }

    addAuth(scheme, credentials) {
      return rejecting(() => {
        if (typeof scheme !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(scheme)) throw invalid(`scheme must be a scheme name such as "digest", got ${describe(scheme)}`);
        const bytes = toData(credentials, 'credentials');
        return call(() => this._native.addAuth(scheme, bytes)).then(() => undefined);
      });
    }

    sessionId() {
      return call(() => this._native.sessionId());
    }

    sessionPassword() {
      return call(() => this._native.sessionPassword());
    }

    /**
     * A {@link TreeCache} of the subtree at `path`, resolved once its first snapshot is loaded.
     */
    treeCache(path, options) {
      return rejecting(() => {
        checkPath(path, 'path');
        const opts = readOptions(options, ['signal']);
        const signal = checkSignal(opts.signal);
        const cache = new TreeCache(this, path);
        return this._addWatch(path, { recursive: true, signal }).then(async (watch) => {
          cache._watch = watch;
          try {
            // Events during this first read wait in the watch's queue and are applied after it.
            await cache._reload();
          } catch (err) {
            watch.close();
            throw err;
          }
          cache._run();
          return cache;
        });
      });
    }

    addWatch(path, options) {
      return rejecting(() => {
        checkPath(path, 'path');
        const opts = readOptions(options, ['recursive', 'signal']);
        if (opts.recursive !== undefined && typeof opts.recursive !== 'boolean') throw invalid(`recursive must be a boolean, got ${describe(opts.recursive)}`);
        const signal = checkSignal(opts.signal);
        if (signal && signal.aborted) throw new ZktxError('ABORTED', 'watch aborted before it was set', 'not_applied', { cause: signal.reason });
        const cancelId = callSync(() => native.newCancel());
        const onAbort = () => callSync(() => native.cancel(cancelId));
        const watch = new PersistentWatch(path, cancelId, signal, onAbort);
        if (signal) signal.addEventListener('abort', onAbort, { once: true });
        return call(() => this._native.addWatch(path, opts.recursive === true, (text) => watch._push(text), cancelId)).then(() => watch, (err) => {
          watch._finish();
          throw err;
        });
      });
    }
  }

  return { Znodes, PersistentWatch, TreeCache, toData };
};
