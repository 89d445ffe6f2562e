'use strict';
// The coordinator always gets to an answer, and prepared branches never hold their locks
// forever: a transaction in doubt is resolved in the background once ZooKeeper is back, a
// frozen database (SIGSTOP) does not stop the recovery of the others, and a small pool does not
// deadlock on a row a prepared branch holds (issue 18, items 10, 11, 12). Real servers only.
//
// On etcd (coordinator-liveness-etcd.test.js: ZKTX_COORD_BACKEND=etcd) the two IN_DOUBT tests
// run through a proxy in front of the shared member (a 30 s lease, as ZooKeeper's session);
// the frozen-database and small-pool tests are participant and pool logic that no record store
// changes, and run on ZooKeeper only.
const pg = require('pg');
const { startProxy, startStandalone } = require('../../testing');
const { bankCoordinator, told, audit, useBank, BACKEND, coordinatorClient, coordinatorClientAt, backendAddress, ZooKeeper } = require('../coordinator/bank');
const { PostgresParticipant } = require('../..');
const { unique } = require('../helpers/zk');
const { now, sleep, within, recordStates } = require('./util');

jest.setTimeout(90000);

const ON_ETCD = BACKEND === 'etcd';
/** Participant and pool logic, the same whatever holds the records: ZooKeeper's run only. */
const storeNeutral = ON_ETCD ? it.skip : it;

let servers;
let ps;
let zk;

useBank({}, (bank) => ({ servers, pools: ps, zk } = bank));

