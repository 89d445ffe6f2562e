'use strict';
// Worker for etcd-attacks.test.js. argv: <mode> <lock path>; ETCD_ENDPOINTS names etcd.
//   exit:  lock on a 30 s lease, print {"token"}, then process.exit(0) (the exit hook must revoke).
//   drain: lock on a 30 s lease, print {"token"}, then let the event loop run dry (beforeExit).
//   wait:  (2 s lease) print {"joining"}, wait for the lock, print {"result", "token"|"code"};
//          if acquired, print {"held": isHeld()} and hold 3 s.
//   gc:    (run with --expose-gc) lock, drop the Lock unreleased, collect it, then lock the same
//          path again on the same client: print {"result"}.
const { Etcd } = require('../..');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const [mode, lockPath] = process.argv.slice(2);

(async () => {
  if (mode === 'exit' || mode === 'drain') {
    const etcd = new Etcd({ timeout: 30000 });
    const lock = await etcd.lock(lockPath);
    out({ token: lock.token, key: lock.nodePath });
    if (mode === 'exit') process.exit(0);
    return; // nothing keeps the loop alive: beforeExit closes the client
  }
  if (mode === 'wait') {
    const alive = setInterval(() => {}, 1000);
    const etcd = new Etcd({ timeout: 2000 });
    await etcd.connect();
    out({ joining: true });
    try {
      const lock = await etcd.lock(lockPath);
      out({ result: 'acquired', token: lock.token, at: Date.now() });
      out({ held: await lock.isHeld() });
      await sleep(3000);
      await lock.release();
    } catch (err) {
      out({ result: err.code, message: err.message, at: Date.now() });
    }
    clearInterval(alive);
    await etcd.close();
    return;
  }
  if (mode === 'gc') {
    const etcd = new Etcd({ timeout: 10000 });
    await (async () => {
      const lock = await etcd.lock(lockPath);
      void lock.signal; // arm the loss watch too
    })();
    for (let i = 0; i < 10; i++) {
      global.gc();
      await sleep(50);
    }
    let result;
    try {
      const again = await etcd.lock(lockPath, { timeout: 3000 });
      await again.release();
      result = 'acquired';
    } catch (err) {
      result = err.code || String(err);
    }
    out({ result });
    await etcd.close();
  }
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});

// exitmany: N clients (argv[4], default 5) each holding a lock under <path>; prints {"ready"},
// then process.exit(0) on SIGUSR2 (the exit hook closes every client).
if (mode === 'exitmany') {
  const n = Number(process.argv[4] || 5);
  const alive = setInterval(() => {}, 1000);
  void alive;
  (async () => {
    for (let i = 0; i < n; i++) await new Etcd({ timeout: 30000 }).lock(`${lockPath}/${i}`);
    process.on('SIGUSR2', () => {
      process.stdout.write(`${JSON.stringify({ exiting: Date.now() })}\n`);
      process.exit(0);
    });
    out({ ready: true });
  })().catch((err) => {
    console.error(`${err.code}: ${err.message}`);
    process.exit(1);
  });
}
