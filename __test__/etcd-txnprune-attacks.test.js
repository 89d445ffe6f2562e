'use strict';
// Attacks on etcd's `pruneTransactionIds(olderThanMs)` (by the server's clock: docs/etcd.md,
// index.d.ts `Etcd.pruneTransactionIds`) and on what its deletes race: retries of ids, large
// recorded results, permissions. Each test is named after the promise it attacks. Real etcd
// members of its own (a prune with age 0 deletes every marker: never on the shared etcd), no mocks.
const { Etcd } = require('..');
const { startEtcd } = require('../testing');
const { unique } = require('./helpers/zk');

jest.setTimeout(120000);

let member;
beforeAll(async () => { member = await startEtcd(); }, 60000);
afterAll(async () => { if (member) await member.stop(); });

const client = (o = {}) => new Etcd({ endpoints: member.endpoints, timeout: 10000, ...o });
const codeOf = (p) => p.then(() => 'resolved', (e) => e.code);

describe('etcd pruneTransactionIds under attack', () => {
  it('[old markers go] markers recording large results (70 of 60 KiB: over 4 MiB in one listing page) are pruned', async () => {
    const e = client();
    try {
      const big = 'x'.repeat(60 * 1024 - 16);
      const ids = Array.from({ length: 70 }, (_, i) => unique(`large${i}`));
      for (const id of ids) await e.transaction(async (tx) => { tx.set(unique('k'), 1); return big; }, { id });
      expect(await e.pruneTransactionIds(0)).toBeGreaterThanOrEqual(ids.length);
      // Pruned: the same id applies again (its function's result, not a recorded one).
      expect(await e.transaction(async (tx) => { tx.set(unique('k'), 1); return 'again'; }, { id: ids[69] })).toBe('again');
    } finally {
      await e.close();
    }
  });
});
