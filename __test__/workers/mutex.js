'use strict';
// Takes one lock N times; while holding, appends (token, enter, leave) on a shared clock to a
// file shared by all workers.
const fs = require('node:fs');
const { ZooKeeper } = require('../..');
const { clientOptions } = require('../helpers/secure'); // TLS + identity in secure mode
const { waitForGo } = require('../helpers/procs');

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const [path, n, file] = [process.argv[2], Number(process.argv[3]), process.argv[4]];
(async () => {
  const zk = new ZooKeeper({ timeout: 10000, ...clientOptions() });
  await zk.connect();
  await waitForGo();
  for (let i = 0; i < n; i++) {
    await zk.withLock(path, async (lock) => {
      const enter = now();
      await sleep(Math.random() * 3);
      const leave = now();
      fs.appendFileSync(file, `${JSON.stringify({ token: lock.token, enter, leave, pid: process.pid })}\n`);
    });
  }
  await zk.close();
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
