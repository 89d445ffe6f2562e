'use strict';
// The cross-database bank the coordinator tests share: accounts split across two PostgreSQL
// clusters, transfers through zktx's coordinator, and the invariant checker.
//
// Each cluster has `accounts(id, balance >= 0)` and `ledger(txid, account, delta)`. A transfer
// moves `amount` from an account in one cluster to an account in the other: both legs or none.
// Work takes cluster a's row lock before cluster b's (one global order): each database sees only
// its own lock waits, so a cross-cluster deadlock would be invisible to both.
//
// The coordinator's records live on ZooKeeper, or on etcd when ZKTX_COORD_BACKEND=etcd (issue 20:
// `coordinator-etcd.test.js` runs this file's suites that way; workers inherit the variable).
const pg = require('pg');
const { ZooKeeper, Etcd, PostgresParticipant } = require('../..');
const { startPostgres } = require('../../testing');

/** 'zookeeper' or 'etcd': where the coordinator's records live. */
const BACKEND = process.env.ZKTX_COORD_BACKEND === 'etcd' ? 'etcd' : 'zookeeper';

/** A client of the backend under test (`connect` is ZooKeeper's; on etcd, ETCD_ENDPOINTS). */
function coordinatorClient(options = {}) {
  if (BACKEND === 'etcd') {
    const { connect, ...rest } = options;
    return new Etcd({ endpoints: process.env.ETCD_ENDPOINTS, timeout: 4000, ...rest });
  }
  return new ZooKeeper({ connect: process.env.ZK_CONNECT, timeout: 4000, ...options });
}

/** The address a proxy in front of the backend forwards to: ZooKeeper's connect string, etcd's first endpoint. */
function backendAddress() {
  return BACKEND === 'etcd' ? process.env.ETCD_ENDPOINTS.split(',')[0] : process.env.ZK_CONNECT;
}

/** A client of the backend under test that reaches it only at `address` (a proxy's). */
function coordinatorClientAt(address, options = {}) {
  return coordinatorClient(BACKEND === 'etcd' ? { ...options, endpoints: [address] } : { ...options, connect: address });
}

/** The environment a worker (which makes its client with `coordinatorClient`) needs to reach the backend at `address`. */
function workerEnv(address) {
  return BACKEND === 'etcd' ? { ETCD_ENDPOINTS: address } : { ZK_CONNECT: address };
}

const ACCOUNTS = 8;
const INITIAL = 1000;

async function createSchema(server) {
  await server.psql(`
    DROP TABLE IF EXISTS accounts, ledger, limits, zktx_barrier CASCADE;
    CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0));
    CREATE TABLE ledger (txid text NOT NULL, account int NOT NULL, delta bigint NOT NULL);
    INSERT INTO accounts SELECT g, ${INITIAL} FROM generate_series(1, ${ACCOUNTS}) g;`);
}

/** A pool per cluster. pg-pool's end() resolves before its sockets close, so a cluster stopped
 * right after can still reach an idle client: the 'error' listener keeps that from crashing. */
function pools(config) {
  const pool = (c) => new pg.Pool({ ...c, max: 4 }).on('error', () => {});
  return { a: pool(config.a), b: pool(config.b) };
}

/** The coordinator every process of a test registers: participants a and b on `pools`. */
function bankCoordinator(zk, name, pools, options = {}) {
  return zk.coordinator(name, {
    participants: { a: options.wrap ? options.wrap('a', new PostgresParticipant(pools.a)) : new PostgresParticipant(pools.a), b: options.wrap ? options.wrap('b', new PostgresParticipant(pools.b)) : new PostgresParticipant(pools.b) },
    recoveryIntervalMs: options.recoveryIntervalMs ?? 0,
    ...(options.participantTimeoutMs === undefined ? {} : { participantTimeoutMs: options.participantTimeoutMs }),
  });
}

/** One transfer: `amount` from `from` ({ side, id }) to the other side's account `to`. */
function transfer(coord, { from, toId, amount, afterWork }) {
  return coord.run(async (tx) => {
    const legs = from.side === 'a'
      ? [['a', from.id, -amount], ['b', toId, amount]]
      : [['a', toId, amount], ['b', from.id, -amount]];
    for (const [side, id, delta] of legs) {
      const c = await tx.participant(side);
      await c.query("SET LOCAL lock_timeout = '5s'");
      await c.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [delta, id]);
      await c.query('INSERT INTO ledger (txid, account, delta) VALUES ($1, $2, $3)', [tx.id, id, delta]);
    }
    if (afterWork) afterWork(tx.id);
    return tx.id;
  });
}

