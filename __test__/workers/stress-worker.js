'use strict';
// The generative stress test's worker (__test__/stress). Runs LANES concurrent loops on one
// client; each lane runs the operations opAt(SEED, WORKER, lane, i) for i = START[lane], ... until
// it reads "stop" on stdin. Every step is one JSON line on stdout, printed before the next step
// starts (stdout to a pipe is synchronous on Linux: a kill -9 loses nothing already printed):
//
//   inv    an operation starts (lane, i, kind, t)
//   att    a zk.transaction attempt's reads (null: absent) and buffered writes, before its commit
//   upd    an executeTransaction updater was called with `cur`
//   acq / send / wrote / rel   a lock hold: acquired (tokens), fenced write sent / answered, released
//   ok / err   the operation ended (err: code, outcome, whether a ZktxError)
//   closing / closed / exiting   the disruptive operations
//
// Every value written is unique: { w: worker, n: incarnation, l: lane, i, a: attempt, j }.
// Times are Date.now(): the clock all processes of the machine read alike.
//
// env: ZK_CONNECT (the worker's proxy), RUN, SEED, WORKER, INC, START (JSON [i0, i1]), SESSION_MS;
// on etcd (BACKEND=etcd): ETCD_ENDPOINTS (the worker's proxy) and ETCD_DIRECT (the member, for
// etcdctl listings of lock keys) instead of ZK_CONNECT. The client is `new Etcd({ endpoints,
// timeout })`, same calls; its lock keys are `<lock path>/<name>` on the session's lease.
const readline = require('node:readline');
const { execFile } = require('node:child_process');
// ZKTX_STRESS_LIB: another build of the library (e.g. an older one, to replay a finding)
const { ZooKeeper, Etcd, ZktxError } = require(process.env.ZKTX_STRESS_LIB || '../..');
const { clientOptions } = require('../helpers/secure'); // TLS + identity in secure mode
const { opAt, groupKeys, lockPaths } = require('../stress/generator');

