'use strict';
// The generative stress test's random choices, all from seeded PRNGs so a run replays exactly:
//
//   opAt(seed, worker, lane, i)  the i-th operation of a worker's lane: a pure function of its
//                                arguments (a restarted worker resumes at any i; no state kept)
//   faultSchedule(seed)          the parent's stream of faults (kind, target, durations)
//
// Operations (weights in OPS): executeTransaction (value and updater forms), zk.transaction at
// the three isolation levels (some with { id }) over one key group, lock holds of every kind
// (exclusive, read, write, semaphore lease, multiLock; a fifth of them on another kind's path)
// that write fenced markers, and the
// disruptive ones: close() in the middle of an operation, process.exit() while one is pending.

const { rng } = require('../helpers/random');

/** A 32-bit mix of several integers (FNV-1a over their decimal text): seeds of sub-streams. */
function mix(...parts) {
  let h = 0x811c9dc5;
  for (const ch of parts.join('/')) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function chooser(random) {
  const pick = (arr) => arr[Math.floor(random() * arr.length)];
  const between = (lo, hi) => lo + random() * (hi - lo);
  const int = (lo, hi) => Math.floor(between(lo, hi + 1));
  const weighted = (table) => {
    const total = Object.values(table).reduce((a, b) => a + b, 0);
    let x = random() * total;
    for (const [k, w] of Object.entries(table)) {
      x -= w;
      if (x < 0) return k;
    }
    return Object.keys(table)[0];
  };
  return { random, pick, between, int, weighted };
}

/** Key groups: transactions only ever touch keys of one group (each group is one history). */
const GROUPS = [4, 3]; // keys per group: few, so conflicts and delete/re-create are frequent
const keyName = (run, g, i) => `${run}-g${g}-k${i}`;
const groupKeys = (run, g) => Array.from({ length: GROUPS[g] }, (_, i) => keyName(run, g, i));

/** Lock paths of a run and their kinds. */
function lockPaths(run) {
  const base = `/stress/${run}`;
  return { ex: [`${base}/ex0`, `${base}/ex1`], rw: `${base}/rw`, sem: `${base}/sem`, permits: 2, base };
}

const OPS = {
  etValue: 10,
  etUpdater: 10,
  tx: 36,
  lockExclusive: 7,
  lockRead: 5,
  lockWrite: 4,
  lease: 5,
  multiLock: 4,
  close: 3,
  exit: 1.2,
};
const INNER = ['etValue', 'etUpdater', 'tx', 'tx', 'lockExclusive', 'lockRead', 'lockWrite', 'lease', 'multiLock'];
const ISOLATIONS = { serializable: 5, snapshot: 2.5, 'read-committed': 2.5 };

/** The operation description (plain JSON) of op `i` of `lane` of `worker` under `seed`. */
function opAt(seed, worker, lane, i, kind) {
  const c = chooser(rng(mix(seed, worker, lane, i)));
  const k = kind || c.weighted(OPS);
  const op = { i, kind: k };
  if (k === 'close' || k === 'exit') {
    // the inner operation is generated from its own stream, as if it were op i
    op.inner = opAt(seed, worker, lane, i, c.pick(INNER));
    op.afterMs = Math.round(c.between(0, k === 'exit' ? 80 : 60));
    return op;
  }
  if (k === 'etValue' || k === 'etUpdater') {
    op.group = c.int(0, GROUPS.length - 1);
    op.key = c.int(0, GROUPS[op.group] - 1);
    op.timeout = 3000;
    op.delayMs = k === 'etUpdater' ? Math.round(c.random() < 0.2 ? c.between(60, 200) : c.between(0, 40)) : 0; // an async updater
    return op;
  }
  if (k === 'tx') {
    op.group = c.int(0, GROUPS.length - 1);
    const n = GROUPS[op.group];
    op.isolation = c.weighted(ISOLATIONS);
    op.withId = c.random() < 0.25;
    // reads first (one getMany, one batch of gets, or two batches), then writes
    const nReads = c.int(0, 3);
    op.reads = [];
    for (let j = 0; j < nReads; j++) op.reads.push(c.int(0, n - 1));
    op.readMode = c.pick(['getMany', 'gets', 'twoBatches']);
    const nWrites = c.random() < 0.15 ? 0 : c.int(1, 3);
    op.writes = [];
    for (let j = 0; j < nWrites; j++) {
      // deletes and creates often: delete + re-create is the ABA the checker must see through
      op.writes.push({ kind: c.weighted({ set: 4, create: 3, delete: 3 }), key: c.int(0, n - 1) });
    }
    // A set of the lane's own ticket key gives the commit a SetData result, hence a zxid.
    op.ticket = op.writes.length > 0 && c.random() < 0.8;
    // between reads and commit: sometimes long, so that others delete and re-create keys meanwhile
    const d = c.random();
    op.delayMs = d < 0.2 ? Math.round(c.between(60, 250)) : d < 0.6 ? Math.round(c.between(0, 40)) : 0;
    return op;
  }
  // lock holds
  op.timeout = Math.round(c.between(300, 2500));
  op.writes = c.int(1, 2);
  op.holdMs = Math.round(c.between(0, 40));
  if (k === 'lockExclusive') op.path = c.int(0, 1);
  // Now and then on another kind's path: kinds mixed on one path must still exclude (exclusive,
  // read, write, multiLock) or be refused (LOCK_KIND_MISMATCH: leases vs locks).
  if (c.random() < 0.2) op.on = c.pick(FOREIGN[k]);
  return op;
}

/** Paths of other kinds a lock op may be sent to (see lockPaths): ex0/ex1, rw, sem. */
const FOREIGN = {
  lockExclusive: ['rw', 'sem'],
  lockRead: ['ex0', 'sem'],
  lockWrite: ['ex0', 'sem'],
  lease: ['ex0', 'rw'],
  multiLock: ['rw', 'sem'],
};

const FAULTS = { partition: 3, blackhole: 2, lostAnswers: 3, serverStop: 2, serverRestart: 1.2, killWorker: 2 };

/** The parent's fault stream: call next() for each fault. */
function faultSchedule(seed, { workers, sessionMs, weights = FAULTS }) {
  const c = chooser(rng(mix(seed, 'faults')));
  let n = 0;
  return {
    /** Pause before the first fault. */
    firstDelay: Math.round(c.between(300, 900)),
    next() {
      // every kind once first (in a seeded order), then weighted
      const kinds = Object.keys(weights).filter((k) => weights[k] > 0);
      const kind = n < kinds.length ? kinds[(n + mix(seed)) % kinds.length] : c.weighted(weights);
      n += 1;
      const f = { kind, worker: c.int(0, workers - 1), gapMs: Math.round(c.between(200, 1200)) };
      if (kind === 'partition' || kind === 'blackhole') f.ms = Math.round(c.between(0.3 * sessionMs, 1.8 * sessionMs));
      if (kind === 'lostAnswers') f.ms = Math.round(c.between(50, 600));
      if (kind === 'serverStop') f.ms = Math.round(c.between(200, 1.8 * sessionMs)); // past the request deadline sometimes
      return f;
    },
  };
}

module.exports = { rng, mix, chooser, opAt, faultSchedule, GROUPS, keyName, groupKeys, lockPaths, OPS, FAULTS };
