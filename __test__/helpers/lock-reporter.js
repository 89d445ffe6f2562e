'use strict';
// For child processes of the delivery tests: waits for the lock at `path` on `zk`, reports to the
// parent over IPC ({ acquired, nodePath, token } then { isHeld }, or { code, message }), then
// releases, closes and exits.
module.exports = async function reportLock(zk, path) {
  try {
    const l = await zk.lock(path);
    // delivered: report at once (the parent checks whether a successor holds it now)
    process.send({ acquired: true, nodePath: l.nodePath, token: String(l.token) });
    const held = await l.isHeld().catch((e) => `isHeld: ${e.code}`);
    process.send({ isHeld: held });
    await l.release().catch(() => {});
  } catch (e) {
    process.send({ code: e.code, message: e.message });
  }
  await zk.close().catch(() => {});
  process.exit(0);
};

/**
 * In the parent: what the waiter's first report `m` says, into `outcome` (`waiter`: acquired or
 * the error code; when acquired, whether the successor's lock `next` is still held beside it and
 * what the waiter's own isHeld said), then releases `next`.
 */
module.exports.judge = async function judge(child, m, next, outcome, nextMessage) {
  outcome.waiter = m.acquired ? 'acquired' : (m.code || JSON.stringify(m));
  if (m.acquired) {
    outcome.successorStillHeld = next ? await next.isHeld().catch(() => false) : false;
    const h = await nextMessage(child, 8000);
    outcome.waiterIsHeld = h.isHeld;
  }
  if (next) await next.release().catch(() => {});
};
