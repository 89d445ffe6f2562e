'use strict';
// Attacks on the resending of etcd writes that never left (send_txn): a write whose attempts
// all failed to connect was never sent, so after close() began it must not be sent at all
// (writing(): "CLIENT_CLOSED (nothing sent) once close() began"), and close() must not wait out
// the request deadline for a write that only retries a connect. Real etcd 3.4 (testing/etcd.js).
const { startEtcdCluster } = require('../testing');
const { Etcd } = require('..');
const { unique } = require('./helpers/zk');

const describeEtcd = process.env.ETCD_ENDPOINTS ? describe : describe.skip;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
jest.setTimeout(120000);

describeEtcd('etcd: a write that never left, and close()', () => {
  let cluster;
  beforeAll(async () => {
    cluster = await startEtcdCluster(1);
  });
  afterAll(async () => {
    if (cluster) await cluster.stop();
  });

  it('a write still retrying its connect when close() begins is not sent afterwards', async () => {
    const [member] = cluster.members;
    const c = new Etcd({ endpoints: cluster.endpoints, timeout: 20000 });
    const key = unique('unsent-close');
    await c.set(`${key}-warm`, 0);
    member.kill('SIGKILL');
    await sleep(300);
    // Every attempt is refused: the write was never sent, and is retried within the deadline.
    const write = c.set(key, 1).then(() => 'applied', (err) => err);
    await sleep(200);
    const closing = c.close();
    // The member comes back well within the request deadline. Before: the retry loop went on
    // after close() began, reached the restarted member and applied the write (set resolved,
    // the key present), close() waiting for it the whole while.
    await member.restart();
    await closing;
    const outcome = await write;
    const reader = new Etcd({ endpoints: cluster.endpoints, timeout: 10000 });
    try {
      const stored = await reader.get(key);
      expect(outcome).not.toBe('applied');
      expect(outcome.code).toBe('CLIENT_CLOSED');
      expect(outcome.outcome).toBe('not_applied');
      expect(stored).toBeUndefined(); // never written
    } finally {
      await reader.close();
    }
  });
});
