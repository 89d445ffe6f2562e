'use strict';
// A waiter in its own process (so the whole process can be SIGSTOPped): connects to argv[2]
// with a 2 s session, queues on argv[3], reports the outcome to its parent over IPC.
const { ZooKeeper } = require('../..');
const [connect, path, timeout] = process.argv.slice(2);
const zk = new ZooKeeper({ connect, timeout: Number(timeout || 2000) });
(async () => {
  await zk.znodes.exists('/');
  process.send({ ready: true });
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
})();
