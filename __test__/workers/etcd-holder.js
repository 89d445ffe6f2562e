'use strict';
// Holds an etcd lock (TTL 2 s) and prints {"token"} once held; with "watch", prints {"lost"}
// when told the lock was lost, then exits; with "exit", calls process.exit() at once. Killed or
// frozen by etcd.test.js.
const { Etcd } = require('../..');

const [lockPath, mode] = process.argv.slice(2);
(async () => {
  // Nothing else keeps this process alive while it holds (a lock does not, as for ZooKeeper:
  // an idle script exits and its exit hook closes the client).
  const alive = setInterval(() => {}, 1000);
  const etcd = new Etcd({ timeout: 2000 });
  const lock = await etcd.lock(lockPath);
  process.stdout.write(`${JSON.stringify({ token: lock.token })}\n`);
  if (mode === 'exit') process.exit(0); // no close(): the exit hook revokes the lease
  if (mode === 'watch') {
    const err = await lock.lost;
    process.stdout.write(`${JSON.stringify({ lost: err.code, reason: err.reason })}\n`);
    await etcd.close();
    clearInterval(alive);
  }
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
