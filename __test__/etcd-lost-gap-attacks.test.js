'use strict';
// Attacks on "a successor never acts while the old holder could still believe it holds" for
// locks declared lost (ea30791: the key of a lock declared lost after lostAfter is deleted no
// earlier than the last answered keep-alive's send time + TTL) and for locks whose holder keeps
// only their loss signal. Real etcd at ETCD_ENDPOINTS; the holder's only way there is a proxy.
const { unique } = require('./helpers/zk');
const { etcdKit, jsonWorker } = require('./helpers/etcd');
const { workerPath } = require('./helpers/procs');

const describeEtcd = process.env.ETCD_ENDPOINTS ? describe : describe.skip;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const { ENDPOINTS, etcd, proxied, children } = etcdKit();

/** Three rounds: the ms from the holder's signal aborting to the successor acquiring. */
async function gapsAfterLoss(lostAfter) {
  const gaps = [];
  for (let round = 0; round < 3; round++) {
    const p = `/locks/${unique('atk-lostgap')}`;
    const { proxy, client: h } = await proxied({ timeout: 2000, lostAfter, requestTimeout: 1000 });
    const w = etcd({ timeout: 2000 });
    const held = await h.lock(p);
    let abortedAt;
    held.signal.addEventListener('abort', () => { abortedAt = performance.now(); });
    let acquiredAt;
    const waiting = w.lock(p, { timeout: 15000 }).then((l) => { acquiredAt = performance.now(); return l; });
    await sleep(300);
    proxy.partition({ mode: 'responses' });
    const next = await waiting;
    gaps.push(abortedAt === undefined ? 'successor first' : Math.round(acquiredAt - abortedAt));
    await next.release();
    proxy.heal();
    await held.release().catch(() => {});
    await h.close();
  }
  return gaps.map((g) => (typeof g === 'number' && g >= 100 ? 'gap' : g));
}

describeEtcd('etcd: a successor acts only after the holder was told', () => {
  // The proxy forwards the holder's requests but drops every answer: its keep-alives renew the
  // lease on etcd, it hears nothing, and is declared lost at lostAfter × TTL; the key then goes
  // only through its own delete (the lease lives). With the default lostAfter (1) the delete's
  // not_before (last answered send + TTL) is the declaration instant itself.
  it('[the holder is told first, then a gap] lostAfter 0.5, answers dropped: the successor acquires only ~TTL/2 after the holder\'s signal aborted', async () => {
    expect(await gapsAfterLoss(0.5)).toEqual(['gap', 'gap', 'gap']); // ~1000 ms each
  }, 60000);

  // With the default lostAfter (1) there is no such gap, by design (docs/etcd.md, "Losing a
  // lock"): the declaration and the earliest delete are the same instant, last answered send +
  // TTL, which is also the earliest etcd could expire the lease itself. Measured: the successor
  // acquired 1-6 ms after the holder's signal aborted (etcd's own expiry, no delete: 37-507 ms).

  // A holder that keeps only `lock.signal` (`const { signal } = await etcd.lock(p)`, the signal
  // handed to the guarded work): the Lock object is garbage, and a Lock garbage-collected is
  // released in the background. While its signal is held the lock must not go unannounced.
  it('[a lock whose signal is still held is not released by GC behind its holder] the holder keeps only lock.signal: no successor while it is unaborted', async () => {
    const p = `/locks/${unique('atk-gcsignal')}`;
    const wk = jsonWorker(children, ['--expose-gc', workerPath('gc-signal-lock.js'), p], ENDPOINTS);
    const r = await wk.line((l) => 'successor' in l, 20000, 'gc-signal worker');
    // observed on ea30791: { signalAborted: false, successor: 'acquired' } (the successor got in
    // ~100 ms after a GC; the holder's signal never aborted)
    expect(r).toEqual({ signalAborted: false, successor: 'TIMEOUT' });
  }, 30000);
});
