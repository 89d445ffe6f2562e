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

const { parseArgs } = require('node:util');

const { startEtcd, startEtcdCluster } = require('../testing');
const { stopEtcdPid } = require('../testing/etcd');
const { log: logAs, seconds } = require('../testing/processes');
const { runWithServers } = require('./run-command');

const log = (msg) => logAs('etcd', msg);

function usage() {
  return [
    'usage:',
    '  node scripts/etcd.js run [--cluster N] -- <cmd> [args...]',
    '  node scripts/etcd.js start [--cluster N]',
    '  node scripts/etcd.js stop <pid>...',
  ].join('\n');
}

function parseCli(argv) {
  const dashdash = argv.indexOf('--');
  const own = dashdash >= 0 ? argv.slice(0, dashdash) : argv;
  const { values, positionals } = parseArgs({
    args: own,
    allowPositionals: true,
    strict: true,
    options: {
      cluster: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  const cluster = values.cluster !== undefined ? Number(values.cluster) : 0;
  if (!Number.isInteger(cluster) || cluster < 0) throw new Error(`--cluster must be a positive integer, got ${values.cluster}`);
  const cmd = dashdash >= 0 ? rest.concat(argv.slice(dashdash + 1)) : rest;
  return { help: values.help, command, cluster, rest, cmd };
}

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
  if (opts.cmd.length === 0) throw new Error(`run: no command given\n${usage()}`);
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

async function cliStop(opts) {
  if (opts.rest.length === 0) throw new Error(`stop: no pid given\n${usage()}`);
  const pids = opts.rest.map((p) => {
    const n = Number(p);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`stop: not a pid: ${p}`);
    return n;
  });
  let status = 0;
  const results = await Promise.allSettled(pids.map((pid) => stopEtcdPid(pid)));
  results.forEach((r, i) => {
    if (r.status === 'rejected') {
      process.stderr.write(`etcd: ${r.reason.message}\n`);
      status = 1;
    } else {
      log(`stopped pid ${pids[i]}`);
    }
  });
  return status;
}

async function main(argv) {
  let opts;
  try {
    opts = parseCli(argv);
  } catch (err) {
    process.stderr.write(`etcd: ${err.message}\n${usage()}\n`);
    return 2;
  }
  if (opts.help || !opts.command) {
    process.stderr.write(usage() + '\n');
    return opts.help ? 0 : 2;
  }
  switch (opts.command) {
    case 'run':
      return cliRun(opts);
    case 'start':
      return cliStart(opts);
    case 'stop':
      return cliStop(opts);
    default:
      process.stderr.write(`etcd: unknown command ${opts.command}\n${usage()}\n`);
      return 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`etcd: ${process.env.ZKTX_DEBUG ? err.stack : err.message}\n`);
      process.exit(1);
    }
  );
}