describe('a run that answered IN_DOUBT', () => {
  // Production-like session (30 s) on a server of its own: the test cluster's 500 ms tick caps
  // sessions at 10 s, shorter than the outage below. etcd: a 30 s lease on the shared member.
  // The outage must outlast the run's own attempts to learn its decision (about 10 s of reads
  // after the lost answer): a shorter one ends with the run telling the truth it learned
  // (committed, ROLLED_BACK), not IN_DOUBT.
  const SESSION_MS = 30000;
  const OUTAGE_MS = 15000;
  let server;
  let proxy;
  let czk;
  let observer;
  beforeAll(async () => { if (!ON_ETCD) server = await startStandalone({ tickTime: 2000 }); });
  afterAll(async () => { await server?.stop(); });
  beforeEach(async () => {
    proxy = await startProxy(ON_ETCD ? backendAddress() : server.connect);
    czk = coordinatorClientAt(proxy.connect, { timeout: SESSION_MS, requestTimeout: 500 });
    observer = ON_ETCD ? coordinatorClient() : new ZooKeeper({ connect: server.connect, timeout: 4000 });
  });
  afterEach(async () => {
    proxy.heal();
    await czk.close().catch(() => {});
    await observer.close().catch(() => {});
    await proxy.close();
  });

  /**
   * A bank coordinator on `czk` that, once both branches prepared, loses its decision: `lose`
   * 'answer' (the multi applies, its answer is lost) or 'request' (the multi never reaches
   * ZooKeeper); then ZooKeeper refuses connections for 15 s (half the session: it resumes
   * afterwards, so the active node stays). etcd: the decision's Txn, the lease. `rollback` replaces the participants' rollback.
   * Resolves `{ coord, outage }`: `outage` resolves the time of the heal.
   */
  function losingDecision(name, { lose, rollback }) {
    let outage;
    let n = 0;
    const coord = bankCoordinator(czk, name, ps, {
      wrap: (side, p) => ({
        begin: (gid) => p.begin(gid),
        prepare: async (gid) => {
          await p.prepare(gid);
          if (++n !== 2) return;
          proxy.partition({ mode: lose === 'answer' ? 'responses' : 'blackhole' });
          outage = (async () => {
            if (lose === 'answer') while (proxy.stats.dropped === 0) await sleep(5);
            else await sleep(300); // the decision waits in the silent line, then is dropped with it
            proxy.partition({ mode: 'reset' });
            await sleep(OUTAGE_MS);
            proxy.heal();
            return now();
          })();
        },
        commit: (gid) => p.commit(gid),
        rollback: rollback || ((gid) => p.rollback(gid)),
        inDoubt: () => p.inDoubt(),
      }),
    });
    return { coord, outage: () => outage };
  }

  /** Polls (with `recover` of another process's coordinator `view` if asked) until resolved. */
  async function resolved(view, txid, since, { recover = false } = {}) {
    let facts;
    let outcome;
    let report;
    for (;;) {
      if (recover) report = await view.recover();
      facts = await audit(servers);
      outcome = await view.outcome(txid);
      if (facts.prepared === 0 && (outcome === 'committed' || outcome === 'aborted')) return { facts, outcome, ms: Math.round(now() - since) };
      if (now() - since > 20000) throw new Error(`still in doubt 20 s after ZooKeeper came back: outcome ${outcome}, ${facts.prepared} branches prepared${report ? `, last recovery ${JSON.stringify(report)}` : ''}`);
      await sleep(100);
    }
  }

  it('is resolved by its own process once ZooKeeper is reachable again, while its session lives on (no recover() anywhere)', async () => {
    const name = unique('bank-doubt');
    const states = recordStates(czk);
    const { coord, outage } = losingDecision(name, { lose: 'answer' });
    const result = await told(coord, { from: { side: 'a', id: 1 }, toId: 1, amount: 100 });
    expect(result.code).toBe('IN_DOUBT');
    const healed = await outage();
    const { facts, outcome, ms } = await resolved(bankCoordinator(observer, name, ps), result.txid, healed);
    expect(states.names()).not.toContain('EXPIRED');
    expect(facts.halfApplied).toEqual([]);
    expect(facts.total).toBe(facts.expected);
    expect(facts.committed.has(result.txid)).toBe(outcome === 'committed');
    const after = states.events.filter((e) => e.t >= healed - 20000).map((e) => `${e.state}@${Math.round(e.t - healed)}`).join(' ');
    console.log(`IN_DOUBT resolved by its own process: ${outcome} ${ms} ms after ${BACKEND} came back (session ${SESSION_MS / 1000} s, not expired; client states relative to the heal: ${after})`);
  });

  it("whose decision never reached ZooKeeper is fenced by its process, so another process's recovery rolls it back when that process cannot", async () => {
    const name = unique('bank-doubt');
    const states = recordStates(czk);
    // This process's rollbacks fail (its database connections are "gone"): only another
    // process can roll the branches back, and only once the transaction is no longer active.
    const { coord, outage } = losingDecision(name, { lose: 'request', rollback: async () => { throw new Error('no connection'); } });
    const result = await told(coord, { from: { side: 'a', id: 1 }, toId: 1, amount: 100 });
    expect(result.code).toBe('IN_DOUBT');
    const healed = await outage();
    const view = bankCoordinator(observer, name, ps);
    const { facts, outcome, ms } = await resolved(view, result.txid, healed, { recover: true });
    expect(states.names()).not.toContain('EXPIRED');
    expect(outcome).toBe('aborted');
    expect([facts.halfApplied, facts.total, facts.committed.has(result.txid)]).toEqual([[], facts.expected, false]);
    console.log(`IN_DOUBT (decision lost) fenced by its process, rolled back by another process's recovery ${ms} ms after ${BACKEND} came back`);
  });
});

describe('a participant whose database is frozen (SIGSTOP)', () => {
  storeNeutral("does not stop the recovery of the others: a transaction that used only the healthy participant is rolled back, the frozen one's calls fail with their deadline", async () => {
    const name = unique('bank-frozen');
    // A transaction whose branch on b is left prepared, undecided and no longer active: its
    // participant "dies" after preparing (the run is ROLLED_BACK, b's rollback never happens).
    const victim = bankCoordinator(zk, name, ps, {
      wrap: (side, p) => ({
        begin: (gid) => p.begin(gid),
        prepare: async (gid) => {
          await p.prepare(gid);
          throw new Error('gone after prepare');
        },
        commit: (gid) => p.commit(gid),
        rollback: async () => {},
        inDoubt: () => p.inDoubt(),
      }),
    });
    const r = await victim.run(async (tx) => {
      const b = await tx.participant('b');
      await b.query('UPDATE accounts SET balance = balance - 1 WHERE id = 4');
      return tx.id;
    }).catch((e) => e);
    expect(r.code).toBe('ROLLED_BACK');
    expect((await audit(servers)).prepared).toBe(1);
    const recoverer = bankCoordinator(zk, name, ps, { participantTimeoutMs: 1500 });
    await servers.a.kill('SIGSTOP');
    let report;
    let ms;
    try {
      const t0 = now();
      report = await within(recoverer.recover(), 15000, 'a recovery pass with database a frozen');
      ms = Math.round(now() - t0);
    } finally {
      await servers.a.kill('SIGCONT');
    }
    expect([report.aborted, report.rolledBack]).toEqual([1, 1]);
    expect(report.errors.join('\n')).toMatch(/participant a.*TIMEOUT/);
    expect(await servers.b.psql('SELECT count(*) FROM pg_prepared_xacts')).toBe('0');
    expect(await servers.b.psql('SELECT balance FROM accounts WHERE id = 4')).toBe('1000');
    console.log(`recovery with participant a frozen: ${ms} ms (deadline 1500 ms), errors: ${report.errors.join('; ')}`);
  });
});

