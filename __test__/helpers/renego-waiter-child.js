'use strict';
// Waiter in its own process: connects to argv[2] with session timeout argv[4] ms, says ready,
// waits for {go}, then queues on argv[3] and reports the outcome over IPC.
const { ZooKeeper } = require('../..');
const [connect, path, timeout] = process.argv.slice(2);
const zk = new ZooKeeper({ connect, timeout: Number(timeout) });
process.on('message', async (m) => {
  if (!m.go) return;
  try {
    await zk.znodes.exists('/');
    process.send({ connected: true });
    const l = await zk.lock(path);
    process.send({ acquired: true, nodePath: l.nodePath, token: String(l.token) });
    const held = await l.isHeld().catch((e) => `isHeld: ${e.code}`);
    process.send({ isHeld: held });
    await l.release().catch(() => {});
  } catch (e) {
    process.send({ code: e.code, message: e.message });
  }
  await zk.close().catch(() => {});
  process.exit(0);
});
(async () => {
  await zk.znodes.exists('/');
  process.send({ ready: true });
})();
