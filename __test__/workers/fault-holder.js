'use strict';
// Fault tests: takes the lock argv[2] (ZK_CONNECT names the server), prints one JSON line
// {ready, token, nodePath, pid} and then holds it until killed. Session timeout: argv[3] ms.
const { ZooKeeper } = require('../..');
const { clientOptions } = require('../helpers/secure'); // TLS + identity in secure mode

const [path, timeout] = [process.argv[2], Number(process.argv[3] || 2000)];
(async () => {
  const zk = new ZooKeeper({ timeout, debug_level: 0, ...clientOptions() });
  // Kept reachable: a Lock garbage-collected without release() is released (README).
  const lock = await zk.lock(path);
  globalThis.heldLock = lock;
  setInterval(() => {}, 60_000); // hold: only a signal ends this process
  process.stdout.write(`${JSON.stringify({ ready: true, token: lock.token, nodePath: lock.nodePath, pid: process.pid })}\n`);
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
