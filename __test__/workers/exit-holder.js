'use strict';
// Takes a lock and leaves with process.exit() while holding it (no release, no close).
const { ZooKeeper } = require('../..');
const { clientOptions } = require('../helpers/secure'); // TLS + identity in secure mode

(async () => {
  const zk = new ZooKeeper({ timeout: 20000, debug_level: 0, ...clientOptions() });
  await zk.lock(process.argv[2]);
  process.exit(0);
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
