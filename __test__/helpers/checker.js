'use strict';
// Checks a history of lock holds and lock-fenced writes against what the store holds at the end.
//
// A hold is what one client believed: it got the lock (token, `enter` on a clock shared by all
// processes of the machine) and made writes fenced on it. A holder may believe it holds when it
// does not (frozen by SIGSTOP, partitioned): that is what fencing is for. So only what the
// server acknowledged counts as evidence of holding:
//
//   A fenced write is one multi whose first op checks the holder's lock node. If the server
//   acknowledged it, the node existed when the write applied, after the client sent it. Lock
//   nodes are ephemeral-sequential, never re-created under the same name, and the holder had
//   seen itself first in the queue at `enter`. So the holder really held the lock during
//   [enter, sentAt of its last acknowledged write]: those intervals of two holders never overlap.
//   (Not up to ackAt: an answer can reach a frozen holder long after it lost the lock.)
//
// Checked:
//   exclusion   the intervals above are pairwise disjoint
//   tokens      holders ordered by those intervals have strictly increasing tokens
//   order       (with orderKey) acknowledged writes of one shared key, ordered by the znode
//               version they produced, never go back to an older token; versions are distinct
//   durability  every acknowledged write is in the final store (its value, under its key)
//   refusal     no refused write (status 'refused': the server or client said nothing was written)
//               is in the final store
//   strays      (with storeKeys) no key in the store that no write of the history attempted
// 'unknown' writes (connection lost or deadline with the request sent; or the writer died) may or
// may not be present. One found in the store under its own key (not the shared one) did apply,
// so it counts as evidence of holding like an acknowledged one: a stale holder whose write was
// answered by a connection loss cannot hide an overlap that way.

/**
 * @typedef {{ key: string, value: any, sentAt: number, ackAt?: number,
 *             status: 'ok'|'refused'|'unknown', version?: number, code?: string }} Write
 * @typedef {{ holder: string, token: number, enter: number, writes: Write[] }} Hold
 * @param {object} history
 * @param {Hold[]} history.holds
 * @param {Map<string, any>|object} history.store final value of every key written (absent: undefined)
 * @param {string} [history.orderKey] a key every holder writes (versions must follow tokens)
 * @param {Iterable<string>} [history.storeKeys] every key present in the store, for strays
 * @returns {{ violations: string[], stats: object }}
 */
function checkFencedHistory({ holds, store, orderKey, storeKeys }) {
  const violations = [];
  const read = (key) => (store instanceof Map ? store.get(key) : store[key]);
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  const writes = holds.flatMap((h) => h.writes.map((w) => ({ ...w, holder: h.holder, token: h.token })));
  const stats = {
    holds: holds.length,
    ackedHolds: 0,
    writes: writes.length,
    ok: writes.filter((w) => w.status === 'ok').length,
    refused: writes.filter((w) => w.status === 'refused').length,
    unknown: writes.filter((w) => w.status === 'unknown').length,
  };

  // unknown outcomes settled by the store (keys written once each)
  const applied = (w) => w.status === 'ok' || (w.status === 'unknown' && w.key !== orderKey && same(read(w.key), w.value));
  stats.unknownApplied = writes.filter((w) => w.status === 'unknown' && applied(w)).length;

  // exclusion and tokens
  const proven = holds
    .map((h) => {
      const acked = h.writes.filter(applied);
      if (acked.length === 0) return null;
      return { holder: h.holder, token: h.token, from: h.enter, to: Math.max(...acked.map((w) => w.sentAt)) };
    })
    .filter(Boolean)
    .sort((a, b) => a.from - b.from || a.to - b.to);
  stats.ackedHolds = proven.length;
  let reach = null; // the proven interval reaching furthest so far
  for (const p of proven) {
    if (reach && p.from < reach.to) {
      violations.push(
        `exclusion: ${p.holder} (token ${p.token}) held from ${p.from.toFixed(1)} while ${reach.holder} (token ${reach.token}) held until ${reach.to.toFixed(1)} (overlap ${(reach.to - p.from).toFixed(1)} ms)`
      );
    }
    if (reach && p.token <= reach.token) {
      violations.push(`tokens: ${p.holder} (token ${p.token}) held after ${reach.holder} (token ${reach.token})`);
    }
    if (!reach || p.to > reach.to) reach = p;
  }
  const byToken = new Map();
  for (const h of holds) {
    if (byToken.has(h.token) && byToken.get(h.token) !== h.holder) violations.push(`tokens: ${h.holder} and ${byToken.get(h.token)} share token ${h.token}`);
    byToken.set(h.token, h.holder);
  }

  // order of a shared key
  if (orderKey !== undefined) {
    const ordered = writes.filter((w) => w.key === orderKey && w.status === 'ok').sort((a, b) => a.version - b.version);
    for (let i = 1; i < ordered.length; i++) {
      const [prev, cur] = [ordered[i - 1], ordered[i]];
      if (cur.version === prev.version) violations.push(`order: ${prev.holder} and ${cur.holder} both acknowledged ${orderKey}@${cur.version}`);
      if (cur.token < prev.token) {
        violations.push(`order: ${orderKey}@${cur.version} written by token ${cur.token} (${cur.holder}) after @${prev.version} by newer token ${prev.token} (${prev.holder})`);
      }
    }
    const last = ordered[ordered.length - 1];
    const final = read(orderKey);
    const candidates = writes.filter((w) => w.key === orderKey && (w.status === 'unknown' || w === last));
    if (last && !candidates.some((w) => same(w.value, final))) {
      violations.push(`durability: ${orderKey} is ${JSON.stringify(final)}, expected its last acknowledged write ${JSON.stringify(last.value)} (@${last.version}) or an unknown-outcome one`);
    }
  }

  // durability and refusal (keys written once each; the shared key is judged above)
  for (const w of writes) {
    if (w.key === orderKey) {
      if (w.status === 'refused' && same(read(orderKey), w.value)) violations.push(`refusal: ${w.holder}'s refused write is the value of ${orderKey}`);
      continue;
    }
    const stored = read(w.key);
    if (w.status === 'ok' && !same(stored, w.value)) {
      violations.push(`durability: acknowledged write of ${w.key} by ${w.holder} (token ${w.token}) is missing (store has ${JSON.stringify(stored)})`);
    }
    if (w.status === 'refused' && stored !== undefined && same(stored, w.value)) {
      violations.push(`refusal: ${w.key} by ${w.holder} (token ${w.token}) was refused (${w.code}) but is in the store`);
    }
  }

  // strays
  if (storeKeys) {
    const attempted = new Set(writes.map((w) => w.key));
    for (const k of storeKeys) if (!attempted.has(k)) violations.push(`strays: ${k} is in the store but no write of the history made it`);
  }
  return { violations, stats };
}

module.exports = { checkFencedHistory };
