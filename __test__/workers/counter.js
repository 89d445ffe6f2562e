'use strict';
// Increments one counter N times with executeTransaction(key, cur => cur + 1).
const { ZooKeeper } = require('../..');
const { clientOptions } = require('../helpers/secure'); // TLS + identity in secure mode
const { waitForGo } = require('../helpers/procs');

const [key, n] = [process.argv[2], Number(process.argv[3])];
(async () => {
  const zk = new ZooKeeper({ timeout: 10000, ...clientOptions() });
  await zk.connect();
  await waitForGo();
  for (let i = 0; i < n; i++) {
    const r = await zk.executeTransaction(key, (cur) => (cur ?? 0) + 1);
    process.stdout.write(`${JSON.stringify({ value: r.value, token: r.token })}\n`);
  }
  await zk.close();
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
