'use strict';
// Checks of the generative stress test's history (see generative.test.js). Nothing here trusts
// znode versions: ZooKeeper restarts a key's version at 0 when it is deleted and created again,
// which is exactly how an ABA lost update hides. Every value written is unique instead, so a value
// read names the one write that produced it.
//
// checkSerial    committed transactions (zk.transaction, executeTransaction) of one key group
//                must replay, over VALUES, in one serial order that follows commit zxids.
// checkLocks     holders proven by server-acknowledged fenced writes never overlap (exclusive,
//                multiLock and write exclude everything; readers share; semaphore: never more than
//                `permits`; a lease never beside a lock on one path), tokens follow holding order,
//                acknowledged fenced writes are stored, refused ones are not.
// checkErrors    every rejection is a ZktxError with a documented code and outcome.
// checkRevisions etcd only: versions there are mod revisions of one global counter, so what a
//                client was told can be checked against itself, without clocks: every write
//                has its own revision, in real-time order; a fenced write comes after its lock
//                key's create revision (the token); holders that exclude each other wrote in
//                disjoint revision ranges, in token order; a commit read the revisions its
//                values were written at.

/** JSON with sorted object keys: the identity of a value. */
function canon(v) {
  if (v === undefined || v === null) return null;
  if (Array.isArray(v)) return `[${v.map((x) => canon(x) ?? 'null').join(',')}]`;
  if (typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon(v[k]) ?? 'null'}`).join(',')}}`;
  return JSON.stringify(v);
}
const show = (s) => (s === null ? 'absent' : s);

/**
 * @typedef {{ kind: 'set'|'create'|'delete', key: string, value?: any, mustBeAbsent?: boolean }} TxWrite
 *   (mustBeAbsent: a delete that requires the key absent, i.e. a create then a delete of it)
 * @typedef {{
 *   label: string, kind?: 'tx'|'et', isolation?: 'serializable'|'snapshot'|'read-committed',
 *   status: 'ok'|'unknown'|'refused', zxid?: number, inv: number, cmp?: number,
 *   reads: Record<string, any>, writes: TxWrite[], idGroup?: string,
 * }} Txn
 *   reads: the values seen (null: absent), only those read from the server (before own writes).
 *   et (executeTransaction) is a serializable read-modify-write of one key.
 *   status: ok = committed, refused = known not applied, unknown = may or may not have applied.
 *   idGroup: attempts of one { id } transaction: at most one of them applied.
 *   until: for an unknown outcome, a time by which it applied if it ever did (default: never
 *   bounded), e.g. some session timeouts after the error or after its process died.
 *
 * @param {object} h
 * @param {string[]} h.keys the group's keys (everything else a transaction touched is ignored)
 * @param {Txn[]} h.txns
 * @param {Record<string, any>} h.final the server's values at the end (undefined/null: absent)
 * @param {Record<string, any>} [h.initial] values at the start (default: all absent)
 * @param {number} [h.budget] search steps before giving up (reported as undetermined)
 * @param {boolean} [h.deleteAtCommit] etcd: a read-committed delete is a DeleteRange in the
 *   commit itself (the key is absent after the commit, whatever was read); ZooKeeper (default)
 *   skips the delete of a key the transaction read absent, and decides an unread one by a read
 *   made before the commit
 * @returns {{ violations: string[], stats: object, order?: string[] }}
 */
