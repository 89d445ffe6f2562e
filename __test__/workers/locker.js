'use strict';
// Acquires a lock of a given kind N times; while holding, records (kind, token, enter, leave) on
// a shared clock. kind: exclusive | write | read | semaphore1 | multi | rw-mixed (90% reads).
// LOCK_BACKEND=etcd: the same locks on etcd (ETCD_ENDPOINTS).
const { ZooKeeper, Etcd } = require('../..');
const { clientOptions } = require('../helpers/secure'); // TLS + identity in secure mode
const { waitForGo } = require('../helpers/procs');

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const [kind, path, n] = [process.argv[2], process.argv[3], Number(process.argv[4])];

function acquirer(zk) {
  const rw = zk.readWriteLock(path);
  switch (kind) {
    case 'exclusive': return () => zk.lock(path);
    case 'write': return () => rw.writeLock();
    case 'read': return () => rw.readLock();
    case 'semaphore1': return () => zk.semaphore(path, 1).acquire();
    case 'multi': return () => zk.multiLock([`${path}/b`, path]);
    case 'rw-mixed': return () => (Math.random() < 0.9 ? rw.readLock() : rw.writeLock());
    default: throw new Error(`unknown kind ${kind}`);
  }
}

(async () => {
  const zk = process.env.LOCK_BACKEND === 'etcd' ? new Etcd({ timeout: 10000 }) : new ZooKeeper({ timeout: 10000, ...clientOptions() });
  await zk.connect();
  const acquire = acquirer(zk);
  await waitForGo();
  for (let i = 0; i < n; i++) {
    const lock = await acquire();
    const enter = now();
    await sleep(Math.random() * 2);
    const leave = now();
    const side = lock.nodePath && /-read-/.test(lock.nodePath) ? 'read' : 'write';
    process.stdout.write(`${JSON.stringify({ side, token: lock.token ?? lock.tokens[0], enter, leave })}\n`);
    await lock.release();
  }
  await zk.close();
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
