#!/usr/bin/env node
// Throwaway servers from the command line, for npm scripts, the demo, `cargo test` and the
// bench. The servers themselves live in testing/ (also `zktx/testing`); this is the CLI on top,
// and it re-exports the ZooKeeper helpers for older callers (`require('./scripts/zk')`).
//
//   node scripts/zk.js run [--tick MS] [--ensemble N] [--postgres N] -- <cmd> [args...]
//   node scripts/zk.js start [--tick MS] [--ensemble N] [--postgres N]   # prints JSON, see cliStart
//   node scripts/zk.js stop <pid>...
//
// `run` starts ZooKeeper (unless ZK_CONNECT names one) and N PostgreSQL clusters, runs the
// command with ZK_CONNECT, ZKTX_ZK_PIDS, ZKTX_ZK_PORTS and ZKTX_PG_URLS (connection strings,
// comma-separated) in its environment, and stops them all when it exits. `start` leaves them
// running and prints their PIDs; `stop` stops ZooKeeper servers and throwaway PostgreSQL
// clusters by PID (nothing else). Environment: see testing/zookeeper.js and testing/postgres.js.
'use strict';

const testing = require('../testing');
const { stopZooKeeperPid } = require('../testing/zookeeper');
const { isOurPostmaster, stopPostgresPid } = require('../testing/postgres');
const { log: logAs, seconds } = require('../testing/processes');
const { runWithServers } = require('./run-command');
const { serverCli, intOption } = require('./cli');

const { startStandalone, startEnsemble, startPostgres } = testing;
const log = (msg) => logAs('zk', msg);

// ---------------------------------------------------------------------------------------------
// CLI

const cli = serverCli({
  who: 'zk',
  usage: [
    'node scripts/zk.js run [--tick MS] [--ensemble N] [--postgres N] -- <cmd> [args...]',
    'node scripts/zk.js start [--tick MS] [--ensemble N] [--postgres N]',
    'node scripts/zk.js stop <pid>...',
  ],
  options: {
    tick: { type: 'string' },
    ensemble: { type: 'string' },
    postgres: { type: 'string' },
  },
  parse: (values) => ({
    tick: intOption(values.tick, 2000, (n) => n > 0, '--tick must be a positive integer (ms)'),
    ensemble: intOption(values.ensemble, 0, (n) => n >= 0, '--ensemble must be a positive integer'),
    postgres: intOption(values.postgres, 0, (n) => n >= 0, '--postgres must be a non-negative integer'),
  }),
  commands: {
    run: cliRun,
    start: cliStart,
    // ZooKeeper servers and throwaway PostgreSQL clusters, nothing else
    stop: (pid) => (isOurPostmaster(pid) ? stopPostgresPid(pid) : stopZooKeeperPid(pid)),
  },
});

/** ZooKeeper (a standalone server or an ensemble), as one shape: { connect, servers, stop, detach }. */
async function startZooKeeper({ tick, ensemble }) {
  if (ensemble > 0) {
    const e = await startEnsemble({ size: ensemble, tickTime: tick });
    return { connect: e.connect, servers: e.servers, stop: () => e.stop(), detach: () => e.detach() };
  }
  const s = await startStandalone({ tickTime: tick });
  return { connect: s.connect, servers: [s], stop: () => s.stop(), detach: () => s.detach() };
}

/** ZooKeeper (unless `withZooKeeper` is false) and `opts.postgres` clusters, all at once. */
async function startServers(opts, { withZooKeeper = true } = {}) {
  const started = await Promise.allSettled([
    withZooKeeper ? startZooKeeper(opts) : null,
    ...Array.from({ length: opts.postgres }, () => startPostgres()),
  ]);
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(started.filter((r) => r.status === 'fulfilled' && r.value).map((r) => r.value.stop()));
    throw failed.reason;
  }
  const [zk, ...pgs] = started.map((r) => r.value);
  return { zk, pgs };
}

async function cliRun(opts) {
  const start = async () => {
    const servers = await startServers(opts, { withZooKeeper: !process.env.ZK_CONNECT });
    const { zk, pgs } = servers;
    const env = {};
    if (zk) {
      env.ZK_CONNECT = zk.connect;
      env.ZKTX_ZK_PIDS = zk.servers.map((s) => s.pid).join(',');
      env.ZKTX_ZK_PORTS = zk.servers.map((s) => s.port).join(',');
    }
    if (pgs.length > 0) env.ZKTX_PG_URLS = pgs.map((pg) => pg.connectionString).join(',');
    return { servers, env };
  };
  const stop = async ({ zk, pgs }) => {
    const t0 = Date.now();
    await Promise.all([zk && zk.stop(), ...pgs.map((pg) => pg.stop())]);
    if (zk) log(`stopped ${zk.connect} in ${seconds(t0)}`);
    if (pgs.length > 0) log(`stopped PostgreSQL on ${pgs.map((pg) => pg.port).join(',')} in ${seconds(t0)}`);
  };
  return runWithServers('zk', opts.cmd, start, stop);
}

/**
 * Prints {connect, pids, ports, dataDirs} for ZooKeeper, plus with --postgres N
 * `postgres: [{ connectionString, port, pid, dataDir }]`.
 */
async function cliStart(opts) {
  const { zk, pgs } = await startServers(opts);
  zk.detach();
  for (const pg of pgs) pg.detach();
  const out = {
    connect: zk.connect,
    pids: zk.servers.map((s) => s.pid),
    ports: zk.servers.map((s) => s.port),
    dataDirs: zk.servers.map((s) => s.dataDir),
  };
  if (pgs.length > 0) out.postgres = pgs.map((pg) => ({ connectionString: pg.connectionString, port: pg.port, pid: pg.pid, dataDir: pg.dataDir }));
  process.stdout.write(JSON.stringify(out) + '\n');
  return 0;
}

// What `require('./scripts/zk')` gave before testing/ existed.
module.exports = {
  findZooKeeper: testing.findZooKeeper,
  startStandalone,
  startEnsemble,
  fourLetter: testing.fourLetter,
  freePort: testing.freePort,
  freePorts: testing.freePorts,
  makeTlsFiles: testing.makeTlsFiles,
  mntr: testing.mntr,
  superDigest: testing.superDigest,
  ZkServer: testing.ZkServer,
};

cli.runIfMain(module);
