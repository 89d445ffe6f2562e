'use strict';
// Run with --expose-gc. Acquires a lock, drops every reference to it without release(), lets
// the garbage collector take it, then acquires the same path again on the same client.
// argv: <path> <plain|watched>  ("watched" first reads lock.signal, which arms a loss watch).
// Prints one JSON line: { result: 'acquired' | <error code>, leftover: <nodes before re-acquiring> }.
const { ZooKeeper } = require('../..');
const { clientOptions } = require('../helpers/secure'); // TLS + identity in secure mode

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

(async () => {
  const [path, mode] = process.argv.slice(2);
  const zk = new ZooKeeper({ timeout: 10000, debug_level: 0, ...clientOptions() });
  await (async () => {
    const lock = await zk.lock(path);
    if (mode === 'watched') void lock.signal;
  })();
  for (let i = 0; i < 10; i++) {
    global.gc();
    await sleep(50);
  }
  let leftover = -1;
  for (let i = 0; i < 100; i++) {
    leftover = (await zk.children(path)).filter((c) => c.startsWith('_c_')).length;
    if (leftover === 0) break;
    await sleep(50);
  }
  let result;
  try {
    const again = await zk.lock(path, { timeout: 3000 });
    await again.release();
    result = 'acquired';
  } catch (err) {
    result = err.code || String(err);
  }
  console.log(JSON.stringify({ result, leftover }));
  await zk.close();
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
