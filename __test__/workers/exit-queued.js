'use strict';
// Queues for a lock someone else holds, then leaves with process.exit() while still queued.
const { ZooKeeper } = require('../..');
const { clientOptions } = require('../helpers/secure'); // TLS + identity in secure mode

(async () => {
  const zk = new ZooKeeper({ timeout: 10000, debug_level: 0, ...clientOptions() });
  const path = process.argv[2];
  zk.lock(path).catch(() => {});
  for (;;) {
    const queue = (await zk.children(path)).filter((c) => c.startsWith('_c_'));
    if (queue.length >= 2) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  console.log('queued');
  process.exit(0);
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