/** The invariant after every branch is resolved; returns the facts for assertions. */
async function audit(servers) {
  const total = async (s) => Number(await s.psql('SELECT coalesce(sum(balance), 0) FROM accounts'));
  const txids = async (s) => new Set((await s.psql('SELECT DISTINCT txid FROM ledger')).split('\n').filter(Boolean));
  const prepared = async (s) => (await s.psql('SELECT count(*) FROM pg_prepared_xacts'));
  // Prepared branches first: COMMIT PREPARED makes its rows visible before it leaves
  // pg_prepared_xacts, so a ledger read begun after a count of 0 sees every branch committed by
  // then (read concurrently, a commit in flight could be neither prepared nor in the ledger).
  const [pa, pb] = await Promise.all([prepared(servers.a), prepared(servers.b)]);
  const [ta, tb, la, lb] = await Promise.all([total(servers.a), total(servers.b), txids(servers.a), txids(servers.b)]);
  const halfApplied = [...la].filter((t) => !lb.has(t)).concat([...lb].filter((t) => !la.has(t)));
  return { total: ta + tb, expected: 2 * ACCOUNTS * INITIAL, committed: la, halfApplied, prepared: Number(pa) + Number(pb) };
}

/**
 * A test file's bank: two PostgreSQL clusters and their pools, a client of the shared ZooKeeper
 * (with `zkOptions`), started before all tests and stopped after; fresh tables before each test.
 * `use({ servers, pools, zk })` receives them once started.
 */
function useBank(zkOptions, use) {
  const bank = {};
  beforeAll(async () => {
    const [a, b] = await Promise.all([startPostgres(), startPostgres()]);
    bank.servers = { a, b };
    bank.pools = pools({ a: a.config, b: b.config });
    bank.zk = coordinatorClient(zkOptions);
    use(bank);
  });
  afterAll(async () => {
    await bank.zk?.close();
    await bank.pools?.a.end();
    await bank.pools?.b.end();
    await Promise.all([bank.servers?.a.stop(), bank.servers?.b.stop()]);
  });
  beforeEach(async () => {
    await Promise.all([createSchema(bank.servers.a), createSchema(bank.servers.b)]);
  });
}

/** Creates the znode `chroot` on the server (ZooKeeper needs a chroot to exist). */
function mkdirp(chroot) {
  const nzk = require('node-zookeeper-client');
  return new Promise((resolve, reject) => {
    const c = nzk.createClient(process.env.ZK_CONNECT.split('/')[0]);
    c.once('connected', () => c.mkdirp(chroot, (err) => { c.close(); if (err) reject(err); else resolve(); }));
    c.connect();
  });
}

/** A client in a chroot of its own: one application's namespace (as the README recommends). */
async function applicationClient(options = {}) {
  const { unique } = require('../helpers/zk');
  const chroot = `/${unique('app')}`;
  await mkdirp(chroot);
  return new ZooKeeper({ connect: `${process.env.ZK_CONNECT}${chroot}`, timeout: 4000, ...options });
}

let apps = 0;
/**
 * One application's namespace on the backend under test, as `{ client, name(base) }`: on
 * ZooKeeper a client in a chroot of its own (`name` is `base`: both applications may call their
 * coordinator `bank`); on etcd, which has no chroot, a client of the shared etcd and coordinator
 * names of the application's own (`name('bank')` is `bank-<app>`).
 */
async function application(options = {}) {
  if (BACKEND === 'etcd') {
    const { unique } = require('../helpers/zk');
    const tag = unique(`app${apps++}`);
    return { client: coordinatorClient(options), name: (base) => `${base}-${tag}` };
  }
  return { client: await applicationClient(options), name: (base) => base };
}

/** Runs one transfer and says what its caller was told: `{ txid, outcome, code?, message? }`. */
async function told(coord, op) {
  try {
    return { txid: await transfer(coord, op), outcome: 'committed' };
  } catch (err) {
    return { txid: err.txid, outcome: 'failed', code: err.code || 'USER', message: err.message };
  }
}

module.exports = { ACCOUNTS, INITIAL, BACKEND, coordinatorClient, coordinatorClientAt, backendAddress, workerEnv, application, createSchema, pools, bankCoordinator, transfer, told, audit, useBank, applicationClient, ZooKeeper };
