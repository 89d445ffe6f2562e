'use strict';
// Random transfers between accounts with zk.transaction; every 10th operation is a read-only
// audit of all accounts. Prints one JSON line per committed transaction, and a summary.
const { ZooKeeper, Etcd } = require('../..');
const { clientOptions } = require('../helpers/secure'); // TLS + identity in secure mode
const { waitForGo } = require('../helpers/procs');

// A fourth argument `etcd` runs it on etcd (ETCD_ENDPOINTS).
const [prefix, accounts, ops, backend] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), process.argv[5]];
const keys = Array.from({ length: accounts }, (_, i) => `${prefix}-${i}`);
const pick = () => keys[Math.floor(Math.random() * keys.length)];

(async () => {
  const zk = backend === 'etcd' ? new Etcd({ endpoints: process.env.ETCD_ENDPOINTS, timeout: 10000 }) : new ZooKeeper({ timeout: 10000, ...clientOptions() });
  await zk.connect();
  await waitForGo();
  let retries = 0;
  let failed = 0;
  for (let i = 0; i < ops; i++) {
    let last;
    const audit = i % 10 === 9;
    try {
      const out = await zk.transaction(async (tx) => {
        last = tx;
        if (audit) return (await tx.getMany(keys)).reduce((a, b) => a + b, 0);
        const from = pick();
        let to = pick();
        while (to === from) to = pick();
        const amount = 1 + Math.floor(Math.random() * 20);
        const [a, b] = await tx.getMany([from, to]);
        if (a < amount) return null;
        tx.set(from, a - amount);
        tx.set(to, b + amount);
        return { from, to, amount, a, b };
      }, { retries: 100 });
      retries += last.attempt;
      const writes = {};
      if (out && !audit) {
        writes[out.from] = { version: last.committed.versions[out.from], value: out.a - out.amount };
        writes[out.to] = { version: last.committed.versions[out.to], value: out.b + out.amount };
      }
      process.stdout.write(`${JSON.stringify({ zxid: last.committed.zxid, reads: last.committed.reads, writes, audit: audit ? out : undefined })}\n`);
    } catch (err) {
      if (err.code !== 'CONFLICT') throw err;
      failed += 1;
    }
  }
  process.stdout.write(`${JSON.stringify({ summary: true, retries, failed })}\n`);
  await zk.close();
})().catch((err) => {
  console.error(`${err.code}: ${err.stack}`);
  process.exit(1);
});
