'use strict';
// Holds the lock argv[2] until a signal ends the process; argv[3] says how the service shuts down:
//   closeOnSignals  zk.closeOnSignals() and nothing else
//   own-handler     zk.closeOnSignals() plus the service's own SIGTERM handler (it exits by itself)
//   recipe          README's process.once('SIGTERM', ...) recipe, without closeOnSignals
//   none            no handler: the default action kills the process, the session lives on
// Prints "ready" once the lock is held. The session timeout is long (20 s), so only a close frees
// the lock quickly.
const { ZooKeeper } = require('../..');
const { clientOptions } = require('../helpers/secure'); // TLS + identity in secure mode

(async () => {
  const [path, mode] = process.argv.slice(2);
  const zk = new ZooKeeper({ timeout: 20000, debug_level: 0, ...clientOptions() });
  if (mode === 'closeOnSignals' || mode === 'own-handler') zk.closeOnSignals();
  if (mode === 'own-handler') {
    process.on('SIGTERM', () => {
      console.log('own handler ran');
      setTimeout(() => process.exit(7), 300);
    });
  }
  if (mode === 'recipe') {
    for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => zk.close().finally(() => process.exit(0)));
  }
  // Kept reachable: a Lock garbage-collected without release() is released (README).
  globalThis.heldLock = await zk.lock(path);
  console.log('ready');
  setInterval(() => {}, 1000); // a service: runs until stopped
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
