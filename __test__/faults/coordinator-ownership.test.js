'use strict';
// Whose branch is it, and what did it become? Two applications in their own chroots sharing
// databases must never resolve each other's prepared branches; a branch that is gone when it is
// committed is not assumed committed; `outcome(txid)` says `aborted` only for what can no
// longer commit, and `forgotten` only for what is older than the prune horizon.
// Real servers: ZooKeeper, two PostgreSQL clusters (issue 18, items 9 and 13).
//
// On etcd (coordinator-ownership-etcd.test.js: ZKTX_COORD_BACKEND=etcd) an application's
// namespace is a coordinator name of its own (etcd has no chroot: `bank-<app>`), sharing the
// databases; outcome() inside the run and before a prune run there too. The participant's commit
// and the txid syntax are PostgreSQL and parsing logic, and run on ZooKeeper only.
const { bankCoordinator, told, audit, useBank, application: namespace, BACKEND, coordinatorClient } = require('../coordinator/bank');
const { PostgresParticipant } = require('../..');
const { unique } = require('../helpers/zk');
const { clientOptions } = require('../helpers/secure');

jest.setTimeout(60000);

/** PostgreSQL and parsing logic, the same whatever holds the records: ZooKeeper's run only. */
const storeNeutral = BACKEND === 'etcd' ? it.skip : it;

let servers;
let ps;
let zk;

useBank(clientOptions(), (bank) => ({ servers, pools: ps, zk } = bank));

/** One application's namespace: `{ client, name(base) }` (ZooKeeper: a chroot of its own). */
const application = () => namespace(clientOptions());

describe(`two applications, each ${BACKEND === 'etcd' ? 'with a coordinator name of its own' : 'in its own chroot with a coordinator named bank'}, sharing both databases`, () => {
  it("one's recovery never touches the other's prepared branches: a transfer held between prepare and decision is applied in both databases", async () => {
    const [appA, appB] = await Promise.all([application(), application()]);
    try {
      let bothPrepared;
      const prepared = new Promise((resolve) => { bothPrepared = resolve; });
      let proceed;
      const held = new Promise((resolve) => { proceed = resolve; });
      let n = 0;
      const hold = (side, p) => ({
        begin: (gid) => p.begin(gid),
        prepare: async (gid) => {
          await p.prepare(gid);
          if (++n === 2) {
            bothPrepared();
            await held;
          }
        },
        commit: (gid) => p.commit(gid),
        rollback: (gid) => p.rollback(gid),
        inDoubt: () => p.inDoubt(),
      });
      const b = bankCoordinator(appB.client, appB.name('bank'), ps, { wrap: hold });
      const a = bankCoordinator(appA.client, appA.name('bank'), ps);
      const running = told(b, { from: { side: 'a', id: 1 }, toId: 1, amount: 100 });
      await prepared;
      const report = await a.recover();
      proceed();
      const result = await running;
      // A found nothing of its own to resolve.
      expect([report.aborted, report.rolledBack, report.committed]).toEqual([0, 0, 0]);
      expect(result.outcome).toBe('committed');
      const facts = await audit(servers);
      expect(facts.halfApplied).toEqual([]);
      expect(facts.committed.has(result.txid)).toBe(true);
      expect([facts.total, facts.prepared]).toEqual([facts.expected, 0]);
      expect(await b.outcome(result.txid)).toBe('committed');
    } finally {
      await Promise.all([appA.client.close(), appB.client.close()]);
    }
  });

  it("recovery in both namespaces at once, with both applications' transactions in doubt: each resolves only its own", async () => {
    const [appA, appB] = await Promise.all([application(), application()]);
    try {
      // A branch each application leaves prepared (its participant "dies" before rolling back):
      // ROLLED_BACK for the caller, the branch left to that application's recovery.
      const lying = (side, p) => ({
        begin: (gid) => p.begin(gid),
        prepare: async (gid) => {
          await p.prepare(gid);
          if (side === 'b') throw new Error('b fails after it prepared');
        },
        commit: (gid) => p.commit(gid),
        rollback: async (gid) => { if (side === 'a') await p.rollback(gid); }, // b's never runs
        inDoubt: () => p.inDoubt(),
      });
      const runs = await Promise.all([appA, appB].map((app, i) => told(bankCoordinator(app.client, app.name('bank'), ps, { wrap: lying }), { from: { side: 'a', id: 1 + i }, toId: 1 + i, amount: 10 })));
      expect(runs.map((r) => r.code)).toEqual(['ROLLED_BACK', 'ROLLED_BACK']);
      expect((await audit(servers)).prepared).toBe(2);
      const reports = await Promise.all([appA, appB].map((app) => bankCoordinator(app.client, app.name('bank'), ps).recover()));
      expect(reports.map((r) => [r.aborted, r.rolledBack, r.errors])).toEqual([[1, 1, []], [1, 1, []]]);
      const facts = await audit(servers);
      expect([facts.halfApplied, facts.total, facts.prepared, facts.committed.size]).toEqual([[], facts.expected, 0, 0]);
    } finally {
      await Promise.all([appA.client.close(), appB.client.close()]);
    }
  });
});

