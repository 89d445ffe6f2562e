'use strict';
// A ZooKeeper lock reaches JS only if its session provably lives at that moment: the client read
// from its server within lostAfter × the session timeout (at least 300 ms, at most the timeout).
// Else LOCK_LOST, the node deleted (or gone with the session). The acquisition is decided on
// zktx's I/O thread when the answer that grants it is read; the JS thread delivers it later. A
// process paused in between past its session timeout (SIGSTOP, a long GC, a blocked event loop)
// had its session expired and its node deleted meanwhile, a successor holding the lock, and the
// paused holder was still handed the lock (2 holders at once). Here the pause is the JS thread
// blocked right after the proxy forwarded the answer that grants the lock: the proxy runs on the
// JS thread, so nothing reaches the server meanwhile, pings included, and the server expires the
// session as it would a frozen process's.
const diagnostics = require('node:diagnostics_channel');
const { startProxy } = require('../testing');
const { clientsClosedAfterAll, clientAt, unique } = require('./helpers/zk');

const open = clientsClosedAfterAll();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Blocks the JS thread `ms` right after the proxy forwarded, from the server, the first chunk
 * that holds `marker` (bytes) after now. */
function blockAfter(proxy, marker, ms) {
  let done = false;
  for (const pair of proxy.pairs) {
    pair.upstream.on('data', (c) => {
      if (!done && c.includes(marker)) {
        done = true;
        const until = Date.now() + ms;
        while (Date.now() < until); // the proxy's own listener wrote the chunk already
      }
    });
  }
}

describe('ZooKeeper: an acquisition delivered only while its session provably lives', () => {
  it('[one holder at a time] a waiter whose JS thread blocks past its session timeout right after the answer that grants it the lock: LOCK_LOST, never held beside the successor', async () => {
    const rounds = 3;
    const outcomes = [];
    const published = [];
    const onFailed = (e) => published.push(e.error.code);
    diagnostics.subscribe('zktx:lock:failed', onFailed);
    try {
      for (let round = 0; round < rounds; round++) {
        const path = `/${unique('zk-delivered')}`;
        const holder = open();
        const successor = open();
        const proxy = await startProxy(process.env.ZK_CONNECT);
        const waiter = open.track(clientAt(proxy.connect, { timeout: 2000 }));
        try {
          const first = await holder.lock(path);
          const waiting = waiter.lock(path).then((l) => ({ lock: l }), (e) => ({ code: e.code }));
          await sleep(300); // the waiter is queued behind the holder
          // The waiter learns the holder's node is gone (a watch event naming it), lists the
          // queue and decides. Block right after the listing that grants it, which names the
          // waiter's own node: it is the first answer naming that node after now.
          const { children } = await holder.znodes.getChildren(path);
          const mine = children.find((c) => !first.nodePath.endsWith(`/${c}`));
          blockAfter(proxy, Buffer.from(mine), 3500);
          const successorLock = successor.lock(path); // queued behind the waiter
          await sleep(100);
          await first.release();
          const got = await waiting; // runs after the block: the session expired meanwhile
          const next = await successorLock; // acquired during the block, when the waiter's session expired
          const both = got.lock ? await got.lock.isHeld().catch(() => false) : false;
          outcomes.push({ waiter: got.code || 'acquired', waiterStillHeld: both, successorToken: next.token });
          await next.release();
          if (got.lock) await got.lock.release().catch(() => {});
        } finally {
          await proxy.close();
        }
      }
    } finally {
      diagnostics.unsubscribe('zktx:lock:failed', onFailed);
    }
    console.log(JSON.stringify(outcomes));
    expect(outcomes.map((o) => o.waiter)).toEqual(Array(rounds).fill('LOCK_LOST'));
    expect(published.filter((c) => c === 'LOCK_LOST').length).toBe(rounds);
  }, 60000);

  it('[no false LOCK_LOST] a healthy server, lostAfter 0.05 at a 2 s session timeout: every acquisition, contended or not, is delivered', async () => {
    const a = open({ timeout: 2000, lostAfter: 0.05 });
    const b = open({ timeout: 2000, lostAfter: 0.05 });
    const path = `/${unique('zk-delivered-healthy')}`;
    const outcomes = { acquired: 0 };
    const cycle = async (c) => {
      for (let i = 0; i < 40; i++) {
        try {
          const l = await c.lock(path);
          outcomes.acquired++;
          await sleep(2);
          await l.release();
        } catch (err) {
          outcomes[err.code] = (outcomes[err.code] || 0) + 1;
        }
      }
    };
    await Promise.all([cycle(a), cycle(b)]);
    expect(outcomes).toEqual({ acquired: 80 });
  }, 60000);
});