function checkSerial({ keys, txns, final, initial = {}, budget = 300000, deleteAtCommit = false }) {
  const violations = [];
  const inGroup = new Set(keys);
  const norm = txns.map((t) => ({
    ...t,
    isolation: t.kind === 'et' ? 'serializable' : t.isolation || 'serializable',
    reads: Object.fromEntries(Object.entries(t.reads || {}).filter(([k]) => inGroup.has(k)).map(([k, v]) => [k, canon(v)])),
    writes: (t.writes || [])
      .filter((w) => inGroup.has(w.key))
      .map((w) => ({ kind: w.kind, key: w.key, value: w.kind === 'delete' ? null : canon(w.value), mustBeAbsent: Boolean(w.mustBeAbsent) }))
      // A read-committed delete of a key the transaction saw absent is a no-op; of a key it did
      // not read, it depends on a read the commit makes first (present: deleted; absent: nothing),
      // which the history does not see: "maybe".
      .filter((w) => deleteAtCommit || !(t.isolation === 'read-committed' && w.kind === 'delete' && t.reads && w.key in t.reads && t.reads[w.key] == null))
      .map((w) => (!deleteAtCommit && t.isolation === 'read-committed' && w.kind === 'delete' && !(t.reads && w.key in t.reads) ? { ...w, maybe: true } : w)),
  }));
  const finalC = Object.fromEntries(keys.map((k) => [k, canon(final[k])]));
  const initialC = Object.fromEntries(keys.map((k) => [k, canon(initial[k])]));

  // Who wrote each value (values are unique; a duplicate is a harness bug, reported).
  const writerOf = new Map();
  for (const t of norm) {
    for (const w of t.writes) {
      if (w.value === null) continue;
      const id = `${w.key}=${w.value}`;
      if (writerOf.has(id) && writerOf.get(id) !== t) violations.push(`harness: value ${w.value} of ${w.key} written by both ${writerOf.get(id).label} and ${t.label}`);
      writerOf.set(id, t);
    }
  }
  const initialHas = (k, v) => v !== null && initialC[k] === v;

  const checkedReads0 = (t) => Object.entries(t.reads).filter(([k]) => t.isolation === 'serializable' || (t.isolation === 'snapshot' && t.writes.some((w) => w.key === k)));
  // Values observed: read by a transaction that took effect, or in the final state.
  const observed = new Set();
  const seen = (k, v, by) => {
    if (v === null || initialHas(k, v)) return;
    const w = writerOf.get(`${k}=${v}`);
    if (!w) violations.push(`phantom: ${by} saw ${k}=${v}, a value no operation of the history wrote`);
    else if (w.status === 'refused') violations.push(`refused write visible: ${by} saw ${k}=${v}, written by ${w.label} whose commit was refused (not applied)`);
    else observed.add(w);
  };
  for (const t of norm) if (t.status === 'ok') for (const [k, v] of Object.entries(t.reads)) seen(k, v, t.label);
  for (const k of keys) seen(k, finalC[k], 'the final state');
  // An unknown-outcome transaction that was observed did apply: what it read was there too.
  for (let grew = true; grew;) {
    grew = false;
    for (const t of norm) {
      if (t.status !== 'unknown' || !observed.has(t) || t.readsMarked) continue;
      t.readsMarked = true;
      grew = true;
      for (const [k, v] of checkedReads0(t)) seen(k, v, t.label);
    }
  }

  // Classify. Anchored: committed with a zxid. Floating: must (or may) be placed by search.
  const anchored = norm.filter((t) => t.status === 'ok' && t.writes.length > 0 && typeof t.zxid === 'number').sort((a, b) => a.zxid - b.zxid);
  for (let i = 1; i < anchored.length; i++) {
    if (anchored[i].zxid === anchored[i - 1].zxid) violations.push(`zxid: ${anchored[i - 1].label} and ${anchored[i].label} both committed at zxid ${anchored[i].zxid}`);
  }
  const readers = norm.filter((t) => t.status === 'ok' && t.writes.length === 0);
  const floating = [];
  const groupsObserved = new Set(norm.filter((t) => t.idGroup && observed.has(t)).map((t) => t.idGroup));
  let dropped = 0;
  for (const t of norm) {
    if (t.writes.length === 0 || t.status === 'refused') continue;
    if (t.status === 'ok' && typeof t.zxid === 'number') continue;
    const mandatory = t.status === 'ok' || observed.has(t);
    // An unknown write nobody observed may be left out, unless it deletes something (an absent
    // read may need it); a sibling attempt of an observed one is out (at most one applies).
    if (!mandatory && (t.writes.every((w) => w.kind !== 'delete') || (t.idGroup && groupsObserved.has(t.idGroup)))) {
      dropped += 1;
      continue;
    }
    floating.push({ t, mandatory });
  }
  const stats = {
    keys: keys.length,
    committedWriters: norm.filter((t) => t.status === 'ok' && t.writes.length > 0).length,
    anchored: anchored.length,
    unanchoredCommitted: floating.filter((f) => f.t.status === 'ok').length,
    unknown: norm.filter((t) => t.status === 'unknown' && t.writes.length > 0).length,
    unknownApplied: floating.filter((f) => f.t.status === 'unknown' && f.mandatory).length,
    unknownDropped: dropped,
    refused: norm.filter((t) => t.status === 'refused').length,
    readOnly: readers.length,
    searchSteps: 0,
    undetermined: false,
  };

  // Targeted diagnosis of anchored writers (needs no search): a serializable (or snapshot, for
  // keys it writes) transaction that read k=v must find v still current at its zxid, i.e. no
  // anchored writer of k between v's writer and itself. The ABA lost update lands here.
  const writersOfKey = new Map(keys.map((k) => [k, anchored.filter((a) => a.writes.some((w) => w.key === k))]));
  const lastWriteBefore = (k, zxid) => {
    const list = writersOfKey.get(k);
    let lo = 0;
    let hi = list.length; // first index with zxid >= given
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid].zxid < zxid) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 ? list[lo - 1] : null;
  };
  // keys some transaction without a zxid may have deleted (an absent read may be theirs)
  const floatingDeletes = new Set(norm.filter((t) => t.status !== 'refused' && typeof t.zxid !== 'number').flatMap((t) => t.writes.filter((w) => w.kind === 'delete').map((w) => w.key)));
  const checkedReads = (t) => Object.entries(t.reads).filter(([k]) => t.isolation === 'serializable' || (t.isolation === 'snapshot' && t.writes.some((w) => w.key === k)));
  const targeted = new Set();
  for (const t of anchored) {
    for (const [k, v] of checkedReads(t)) {
      const src = v === null ? null : writerOf.get(`${k}=${v}`);
      const last = lastWriteBefore(k, t.zxid);
      if (last && last.writes.some((w) => w.key === k && w.maybe)) continue; // may not have deleted: the search decides
      if (v !== null && src && typeof src.zxid === 'number' && src.status === 'ok') {
        if (src.zxid > t.zxid) {
          violations.push(`serializability: ${t.label} (${t.isolation}, zxid ${t.zxid}) read ${k}=${v} written later by ${src.label} (zxid ${src.zxid})`);
          targeted.add(t);
        } else if (last && last !== src) {
          const lw = last.writes.find((w) => w.key === k);
          violations.push(
            `serializability (lost update): ${t.label} (${t.isolation}, zxid ${t.zxid}) read ${k}=${v} (written by ${src.label} at zxid ${src.zxid}) ` +
              `but ${last.label} had ${lw.kind === 'delete' ? 'deleted' : `${lw.kind === 'create' ? 'created' : 'set'} it to ${lw.value}`} at zxid ${last.zxid} before it committed`
          );
          targeted.add(t);
        }
      } else if (v !== null && src && src.status === 'ok' && src.cmp !== undefined && last && last.inv > src.cmp) {
        // src has no zxid, but last began after src was acknowledged: last came after it
        const lw = last.writes.find((w) => w.key === k);
        violations.push(
          `serializability (lost update): ${t.label} (${t.isolation}, zxid ${t.zxid}) read ${k}=${v} (written by ${src.label}, acknowledged at ${src.cmp}) ` +
            `but ${last.label}, begun at ${last.inv}, had ${lw.kind === 'delete' ? 'deleted' : `${lw.kind === 'create' ? 'created' : 'set'} it to ${lw.value}`} at zxid ${last.zxid} before it committed`
        );
        targeted.add(t);
      } else if (v === null && last && !floatingDeletes.has(k)) {
        const lw = last.writes.find((w) => w.key === k);
        if (lw.kind !== 'delete') {
          violations.push(`serializability: ${t.label} (${t.isolation}, zxid ${t.zxid}) read ${k} absent but ${last.label} had ${lw.kind === 'create' ? 'created' : 'set'} it to ${lw.value} at zxid ${last.zxid} before it committed`);
          targeted.add(t);
        }
      }
    }
  }

  // The search: one serial order of anchored (by zxid) and floating transactions (within their
  // real-time windows) in which every checked read sees its value, every create finds its key
  // absent, and which ends in the final state.
  const fits = (t, state) => {
    for (const [k, v] of checkedReads(t)) if (state.get(k) !== v) return `read ${k}=${show(v)} but it was ${show(state.get(k))}`;
    for (const w of t.writes) if ((w.kind === 'create' || w.mustBeAbsent) && state.get(w.key) !== null) return `created ${w.key}, which existed (${state.get(w.key)})`;
    return null;
  };
  // Windows in anchored positions: gap g = before anchored[g].
  for (const f of floating) {
    let lo = 0;
    let hi = anchored.length;
    anchored.forEach((a, j) => {
      if (a.cmp !== undefined && a.cmp < f.t.inv) lo = Math.max(lo, j + 1);
      if (f.t.status === 'ok' && f.t.cmp !== undefined && a.inv > f.t.cmp) hi = Math.min(hi, j);
      // an unknown outcome applies by `until` (the session's end or its next request), if given
      if (f.t.status !== 'ok' && f.t.until !== undefined && a.inv > f.t.until) hi = Math.min(hi, j);
    });
    f.lo = lo;
    f.hi = hi;
    if (f.lo > f.hi && f.t.status === 'ok') {
      violations.push(`real time: ${f.t.label} committed between ${new Date(f.t.inv).toISOString()} and ${new Date(f.t.cmp).toISOString()}, which no zxid order allows`);
      f.hi = f.lo;
    } else if (f.lo > f.hi && f.mandatory) {
      violations.push(`real time: ${f.t.label}'s unknown-outcome write was observed, but nothing it follows had committed before its horizon ${new Date(f.t.until).toISOString()}`);
      f.hi = f.lo;
    }
  }
  const state = new Map(keys.map((k) => [k, initialC[k]]));
  const apply = (t, undo, skip) => {
    for (const w of t.writes) {
      if (skip && skip.has(w.key)) continue;
      undo.push([w.key, state.get(w.key)]);
      state.set(w.key, w.kind === 'delete' ? null : w.value);
    }
  };
  const revert = (undo) => {
    for (let j = undo.length - 1; j >= 0; j--) state.set(undo[j][0], undo[j][1]);
  };
  const salt = (j) => (Math.imul(j + 1, 0x9e3779b1) ^ Math.imul(j + 7, 0x85ebca6b)) >>> 0;
  const stateKey = () => keys.map((k) => state.get(k)).join('\u0001');

  /**
   * Iterative depth-first search with undo logs (histories are long: no recursion), memoizing
   * failed (position, placed set, state) nodes. `rdrs`: read-only transactions that must fit
   * somewhere; each is placed as soon as it fits (it changes nothing, so earliest is as good as any).
   */
  function search(rdrs) {
    for (const k of keys) state.set(k, initialC[k]);
    const placed = new Set(); // floating indices
    const rPlaced = new Set(); // reader indices
    let placedHash = 0;
    const usedGroups = new Map(); // idGroup -> count placed
    const failed = new Set();
    let furthest = { i: -1, why: '' };
    const order = [];
    let steps = 0;

    const choicesAt = (i) => {
      const out = [];
      const next = anchored[i];
      const blocked = floating.some((f, j) => f.mandatory && !placed.has(j) && f.hi <= i);
      const placeable = [];
      floating.forEach((f, j) => {
        if (placed.has(j) || f.lo > i || f.hi < i) return;
        if (f.t.idGroup && usedGroups.get(f.t.idGroup)) return;
        if (fits(f.t, state)) return;
        placeable.push(j);
      });
      // Urgent: a placeable transaction that the next anchored write would make unplaceable.
      const spoils = (j) => next && Object.keys(floating[j].t.reads).some((k) => next.writes.some((w) => w.key === k));
      const urgent = (j) => floating[j].mandatory && spoils(j);
      // the ways a transaction can apply: every subset of its "maybe" deletes of present keys skipped
      const variants = (t) => {
        let out2 = [null];
        for (const w of t.writes) {
          if (!w.maybe || state.get(w.key) === null) continue;
          out2 = out2.flatMap((v) => [v, new Set([...(v || []), w.key])]);
        }
        return out2;
      };
      // Transactions that must be placed are tried first, as early as they fit: a wrong early
      // placement fails nearby (cheap to undo), a wrong late one only far away.
      for (const j of placeable) if (urgent(j)) for (const v of variants(floating[j].t)) out.push(['place', j, v]);
      for (const j of placeable) if (!urgent(j) && floating[j].mandatory) for (const v of variants(floating[j].t)) out.push(['place', j, v]);
      let advance = false;
      if (i < anchored.length && !blocked) {
        const why = fits(next, state);
        if (!why) {
          for (const v of variants(next)) out.push(['advance', null, v]);
          advance = true;
        } else if (i >= furthest.i) furthest = { i, why: `${next.label} (zxid ${next.zxid}) ${why}` };
      }
      // Unknown-outcome writes nobody observed are tried after going on without them.
      for (const j of placeable) if (!floating[j].mandatory) for (const v of variants(floating[j].t)) out.push(['place', j, v]);
      return out;
    };
    const done = (i) => {
      if (i < anchored.length) return false;
      if (floating.some((f, j) => f.mandatory && !placed.has(j))) return false;
      if (rPlaced.size < rdrs.length) {
        if (i >= furthest.i) furthest = { i, why: `read-only ${rdrs.filter((_, j) => !rPlaced.has(j)).map((t) => t.label).join(', ')} fit nowhere` };
        return false;
      }
      for (const k of keys) {
        if (state.get(k) !== finalC[k]) {
          if (i >= furthest.i) furthest = { i, why: `at the end ${k} would be ${show(state.get(k))} but the server has ${show(finalC[k])}` };
          return false;
        }
      }
      return true;
    };

    const frames = [];
    let i = 0;
    let ok = false;
    let undetermined = false;
    const enter = () => {
      const rp = [];
      rdrs.forEach((t, j) => {
        if (!rPlaced.has(j) && !fits(t, state)) {
          rPlaced.add(j);
          placedHash ^= salt(100000 + j);
          rp.push(j);
        }
      });
      const memo = `${i}|${placed.size}|${rPlaced.size}|${placedHash}|${stateKey()}`;
      frames.push({ i, memo, rp, choices: failed.has(memo) ? [] : choicesAt(i), next: 0, undo: null, choice: null });
    };
    enter();
    if (done(i)) ok = true;
    while (!ok && frames.length > 0) {
      steps += 1;
      if (steps > budget) {
        undetermined = true;
        break;
      }
      const f = frames[frames.length - 1];
      if (f.undo) {
        // coming back from a failed child: undo its choice
        revert(f.undo);
        if (f.choice[0] === 'place') {
          placed.delete(f.choice[1]);
          placedHash ^= salt(f.choice[1]);
          const g = floating[f.choice[1]].t.idGroup;
          if (g) usedGroups.set(g, usedGroups.get(g) - 1);
        }
        order.pop();
        i = f.i;
        f.undo = null;
      }
      if (f.next >= f.choices.length) {
        failed.add(f.memo);
        for (const j of f.rp) {
          rPlaced.delete(j);
          placedHash ^= salt(100000 + j);
        }
        frames.pop();
        continue;
      }
      const c = f.choices[f.next++];
      f.choice = c;
      f.undo = [];
      if (c[0] === 'advance') {
        apply(anchored[i], f.undo, c[2]);
        order.push({ t: anchored[i], skip: c[2] });
        i += 1;
      } else {
        const fl = floating[c[1]];
        apply(fl.t, f.undo, c[2]);
        order.push({ t: fl.t, skip: c[2] });
        placed.add(c[1]);
        placedHash ^= salt(c[1]);
        if (fl.t.idGroup) usedGroups.set(fl.t.idGroup, (usedGroups.get(fl.t.idGroup) || 0) + 1);
      }
      enter();
      if (done(i)) ok = true;
    }
    return { ok, order, steps, undetermined, furthest };
  }

  const describeFailure = (r) => {
    const at = anchored[r.furthest.i];
    return (
      `no serial order: ${stats.committedWriters} committed writers (${stats.anchored} ordered by zxid, ${stats.unanchoredCommitted} without a zxid placed by search, ` +
      `${stats.unknownApplied} unknown-outcome ones observed) do not replay over values; furthest point ` +
      `${r.furthest.i >= 0 ? `${r.furthest.i}/${anchored.length}${at ? '' : ' (end)'}` : '?'}: ${r.furthest.why || 'a transaction without a zxid fits nowhere in its real-time window'}`
    );
  };
  let r = search([]);
  stats.searchSteps = r.steps;
  stats.undetermined = r.undetermined;
  if (!r.ok && !r.undetermined) violations.push(describeFailure(r));
  let ok = r.ok;
  let order = r.order;

  // Read-only serializable transactions must fit at some point: first in the order found; if one
  // does not, search again for an order in which all of them fit.
  if (ok) {
    const pending = readers.filter((t) => t.isolation === 'serializable' && Object.keys(t.reads).length > 0);
    const fitted = new Set();
    for (const k of keys) state.set(k, initialC[k]);
    const tryAll = () => {
      for (const t of pending) if (!fitted.has(t) && !fits(t, state)) fitted.add(t);
    };
    tryAll();
    for (const o of order) {
      apply(o.t, [], o.skip);
      tryAll();
    }
    const misfits = pending.filter((t) => !fitted.has(t));
    if (misfits.length) {
      r = search(pending);
      stats.searchSteps += r.steps;
      stats.readerSearch = r.ok ? 'fits' : r.undetermined ? 'undetermined' : 'failed';
      if (r.ok) order = r.order;
      else {
        stats.undetermined = stats.undetermined || r.undetermined;
        for (const t of misfits) {
          violations.push(`serializability: read-only ${t.label} saw ${JSON.stringify(t.reads)}, values never current together${r.undetermined ? ' (in the order found; the search for another ran out of budget)' : ' in any serial order'}`);
        }
        ok = false;
      }
    }
  }
  return { violations, stats, order: ok ? order.map((o) => (o.skip && o.skip.size ? `${o.t.label}(no delete of ${[...o.skip].join(',')})` : o.t.label)) : undefined };
}

