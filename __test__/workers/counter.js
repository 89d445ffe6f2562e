'use strict';
// Increments one counter N times with executeTransaction(key, cur => cur + 1), on ZooKeeper or,
// with a third argument `etcd`, on etcd (ETCD_ENDPOINTS).
const { ZooKeeper, Etcd } = require('../..');
const { clientOptions } = require('../helpers/secure'); // TLS + identity in secure mode
const { waitForGo } = require('../helpers/procs');

const [key, n, backend] = [process.argv[2], Number(process.argv[3]), process.argv[4]];
(async () => {
  const zk = backend === 'etcd' ? new Etcd({ endpoints: process.env.ETCD_ENDPOINTS, timeout: 10000 }) : new ZooKeeper({ timeout: 10000, ...clientOptions() });
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
