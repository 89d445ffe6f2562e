'use strict';
// Worker for lock-attacks.test.js: one client holds a lock under argv[2], prints "ready", then on "go" leaves
// the way argv[3] says:
//   close-exit     zk.close() (not awaited), then process.exit(0) in the same tick
//   signal-exit    zk.closeOnSignals(['SIGTERM']) plus a listener of the service's that calls
//                  process.exit(0) on SIGTERM (the docs: "a listener of yours decides"); the
//                  process sends itself SIGTERM
//   exit           process.exit(0) (control: the exit hook closes the client)
//   busy-*         the same, with argv[4] (default 20000) calls queued on the I/O thread first
const readline = require('node:readline');
const { ZooKeeper } = require('../..');

(async () => {
  const [path, mode] = [process.argv[2], process.argv[3]];
  const zk = new ZooKeeper({ timeout: 10000, debug_level: 0 });
  if (mode === 'signal-exit' || mode === 'busy-signal-exit') {
    zk.closeOnSignals(['SIGTERM']);
    process.on('SIGTERM', () => process.exit(0));
  }
  globalThis.held = await zk.lock(path);
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    if (line !== 'go') return;
    if (mode === 'close-exit') {
      zk.close().catch(() => {});
      process.exit(0);
    }
    if (mode === 'exit') process.exit(0);
    if (mode === 'busy-exit' || mode === 'busy-close-exit') {
      // Keep the one I/O thread busy: many calls queued ahead of whatever comes next.
      for (let i = 0; i < Number(process.argv[4] || 20000); i++) zk.get(`k${i % 10}`).catch(() => {});
      if (mode === 'busy-close-exit') zk.close().catch(() => {});
      process.exit(0);
    }
    if (mode === 'signal-exit') process.kill(process.pid, 'SIGTERM');
    if (mode === 'busy-signal-exit') {
      for (let i = 0; i < Number(process.argv[4] || 20000); i++) zk.get(`k${i % 10}`).catch(() => {});
      process.kill(process.pid, 'SIGTERM');
    }
  });
  console.log('ready');
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