/**
 * @typedef {{ key: string, value: any, sentAt: number, status: 'ok'|'refused'|'unknown', code?: string }} FencedWrite
 * @typedef {{ label: string, lockKind: 'lockExclusive'|'multiLock'|'lockRead'|'lockWrite'|'lease',
 *             paths: string[], tokens: number[], enter: number, writes: FencedWrite[] }} Hold
 * @param {object} h
 * @param {Hold[]} h.holds
 * @param {Record<string, any>} h.store final value of every marker key (absent: undefined)
 * @param {Record<string, number>} [h.permits] semaphore path -> permits
 */
function checkLocks({ holds, store, permits = {} }) {
  const violations = [];
  const same = (a, b) => canon(a) === canon(b);
  const applied = (w) => w.status === 'ok' || (w.status === 'unknown' && same(store[w.key], w.value));
  let writes = 0;
  for (const h of holds) {
    for (const w of h.writes) {
      writes += 1;
      if (w.status === 'ok' && !same(store[w.key], w.value)) violations.push(`durability: acknowledged fenced write ${w.key} of ${h.label} is missing (store has ${JSON.stringify(store[w.key])})`);
      if (w.status === 'refused' && store[w.key] !== undefined && store[w.key] !== null && same(store[w.key], w.value)) {
        violations.push(`refusal: fenced write ${w.key} of ${h.label} was refused (${w.code}) but is in the store`);
      }
    }
  }
  // Proven holding intervals, per path.
  const byPath = new Map();
  for (const h of holds) {
    const acked = h.writes.filter(applied);
    if (acked.length === 0) continue;
    const to = Math.max(...acked.map((w) => w.sentAt));
    h.paths.forEach((p, j) => {
      if (!byPath.has(p)) byPath.set(p, []);
      byPath.get(p).push({ label: h.label, kind: h.lockKind, token: h.tokens[j] ?? h.tokens[0], from: h.enter, to });
    });
  }
  const exclusive = (k) => k === 'lockExclusive' || k === 'multiLock' || k === 'lockWrite';
  let proven = 0;
  for (const [path, ivs] of byPath) {
    proven += ivs.length;
    ivs.sort((a, b) => a.from - b.from || a.to - b.to);
    const overlap = (a, b) => a.from < b.to && b.from < a.to;
    const lease = (x) => x.kind === 'lease';
    const isSem = ivs.some(lease);
    for (let a = 0; a < ivs.length; a++) {
      for (let b = a + 1; b < ivs.length && ivs[b].from < ivs[a].to; b++) {
        const [x, y] = [ivs[a], ivs[b]];
        if (!overlap(x, y)) continue;
        if (lease(x) && lease(y)) continue; // counted below
        // A path is a semaphore or a lock (README): a lease never holds beside a lock.
        if (lease(x) || lease(y)) {
          violations.push(`mixed kinds on ${path}: ${y.label} (${y.kind}, token ${y.token}) held from ${y.from} while ${x.label} (${x.kind}, token ${x.token}) held until ${x.to} (overlap ${x.to - y.from} ms)`);
          continue;
        }
        if (exclusive(x.kind) || exclusive(y.kind)) {
          violations.push(`exclusion on ${path}: ${y.label} (${y.kind}, token ${y.token}) held from ${y.from} while ${x.label} (${x.kind}, token ${x.token}) held until ${x.to} (overlap ${x.to - y.from} ms)`);
        }
      }
      // tokens: a later holder that excludes (or is excluded by) an earlier one has a newer token
      for (let b = a + 1; b < ivs.length; b++) {
        const [x, y] = [ivs[a], ivs[b]];
        if (lease(x) || lease(y) || overlap(x, y) || !(exclusive(x.kind) || exclusive(y.kind))) continue;
        if (x.to <= y.from && y.token <= x.token) violations.push(`tokens on ${path}: ${y.label} (token ${y.token}) held after ${x.label} (token ${x.token})`);
      }
    }
    if (isSem) {
      const n = permits[path] ?? 1;
      const events = ivs.filter(lease).flatMap((x) => [[x.from, 1, x], [x.to, -1, x]]).sort((p, q) => p[0] - q[0] || p[1] - q[1]);
      let cur = 0;
      const live = new Set();
      for (const [t, d, x] of events) {
        cur += d;
        if (d > 0) live.add(x);
        else live.delete(x);
        if (cur > n) {
          violations.push(`semaphore ${path}: ${cur} leases held at ${t} (permits ${n}): ${[...live].map((y) => y.label).join(', ')}`);
          break;
        }
      }
    }
  }
  return { violations, stats: { holds: holds.length, writes, provenHolds: proven, paths: byPath.size } };
}

