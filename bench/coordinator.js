#!/usr/bin/env node
'use strict';
// npm run bench:coordinator [-- --seconds S --concurrency C] : cross-cluster transfers between two
// PostgreSQL clusters, three ways, in one run on the same servers:
//   unsafe  two independent local transactions (commit a, then commit b): what people write
//           today; a crash between the two commits loses or creates money
//   2pc     zktx's coordinator: prepare both, one ZooKeeper multi records the decision, commit both
//   saga    zktx's saga: two steps, each a local transaction behind the PostgreSQL barrier
// Reports transfers/s, p50/p99 latency, round trips per transfer to ZooKeeper (the server's
// mntr packets received) and to each database (queries counted on the pools), and the recovery
// time after a coordinator is killed (-9) between prepare and decision, and after the decision.
//
// Starts a standalone ZooKeeper (forceSync=yes) unless ZK_CONNECT is set, and two PostgreSQL
// clusters with fsync on (durable prepares, as in production), and stops them at the end.

const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const { spawn } = require('node:child_process');
const { parseArgs } = require('node:util');
const pg = require('pg');
const testing = require('../testing');
const { ZooKeeper, PostgresParticipant, createBarrierTable } = require('..');

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '1,8' } } });
const SECONDS = Number(args.seconds);
const LEVELS = args.concurrency.split(',').map(Number);
const ACCOUNTS = 64;

/** A pg Pool that counts the queries its clients send (pool.query goes through a client too). */
function countingPool(config) {
  const pool = new pg.Pool({ ...config, max: 16 }).on('error', () => {});
  pool.queries = 0;
  const count = (client) => {
    if (client && !client.__counted) {
      const q = client.query.bind(client);
      client.query = (...a) => { pool.queries++; return q(...a); };
      client.__counted = true;
    }
    return client;
  };
  pool.on('connect', count);
  return pool;
}

const pick = () => 1 + Math.floor(Math.random() * ACCOUNTS);
const legs = (id, delta) => [['UPDATE accounts SET balance = balance + $1 WHERE id = $2', [delta, id]]];

const WAYS = {
  async unsafe({ pools }) {
    for (const [pool, delta] of [[pools.a, -1], [pools.b, 1]]) {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        for (const [sql, p] of legs(pick(), delta)) await c.query(sql, p);
        await c.query('COMMIT');
      } finally {
        c.release();
      }
    }
  },
  async '2pc'({ coord }) {
    await coord.run(async (tx) => {
      for (const [side, delta] of [['a', -1], ['b', 1]]) {
        const c = await tx.participant(side);
        for (const [sql, p] of legs(pick(), delta)) await c.query(sql, p);
      }
    });
  },
  async saga({ coord }) {
    await coord.saga('transfer', { from: pick(), to: pick(), amount: 1 });
  },
};

async function measure(way, ctx, concurrency, zk) {
  const lat = [];
  const before = { zk: await testing.mntr(zk.port, zk.host).then((m) => Number(m.zk_packets_received)), a: ctx.pools.a.queries, b: ctx.pools.b.queries };
  const end = Date.now() + SECONDS * 1000;
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < end) {
      const t0 = process.hrtime.bigint();
      await WAYS[way](ctx);
      lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }));
  const cpu = process.cpuUsage(cpu0);
  const after = { zk: await testing.mntr(zk.port, zk.host).then((m) => Number(m.zk_packets_received)), a: ctx.pools.a.queries, b: ctx.pools.b.queries };
  lat.sort((x, y) => x - y);
  const n = lat.length;
  return {
    way,
    concurrency,
    perSecond: n / SECONDS,
    p50: lat[Math.floor(n * 0.5)],
    p99: lat[Math.min(n - 1, Math.floor(n * 0.99))],
    zkRequests: (after.zk - before.zk - 2) / n, // the two mntr probes are not requests of ours
    aQueries: (after.a - before.a) / n,
    bQueries: (after.b - before.b) / n,
    cpuMs: (cpu.user + cpu.system) / 1000 / n,
  };
}

