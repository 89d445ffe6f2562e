#!/usr/bin/env node
// Throwaway etcd from the command line, as scripts/zk.js is for ZooKeeper: for `npm test`,
// `cargo test` and the bench. The members themselves live in testing/etcd.js (`zktx/testing`).
//
//   node scripts/etcd.js run [--cluster N] -- <cmd> [args...]
//   node scripts/etcd.js start [--cluster N]   # prints JSON, see cliStart
//   node scripts/etcd.js stop <pid>...
//
// `run` starts one member (a cluster of N with --cluster N) unless ETCD_ENDPOINTS already names
// one, runs the command with ETCD_ENDPOINTS (client endpoints, '127.0.0.1:PORT' comma-separated)
// and ZKTX_ETCD_PIDS in its environment, and stops the members when it exits. `start` leaves
// them running and prints their PIDs; `stop` stops etcd members by PID (nothing else) and
// removes their temp dirs. Environment: see testing/etcd.js.
'use strict';

const { startEtcd, startEtcdCluster } = require('../testing');
const { stopEtcdPid } = require('../testing/etcd');
const { log: logAs, seconds } = require('../testing/processes');
const { runWithServers } = require('./run-command');
const { serverCli, intOption } = require('./cli');

const log = (msg) => logAs('etcd', msg);

const cli = serverCli({
  who: 'etcd',
  usage: ['node scripts/etcd.js run [--cluster N] -- <cmd> [args...]', 'node scripts/etcd.js start [--cluster N]', 'node scripts/etcd.js stop <pid>...'],
  options: { cluster: { type: 'string' } },
  parse: (values) => ({ cluster: intOption(values.cluster, 0, (n) => n >= 0, '--cluster must be a positive integer') }),
  // etcd members only
  commands: { run: cliRun, start: cliStart, stop: stopEtcdPid },
});

/** One member or a cluster, as one shape: { endpoints, members, stop, detach }. */
async function start({ cluster }) {
  if (cluster > 0) {
    const c = await startEtcdCluster(cluster);
    return { endpoints: c.endpoints, members: c.members, stop: () => c.stop(), detach: () => c.detach() };
  }
  const m = await startEtcd();
  return { endpoints: m.endpoints, members: [m], stop: () => m.stop(), detach: () => m.detach() };
}

async function cliRun(opts) {
  const begin = async () => {
    if (process.env.ETCD_ENDPOINTS) return { servers: null, env: {} };
    const etcd = await start(opts);
    return { servers: etcd, env: { ETCD_ENDPOINTS: etcd.endpoints.join(','), ZKTX_ETCD_PIDS: etcd.members.map((m) => m.pid).join(',') } };
  };
  const end = async (etcd) => {
    if (!etcd) return;
    const t0 = Date.now();
    await etcd.stop();
    log(`stopped ${etcd.endpoints.join(',')} in ${seconds(t0)}`);
  };
  return runWithServers('etcd', opts.cmd, begin, end);
}

/** Prints { endpoints, connect, pids, ports, dataDirs } and leaves the members running. */
async function cliStart(opts) {
  const etcd = await start(opts);
  etcd.detach();
  const out = {
    endpoints: etcd.endpoints,
    connect: etcd.endpoints.join(','),
    pids: etcd.members.map((m) => m.pid),
    ports: etcd.members.map((m) => m.port),
    dataDirs: etcd.members.map((m) => m.dataDir),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  return 0;
}

cli.runIfMain(module);