/** Codes of index.d.ts's ZktxErrorCode union (read from the file, so it stays in step). */
const DOCUMENTED = (() => {
  const dts = require('node:fs').readFileSync(require('node:path').join(__dirname, '..', '..', 'index.d.ts'), 'utf8');
  const m = /export type ZktxErrorCode =([\s\S]*?);/.exec(dts);
  return m ? [...m[1].matchAll(/'([A-Z_]+)'/g)].map((x) => x[1]) : [];
})();
/** Documented, but impossible for the stress test's well-formed calls (INTERNAL: a zktx bug). */
const UNEXPECTED = ['INVALID_ARGUMENT', 'TOO_LARGE', 'STALE_TOKEN', 'NOAUTH', 'NOCHILDRENFOREPHEMERALS', 'INTERNAL'];

/** @param {Array<{label: string, what: string, code?: string, outcome?: string, typed?: boolean, name?: string, message?: string}>} errors */
function checkErrors(errors) {
  const violations = [];
  const byCode = {};
  for (const e of errors) {
    byCode[e.code ?? e.name] = (byCode[e.code ?? e.name] || 0) + 1;
    if (!e.typed) violations.push(`error type: ${e.label} (${e.what}) rejected with a ${e.name || 'non-error'} that is not a ZktxError: ${e.message}`);
    else if (!DOCUMENTED.includes(e.code)) violations.push(`error code: ${e.label} (${e.what}) rejected with undocumented code ${e.code}: ${e.message}`);
    else if (UNEXPECTED.includes(e.code)) violations.push(`error code: ${e.label} (${e.what}) rejected with ${e.code}, impossible for its well-formed call: ${e.message}`);
    else if (e.outcome !== 'unknown' && e.outcome !== 'not_applied') violations.push(`error outcome: ${e.label} (${e.what}) ${e.code} has outcome ${e.outcome}`);
  }
  return { violations, byCode };
}

