'use strict';
// A waiter in its own process (so the whole process can be SIGSTOPped): connects to argv[2]
// with a 2 s session, queues on argv[3], reports the outcome to its parent over IPC.
const { ZooKeeper } = require('../..');
const reportLock = require('./lock-reporter');
const [connect, path, timeout] = process.argv.slice(2);
const zk = new ZooKeeper({ connect, timeout: Number(timeout || 2000) });
(async () => {
  await zk.znodes.exists('/');
  process.send({ ready: true });
  await reportLock(zk, path);
})();
