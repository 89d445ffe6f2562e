'use strict';
// Transactions across services: the JavaScript side of zktx's coordinator. The protocol (2PC with
// presumed abort, the decision record, recovery, the saga log) runs in the Rust core; it calls
// the participants and saga steps registered here through one dispatch function. Also: the
// PostgreSQL participant (on the user's own `pg` pool) and the PostgreSQL sub-transaction barrier
// for saga steps (DTM's design). Built by index.js, which passes in its error helpers.

const { EventEmitter } = require('node:events');
const diagnostics = require('node:diagnostics_channel');
const { performance } = require('node:perf_hooks');
const { tracing, traceAsync } = require('./tracing');

// Observability, as index.js's channels (README "Observability"): published only with subscribers.
const channels = {
  run: diagnostics.channel('zktx:coordinator:run'),
  saga: diagnostics.channel('zktx:coordinator:saga'),
  recovery: diagnostics.channel('zktx:coordinator:recovery'),
};
/** What a run or saga's error says about its outcome. */
const outcomeOf = (err) => (err.code === 'IN_DOUBT' ? 'in_doubt' : err.code === 'ROLLED_BACK' || err.code === 'CONFLICT' ? 'rolled_back' : 'failed');

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const PARTICIPANT_METHODS = ['prepare', 'commit', 'rollback', 'inDoubt'];
/** PostgreSQL's SQLSTATE for "prepared transaction with identifier ... does not exist". */
const PG_UNDEFINED_OBJECT = '42704';
const DEFAULT_RECOVERY_INTERVAL_MS = 5000;
/** The core's default participant deadline (DEFAULT_PARTICIPANT_TIMEOUT), for begin() here. */
const DEFAULT_PARTICIPANT_TIMEOUT_MS = 30000;
/** Connections of a PostgresParticipant's own pool for COMMIT/ROLLBACK PREPARED (see there). */
const RESOLVER_CONNECTIONS = 2;
/** The table where a PostgreSQL branch records, inside itself, that it committed. */
const COMMIT_TABLE = 'zktx_committed';
/** A gid's txid: `zktx:<coordinator>:<id>:<txid>:<participant>`. */
const txidOfGid = (gid) => gid.split(':').at(-2);
const MAX_PRUNE_AGE_MS = 10 * 365 * 24 * 3600 * 1000;

