'use strict';
// Leader election: `zk.election(path, { id })` (crates/zktx-core/src/recipe/election.rs through
// src/election.rs). Curator's LeaderLatch node layout, so zktx and Java services using
// LeaderLatch on one path agree on the leader. Leadership is a Lock on the candidate's node: its
// token fences writes, its signal aborts on loss, resign() releases it. Built by index.js, which
// passes its helpers.

const { EventEmitter } = require('node:events');

module.exports = function electionFacade(z) {
  const { ZktxError, Lock, call, callSync, invalid, describe, checkPath, checkWellFormed, readOptions, checkCallOptions, checkTimeout, withSignal, isAborted, traceMethods } = z;

  /** The longest participant id, in UTF-8 bytes (MAX_PARTICIPANT_ID_BYTES in election.rs). */
  const MAX_ID_BYTES = 16 * 1024;

  /** Leaderships garbage-collected without resign() (the native side released them). */
  const forgotten = new FinalizationRegistry(({ election, candidacy }) => {
    const e = election.deref();
    if (e) e._ended(candidacy);
  });

  /** A thrown value as text, whatever it is (its own toString may throw). */
  function describeThrown(err) {
    try {
      return err !== null && typeof err === 'object' && typeof err.message === 'string' ? err.message : String(err);
    } catch {
      return 'a value that cannot be printed';
    }
  }

  const participant = (p) => ({ id: p.id, node: p.node, isLeader: p.isLeader });

  /** `{ leader, participants }` from the native list (the leader first). */
  function snapshot(list) {
    const participants = list.map(participant);
    const lead = participants.find((p) => p.isLeader);
    return { leader: lead ? { id: lead.id, node: lead.node } : null, participants };
  }

  /**
   * This process's leadership of an election: a {@link Lock} on its candidate node (`token`
   * fences writes, `signal` aborts on loss, `{ lock: leadership }` works wherever a lock does).
   */
  class Leadership extends Lock {
    constructor(nativeLock, election, candidacy) {
      super(nativeLock, 'leadership', election._zk);
      /** The participant id this process leads as. */
      this.id = election.id;
      this._end = () => election._ended(candidacy);
    }

    /** Gives leadership up: deletes the candidate node, so the next candidate leads. Idempotent. */
    async resign() {
      try {
        await Lock.prototype._release.call(this);
      } finally {
        this._end();
      }
    }

    /** The same as `resign()` (a Leadership is a Lock). */
    release() {
      return this.resign();
    }

    /** `await using leadership = await election.lead()` resigns at scope exit. */
    [Symbol.asyncDispose]() {
      return this.resign();
    }

    /** Asks the server whether this process still leads (its node exists). */
    isLeader() {
      return this._isHeld();
    }
  }

  /**
   * A leader election at one path, for one participant id. `lead()` takes part; `leader()`,
   * `participants()`, `watch()` and the `leader` / `participants` events observe.
   */
  class Election extends EventEmitter {
    constructor(zk, path, options) {
      super();
      checkPath(path, 'election path');
      const opts = readOptions(options, ['id']);
      const id = opts.id === undefined ? '' : opts.id;
      if (typeof id !== 'string') throw invalid(`id must be a string, got ${describe(id)}`);
      checkWellFormed(id, 'id');
      if (Buffer.byteLength(id, 'utf8') > MAX_ID_BYTES) throw new ZktxError('TOO_LARGE', `participant id is ${Buffer.byteLength(id, 'utf8')} bytes of UTF-8; the limit is ${MAX_ID_BYTES}`);
      Object.defineProperty(this, '_zk', { value: zk });
      this._native = callSync(() => zk._native.election(path, id));
      /** The election's path. */
      this.path = path;
      /** This participant's id (its candidate node's data, as Curator's LeaderLatch writes it). */
      this.id = id;
      this._candidacy = null;
      this._observer = null;
      /** The last `{ leader, participants }` the events delivered (undefined: none yet). */
      this._last = undefined;
      /** How many times each event was emitted by the observer (a late listener's catch-up). */
      this._emitted = { leader: 0, participants: 0 };
      /** The controllers of the watch() iterators not ended yet: close() ends them. */
      this._watches = new Set();
      this.on('newListener', (name, listener) => {
        if (name !== 'leader' && name !== 'participants') return;
        const seen = this._emitted[name];
        queueMicrotask(() => {
          // "The current state first": a listener added while events already flow gets the
          // last state at once, alone (the others have it), unless an emit reached it meanwhile.
          if (this._observer && this._last !== undefined && this._emitted[name] === seen) this._catchUp(name, listener);
          this._observe();
        });
      });
      this.on('removeListener', () => {
        if (this.listenerCount('leader') + this.listenerCount('participants') === 0) this._stopObserving();
      });
    }

    /** Takes part and resolves with the {@link Leadership} once this participant leads. */
    async lead(options) {
      const opts = checkCallOptions(options, ['timeout', 'signal']);
      const timeout = checkTimeout(opts.timeout);
      if (this._candidacy) {
        throw new ZktxError('ALREADY_HELD', `this election object already takes part in ${this.path} (lead() pending, or leadership not resigned or lost): one candidacy per object; use another zk.election() for a second candidate`);
      }
      const candidacy = {};
      this._candidacy = candidacy;
      let nativeLock;
      try {
        nativeLock = await withSignal(opts.signal, (id) => call(() => this._native.lead(timeout, id)));
      } catch (err) {
        this._candidacy = null;
        throw err;
      }
      const leadership = new Leadership(nativeLock, this, candidacy);
      // Watched at once: the signal must fire on loss even if nobody read it before. The
      // candidacy ends synchronously on abort, in a listener registered before any of the
      // caller's: lead() again from the caller's own 'abort' handler is accepted. The listener
      // holds the candidacy, never the leadership: one garbage-collected without resign() is
      // still released by the native side (Lock's Drop), and frees this object.
      const election = new WeakRef(this);
      leadership.signal.addEventListener('abort', () => {
        const e = election.deref();
        if (e) e._ended(candidacy);
      }, { once: true });
      forgotten.register(leadership, { election: new WeakRef(this), candidacy });
      return leadership;
    }

    /** A candidacy resigned, lost or forgotten: this object may take part again. */
    _ended(candidacy) {
      if (this._candidacy === candidacy) this._candidacy = null;
    }

    /** The current leader, `{ id, node }`, or `null` when nobody takes part. */
    async leader() {
      return snapshot(await call(() => this._native.participants())).leader;
    }

    /** Every candidate, the leader first: `[{ id, node, isLeader }]`. */
    async participants() {
      return (await call(() => this._native.participants())).map(participant);
    }

    /**
     * An async iterator of `{ leader, participants }`: the current state first, then once per
     * change of the candidates. Ends on `signal`, `break` (`return()`, even while a `next()` is
     * pending), `election.close()`, or when the client closes. Connection loss is waited out
     * (the first read too); it rejects only on errors that last (`SESSIONEXPIRED` without
     * `reconnectAfterExpiry`, `NOAUTH`).
     */
    watch(options) {
      const opts = checkCallOptions(options, ['signal']);
      return new Watching(this, opts.signal);
    }

    /** Emits `participants` on every change and `leader` when the leader changes. */
    async _observe() {
      if (this._observer || this.listenerCount('leader') + this.listenerCount('participants') === 0) return;
      const controller = new AbortController();
      this._observer = controller;
      this._last = undefined;
      let last; // the leader's node seen last (undefined: nothing seen yet)
      try {
        for await (const state of this.watch({ signal: controller.signal })) {
          if (this._observer !== controller) break; // stopped meanwhile (a newer observer may run)
          this._last = state;
          this._deliver('participants', state.participants);
          const node = state.leader ? state.leader.node : null;
          if (node !== last) {
            last = node;
            this._deliver('leader', state.leader);
          }
        }
      } catch (err) {
        // Only errors that last end the events (connection loss is waited out by watch()).
        if (this._observer === controller && this.listenerCount('error') > 0) this.emit('error', err);
      } finally {
        if (this._observer === controller) {
          this._observer = null;
          this._last = undefined;
        }
      }
    }

    /** Emits to every listener of `name`, each on its own: one that throws stops neither the others nor the events. */
    _deliver(name, value) {
      this._emitted[name] += 1;
      for (const listener of this.rawListeners(name)) this._call(listener, value);
    }

    /** Delivers the last state to one listener just added (if it is still there). */
    _catchUp(name, listener) {
      // The last match: the one just added (an earlier registration of the same function has the state).
      const raw = this.rawListeners(name).findLast((l) => l === listener || l.listener === listener);
      if (raw) this._call(raw, name === 'leader' ? this._last.leader : this._last.participants);
    }

    _call(listener, value) {
      try {
        listener.call(this, value);
      } catch (err) {
        // A bug in the caller's listener: reported, not swallowed, and the others still run.
        // Not rethrown: an uncaught exception would end every listener's events (the process).
        // A string warning, not an Error: an Error of another realm (vm, Jest) is refused.
        try {
          process.emitWarning(`a listener of the events of election ${this.path} threw (the events go on): ${describeThrown(err)}`, {
            type: 'ZktxListenerWarning',
            code: 'ZKTX_LISTENER_THREW',
            detail: err !== null && typeof err === 'object' && typeof err.stack === 'string' ? err.stack : undefined,
          });
        } catch {
          // reporting must never stop the events
        }
      }
    }

    _stopObserving() {
      if (this._observer) {
        this._observer.abort();
        this._observer = null;
      }
    }

    /**
     * Stops the `leader` / `participants` events. Does not resign: leadership is given up with
     * `leadership.resign()` (or `zk.close()`).
     */
    close() {
      this._stopObserving();
      for (const controller of [...this._watches]) controller.abort();
    }
  }

  /**
   * The iterator of `election.watch()`: hand-written, not an async generator, so that
   * `return()` (what `break` calls) ends it at once even while a `next()` is pending: it aborts
   * the internal controller, which cancels the native wait, and the pending `next()` resolves
   * `{ done: true }`.
   */
  class Watching {
    constructor(election, signal) {
      this._election = election;
      this._controller = new AbortController();
      this._known = undefined; // node names of the last state (undefined: none yet)
      this._done = false;
      this._queue = Promise.resolve(); // next() calls run one after another
      this._signal = signal;
      this._onAbort = () => this._end();
      if (signal !== undefined) {
        if (isAborted(signal)) this._done = true;
        else signal.addEventListener('abort', this._onAbort, { once: true });
      }
      if (!this._done) election._watches.add(this._controller);
    }

    [Symbol.asyncIterator]() {
      return this;
    }

    next() {
      const step = this._queue.then(() => this._step());
      this._queue = step.then(() => {}, () => {});
      return step;
    }

    async _step() {
      if (this._done) return { value: undefined, done: true };
      const election = this._election;
      const signal = this._controller.signal;
      let list;
      try {
        list = await withSignal(signal, (id) => call(() => (this._known === undefined
          ? election._native.current(id)
          : election._native.changed(this._known, id))));
      } catch (err) {
        if (this._done || (err instanceof ZktxError && err.code === 'CLIENT_CLOSED')) {
          this._end();
          return { value: undefined, done: true };
        }
        this._end();
        throw err;
      }
      if (this._done) return { value: undefined, done: true };
      this._known = list.map((p) => p.node);
      return { value: snapshot(list), done: false };
    }

    /** Ends the iterator now (a pending `next()` resolves `{ done: true }`). */
    return(value) {
      this._end();
      return Promise.resolve({ value, done: true });
    }

    throw(err) {
      this._end();
      return Promise.reject(err);
    }

    _end() {
      if (this._done && !this._election._watches.has(this._controller)) return;
      this._done = true;
      this._election._watches.delete(this._controller);
      if (this._signal !== undefined) {
        try {
          this._signal.removeEventListener('abort', this._onAbort);
        } catch {
          // a signal that throws here cannot fire any more either
        }
      }
      this._controller.abort();
    }
  }

  traceMethods(Leadership, ['resign', 'isLeader']);
  traceMethods(Election, ['lead', 'leader', 'participants']);

  return { Election, Leadership };
};