describe('PostgresParticipant.commit of a branch that is no longer prepared', () => {
  storeNeutral('rejects when the branch was rolled back by someone else, and resolves again for a branch it committed', async () => {
    const p = new PostgresParticipant(ps.a);
    const gids = [`zktx:test:${unique('x').replace(/[^a-z0-9]/gi, '')}:a`, `zktx:test:${unique('y').replace(/[^a-z0-9]/gi, '')}:a`];
    for (const [i, gid] of gids.entries()) {
      const c = await p.begin(gid);
      await c.query('UPDATE accounts SET balance = balance - 1 WHERE id = $1', [5 + i]);
      await p.prepare(gid);
    }
    await servers.a.psql(`ROLLBACK PREPARED '${gids[0]}'`); // a stranger resolved it
    await expect(p.commit(gids[0])).rejects.toThrow(/not committed/);
    await p.commit(gids[1]);
    await p.commit(gids[1]); // idempotent: a second commit of a committed branch is success
    expect(await servers.a.psql('SELECT balance FROM accounts WHERE id IN (5, 6) ORDER BY id')).toBe('1000\n999');
    await p.end();
  });
});

describe('outcome(txid)', () => {
  it('asked from inside the run (before its active node may be written) never answers aborted for a transaction that then commits', async () => {
    const name = unique('bank');
    const coord = bankCoordinator(zk, name, ps);
    const other = coordinatorClient(clientOptions());
    const observer = bankCoordinator(other, name, ps); // another process's view, same coordinator
    try {
      await other.connect();
      const answers = [];
      for (let i = 0; i < 6; i++) {
        const obs = i % 2 === 0 ? coord : observer;
        let asked;
        const r = await coord.run(async (tx) => {
          asked = obs.outcome(tx.id); // first thing: the active node is still being written
          const a = await tx.participant('a');
          await a.query('UPDATE accounts SET balance = balance - 1 WHERE id = 1');
          const b = await tx.participant('b');
          await b.query('UPDATE accounts SET balance = balance + 1 WHERE id = 1');
          return { txid: tx.id, outcome: 'committed' };
        }).catch((err) => ({ txid: err.txid, outcome: 'failed', code: err.code }));
        const o = await asked;
        answers.push(`${i % 2 === 0 ? 'own' : 'other'}:${o}->${r.code || r.outcome}`);
        // What the observer said must be what happened.
        if (o === 'aborted') expect([i, r.code]).toEqual([i, 'ROLLED_BACK']);
        if (r.outcome === 'committed') expect([i, ['active', 'committed'].includes(o)]).toEqual([i, true]);
        expect(await coord.outcome(r.txid)).toBe(r.outcome === 'committed' ? 'committed' : 'aborted');
      }
      console.log(`outcome asked inside fn, then the run: ${answers.join(', ')}`);
      const facts = await audit(servers);
      expect([facts.halfApplied, facts.total, facts.prepared]).toEqual([[], facts.expected, 0]);
    } finally {
      await other.close();
    }
  });

  storeNeutral('takes the txid in any case, and malformed ids are INVALID_ARGUMENT', async () => {
    const coord = bankCoordinator(zk, unique('bank'), ps);
    const r = await told(coord, { from: { side: 'a', id: 2 }, toId: 2, amount: 1 });
    expect(r.outcome).toBe('committed');
    expect(await coord.outcome(r.txid.toUpperCase())).toBe('committed');
    for (const bad of [r.txid.slice(1), `${r.txid}0`, r.txid + r.txid, 'g'.repeat(32), '', `${r.txid.slice(2)}:x`]) {
      await expect(coord.outcome(bad)).rejects.toMatchObject({ name: 'ZktxError', code: 'INVALID_ARGUMENT' });
    }
  });

  it('a transaction aborted seconds before a prune() is still aborted, not forgotten', async () => {
    const coord = bankCoordinator(zk, unique('bank'), ps);
    let txid;
    await expect(coord.run(async (tx) => {
      txid = tx.id;
      await (await tx.participant('a')).query('UPDATE accounts SET balance = balance - 1 WHERE id = 3');
      throw new Error('changed my mind');
    })).rejects.toThrow('changed my mind');
    const ok = await told(coord, { from: { side: 'a', id: 3 }, toId: 3, amount: 1 });
    expect(await coord.prune(3600 * 1000)).toBe(0);
    expect(await coord.outcome(txid)).toBe('aborted');
    expect(await coord.outcome(ok.txid)).toBe('committed');
  });
});