describe('a participant whose database is frozen (SIGSTOP) when the run begins its branch', () => {
  storeNeutral('fails the run with TIMEOUT within the deadline, and the branch that begins after the thaw is rolled back, not left open', async () => {
    const coord = bankCoordinator(zk, unique('bank-frozen'), ps, { participantTimeoutMs: 1000 });
    await servers.a.kill('SIGSTOP');
    let err;
    let ms;
    try {
      const t0 = now();
      err = await within(coord.run(async (tx) => {
        const a = await tx.participant('a');
        await a.query('UPDATE accounts SET balance = balance - 1 WHERE id = 7');
      }).catch((e) => e), 10000, 'a run whose database is frozen');
      ms = Math.round(now() - t0);
    } finally {
      await servers.a.kill('SIGCONT');
    }
    expect([err.name, err.code]).toEqual(['ZktxError', 'TIMEOUT']);
    expect(ms).toBeLessThan(5000);
    // After the thaw the late BEGIN completes, and is rolled back at once.
    const deadline = now() + 10000;
    let open;
    do {
      await sleep(100);
      open = await servers.a.psql("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'");
    } while (open !== '0' && now() < deadline);
    expect(open).toBe('0');
    expect(await servers.a.psql('SELECT balance FROM accounts WHERE id = 7')).toBe('1000');
    console.log(`begin on a frozen database: TIMEOUT after ${ms} ms (deadline 1000 ms)`);
  });
});

describe('a small pool', () => {
  storeNeutral('six concurrent transfers on one row with pools of three and no lock_timeout all answer', async () => {
    const small = {
      a: new pg.Pool({ ...servers.a.config, max: 3 }).on('error', () => {}),
      b: new pg.Pool({ ...servers.b.config, max: 3 }).on('error', () => {}),
    };
    const coord = zk.coordinator(unique('bank-pool'), {
      participants: { a: new PostgresParticipant(small.a), b: new PostgresParticipant(small.b) },
      recoveryIntervalMs: 0,
    });
    const transfer = () => coord.run(async (tx) => {
      const a = await tx.participant('a');
      await a.query('UPDATE accounts SET balance = balance - 10 WHERE id = 6');
      const b = await tx.participant('b');
      await b.query('UPDATE accounts SET balance = balance + 10 WHERE id = 6');
      await a.query('INSERT INTO ledger VALUES ($1, 6, -10)', [tx.id]);
      await b.query('INSERT INTO ledger VALUES ($1, 6, 10)', [tx.id]);
      return tx.id;
    });
    const t0 = now();
    const txids = await within(Promise.all(Array.from({ length: 6 }, transfer)), 12000, 'six transfers on pools of three');
    const ms = Math.round(now() - t0);
    const facts = await audit(servers);
    expect(txids.every((t) => facts.committed.has(t))).toBe(true);
    expect([facts.halfApplied, facts.total, facts.prepared]).toEqual([[], facts.expected, 0]);
    expect(await servers.a.psql('SELECT balance FROM accounts WHERE id = 6')).toBe('940');
    console.log(`6 transfers on one row, pools of 3: all committed in ${ms} ms`);
    await Promise.all([small.a.end(), small.b.end()]);
  });
});
