'use strict';
// Worker for etcd-waiter-attacks.test.js. argv: <lock path> [requestTimeout ms]; ETCD_ENDPOINTS names etcd (a proxy).
// Etcd({ timeout: 2000 }): warms its lease on <path>-warm, prints {"ready"}; on SIGUSR2 locks
// <path> and prints {"result", "token"|"code", "at", "lost"} (lost: whether lock.signal had
// aborted when acquire resolved), holds 3 s if acquired, then closes.
const { Etcd } = require('../..');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const [lockPath, requestTimeout] = process.argv.slice(2);
const alive = setInterval(() => {}, 1000);

(async () => {
  const etcd = new Etcd({ timeout: 2000, ...(requestTimeout ? { requestTimeout: Number(requestTimeout) } : {}) });
  await (await etcd.lock(`${lockPath}-warm`)).release();
  process.on('SIGUSR2', async () => {
    try {
      const lock = await etcd.lock(lockPath, { timeout: 15000 });
      const at = Date.now();
      out({ result: 'acquired', token: lock.token, at, lost: lock.signal.aborted });
      await sleep(3000);
      await lock.release().catch(() => {});
    } catch (err) {
      out({ result: err.code, message: err.message, at: Date.now() });
    }
    clearInterval(alive);
    await etcd.close();
  });
  out({ ready: true });
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
