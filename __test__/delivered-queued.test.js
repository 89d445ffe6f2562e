'use strict';
// No false LOCK_LOST from the delivery check of ZooKeeper locks (its proof: an answer to a
// request queued within the bound) when the lock's requests wait: behind a burst of 20,000 calls
// on the same client, or made during a 3.5 s disconnect. Not covered, by design: at a lostAfter
// of 0.03 (300 ms of a 10 s session) a lock made behind 100,000 calls is LOCK_LOST, the JS thread
// settling the calls before it for longer than the bound (docs/locks.md).
const { startProxy } = require('../testing');
const { clientAt, unique } = require('./helpers/zk');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CONNECT = () => process.env.ZK_CONNECT;

async function burstRound(lostAfter, burst) {
  const zk = clientAt(CONNECT(), { timeout: 10000, lostAfter });
  const path = `/${unique('brk-burst')}`;
  try {
    await zk.znodes.exists('/');
    await (await zk.lock(path)).release(); // the lock's directory exists (a lock used before)
    const calls = [];
    for (let i = 0; i < burst; i++) calls.push(zk.znodes.exists(`/brk-nonexistent-${i}`).catch(() => {}));
    let result;
    try {
      const l = await zk.lock(path);
      result = 'acquired';
      await l.release();
    } catch (e) {
      result = e.code || e.message;
    }
    await Promise.all(calls);
    // acquiring again works, and nothing is left behind
    const again = await zk.lock(path);
    await again.release();
    const { children } = await zk.znodes.getChildren(path);
    return { result, leftover: children.length };
  } finally {
    await zk.close().catch(() => {});
  }
}

async function disconnectRound(lostAfter, downMs) {
  const proxy = await startProxy(CONNECT());
  const zk = clientAt(proxy.connect, { timeout: 10000, lostAfter });
  const watcher = clientAt(CONNECT(), { timeout: 10000 });
  const path = `/${unique('brk-disc')}`;
  try {
    await zk.znodes.exists('/');
    proxy.partition({ mode: 'blackhole' });
    await sleep(100);
    const p = zk.lock(path).then((l) => l.release().then(() => 'acquired'), (e) => e.code || e.message);
    await sleep(downMs);
    proxy.heal();
    const result = await p;
    await sleep(500);
    let leftover = 0;
    try { leftover = (await watcher.znodes.getChildren(path)).children.length; } catch (e) { leftover = e.code; }
    const again = await zk.lock(path).then((l) => l.release().then(() => 'ok'), (e) => e.code);
    return { result, leftover, again };
  } finally {
    await zk.close().catch(() => {});
    await watcher.close().catch(() => {});
    await proxy.close();
  }
}

describe('ZooKeeper delivery check: no false LOCK_LOST when the lock waits in a queue', () => {
  it('a lock called behind a burst of calls on the same client is delivered', async () => {
    const lostAfter = Number(process.env.BRK_LOST_AFTER || 0.3); // 3 s of a 10 s session
    const burst = Number(process.env.BRK_BURST || 20000);
    const rounds = Number(process.env.BRK_ROUNDS || 3);
    const out = [];
    for (let i = 0; i < rounds; i++) out.push(await burstRound(lostAfter, burst));
    console.log('burst', lostAfter, burst, JSON.stringify(out));
    expect(out.filter((o) => o.result !== 'acquired')).toEqual([]);
  }, 300000);

  it('a lock called during a short disconnect (session alive) is delivered after the reconnect', async () => {
    const lostAfter = Number(process.env.BRK_LOST_AFTER_DISC || 0.3); // 3 s of a 10 s session
    const downMs = Number(process.env.BRK_DOWN_MS || 3500);
    const rounds = Number(process.env.BRK_ROUNDS || 3);
    const out = [];
    for (let i = 0; i < rounds; i++) out.push(await disconnectRound(lostAfter, downMs));
    console.log('disconnect', lostAfter, downMs, JSON.stringify(out));
    expect(out.filter((o) => o.result !== 'acquired')).toEqual([]);
  }, 300000);
});
