'use strict';
// Attacks on etcd's `pruneTransactionIds(olderThanMs)` (by the server's clock: docs/etcd.md,
// index.d.ts `Etcd.pruneTransactionIds`) and on what its deletes race: retries of ids, large
// recorded results, permissions. Each test is named after the promise it attacks. Real etcd
// members of its own (a prune with age 0 deletes every marker: never on the shared etcd), no mocks.
// The retry race is run on a ZooKeeper server of its own too (the settling is shared code).
const { Etcd, ZooKeeper } = require('..');
const { startEtcd, startStandalone } = require('../testing');
const { unique } = require('./helpers/zk');

jest.setTimeout(120000);

let member;
beforeAll(async () => { member = await startEtcd(); }, 60000);
afterAll(async () => { if (member) await member.stop(); });

const client = (o = {}) => new Etcd({ endpoints: member.endpoints, timeout: 10000, ...o });
const codeOf = (p) => p.then(() => 'resolved', (e) => e.code);

/**
 * 300 runs of one transaction id on `a` while `pruner` prunes every marker in a loop: each run
 * returns 'r', applied anew (its marker pruned) or found applied. How the runs resolved, and how
 * many markers the loop pruned.
 */
async function retriesRacingPrunes(a, pruner) {
  let stop = false;
  let pruned = 0;
  const pruning = (async () => {
    while (!stop) pruned += await pruner.pruneTransactionIds(0);
  })();
  const id = unique('raced');
  const seen = {};
  try {
    for (let i = 0; i < 300; i++) {
      const r = await a.transaction(async (tx) => { tx.set(unique('k'), i); return 'r'; }, { id });
      seen[String(r)] = (seen[String(r)] || 0) + 1;
    }
  } finally {
    stop = true;
    await pruning;
  }
  return { pruned, seen };
}

describe('etcd pruneTransactionIds under attack', () => {
  it('[a retry resolves the recorded result] retries of an id racing a prune loop resolve what the committed run returned, never undefined', async () => {
    const [a, pruner] = [client(), client()];
    try {
      // Found with its marker pruned since, a retry resolved undefined.
      const { pruned, seen } = await retriesRacingPrunes(a, pruner);
      expect(pruned).toBeGreaterThan(1);
      expect(seen).toEqual({ r: 300 });
    } finally {
      await Promise.all([a.close(), pruner.close()]);
    }
  });

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

  it('[a held lock excludes] pruneTransactionIds deletes no lock key under /zktx/txn-ids/ (a lock at or under that path stays held)', async () => {
    const [a, b] = [client(), client()];
    try {
      for (const path of [`/zktx/txn-ids/${unique('orders')}`, '/zktx/txn-ids']) {
        const lock = await a.lock(path);
        await b.pruneTransactionIds(0);
        expect([path, await lock.isHeld()]).toEqual([path, true]);
        expect([path, await codeOf(b.lock(path, { timeout: 500 }).then((l) => l.release()))]).toEqual([path, 'TIMEOUT']);
        await lock.release();
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('etcd pruneTransactionIds with user/password auth', () => {
  let secured;
  beforeAll(async () => { secured = await startEtcd({ auth: { rootPassword: 'rootpw', users: {} } }); }, 60000);
  afterAll(async () => { if (secured) await secured.stop(); });

  it('[secured: NOAUTH, nothing deleted] a role without /zktx/txn-ids-prune/ is refused naming the marks key; granted it, the prune deletes', async () => {
    await secured.etcdctl('role', 'add', 'markers-only');
    for (const p of ['/zktx/kv/', '/zktx/txn-ids/']) await secured.etcdctl('role', 'grant-permission', 'markers-only', 'readwrite', p, '--prefix=true');
    await secured.etcdctl('user', 'add', 'bob:bob-pw', '--interactive=false');
    await secured.etcdctl('user', 'grant-role', 'bob', 'markers-only');
    const bob = new Etcd({ endpoints: secured.endpoints, timeout: 10000, auth: { user: 'bob', password: 'bob-pw' } });
    try {
      const id = unique('secured');
      expect(await bob.transaction(async (tx) => { tx.set(unique('k'), 1); return 'r'; }, { id })).toBe('r');
      const err = await bob.pruneTransactionIds(0).then(() => undefined, (e) => e);
      expect([err.code, err.message]).toEqual(['NOAUTH', expect.stringContaining('/zktx/txn-ids-prune/prune-marks')]);
      // Read, not write: refused when recording the mark, still before any delete.
      await secured.etcdctl('role', 'grant-permission', 'markers-only', 'read', '/zktx/txn-ids-prune/', '--prefix=true');
      const write = await bob.pruneTransactionIds(0).then(() => undefined, (e) => e);
      expect([write.code, write.message]).toEqual(['NOAUTH', expect.stringContaining('/zktx/txn-ids-prune/prune-marks')]);
      expect(await bob.transaction(async () => 'again', { id })).toBe('r'); // the marker stayed
      await secured.etcdctl('role', 'grant-permission', 'markers-only', 'readwrite', '/zktx/txn-ids-prune/', '--prefix=true');
      expect(await bob.pruneTransactionIds(0)).toBe(1);
    } finally {
      await bob.close();
    }
  });
});

describe('ZooKeeper: a retry racing pruneTransactionIds', () => {
  let server;
  beforeAll(async () => { server = await startStandalone(); }, 60000);
  afterAll(async () => { if (server) await server.stop(); });

  it('[a retry resolves the recorded result] retries of an id racing a prune loop resolve what the committed run returned, never undefined', async () => {
    const [a, pruner] = [new ZooKeeper({ connect: server.connect, timeout: 10000 }), new ZooKeeper({ connect: server.connect, timeout: 10000 })];
    try {
      await Promise.all([a.connect(), pruner.connect()]);
      // The commit finds the marker (NODEEXISTS in its multi), then reads its result: a prune
      // in between made the call resolve undefined (34 of 300).
      const { pruned, seen } = await retriesRacingPrunes(a, pruner);
      expect(pruned).toBeGreaterThan(1);
      expect(seen).toEqual({ r: 300 });
    } finally {
      await Promise.all([a.close(), pruner.close()]);
    }
  });
});