module.exports = function coordinatorFacade(z) {
  const { ZktxError, call, callSync, invalid, describe, errorText, Transaction, checkTimeout } = z;

  function checkName(name, what) {
    if (typeof name !== 'string' || !NAME.test(name)) throw invalid(`${what} must be 1 to 64 characters of [A-Za-z0-9_.-], got ${describe(name)}`);
    return name;
  }

  function readParticipants(participants) {
    const map = new Map();
    if (participants === undefined) return map;
    if (participants === null || typeof participants !== 'object' || Array.isArray(participants)) {
      throw invalid(`participants must be an object { name: participant }, got ${describe(participants)}`);
    }
    for (const [name, p] of Object.entries(participants)) {
      checkName(name, 'participant name');
      for (const m of PARTICIPANT_METHODS) {
        if (!p || typeof p[m] !== 'function') throw invalid(`participant ${name} must have methods ${PARTICIPANT_METHODS.join(', ')} (and optionally begin); ${m} is missing`);
      }
      if (p.begin !== undefined && typeof p.begin !== 'function') throw invalid(`participant ${name}: begin must be a function`);
      map.set(name, p);
    }
    return map;
  }

  function readSagas(sagas) {
    const map = new Map();
    if (sagas === undefined) return map;
    if (sagas === null || typeof sagas !== 'object' || Array.isArray(sagas)) throw invalid(`sagas must be an object { name: [steps] }, got ${describe(sagas)}`);
    for (const [name, steps] of Object.entries(sagas)) {
      checkName(name, 'saga name');
      if (!Array.isArray(steps) || steps.length === 0) throw invalid(`saga ${name} must be a non-empty array of { action, compensate } steps`);
      steps.forEach((s, i) => {
        if (!s || typeof s.action !== 'function' || typeof s.compensate !== 'function') throw invalid(`saga ${name} step ${i} needs action and compensate functions`);
      });
      map.set(name, steps);
    }
    return map;
  }

  /**
   * A transaction coordinator: `zk.coordinator(name, { participants, sagas })`. Every process
   * that registers the same name with the same participants shares its transactions' recovery.
   */
  class Coordinator extends EventEmitter {
    constructor(zk, name, options = {}) {
      super();
      if (options === null || typeof options !== 'object') throw invalid(`coordinator options must be an object, got ${describe(options)}`);
      const unknown = Object.keys(options).filter((k) => !['participants', 'sagas', 'recoveryIntervalMs', 'participantTimeoutMs'].includes(k));
      if (unknown.length) throw invalid(`unknown coordinator option(s): ${unknown.join(', ')}`);
      this.name = checkName(name, 'coordinator name');
      this._participants = readParticipants(options.participants);
      this._sagas = readSagas(options.sagas);
      const interval = options.recoveryIntervalMs === undefined ? DEFAULT_RECOVERY_INTERVAL_MS : checkTimeout(options.recoveryIntervalMs, 'recoveryIntervalMs');
      const participantTimeout = options.participantTimeoutMs === undefined ? undefined : checkTimeout(options.participantTimeoutMs, 'participantTimeoutMs');
      if (participantTimeout === 0) throw invalid('participantTimeoutMs must be more than 0');
      this._participantTimeout = participantTimeout ?? DEFAULT_PARTICIPANT_TIMEOUT_MS;
      /** The last error each transaction's participants or steps threw (the cause of a rollback). */
      this._causes = new Map();
      const sagaDefs = [...this._sagas].map(([n, steps]) => ({ name: n, steps: steps.length }));
      this._native = callSync(() => zk._native.coordinator(this.name, [...this._participants.keys()], sagaDefs, (request) => this._dispatch(request), participantTimeout));
      this._timer = null;
      if (interval > 0) {
        const pass = () => {
          this._recover(0).then(
            (r) => {
              if (r && (r.committed || r.rolledBack || r.aborted || r.compensated)) this.emit('recovery', r);
              if (r && channels.recovery.hasSubscribers) channels.recovery.publish({ coordinator: this, report: r });
            },
            (err) => { if (err.code === 'CLIENT_CLOSED') this.close(); else this.emit('recoveryFailed', err); },
          );
        };
        this._timer = setInterval(pass, interval);
        this._timer.unref();
        setImmediate(pass).unref?.();
      }
    }

    /** Stops background recovery (the client's close() stops it as well). */
    close() {
      if (this._timer) clearInterval(this._timer);
      this._timer = null;
    }

    async _dispatch(request) {
      let req;
      try {
        req = JSON.parse(request);
        let value = null;
        if (req.participant !== undefined) {
          const p = this._participants.get(req.participant);
          if (req.op === 'inDoubt') {
            value = await p.inDoubt();
            if (!Array.isArray(value) || value.some((g) => typeof g !== 'string')) throw new TypeError(`inDoubt() must resolve an array of gid strings, got ${describe(value)}`);
          } else {
            await p[req.op](req.gid);
          }
        } else {
          const step = this._sagas.get(req.saga)[req.step];
          const ctx = sagaContext(req);
          await step[req.op](ctx.input, ctx);
        }
        return JSON.stringify({ ok: value });
      } catch (err) {
        const txid = req && (req.gid ? txidOfGid(req.gid) : req.transaction && req.transaction.split(':').pop());
        if (txid) this._causes.set(txid, err);
        const who = req && req.participant !== undefined ? `participant ${req.participant} ${req.op}` : req ? `saga ${req.saga} step ${req.step} ${req.op}` : 'dispatch';
        return JSON.stringify({ error: `${who}: ${errorText(err)}` });
      }
    }

    _failed(err, txid) {
      if (txid !== undefined) {
        err.txid = txid;
        const cause = this._causes.get(txid);
        if (cause !== undefined && err.cause === undefined) err.cause = cause;
      }
      return err;
    }

    /**
     * Runs `fn(tx)` as one distributed transaction: `await tx.participant(name)` enlists a
     * participant and gives what its `begin(gid)` returns (a `pg` client inside BEGIN for the
     * PostgreSQL participant); `tx.store` reads and writes zktx's own keys. When `fn` resolves,
     * every branch is prepared, the decision is recorded in ZooKeeper or etcd (with the store's writes,
     * in one multi or Txn) and every branch commits; resolves `fn`'s result. If `fn` throws, everything
     * is rolled back and its error is rethrown.
     *
     * Rejects with `ROLLED_BACK` (a branch could not prepare; `err.cause` is its error),
     * `CONFLICT` (a store key changed), or `IN_DOUBT` (this process lost its coordination service before it
     * learned the decision: `err.txid`, then `coordinator.outcome(txid)`).
     */
    run(fn) {
      return traceAsync(tracing.coordinatorRun, () => ({ coordinator: this, name: this.name }), (context) => this._runUntraced(fn, context));
    }

    async _runUntraced(fn, context) {
      if (typeof fn !== 'function') throw invalid('run needs a function');
      const start = performance.now();
      const r = await call(() => this._native.begin());
      const txid = r.txid;
      if (context) context.txid = txid;
      const publish = (outcome, error) => {
        if (channels.run.hasSubscribers) channels.run.publish({ coordinator: this, txid, outcome, error, pending: tx.committed ? tx.committed.pending : [], durationMs: performance.now() - start });
      };
      const tx = new RunContext(this, r, txid);
      let result;
      try {
        result = await fn(tx);
      } catch (err) {
        tx._done = true;
        tx.store._done = true;
        try {
          await call(() => r.rollback());
        } catch {
          // recovery rolls back what is left
        }
        this._causes.delete(txid);
        publish('rolled_back', err);
        throw err;
      }
      tx._done = true;
      tx.store._done = true;
      try {
        const c = await call(() => r.commit([...tx.store._writes.values()]));
        tx.committed = { txid, pending: c.pending, versions: Object.fromEntries(c.versions.map((v) => [v.key, v.version])) };
        publish('committed');
        return result;
      } catch (err) {
        publish(outcomeOf(err), err);
        throw this._failed(err, txid);
      } finally {
        this._causes.delete(txid);
      }
    }

    /**
     * Runs saga `name` on `input` (JSON): each step's `action(input, ctx)` in order; if one
     * fails, `compensate(input, ctx)` of every started step in reverse (each retried; at least
     * once). Resolves the saga's txid; rejects `ROLLED_BACK` (compensated; `err.cause` is the
     * step's error) or `IN_DOUBT` (compensation unfinished; recovery finishes it).
     */
    saga(name, input) {
      return traceAsync(tracing.coordinatorSaga, () => ({ coordinator: this, name: this.name, saga: name }), () => this._sagaUntraced(name, input));
    }

    async _sagaUntraced(name, input) {
      checkName(name, 'saga name');
      if (!this._sagas.has(name)) throw invalid(`coordinator ${this.name} has no saga ${name}`);
      let json;
      try {
        json = JSON.stringify(input === undefined ? null : input);
      } catch (err) {
        throw invalid(`saga input must be JSON-serializable: ${errorText(err)}`, err);
      }
      let txid;
      const start = performance.now();
      const publish = (outcome, error) => {
        if (channels.saga.hasSubscribers) channels.saga.publish({ coordinator: this, saga: name, txid, outcome, error, durationMs: performance.now() - start });
      };
      try {
        txid = await call(() => this._native.runSaga(name, json));
        publish('done');
        return txid;
      } catch (err) {
        const m = /\b([0-9a-f]{32})\b/.exec(err.message);
        txid = m ? m[1] : undefined;
        publish(err.code === 'ROLLED_BACK' ? 'compensated' : outcomeOf(err), err);
        throw this._failed(err, txid);
      } finally {
        if (txid !== undefined) this._causes.delete(txid);
      }
    }

    /**
     * One recovery pass now (waiting up to `waitMs` for another process's pass to end; default:
     * as long as it takes). Resolves `{ committed, rolledBack, aborted, active, compensated,
     * errors }`, or `null` if another process kept the recovery lock past `waitMs`.
     */
    recover(waitMs) {
      try {
        return this._recover(waitMs === undefined ? undefined : checkTimeout(waitMs, 'waitMs'));
      } catch (err) {
        return Promise.reject(err);
      }
    }

    _recover(waitMs) {
      return call(() => this._native.recover(waitMs));
    }

    /**
     * What ZooKeeper or etcd recorded for a transaction, asked by the gid of one of its branches (what a
     * participant lists as prepared) or by its txid: `committed` (decided; any branch not yet
     * committed is committed by recovery), `forgotten` (ended before the horizon of `prune`: its
     * record is gone), `aborted` (recorded, or presumed: no decision and no longer active; only
     * for this coordinator's own transactions), `active`, `unknown` (a bare txid this
     * coordinator did not make and has no record of: it says nothing, ask its own coordinator
     * by gid), or for a saga `saga:done`, `saga:compensated`, `saga:running`,
     * `saga:compensating`. Another coordinator's gid (other name, other tree id) rejects with
     * `INVALID_ARGUMENT`.
     */
    outcome(txid) {
      if (typeof txid !== 'string') return Promise.reject(invalid(`txid must be a string, got ${describe(txid)}`));
      return call(() => this._native.outcome(txid));
    }
  }

  /**
   * Deletes the records of transactions that ended more than `olderThanMs` ago (at least one
   * hour; by ZooKeeper's clock, or on etcd between two prune calls by etcd's): commit decisions whose branches all committed, aborts, finished
   * sagas. Resolves how many. `outcome` then answers `forgotten` for transactions before that
   * horizon, which first moves past the txid time of every record deleted (ahead of the present
   * if a machine's clock ran ahead: until the present passes it, a txid with no record is
   * `forgotten` rather than presumed `aborted`).
   */
  Coordinator.prototype.prune = function prune(olderThanMs) {
    try {
      if (olderThanMs === undefined) throw invalid('prune needs olderThanMs');
      checkTimeout(olderThanMs, 'olderThanMs', MAX_PRUNE_AGE_MS);
    } catch (err) {
      return Promise.reject(err);
    }
    return call(() => this._native.prune(olderThanMs));
  };

  function sagaContext(req) {
    const txid = req.transaction.split(':').pop();
    const ctx = {
      txid,
      transaction: req.transaction,
      branch: req.branch,
      step: req.step,
      op: req.op,
      /** Idempotency key of this step of this saga run (the same for its action and compensation). */
      key: `${req.transaction}:${req.branch}`,
      input: JSON.parse(req.input),
    };
    /** Runs `fn(client)` in a local transaction behind the PostgreSQL barrier (see `barrier`). */
    ctx.barrier = (pool, fn) => barrier(pool, ctx, fn);
    return ctx;
  }

  /** What `fn` of `coordinator.run(fn)` gets. */
  class RunContext {
    constructor(coord, nativeRun, txid) {
      this._coord = coord;
      this._run = nativeRun;
      this._handles = new Map();
      this._done = false;
      /** The transaction id (32 hex digits). */
      this.id = txid;
      /** zktx's own keys: get/getMany/set/create/delete, committed with the decision. */
      this.store = new Transaction(nativeRun, txid, 0);
      /** After a commit: `{ txid, pending, versions }`. */
      this.committed = undefined;
    }

    /**
     * Enlists participant `name` and resolves its handle for this transaction (what its
     * `begin(gid)` returns; the gid if it has no `begin`). Enlisting twice gives the same handle.
     */
    participant(name) {
      if (this._done) return Promise.reject(invalid('transaction is finished: use tx only inside its function'));
      if (!this._handles.has(name)) {
        let handle;
        try {
          const p = this._coord._participants.get(name);
          if (!p) throw invalid(`coordinator ${this._coord.name} has no participant ${describe(name)}`);
          const gid = callSync(() => this._run.enlist(name));
          handle = p.begin ? beginWithin(p, gid, name, this._coord._participantTimeout) : Promise.resolve(gid);
        } catch (err) {
          handle = Promise.reject(err);
        }
        handle.catch(() => {});
        this._handles.set(name, handle);
      }
      return this._handles.get(name);
    }
  }

  /**
   * `p.begin(gid)` under the participant deadline (the core puts it on every other participant
   * call; begin is called from here). Past it: `TIMEOUT` for the function, which then normally
   * throws and the run rolls back; a begin that completes later is the participant's to undo
   * (PostgresParticipant rolls back a branch whose rollback came while it was beginning).
   */
  function beginWithin(p, gid, name, ms) {
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new ZktxError('TIMEOUT', `participant ${name} begin: no answer within ${ms} ms`, 'unknown')), ms);
      timer.unref?.();
    });
    return Promise.race([Promise.resolve().then(() => p.begin(gid)), late]).finally(() => clearTimeout(timer));
  }

  /** Quotes a gid as an SQL literal (gids are [A-Za-z0-9_.:-] only; checked anyway). */
  function gidLiteral(gid) {
    if (typeof gid !== 'string' || !/^[A-Za-z0-9_.:-]{1,200}$/.test(gid)) throw new TypeError(`not a zktx gid: ${describe(gid)}`);
    return `'${gid}'`;
  }

  const ignoreError = () => {};

  /** Gives a branch's client back to its pool (an error destroys it), without our listener. */
  function release(client, err) {
    client.removeListener('error', ignoreError);
    client.release(err);
  }

  /**
   * A PostgreSQL database as a 2PC participant, on your own `pg` Pool (needs
   * `max_prepared_transactions > 0` on the server). `begin(gid)` checks out a client and runs
   * BEGIN; your work runs on it; `prepare` is `PREPARE TRANSACTION gid`, then `COMMIT PREPARED`
   * or `ROLLBACK PREPARED`. Prepared branches survive a server restart; recovery finds them in
   * `pg_prepared_xacts`.
   *
   * Two things beyond the pool's work connections:
   * - A resolver pool (`options.resolver`, default: a pool of 2 made from `pool.options`, which
   *   lets the process exit when idle) for COMMIT/ROLLBACK PREPARED and listing prepared
   *   branches. A prepared branch holds its row locks; if resolving it waited for a work
   *   connection, and every work connection waited for those locks, nothing would move.
   * - A commit record: PREPARE also inserts the gid into `zktx_committed` (created if missing),
   *   inside the branch, so the row exists exactly when the branch committed. A COMMIT PREPARED
   *   that finds nothing prepared checks it instead of assuming "committed earlier".
   */
  class PostgresParticipant {
    constructor(pool, options = {}) {
      if (!pool || typeof pool.connect !== 'function' || typeof pool.query !== 'function') {
        throw invalid(`PostgresParticipant needs a pg Pool (with connect() and query()), got ${describe(pool)}`);
      }
      if (options === null || typeof options !== 'object') throw invalid(`PostgresParticipant options must be an object, got ${describe(options)}`);
      const unknown = Object.keys(options).filter((k) => k !== 'resolver');
      if (unknown.length) throw invalid(`unknown PostgresParticipant option(s): ${unknown.join(', ')}`);
      if (options.resolver !== undefined) {
        if (!options.resolver || typeof options.resolver.query !== 'function') throw invalid(`resolver must be a pg Pool, got ${describe(options.resolver)}`);
        if (options.resolver === pool) throw invalid('resolver must be a pool of its own, not the work pool (that is the deadlock it prevents)');
        this._resolver = options.resolver;
        this._ownsResolver = false;
      } else {
        if (typeof pool.options !== 'object' || pool.options === null || typeof pool.constructor !== 'function') {
          throw invalid('PostgresParticipant needs a pg Pool it can copy its settings from (pool.options), or options.resolver');
        }
        this._resolver = new pool.constructor({ ...pool.options, max: RESOLVER_CONNECTIONS, allowExitOnIdle: true });
        this._resolver.on('error', ignoreError); // an idle resolver connection the server closed
        this._ownsResolver = true;
      }
      this._table = null;
      this._pool = pool;
      /** Branches with work in progress: gid -> client inside BEGIN. */
      this._open = new Map();
      /** Branches whose begin() is still connecting, and those of them already rolled back. */
      this._starting = new Set();
      this._abandoned = new Set();
    }

    async begin(gid) {
      // "Starting" until BEGIN is done: a rollback meanwhile (the run gave up on a begin past
      // its deadline) marks the branch abandoned, and it is rolled back once it has begun.
      this._starting.add(gid);
      let client;
      try {
        client = await this._pool.connect();
        // The pool removes its own 'error' listener from a client it hands out, so a server
        // that ends the connection while the branch sits between statements (a restart, an
        // admin's pg_terminate_backend) would emit an unhandled 'error' and crash the process.
        // Listen while the branch holds the client: its next statement (or PREPARE) fails.
        client.on('error', ignoreError);
        try {
          await client.query('BEGIN');
        } catch (err) {
          release(client, err);
          throw err;
        }
      } catch (err) {
        this._abandoned.delete(gid); // nothing began: nothing to undo
        throw err;
      } finally {
        this._starting.delete(gid);
      }
      if (this._abandoned.delete(gid)) {
        // Rolled back while it connected (a function that did not await tx.participant): a
        // transaction left open here would hold a pooled connection forever.
        await client.query('ROLLBACK').then(() => release(client), (err) => release(client, err));
        throw new Error(`branch ${gid} was rolled back before it began`);
      }
      this._open.set(gid, client);
      return client;
    }

    /** Creates the commit-record table once (on the resolver: never inside a branch). */
    _commitTable() {
      this._table ??= this._resolver.query(`CREATE TABLE IF NOT EXISTS ${COMMIT_TABLE} (gid text PRIMARY KEY, prepared_at timestamptz NOT NULL DEFAULT now())`).catch((err) => {
        // Two processes creating it at once: one gets a duplicate in the catalog; it exists.
        if (err.code === '23505' || err.code === '42P07') return;
        this._table = null;
        throw err;
      });
      return this._table;
    }

    /** Whether the branch `gid` left its commit record (it committed). */
    async _committed(gid) {
      await this._commitTable();
      return (await this._resolver.query(`SELECT 1 FROM ${COMMIT_TABLE} WHERE gid = $1`, [gid])).rowCount === 1;
    }

    async prepare(gid) {
      const client = this._open.get(gid);
      if (!client && this._starting.has(gid)) {
        throw new Error(`branch ${gid} has not begun yet: await tx.participant() inside the transaction's function`);
      }
      if (!client) {
        const r = await this._resolver.query('SELECT 1 FROM pg_prepared_xacts WHERE gid = $1 AND database = current_database()', [gid]);
        if (r.rowCount === 1) return; // prepared by an earlier call
        throw new Error(`no work in progress for branch ${gid} (its connection was lost?)`);
      }
      this._open.delete(gid);
      let r;
      try {
        await this._commitTable();
        // One round trip: the commit record, inside the branch, then PREPARE.
        r = await client.query(`INSERT INTO ${COMMIT_TABLE} (gid) VALUES (${gidLiteral(gid)}); PREPARE TRANSACTION ${gidLiteral(gid)}`);
      } catch (err) {
        if (err.code === '25P02') {
          // The work had failed (an error caught inside it): PostgreSQL refuses the record.
          await client.query('ROLLBACK').then(() => release(client), (e) => release(client, e));
          throw new Error(`branch ${gid} was rolled back by PostgreSQL at PREPARE: a statement in it had failed`);
        }
        release(client, err);
        throw err;
      }
      release(client);
      // A transaction that had failed is rolled back by PREPARE, which then reports ROLLBACK
      // instead of failing: that branch must not count.
      const last = Array.isArray(r) ? r[r.length - 1] : r;
      if (last.command === 'ROLLBACK') throw new Error(`branch ${gid} was rolled back by PostgreSQL at PREPARE: a statement in it had failed`);
    }

    async commit(gid) {
      try {
        await this._resolver.query(`COMMIT PREPARED ${gidLiteral(gid)}`);
      } catch (err) {
        if (err.code !== PG_UNDEFINED_OBJECT) throw err;
        // Nothing prepared under that gid: committed by an earlier call, or rolled back by
        // someone else. Only the branch's own commit record tells which.
        if (!(await this._committed(gid))) throw new Error(`branch ${gid} was not committed: nothing is prepared under that gid and it left no commit record (rolled back by someone else)`);
      }
    }

    async rollback(gid) {
      const client = this._open.get(gid);
      if (client) {
        this._open.delete(gid);
        try {
          await client.query('ROLLBACK');
          release(client);
        } catch (err) {
          release(client, err); // a destroyed connection rolls back too
        }
        return;
      }
      if (this._starting.has(gid)) this._abandoned.add(gid);
      try {
        await this._resolver.query(`ROLLBACK PREPARED ${gidLiteral(gid)}`);
      } catch (err) {
        if (err.code !== PG_UNDEFINED_OBJECT) throw err;
        // Gone: rolled back earlier, or never prepared; or committed, which a rollback must
        // not report as done.
        if (await this._committed(gid)) throw new Error(`branch ${gid} cannot be rolled back: it committed`);
      }
    }

    async inDoubt() {
      const r = await this._resolver.query("SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND gid LIKE 'zktx:%'");
      return r.rows.map((row) => row.gid);
    }

    /** Closes the resolver pool this participant made (not the pools you passed in). */
    async end() {
      if (this._ownsResolver) await this._resolver.end();
    }
  }

  const BARRIER_TABLE = 'zktx_barrier';

  /** Creates the barrier table saga steps use (`ctx.barrier`), if missing. */
  async function createBarrierTable(pool) {
    await pool.query(`CREATE TABLE IF NOT EXISTS ${BARRIER_TABLE} (
      transaction text NOT NULL, branch text NOT NULL, op text NOT NULL, reason text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (transaction, branch, op))`);
  }

  /**
   * DTM's sub-transaction barrier: runs `fn(client)` for a saga step's action or compensation
   * inside one local transaction that also records it in `zktx_barrier`, so that
   * - a duplicated action or compensation runs once,
   * - a compensation of an action that never ran (null compensation) does nothing, and
   * - an action arriving after its compensation (hanging) does nothing.
   * Resolves `{ ran, value }`.
   */
  async function barrier(pool, ctx, fn) {
    if (!ctx || typeof ctx.transaction !== 'string' || typeof ctx.branch !== 'string' || !['action', 'compensate'].includes(ctx.op)) {
      throw invalid('barrier needs the step context a saga step was given');
    }
    const client = await pool.connect();
    client.on('error', ignoreError); // as in PostgresParticipant.begin: fail the statement, not the process
    try {
      await client.query('BEGIN');
      const insert = (op, reason) => client.query(
        `INSERT INTO ${BARRIER_TABLE} (transaction, branch, op, reason) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
        [ctx.transaction, ctx.branch, op, reason],
      );
      let run;
      if (ctx.op === 'action') {
        run = (await insert('action', 'action')).rowCount === 1; // 0: a duplicate, or compensated already
      } else {
        const neverRan = (await insert('action', 'compensate')).rowCount === 1; // blocks the action from now on
        const first = (await insert('compensate', 'compensate')).rowCount === 1;
        run = first && !neverRan;
      }
      const value = run ? await fn(client) : undefined;
      await client.query('COMMIT');
      release(client);
      return { ran: run, value };
    } catch (err) {
      try {
        await client.query('ROLLBACK');
        release(client);
      } catch {
        release(client, err);
      }
      throw err;
    }
  }

  return { Coordinator, PostgresParticipant, createBarrierTable, barrier, ZktxError };
};
