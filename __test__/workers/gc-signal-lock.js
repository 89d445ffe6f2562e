'use strict';
// Run with --expose-gc. A holder that keeps only its lock's signal (the Lock object itself is
// garbage: `const { signal } = await etcd.lock(p)`, the signal handed to the guarded work), the
// garbage collector run every 100 ms, and a second client waiting on the same path.
// argv: <path>. Prints one JSON line: { signalAborted, successor: 'acquired' | <error code> }.
const { Etcd } = require('../..');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

(async () => {
  const [path] = process.argv.slice(2);
  const endpoints = process.env.ETCD_ENDPOINTS;
  const [h, w] = [new Etcd({ endpoints, timeout: 2000 }), new Etcd({ endpoints, timeout: 2000 })];
  const { signal } = await h.lock(path);
  let successor = null;
  w.lock(path, { timeout: 3000 }).then((l) => { successor = 'acquired'; return l.release(); }, (e) => { successor = e.code || String(e); });
  while (successor === null) {
    global.gc();
    await sleep(100);
  }
  console.log(JSON.stringify({ signalAborted: signal.aborted, successor }));
  await Promise.all([h.close(), w.close()]);
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