const { RUN: run } = process.env;
const seed = Number(process.env.SEED);
const worker = Number(process.env.WORKER);
const inc = Number(process.env.INC || 0);
const start = JSON.parse(process.env.START || '[0,0]');
const session = Number(process.env.SESSION_MS || 2000);
const ETCD = process.env.BACKEND === 'etcd';
const LANES = start.length;
const paths = lockPaths(run);
const emit = (ev) => process.stdout.write(`${JSON.stringify({ ...ev, t: Date.now() })}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let stopping = false;
let closeNow = null;
const closeCmd = new Promise((resolve) => { closeNow = resolve; });
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'stop') stopping = true;
  if (line === 'close') closeNow();
});

let gens = 0;
const newClient = () => {
  const zk = ETCD
    ? new Etcd({ endpoints: process.env.ETCD_ENDPOINTS, timeout: session, debug_level: 0 })
    : new ZooKeeper({ connect: process.env.ZK_CONNECT, timeout: session, debug_level: 0, ...clientOptions() });
  zk.gen = gens++;
  zk.on('state', (s) => emit({ ev: 'state', s, gen: zk.gen }));
  return zk;
};
const st = { zk: newClient() };
/**
 * Which of `nodes` (lock nodes, or lock keys on etcd) exist now. ZooKeeper: children of their
 * directories through this worker's client. etcd: `etcdctl get --prefix --keys-only <dir>/` on
 * the member itself (asynchronous: the worker's event loop, hence its keep-alives, runs on).
 */
async function present(nodes) {
  const dirs = [...new Set(nodes.map((n) => n.slice(0, n.lastIndexOf('/'))))];
  const there = new Set();
  for (const dir of dirs) {
    if (ETCD) {
      const out = await new Promise((resolve, reject) => {
        execFile('etcdctl', ['--endpoints', process.env.ETCD_DIRECT, '--command-timeout=3s', 'get', '--prefix', '--keys-only', `${dir}/`], { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8', timeout: 5000 }, (err, stdout, stderr) => {
          if (err) reject(Object.assign(new Error(`etcdctl: ${String(stderr || err.message).trim().slice(0, 200)}`), { code: 'HARNESS' }));
          else resolve(stdout);
        });
      });
      for (const k of out.split('\n').filter(Boolean)) there.add(k);
    } else {
      for (const c of await st.zk.children(dir)) there.add(`${dir}/${c}`);
    }
  }
  return nodes.filter((n) => there.has(n));
}
/** Lock nodes held by each client generation (acquired, not released): checked after close(). */
const heldBy = new Map();

function errFields(err) {
  return {
    code: err && err.code,
    outcome: err && err.outcome,
    typed: err instanceof ZktxError,
    name: err && err.name,
    message: String(err && err.message).slice(0, 300),
    a: err && err.stressA,
    fnDone: err && err.stressFnDone,
  };
}

const ticketKey = (lane) => `${run}-t-${worker}-${lane}`;

async function runTx(zk, lane, op) {
  const keys = groupKeys(run, op.group);
  let attempt = -1;
  const opts = { isolation: op.isolation, retries: 6 };
  if (op.withId) opts.id = `${run}-${worker}-${inc}-${lane}-${op.i}`;
  let committed;
  let fnDone = -1;
  try {
    await zk.transaction(async (tx) => {
    attempt = tx.attempt;
    const reads = {};
    const rkeys = op.reads.map((k) => keys[k]);
    if (rkeys.length > 0) {
      if (op.readMode === 'getMany') {
        const vs = await tx.getMany(rkeys);
        rkeys.forEach((k, j) => { if (!(k in reads)) reads[k] = vs[j] === undefined ? null : vs[j]; });
      } else if (op.readMode === 'gets') {
        const vs = await Promise.all(rkeys.map((k) => tx.get(k)));
        rkeys.forEach((k, j) => { if (!(k in reads)) reads[k] = vs[j] === undefined ? null : vs[j]; });
      } else {
        for (const k of rkeys) {
          const v = await tx.get(k); // one batch each: the second read is a later state
          if (!(k in reads)) reads[k] = v === undefined ? null : v;
        }
      }
    }
    if (op.delayMs) await sleep(op.delayMs);
    const writes = [];
    op.writes.forEach((w, j) => {
      const key = keys[w.key];
      const value = { w: worker, n: inc, l: lane, i: op.i, a: tx.attempt, j };
      if (w.kind === 'set') tx.set(key, value);
      else if (w.kind === 'create') tx.create(key, value);
      else tx.delete(key);
      // Later writes of a key combine with earlier ones as zktx documents (index.d.ts, create):
      // delete + create is a set; create + set is a create; create + delete asserts the key
      // absent (recorded as a delete that must find it absent).
      const prev = writes.findIndex((x) => x.key === key);
      let kind = w.kind;
      let mustBeAbsent = false;
      if (prev >= 0) {
        const own = writes[prev];
        const created = own.kind === 'create' || own.mustBeAbsent;
        if (kind === 'create') kind = created ? 'create' : 'set';
        else if (created && kind === 'set') kind = 'create';
        else if (created) mustBeAbsent = true;
        writes.splice(prev, 1);
      }
      writes.push({ kind, key, value: kind === 'delete' ? undefined : value, ...(mustBeAbsent ? { mustBeAbsent } : {}) });
    });
    if (op.ticket) tx.set(ticketKey(lane), { w: worker, n: inc, l: lane, i: op.i, a: tx.attempt });
    emit({ ev: 'att', lane, i: op.i, a: tx.attempt, reads, writes, ticket: op.ticket });
    fnDone = tx.attempt;
    committed = () => tx.committed;
    }, opts);
  } catch (err) {
    // which attempt failed, and whether its function had finished (else no commit was sent)
    if (err && typeof err === 'object') Object.assign(err, { stressA: attempt, stressFnDone: fnDone === attempt });
    throw err;
  }
  const c = committed();
  // readRevs: the versions the commit read (etcd: mod revisions, checked by checkRevisions)
  return { a: attempt, zxid: c && c.zxid, alreadyApplied: c && c.alreadyApplied, readRevs: c && c.reads };
}

async function runEt(zk, lane, op) {
  const key = groupKeys(run, op.group)[op.key];
  const value = { w: worker, n: inc, l: lane, i: op.i, et: 1 };
  emit({ ev: 'etv', lane, i: op.i, key, value });
  let r;
  if (op.kind === 'etValue') {
    r = await zk.executeTransaction(key, value, { timeout: op.timeout });
  } else {
    r = await zk.executeTransaction(key, async (cur) => {
      emit({ ev: 'upd', lane, i: op.i, cur: cur === undefined ? null : cur });
      if (op.delayMs) await sleep(op.delayMs);
      return value;
    }, { timeout: op.timeout });
  }
  return { previous: r.previous === undefined ? null : r.previous, zxid: r.zxid, token: r.token, version: r.version, value: r.value };
}

/** The path of a lock op: its kind's own, or another kind's when the generator mixed (`op.on`). */
function pathOf(op, own) {
  return { ex0: paths.ex[0], ex1: paths.ex[1], rw: paths.rw, sem: paths.sem }[op.on] || own;
}

async function acquire(zk, op) {
  const o = { timeout: op.timeout };
  switch (op.kind) {
    case 'lockExclusive': {
      const p = pathOf(op, paths.ex[op.path]);
      return { lock: await zk.lock(p, o), paths: [p] };
    }
    case 'lockRead': {
      const p = pathOf(op, paths.rw);
      return { lock: await zk.readWriteLock(p).readLock(o), paths: [p] };
    }
    case 'lockWrite': {
      const p = pathOf(op, paths.rw);
      return { lock: await zk.readWriteLock(p).writeLock(o), paths: [p] };
    }
    case 'lease': {
      const p = pathOf(op, paths.sem);
      return { lock: await zk.semaphore(p, paths.permits).acquire(o), paths: [p] };
    }
    case 'multiLock': {
      const m = await zk.multiLock(op.on ? [pathOf(op), paths.ex[0]] : [paths.ex[1], paths.ex[0]], o);
      return { lock: m, paths: m.paths };
    }
    default: throw new Error(`not a lock op: ${op.kind}`);
  }
}

async function runHold(zk, lane, op) {
  const { lock, paths: held } = await acquire(zk, op);
  const tokens = lock.tokens || [lock.token];
  const nodes = lock.locks ? lock.locks.map((l) => l.nodePath) : [lock.nodePath];
  emit({ ev: 'acq', lane, i: op.i, paths: held, tokens, nodes, lockKind: op.kind, gen: zk.gen });
  if (!heldBy.has(zk.gen)) heldBy.set(zk.gen, new Set());
  for (const n of nodes) heldBy.get(zk.gen).add(n);
  let refused = 0;
  try {
    for (let j = 0; j < op.writes; j++) {
      await sleep(op.holdMs / op.writes);
      const key = `${run}-m-${worker}-${inc}-${lane}-${op.i}-${j}`;
      const value = { w: worker, n: inc, l: lane, i: op.i, j, tok: tokens[0] };
      // No check of lock.signal first: a stale holder must be stopped by the fence.
      emit({ ev: 'send', lane, i: op.i, j, key, value });
      try {
        const version = await zk.set(key, value, { lock });
        emit({ ev: 'wrote', lane, i: op.i, j, key, ok: true, version });
      } catch (err) {
        refused += 1;
        emit({ ev: 'wrote', lane, i: op.i, j, key, ok: false, ...errFields(err) });
      }
    }
  } finally {
    try {
      await lock.release();
      for (const n of nodes) heldBy.get(zk.gen).delete(n);
      emit({ ev: 'rel', lane, i: op.i, ok: true });
    } catch (err) {
      emit({ ev: 'rel', lane, i: op.i, ok: false, ...errFields(err) });
      ghostCheck(lane, op.i, nodes, Date.now());
    }
  }
  return { refused };
}

/**
 * After a failed release: 2 session timeouts later, is the lock node still there? An ephemeral
 * node that exists belongs to a live session, so it is a ghost holding the lock for nobody.
 */
function ghostCheck(lane, i, nodes, failedAt) {
  pendingChecks += 1;
  setTimeout(async () => {
    try {
      emit({ ev: 'ghost', lane, i, nodes, present: await present(nodes), afterMs: Date.now() - failedAt });
    } catch (err) {
      emit({ ev: 'ghost', lane, i, nodes, ...errFields(err) });
    } finally {
      pendingChecks -= 1;
    }
  }, 2 * session).unref();
}
let pendingChecks = 0;

function runInner(zk, lane, op) {
  if (op.kind === 'tx') return runTx(zk, lane, op);
  if (op.kind === 'etValue' || op.kind === 'etUpdater') return runEt(zk, lane, op);
  return runHold(zk, lane, op);
}

async function runOp(lane, op) {
  const zk = st.zk;
  const d = op.inner || op;
  emit({ ev: 'inv', lane, i: op.i, kind: op.kind, inner: op.inner && op.inner.kind, group: d.group, isolation: d.isolation, withId: d.withId, gen: zk.gen });
  try {
    let res;
    if (op.kind === 'close') {
      const p = runInner(zk, lane, op.inner);
      // the inner operation's own end (the close op's 'ok'/'err' comes after close() anyway)
      p.then((r) => emit({ ev: 'innerok', lane, i: op.i, ...r }), (err) => emit({ ev: 'innererr', lane, i: op.i, ...errFields(err) }));
      await sleep(op.afterMs);
      emit({ ev: 'closing', lane, i: op.i });
      try {
        await zk.close();
        emit({ ev: 'closed', lane, i: op.i, ok: true, gen: zk.gen });
      } catch (err) {
        emit({ ev: 'closed', lane, i: op.i, ok: false, gen: zk.gen, ...errFields(err) });
      }
      if (st.zk === zk) st.zk = newClient();
      // close() resolved: the server must have deleted the closed session's lock nodes.
      const nodes = [...(heldBy.get(zk.gen) || [])];
      if (nodes.length) {
        try {
          const left = await present(nodes);
          emit({ ev: 'afterclose', lane, i: op.i, gen: zk.gen, checked: nodes, left });
        } catch (err) {
          emit({ ev: 'afterclose', lane, i: op.i, gen: zk.gen, checked: nodes, ...errFields(err) });
        }
      }
      res = await p;
    } else if (op.kind === 'exit') {
      runInner(zk, lane, op.inner).catch(() => {});
      await sleep(op.afterMs);
      emit({ ev: 'exiting', lane, i: op.i });
      process.exit(0);
    } else {
      res = await runInner(zk, lane, op);
    }
    emit({ ev: 'ok', lane, i: op.i, ...res });
  } catch (err) {
    emit({ ev: 'err', lane, i: op.i, ...errFields(err) });
    await sleep(10); // no hot loop while the server is away
  }
}

async function lane(l) {
  for (let i = start[l]; !stopping; i++) await runOp(l, opAt(seed, worker, l, i));
}

(async () => {
  // The lanes' ticket keys must exist, so that a commit setting one yields a SetData (a zxid).
  for (let l = 0; l < LANES; l++) {
    for (;;) {
      try {
        await st.zk.set(ticketKey(l), { w: worker, n: inc, l, init: 1 });
        break;
      } catch (err) {
        emit({ ev: 'initerr', ...errFields(err) });
        await sleep(100);
      }
    }
  }
  emit({ ev: 'ready', pid: process.pid });
  await Promise.all(Array.from({ length: LANES }, (_, l) => lane(l)));
  // Idle: no operation in progress, no lock held. The parent lists the lock directories now
  // (a node left is a ghost: a failed release), then says "close".
  emit({ ev: 'idle', held: [...heldBy.values()].flatMap((s) => [...s]) });
  await closeCmd;
  try {
    await st.zk.close();
  } catch (err) {
    emit({ ev: 'closed', ok: false, ...errFields(err) });
  }
  emit({ ev: 'done' });
  process.exit(0);
})().catch((err) => {
  emit({ ev: 'fatal', ...errFields(err), stack: String(err && err.stack) });
  process.exit(1);
});
