'use strict';
// The coordinator against real servers: ZooKeeper (or etcd: coordinator-etcd.test.js runs this
// file with ZKTX_COORD_BACKEND=etcd) and two independent PostgreSQL clusters.
// A cross-database bank: concurrent transfers from several processes, failures at prepare, and
// a coordinator killed (-9) at every step boundary, then recovered by another process. After
// each: the total is conserved, no transfer is half-applied, pg_prepared_xacts is empty, and
// what each caller was told is the truth.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const diagnostics = require('node:diagnostics_channel');
const { bankCoordinator, transfer, audit, useBank, coordinatorClient, BACKEND, ZooKeeper } = require('./coordinator/bank');
const { Etcd } = require('..');
const { unique } = require('./helpers/zk');

jest.setTimeout(180000);

let servers;
let ps;
let zk;
const config = () => JSON.stringify({ a: servers.a.config, b: servers.b.config });

useBank({}, (bank) => ({ servers, pools: ps, zk } = bank));

function runWorker(env) {
  const out = path.join(os.tmpdir(), `${unique('coord-bank')}.jsonl`);
  const child = spawn(process.execPath, [path.join(__dirname, 'workers/coord-bank.js')], {
    env: { ...process.env, ZK_CONNECT: process.env.ZK_CONNECT, PG_CONFIG: config(), OUT: out, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  const lines = () => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
  return { child, exited, lines };
}

/** Every caller was told the truth: committed transfers are in both ledgers, failed ones in neither. */
function checkTold(told, facts) {
  for (const t of told) {
    if (t.outcome === 'committed') expect(facts.committed.has(t.txid)).toBe(true);
    else if (t.txid && t.code !== 'IN_DOUBT') expect([t.code, facts.committed.has(t.txid)]).toEqual([t.code, false]);
  }
}

test('concurrent transfers from three processes: both legs or none, total conserved', async () => {
  const name = unique('bank');
  const workers = [1, 2, 3].map((seed) => runWorker({ COORD: name, TRANSFERS: '20', SEED: String(seed) }));
  const exits = await Promise.all(workers.map((w) => w.exited));
  expect(exits.map((e) => e.code)).toEqual([0, 0, 0]);
  const told = workers.flatMap((w) => w.lines()).filter((l) => l.outcome);
  expect(told).toHaveLength(60);
  const facts = await audit(servers);
  expect(facts.halfApplied).toEqual([]);
  expect(facts.total).toBe(facts.expected);
  expect(facts.prepared).toBe(0);
  checkTold(told, facts);
  const committed = told.filter((t) => t.outcome === 'committed');
  expect(committed.length).toBeGreaterThan(30);
  const coord = bankCoordinator(zk, name, ps);
  for (const t of committed.slice(0, 5)) expect(await coord.outcome(t.txid)).toBe('committed');
  const failed = told.filter((t) => t.outcome === 'failed');
  console.log(`bank: ${committed.length} committed, ${failed.length} refused (${[...new Set(failed.map((f) => f.code))].join(', ') || 'none'})`);
});

test('a branch that cannot prepare (deferred constraint) rolls back the other: ROLLED_BACK with the cause', async () => {
  await servers.b.psql(`ALTER TABLE accounts ADD CONSTRAINT small CHECK (balance < 1100) NOT VALID;
    CREATE TABLE limits (id int PRIMARY KEY, ref int REFERENCES accounts (id) DEFERRABLE INITIALLY DEFERRED)`);
  const runs = [];
  const onRun = (e) => runs.push(e);
  diagnostics.subscribe('zktx:coordinator:run', onRun);
  const coord = bankCoordinator(zk, unique('bank'), ps);
  const err = await coord.run(async (tx) => {
    const a = await tx.participant('a');
    await a.query('UPDATE accounts SET balance = balance - 10 WHERE id = 1');
    const b = await tx.participant('b');
    await b.query('INSERT INTO limits VALUES (1, 999)'); // no account 999: fails at PREPARE
  }).catch((e) => e);
  expect(err.code).toBe('ROLLED_BACK');
  expect(err.cause && err.cause.code).toBe('23503'); // PostgreSQL's foreign_key_violation
  expect(runs.filter((e) => e.coordinator === coord).map((e) => [e.txid, e.outcome, e.error && e.error.code])).toEqual([[err.txid, 'rolled_back', 'ROLLED_BACK']]);
  diagnostics.unsubscribe('zktx:coordinator:run', onRun);
  expect(await coord.outcome(err.txid)).toBe('aborted');
  const facts = await audit(servers);
  expect([facts.total, facts.prepared]).toEqual([facts.expected, 0]);
  expect(await servers.a.psql('SELECT balance FROM accounts WHERE id = 1')).toBe('1000');
});

test('an error caught inside the work makes PREPARE roll back: reported, never a lost branch', async () => {
  const coord = bankCoordinator(zk, unique('bank'), ps);
  const err = await coord.run(async (tx) => {
    const a = await tx.participant('a');
    await a.query('UPDATE accounts SET balance = balance - 10 WHERE id = 1');
    const b = await tx.participant('b');
    await b.query('UPDATE accounts SET balance = balance + 10 WHERE id = 1');
    await b.query('SELECT 1 / 0').catch(() => {}); // swallowed: b's transaction is now aborted
  }).catch((e) => e);
  expect(err.code).toBe('ROLLED_BACK');
  expect(err.message).toMatch(/rolled back by PostgreSQL at PREPARE/);
  const facts = await audit(servers);
  expect([facts.total, facts.prepared, facts.committed.size]).toEqual([facts.expected, 0, 0]);
});

test(`zktx's own keys commit in the same ${BACKEND === 'etcd' ? 'etcd Txn' : 'ZooKeeper multi'} as the decision`, async () => {
  const coord = bankCoordinator(zk, unique('bank'), ps);
  const key = unique('transfers');
  await zk.set(key, 0);
  const txid = await coord.run(async (tx) => {
    const n = await tx.store.get(key);
    tx.store.set(key, n + 1);
    return transfer(coord, { from: { side: 'a', id: 1 }, toId: 2, amount: 5 }).then(() => tx.id, (e) => { throw e; });
  });
  expect(await zk.get(key)).toBe(1);
  expect(await coord.outcome(txid)).toBe('committed');
  // A concurrent write to a key the run read: the decision is refused, every branch rolls back.
  const err = await coord.run(async (tx) => {
    const n = await tx.store.get(key);
    const a = await tx.participant('a');
    await a.query('UPDATE accounts SET balance = balance - 7 WHERE id = 3');
    await zk.set(key, 100);
    tx.store.set(key, n + 1);
  }).catch((e) => e);
  expect(err.code).toBe('CONFLICT');
  expect(await zk.get(key)).toBe(100);
  expect(await servers.a.psql('SELECT balance FROM accounts WHERE id = 3')).toBe('1000');
});

// kill -9 of the coordinator process at each step boundary of a transfer, then recovery by this
// process (after the dead one's session expired). Before the decision: both legs roll back;
// from the decision on: both legs commit.
const CRASH_POINTS = [
  ['work', 'aborted'],
  ['prepare:1', 'aborted'],
  ['prepare:2', 'aborted'],
  ['decision', 'committed'],
  ['commit:1', 'committed'],
  ['commit:2', 'committed'],
];

test.each(CRASH_POINTS)('coordinator killed -9 at %s: recovery makes it %s everywhere', async (point, expected) => {
  const name = unique('bank');
  const w = runWorker({ COORD: name, CRASH_AT: point, TRANSFERS: '1', SESSION_MS: '2000' });
  const exit = await w.exited;
  expect(exit.signal).toBe('SIGKILL');
  const begun = w.lines().find((l) => l.begun);
  expect(w.lines().some((l) => l.crashing === point)).toBe(true);
  const coord = bankCoordinator(zk, name, ps);
  let facts;
  let passes = 0;
  for (;;) {
    const r = await coord.recover();
    passes++;
    facts = await audit(servers);
    const outcome = await coord.outcome(begun.begun);
    if (facts.prepared === 0 && outcome !== 'active' && outcome !== 'committing') break;
    if (Date.now() - exit.at > 30000) throw new Error(`not recovered after 30 s: ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
  const ms = Date.now() - exit.at;
  console.log(`crash at ${point}: resolved ${expected} ${ms} ms after the kill (${passes} recovery passes; session timeout 2000 ms)`);
  expect(facts.halfApplied).toEqual([]);
  expect(facts.total).toBe(facts.expected);
  expect(facts.committed.has(begun.begun)).toBe(expected === 'committed');
  expect(await coord.outcome(begun.begun)).toBe(expected);
});

test('bad input is INVALID_ARGUMENT before anything is sent, and a closed client refuses to begin', async () => {
  const bad = [
    () => zk.coordinator(42),
    () => zk.coordinator('a:b'),
    () => zk.coordinator('x'.repeat(65)),
    () => zk.coordinator('ok', { participants: { a: {} } }),
    () => zk.coordinator('ok', { participants: { 'no spaces': new (require('..').PostgresParticipant)(ps.a) } }),
    () => zk.coordinator('ok', { sagas: { s: [] } }),
    () => zk.coordinator('ok', { sagas: { s: [{ action() {} }] } }),
    () => zk.coordinator('ok', { recoveryIntervalMs: -1 }),
    () => zk.coordinator('ok', { participant: {} }),
    () => new (require('..').PostgresParticipant)({}),
    () => zk.coordinator('ok', { participantTimeoutMs: 0 }),
    () => zk.coordinator('ok', { participantTimeoutMs: -5 }),
    () => new (require('..').PostgresParticipant)(ps.a, { resolver: ps.a }), // the deadlock it exists to prevent
    () => new (require('..').PostgresParticipant)(ps.a, { timeout: 1 }),
    () => new (require('..').PostgresParticipant)({ connect() {}, query() {} }), // no settings to copy, no resolver
  ];
  for (const f of bad) {
    let err;
    try {
      f();
    } catch (e) {
      err = e;
    }
    expect([f.toString(), err && err.name, err && err.code]).toEqual([f.toString(), 'ZktxError', 'INVALID_ARGUMENT']);
  }
  const coord = bankCoordinator(zk, unique('bank'), ps);
  const calls = [coord.run(42), coord.outcome(42), coord.outcome('not-hex'), coord.saga('none'), coord.prune(-1), coord.prune(60000), coord.prune(), coord.recover('soon')];
  await Promise.all(calls.map((p) => expect(p).rejects.toMatchObject({ name: 'ZktxError', code: 'INVALID_ARGUMENT' })));
  const enlisted = await coord.run(async (tx) => tx.participant('nope').catch((e) => e));
  expect(enlisted.code).toBe('INVALID_ARGUMENT');
  const other = coordinatorClient();
  const c2 = bankCoordinator(other, unique('bank'), ps);
  await other.close();
  await expect(c2.run(async () => 1)).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
  const facts = await audit(servers);
  expect([facts.total, facts.prepared, facts.committed.size]).toEqual([facts.expected, 0, 0]);
});

test('close() in the middle of a commit: the caller is never told a wrong outcome', async () => {
  const name = unique('bank');
  const told = [];
  for (const when of ['after-prepare', 'at-commit']) {
    const own = coordinatorClient();
    const wrap = (side, p) => ({
      begin: (gid) => p.begin(gid),
      prepare: async (gid) => {
        await p.prepare(gid);
        if (side === 'b' && when === 'after-prepare') own.close();
      },
      commit: async (gid) => {
        if (side === 'a' && when === 'at-commit') own.close();
        await p.commit(gid);
      },
      rollback: (gid) => p.rollback(gid),
      inDoubt: () => p.inDoubt(),
    });
    const coord = bankCoordinator(own, name, ps, { wrap });
    let txid;
    try {
      await transfer(coord, { from: { side: 'a', id: 1 }, toId: 1, amount: 10, afterWork: (id) => { txid = id; } });
      told.push({ when, txid, outcome: 'committed' });
    } catch (err) {
      expect(['IN_DOUBT', 'ROLLED_BACK']).toContain(err.code);
      told.push({ when, txid, outcome: err.code });
    }
  }
  const recoverer = bankCoordinator(zk, name, ps);
  await recoverer.recover();
  const facts = await audit(servers);
  expect([facts.halfApplied, facts.total, facts.prepared]).toEqual([[], facts.expected, 0]);
  for (const t of told) {
    const outcome = await recoverer.outcome(t.txid);
    if (t.outcome === 'committed') expect([t.when, outcome, facts.committed.has(t.txid)]).toEqual([t.when, 'committed', true]);
    if (t.outcome === 'ROLLED_BACK') expect([t.when, outcome, facts.committed.has(t.txid)]).toEqual([t.when, 'aborted', false]);
    if (t.outcome === 'IN_DOUBT') expect([t.when, facts.committed.has(t.txid)]).toEqual([t.when, outcome === 'committed']);
  }
  console.log(`close() mid-commit: ${told.map((t) => `${t.when} -> ${t.outcome}`).join(', ')}`);
});

test('a function that does not await its participant leaves no open transaction behind', async () => {
  // One connection, held elsewhere while the run ends: the participant's begin() is still
  // waiting for it when the run commits (nothing to prepare yet) and rolls the branch back.
  const pg = require('pg');
  const pool = new pg.Pool({ ...servers.a.config, max: 1 }).on('error', () => {});
  const { PostgresParticipant } = require('..');
  const coord = zk.coordinator(unique('bank'), { participants: { a: new PostgresParticipant(pool) }, recoveryIntervalMs: 0 });
  const held = await pool.connect();
  let late;
  const ran = coord.run(async (tx) => {
    late = tx.participant('a');
  }).then(() => 'committed', (e) => e.code);
  setTimeout(() => held.release(), 300);
  expect(await ran).toBe('ROLLED_BACK');
  await expect(late).rejects.toThrow(/rolled back before it began/);
  const open = await servers.a.psql("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'");
  expect(open).toBe('0');
  await pool.end();
});

// The coordinator reads its tree's id (bound to the tree) before a run begins, so a connection
// that cannot be made fails the run before fn runs: nothing prepared, nothing applied, and the
// connect failure itself, with its cause, is the answer.
/** Runs one empty transaction on a new client at `connect`; what it rejected with, and whether fn ran. */
async function runOn(connect, prefix) {
  const zk = BACKEND === 'etcd' ? new Etcd({ endpoints: connect, connectTimeout: 8000 }) : new ZooKeeper({ connect, connectTimeout: 8000 });
  const coordinator = zk.coordinator(unique(prefix).slice(0, 60), { recoveryIntervalMs: 0 });
  let ran = false;
  try {
    await coordinator.run(async () => { ran = true; });
    return { ran, err: undefined };
  } catch (err) {
    return { ran, err };
  } finally {
    coordinator.close();
    await zk.close().catch(() => {});
  }
}

test('run against a refused host rejects before fn runs: CONNECTIONLOSS caused by the ECONNREFUSED, nothing applied', async () => {
  const net = require('node:net');
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  const { ran, err } = await runOn(`127.0.0.1:${port}`, 'refused');
  expect(ran).toBe(false);
  expect(err).toMatchObject({ name: 'ZktxError', code: 'CONNECTIONLOSS', outcome: 'not_applied', cause: { code: 'ECONNREFUSED' } });
});

// ZooKeeper's chroots (etcd has no chroot).
(BACKEND === 'zookeeper' ? test : test.skip)('run in a chroot that does not exist rejects before fn runs with the NONODE naming the chroot', async () => {
  const { ran, err } = await runOn(`${process.env.ZK_CONNECT}/${unique('no-such-chroot')}`, 'chroot');
  expect(ran).toBe(false);
  expect(err).toMatchObject({ name: 'ZktxError', code: 'NONODE', outcome: 'not_applied', message: expect.stringMatching(/chroot \/no-such-chroot.* does not exist/) });
});