/**
 * etcd's revisions, checked against each other (see the header). Inputs as built by run.js:
 *
 * @param {object} h
 * @param {Array<{ label: string, kind: 'tx'|'et', status: string, zxid?: number, token?: number,
 *   version?: number, inv: number, cmp?: number, reads: Record<string, any>, writes: TxWrite[],
 *   readRevs?: Record<string, number> }>} h.txns  committed ones carry their commit revision as
 *   `zxid`; executeTransaction's also `token` (its lock key's create revision) and `version`;
 *   readRevs: `tx.committed.reads` (mod revisions read, -1 absent)
 * @param {Array<Hold & { inv?: number }>} h.holds fenced writes acknowledged carry `version` (the
 *   write's mod revision) and `ackAt`
 * @returns {{ violations: string[], stats: object }}
 */
const isRev = (r) => Number.isInteger(r) && r > 0;

/**
 * Every revision a client was told, as one write of etcd (a Txn that changed something):
 * [{ rev, from, to (real-time window of the call), what }]; `violations` gets the revisions that
 * are not revisions. Commits, executeTransaction's lock keys, lock keys, fenced writes.
 */
function revisionEvents({ txns, holds }, violations = [], stats = {}) {
  const events = [];
  const add = (rev, from, to, what) => {
    if (!isRev(rev)) {
      violations.push(`revision: ${what} reported ${JSON.stringify(rev)}, not a revision`);
      return;
    }
    events.push({ rev, from, to, what });
  };
  for (const t of txns) {
    if (t.status !== 'ok' || t.writes.length === 0) continue;
    if (t.seenRev !== undefined) {
      // a commit that may have changed nothing (run.js buildHistory): its revision may be another's
      if (!isRev(t.seenRev)) violations.push(`revision: ${t.label}'s commit reported ${JSON.stringify(t.seenRev)}, not a revision`);
      stats.deleteOnlyCommits = (stats.deleteOnlyCommits || 0) + 1;
      continue;
    }
    if (t.zxid === undefined || t.zxid === null) {
      stats.committedWithoutRevision = (stats.committedWithoutRevision || 0) + 1; // documented: a commit settled after its answer was lost
      continue;
    }
    add(t.zxid, t.inv, t.cmp, `${t.label}'s commit`);
    if (t.kind === 'et') {
      if (t.version !== undefined && t.version !== t.zxid) violations.push(`revision: ${t.label} (executeTransaction) reported version ${t.version} but zxid ${t.zxid}: both are the commit's revision on etcd`);
      if (t.token !== undefined) {
        add(t.token, t.inv, t.cmp, `${t.label}'s lock key (token)`);
        if (isRev(t.token) && !(t.token < t.zxid)) violations.push(`revision: ${t.label} (executeTransaction) committed at revision ${t.zxid}, not after its lock key was created (token ${t.token})`);
      }
    }
  }
  for (const h of holds) {
    h.tokens.forEach((tok, j) => add(tok, h.inv ?? -Infinity, h.enter, `${h.label}'s lock key on ${h.paths[j] ?? h.paths[0]} (token)`));
    for (const w of h.writes) {
      if (w.status !== 'ok' || w.version === undefined) continue;
      add(w.version, w.sentAt, w.ackAt ?? Infinity, `${h.label}'s fenced write ${w.key}`);
      for (const tok of h.tokens) {
        if (isRev(tok) && isRev(w.version) && !(w.version > tok)) violations.push(`fence: ${h.label}'s fenced write ${w.key} applied at revision ${w.version}, not after its lock key was created (token ${tok})`);
      }
    }
  }
  return events;
}

