'use strict';
// Waiter in its own process: connects to argv[2] with session timeout argv[4] ms, says ready,
// waits for {go}, then queues on argv[3] and reports the outcome over IPC.
const { ZooKeeper } = require('../..');
const reportLock = require('./lock-reporter');
const [connect, path, timeout] = process.argv.slice(2);
const zk = new ZooKeeper({ connect, timeout: Number(timeout) });
process.on('message', async (m) => {
  if (!m.go) return;
  const up = await zk.znodes.exists('/').then(() => true, (e) => { process.send({ code: e.code, message: e.message }); return false; });
  if (!up) process.exit(0);
  process.send({ connected: true });
  await reportLock(zk, path);
});
(async () => {
  await zk.znodes.exists('/');
  process.send({ ready: true });
})();