/** Kills a coordinator process (-9) at `point` and measures kill -> every branch resolved. */
async function recoveryTime(point, servers, zkConnect, sessionMs) {
  const out = path.join(os.tmpdir(), `zktx-bench-crash-${process.pid}-${point.replace(':', '')}.jsonl`);
  const name = `bench-crash-${Date.now().toString(36)}`;
  const child = spawn(process.execPath, [path.join(__dirname, '..', '__test__', 'workers', 'coord-bank.js')], {
    env: { ...process.env, ZK_CONNECT: zkConnect, PG_CONFIG: JSON.stringify({ a: servers.a.config, b: servers.b.config }), OUT: out, COORD: name, CRASH_AT: point, TRANSFERS: '1', SESSION_MS: String(sessionMs) },
    stdio: 'inherit',
  });
  const killedAt = await new Promise((resolve) => child.on('exit', () => resolve(Date.now())));
  const zk = new ZooKeeper({ connect: zkConnect, timeout: 10000 });
  const pools = { a: new pg.Pool(servers.a.config).on('error', () => {}), b: new pg.Pool(servers.b.config).on('error', () => {}) };
  const coord = zk.coordinator(name, { participants: { a: new PostgresParticipant(pools.a), b: new PostgresParticipant(pools.b) }, recoveryIntervalMs: 0 });
  const txid = fs.readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.begun).begun;
  fs.rmSync(out, { force: true });
  for (;;) {
    await coord.recover();
    const outcome = await coord.outcome(txid);
    const prepared = Number(await servers.a.psql('SELECT count(*) FROM pg_prepared_xacts')) + Number(await servers.b.psql('SELECT count(*) FROM pg_prepared_xacts'));
    if (prepared === 0 && (outcome === 'committed' || outcome === 'aborted')) {
      const ms = Date.now() - killedAt;
      await zk.close();
      await pools.a.end();
      await pools.b.end();
      return { point, outcome, ms };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function schema(server) {
  await server.psql(`DROP TABLE IF EXISTS accounts, ledger, zktx_barrier CASCADE;
    CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
    CREATE TABLE ledger (txid text NOT NULL, account int NOT NULL, delta bigint NOT NULL);
    INSERT INTO accounts SELECT g, 1000000 FROM generate_series(1, ${ACCOUNTS}) g;`);
}

async function main() {
  process.env.ZKTX_ZK_QUIET = '1';
  const zkServer = process.env.ZK_CONNECT ? null : await testing.startStandalone({ forceSync: true, tickTime: 500 }); // sessions down to 1 s: recovery timing
  const zkConnect = process.env.ZK_CONNECT || zkServer.connect;
  const [a, b] = await Promise.all([testing.startPostgres({ fsync: true }), testing.startPostgres({ fsync: true })]);
  const servers = { a, b };
  try {
    await Promise.all([schema(a), schema(b)]);
    const pools = { a: countingPool(a.config), b: countingPool(b.config) };
    await createBarrierTable(pools.a);
    await createBarrierTable(pools.b);
    const zk = new ZooKeeper({ connect: zkConnect, timeout: 10000 });
    const step = (pool, sign) => ({
      action: (input, ctx) => ctx.barrier(pool, (c) => c.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [sign * input.amount, sign < 0 ? input.from : input.to])),
      compensate: (input, ctx) => ctx.barrier(pool, (c) => c.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [sign * input.amount, sign < 0 ? input.from : input.to])),
    });
    const coord = zk.coordinator('bench', {
      participants: { a: new PostgresParticipant(pools.a), b: new PostgresParticipant(pools.b) },
      sagas: { transfer: [step(pools.a, -1), step(pools.b, 1)] },
      recoveryIntervalMs: 0,
    });
    const ctx = { pools, coord };
    const [zkHost, zkPort] = zkConnect.split(',')[0].split('/')[0].split(':');
    const zkHostPort = { host: zkHost, port: Number(zkPort) };
    for (const way of Object.keys(WAYS)) {
      console.error(`warming up ${way}`);
      await WAYS[way](ctx);
    }
    const rows = [];
    for (const c of LEVELS) {
      for (const way of Object.keys(WAYS)) {
        console.error(`measuring ${way}, ${c} in flight`);
        rows.push(await measure(way, ctx, c, zkHostPort));
      }
    }
    const f = (x, d = 1) => (x === undefined ? '-' : x.toFixed(d));
    console.log(`\ncross-cluster transfers, ${SECONDS} s each, ZooKeeper forceSync=yes, PostgreSQL fsync=on`);
    console.log('way     in flight  transfers/s   p50 ms   p99 ms   ZK req/transfer  db a queries  db b queries  CPU ms/transfer');
    for (const r of rows) {
      console.log(`${r.way.padEnd(8)}${String(r.concurrency).padStart(9)}${f(r.perSecond).padStart(13)}${f(r.p50, 2).padStart(9)}${f(r.p99, 2).padStart(9)}${f(r.zkRequests, 2).padStart(17)}${f(r.aQueries, 2).padStart(14)}${f(r.bQueries, 2).padStart(14)}${f(r.cpuMs, 2).padStart(17)}`);
    }
    for (const c of LEVELS) {
      const by = Object.fromEntries(rows.filter((r) => r.concurrency === c).map((r) => [r.way, r]));
      console.log(`${c} in flight: 2pc = ${f(by['2pc'].perSecond / by.unsafe.perSecond, 2)}x unsafe throughput, saga = ${f(by.saga.perSecond / by.unsafe.perSecond, 2)}x`);
    }
    await zk.close();
    await pools.a.end();
    await pools.b.end();
    const sessionMs = 2000;
    const recovery = [];
    for (const point of ['prepare:2', 'decision']) recovery.push(await recoveryTime(point, servers, zkConnect, sessionMs));
    for (const r of recovery) console.log(`recovery after kill -9 at ${r.point}: ${r.outcome} everywhere ${r.ms} ms after the kill (coordinator session timeout ${sessionMs} ms)`);
    const outFile = path.join(__dirname, 'results', 'coordinator.json');
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    fs.writeFileSync(outFile, `${JSON.stringify({ date: new Date().toISOString(), seconds: SECONDS, rows, recovery }, null, 2)}\n`);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
    if (zkServer) await zkServer.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
