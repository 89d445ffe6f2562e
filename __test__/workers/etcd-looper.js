'use strict';
// Loops on one etcd lock: acquire -> hold a few ms -> release, printing JSON lines on a shared
// clock: {"ev":"acq","token","t"}, {"ev":"lost","t","reason"} (the loss signal while holding),
// {"ev":"rel","t"} (sent after the release was asked for: the hold ended no later). Used by
// faults/etcd-randomized.test.js. argv: lockPath, endpoints (comma-separated), lostAfter.
const { Etcd } = require('../..');

const [lockPath, endpoints, lostAfter] = process.argv.slice(2);
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

(async () => {
  const etcd = new Etcd({ endpoints: endpoints.split(','), timeout: 2000, lostAfter: Number(lostAfter), requestTimeout: 1000 });
  out({ ev: 'ready' });
  for (;;) {
    let lock;
    try {
      lock = await etcd.lock(lockPath, { timeout: 3000 });
    } catch (err) {
      out({ ev: 'fail', code: err.code, t: now() });
      await sleep(50);
      continue;
    }
    out({ ev: 'acq', token: lock.token, t: now() });
    let lostAt;
    lock.signal.addEventListener('abort', () => {
      lostAt = now();
      out({ ev: 'lost', t: lostAt, reason: lock.signal.reason.reason });
    });
    await sleep(Math.random() * 40);
    if (lostAt === undefined) out({ ev: 'rel', t: now() });
    await lock.release().catch(() => {});
  }
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
