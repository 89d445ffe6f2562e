'use strict';
// Checks a history of committed multi-key transactions for serializability.
//
// Write transactions are ordered by their commit zxid (ZooKeeper's total order). Replaying them
// in that order, every key a transaction read must be at exactly the version it saw, and every
// write must move its key's version by exactly one. A read-only transaction must fit somewhere in
// that order: there must be a point where all the versions it saw were current together.
// Finally the replayed state must equal what the server holds: a write that nobody accounts for
// (a refused or half-applied commit that still landed) shows up as a version mismatch.

/**
 * @param {object} h
 * @param {Record<string, {version: number, value: any}>} h.initial state before the run
 * @param {Array<{zxid?: number, reads: Record<string, number>, writes: Record<string, {version: number, value: any}>}>} h.committed
 * @param {Record<string, {version: number, value: any}>} h.final state read after the run
 * @param {(state: Record<string, any>) => string|null} [h.invariant] returns a violation or null
 * @param {boolean} [h.revisions] versions are etcd mod revisions (a write sets its key's version
 *   to the commit's revision) rather than ZooKeeper's per-key counters
 * @returns {{ violations: string[], writers: number, readers: number }}
 */
function checkSerializable({ initial, committed, final, invariant, revisions = false }) {
  const violations = [];
  const writers = committed.filter((t) => Object.keys(t.writes).length > 0);
  const readers = committed.filter((t) => Object.keys(t.writes).length === 0);
  writers.sort((a, b) => a.zxid - b.zxid);
  const version = Object.fromEntries(Object.entries(initial).map(([k, v]) => [k, v.version]));
  const value = Object.fromEntries(Object.entries(initial).map(([k, v]) => [k, v.value]));
  // history[key] = list of [fromIndex, version]: version current from writer index `fromIndex`.
  const history = Object.fromEntries(Object.keys(version).map((k) => [k, [[0, version[k]]]]));
  writers.forEach((t, i) => {
    if (typeof t.zxid !== 'number') violations.push(`writer without a commit zxid: ${JSON.stringify(t)}`);
    for (const [k, v] of Object.entries(t.reads)) {
      if (version[k] !== v) violations.push(`tx at zxid ${t.zxid} read ${k}@${v} but ${k} was at ${version[k]} in commit order`);
    }
    for (const [k, w] of Object.entries(t.writes)) {
      // ZooKeeper: a write moves the znode version by one; etcd: to the commit's revision.
      const next = revisions ? w.version === t.zxid && w.version > version[k] : w.version === version[k] + 1;
      if (!next) violations.push(`tx at zxid ${t.zxid} wrote ${k}@${w.version} over ${k}@${version[k]}`);
      version[k] = w.version;
      value[k] = w.value;
      (history[k] = history[k] || []).push([i + 1, w.version]);
    }
    const bad = invariant && invariant(value);
    if (bad) violations.push(`after zxid ${t.zxid}: ${bad}`);
  });
  // Read-only transactions: the intervals (in writer positions) where each seen version was
  // current must intersect.
  for (const t of readers) {
    let lo = 0;
    let hi = writers.length;
    for (const [k, v] of Object.entries(t.reads)) {
      const h = history[k] || [];
      const j = h.findIndex(([, ver]) => ver === v);
      if (j < 0) {
        violations.push(`read-only tx saw ${k}@${v}, a version no committed writer produced`);
        continue;
      }
      lo = Math.max(lo, h[j][0]);
      hi = Math.min(hi, j + 1 < h.length ? h[j + 1][0] - 1 : writers.length);
    }
    if (lo > hi) violations.push(`read-only tx ${JSON.stringify(t.reads)} saw versions never current together`);
  }
  for (const [k, v] of Object.entries(final)) {
    if (version[k] !== v.version) violations.push(`server has ${k}@${v.version}, committed history ends at ${k}@${version[k]}`);
    else if (JSON.stringify(value[k]) !== JSON.stringify(v.value)) violations.push(`server has ${k}=${JSON.stringify(v.value)}, history says ${JSON.stringify(value[k])}`);
  }
  return { violations, writers: writers.length, readers: readers.length };
}

module.exports = { checkSerializable };
