'use strict';
// N clients each hold a lock under argv[3], then the process ends the way argv[4] says, on the
// line "go" on stdin (sent by the test once it froze the server):
//   exit    process.exit(0): zktx's exit hook closes every client synchronously
//   signal  every client called zk.closeOnSignals(); the process sends itself SIGTERM
// argv[5], optional: another connect string for client 0 (a slow proxy). Prints "ready" once
// every lock is held.
const readline = require('node:readline');
const { ZooKeeper } = require('../..');
const { clientOptions } = require('../helpers/secure'); // TLS + identity in secure mode

(async () => {
  const [n, prefix, mode, slow] = [Number(process.argv[2]), process.argv[3], process.argv[4], process.argv[5]];
  const clients = Array.from({ length: n }, (_, i) => new ZooKeeper({ timeout: 10000, debug_level: 0, ...clientOptions(), ...(i === 0 && slow ? { connect: slow } : {}) }));
  if (mode === 'signal') for (const zk of clients) zk.closeOnSignals(['SIGTERM']);
  // Kept reachable: a Lock garbage-collected without release() is released (README).
  globalThis.held = await Promise.all(clients.map((zk, i) => zk.lock(`${prefix}-${i}`)));
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    if (line !== 'go') return;
    if (mode === 'exit') process.exit(0);
    process.kill(process.pid, 'SIGTERM');
  });
  console.log('ready');
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
