'use strict';
// Worker for lock-attacks.test.js: one client (session 10 s) holds two locks, argv[2]-a and argv[2]-b; prints
// "ready". On "go" (sent once the test froze the server with SIGSTOP) it starts one call that
// needs the server, then calls process.exit(0) 100 ms later, as argv[3] says:
//   exit          nothing in flight (control: the exit hook's CloseSession reaches the frozen server)
//   release-exit  lock a's release() in flight
//   commit-exit   an executeTransaction commit in flight (its updater was waiting for "go")
//   isheld-exit   lock a's isHeld() in flight
const readline = require('node:readline');
const { ZooKeeper } = require('../..');

(async () => {
  const [prefix, mode] = [process.argv[2], process.argv[3]];
  const zk = new ZooKeeper({ timeout: 10000, debug_level: 0 });
  let go;
  const went = new Promise((resolve) => { go = resolve; });
  const a = await zk.lock(`${prefix}-a`);
  globalThis.held = [a, await zk.lock(`${prefix}-b`)];
  if (mode === 'commit-exit') {
    let inUpdater;
    const entered = new Promise((resolve) => { inUpdater = resolve; });
    zk.executeTransaction(`${prefix.replace(/\//g, '_')}-key`, async () => { inUpdater(); await went; return 1; }).catch(() => {});
    await entered;
  }
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    if (line !== 'go') return;
    if (mode === 'release-exit') a.release().catch(() => {});
    if (mode === 'isheld-exit') a.isHeld().catch(() => {});
    go();
    setTimeout(() => process.exit(0), 100);
  });
  console.log('ready');
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