function checkRevisions({ txns, holds }) {
  const violations = [];
  const stats = { revisions: 0, committedWithoutRevision: 0, readRevisionsChecked: 0, holdPairsOrdered: 0 };
  const events = revisionEvents({ txns, holds }, violations, stats);
  stats.revisions = events.length;
  // One revision, one write; and revisions follow real time (etcd is linearizable): a write
  // acknowledged before another was sent has the smaller revision.
  events.sort((a, b) => a.rev - b.rev);
  let latest = null; // the event with the latest start among smaller revisions
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    if (i > 0 && events[i - 1].rev === e.rev) violations.push(`revision: ${events[i - 1].what} and ${e.what} both at revision ${e.rev} (one revision is one write)`);
    if (latest && latest.from > e.to && latest.rev < e.rev) {
      violations.push(`real time: ${e.what} was acknowledged (${e.to}) before ${latest.what} was sent (${latest.from}), yet has the larger revision (${e.rev} > ${latest.rev})`);
    }
    if (!latest || e.from > latest.from) latest = e;
  }

  // A commit read what was written at the revisions it reports (values are unique: a value
  // names its write). Only writes whose revision is known are compared.
  const revOf = new Map(); // `${key}=${canon(value)}` -> commit revision
  for (const t of txns) {
    if (t.status !== 'ok' || !isRev(t.zxid)) continue;
    for (const w of t.writes) if (w.kind !== 'delete') revOf.set(`${w.key}=${canon(w.value)}`, t.zxid);
  }
  for (const t of txns) {
    if (t.status !== 'ok' || !t.readRevs) continue;
    for (const [k, v] of Object.entries(t.reads || {})) {
      const r = t.readRevs[k];
      if (r === undefined) continue;
      stats.readRevisionsChecked += 1;
      if (v === null || v === undefined) {
        if (r !== -1) violations.push(`revision: ${t.label} read ${k} absent but reports it read at mod revision ${r} (absent is -1)`);
        continue;
      }
      const want = revOf.get(`${k}=${canon(v)}`);
      if (want !== undefined && r !== want) violations.push(`revision: ${t.label} read ${k}=${canon(v)}, written at revision ${want}, but reports mod revision ${r}`);
      if (isRev(t.zxid) && !(r < t.zxid)) violations.push(`revision: ${t.label} committed at revision ${t.zxid} after reading ${k} at mod revision ${r}`);
      if (isRev(t.seenRev) && !(r <= t.seenRev)) violations.push(`revision: ${t.label} committed when the store was at revision ${t.seenRev} after reading ${k} at mod revision ${r}`);
    }
  }

  // Holders that exclude each other (exclusive, write and multiLock with anything; a reader with
  // a reader does not): their acknowledged fenced writes fall in disjoint revision ranges, the
  // smaller token's first: a write compares its lock key's create revision, and the next holder
  // holds only after that key was deleted. Semaphore leases: never more than `permits` ranges
  // overlap (checkLocks counts by time; ranges of one write are single revisions here).
  const exclusive = (k) => k === 'lockExclusive' || k === 'multiLock' || k === 'lockWrite';
  const byPath = new Map();
  for (const h of holds) {
    const revs = h.writes.filter((w) => w.status === 'ok' && isRev(w.version)).map((w) => w.version);
    if (revs.length === 0) continue;
    h.paths.forEach((p, j) => {
      if (!byPath.has(p)) byPath.set(p, []);
      byPath.get(p).push({ label: h.label, kind: h.lockKind, token: h.tokens[j] ?? h.tokens[0], lo: Math.min(...revs), hi: Math.max(...revs) });
    });
  }
  for (const [p, ivs] of byPath) {
    ivs.sort((a, b) => a.token - b.token);
    for (let a = 0; a < ivs.length; a++) {
      for (let b = a + 1; b < ivs.length; b++) {
        const [x, y] = [ivs[a], ivs[b]];
        const lease = (z) => z.kind === 'lease';
        if (lease(x) && lease(y)) continue;
        if (!(exclusive(x.kind) || exclusive(y.kind) || lease(x) !== lease(y))) continue; // readers share
        stats.holdPairsOrdered += 1;
        if (!(x.hi < y.lo)) {
          violations.push(
            `exclusion by revisions on ${p}: ${y.label} (${y.kind}, token ${y.token}) wrote at revisions ${y.lo}..${y.hi}, ` +
              `${x.label} (${x.kind}, token ${x.token}, queued earlier) at ${x.lo}..${x.hi}: an earlier holder wrote ${x.hi > y.hi ? 'after' : 'while'} a later one held`
          );
        }
      }
    }
  }
  return { violations, stats };
}

/**
 * etcd: when did a write a client reported at revision `rev` apply, relative to time `t`?
 * 'after' if some write sent after `t` has a smaller revision, 'before' if some write
 * acknowledged before `t` has a larger one, else 'unknown'.
 */
function appliedRelativeTo(events, rev, t) {
  if (events.some((e) => e.from > t && e.rev < rev)) return 'after';
  if (events.some((e) => e.to < t && e.rev > rev)) return 'before';
  return 'unknown';
}

module.exports = { checkSerial, checkLocks, checkErrors, checkRevisions, revisionEvents, appliedRelativeTo, canon, DOCUMENTED };
