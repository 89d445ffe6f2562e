#!/usr/bin/env node
'use strict';
// npm run bench [-- --quick] : how much faster zktx is than what a Node team would otherwise use
// (the same lock recipe on node-zookeeper-client and on the `zookeeper` C binding), and how close
// it comes to the floor: `wire-probe` (baselines/wire-probe.js), ZooKeeper's protocol by hand on
// Node's socket, pipelining what can be pipelined. Every row shows zktx ÷ it and CPU per op.
//
// Every scenario (bench/scenarios.js) runs per system in fresh processes (bench/worker.js):
// connect, warm up, all report ready, then go together for a fixed time. Repetitions interleave
// the systems and alternate their order (ABC, CBA, ...). Requests per op come from the server's
// `mntr` zk_packets_received. Prints a table and writes bench/results/latest.json.
//
// Starts its own standalone ZooKeeper with forceSync=yes (writes reach the disk, as in
// production) unless ZK_CONNECT is set, and stops it at the end.
//
// The etcd scenarios (group 'etcd', `--only etcd`) compare zktx's Etcd with the `etcd3` npm
// package on one etcd member the bench starts (startEtcd from zktx/testing; ETCD_ENDPOINTS to use
// another), with zktx on the ZooKeeper above for reference. Their requests per op come from the
// member's /metrics (grpc_server_msg_received_total), with the count per gRPC method and the
// raft proposals committed per op in the JSON.

const childProcess = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

// --compare must be known before systems.js is loaded (it adds the system zktx@compare)
const compareAt = process.argv.indexOf('--compare');
if (compareAt > 0 && process.argv[compareAt + 1]) process.env.ZKTX_BENCH_COMPARE = path.resolve(process.argv[compareAt + 1]);

const zkServer = require('../testing');
const { SYSTEMS, FLOOR } = require('./systems');
const { SCENARIOS } = require('./scenarios');

const WORKER = path.join(__dirname, 'worker.js');
const PROBES = path.join(__dirname, 'probes.js');
const DEFAULT_OUT = path.join(__dirname, 'results', 'latest.json');

const PROFILES = {
  full: { reps: 3, durationMs: 3000, warmupMs: 1000, memory: { hold: 10_000, cyclesLow: 10_000, cyclesHigh: 100_000 } },
  quick: { reps: 2, durationMs: 500, warmupMs: 250, memory: { hold: 10_000, cyclesLow: 1_000, cyclesHigh: 10_000 } },
};

const NZC = 'node-zookeeper-client';
const ZE = 'zktx-etcd';
/**
 * What the project promised (issues 7 and 13), each from the same run. Reported, never asserted.
 * `value(get)` gets (scenario, system) -> summary row; returns null when a row is missing.
 */
const TARGETS = [
  { name: 'get p50 minus wire probe (µs)', unit: 'µs', max: 10, value: (g) => diff(g('get', 'zktx'), g('get', FLOOR), (r) => r.p50_ms * 1000) },
  { name: 'set p50 minus wire probe (µs)', unit: 'µs', max: 20, value: (g) => diff(g('set', 'zktx'), g('set', FLOOR), (r) => r.p50_ms * 1000) },
  { name: 'pipelined set, 1 session, vs wire probe', unit: '%', min: 0.9, value: (g) => ratio(g('set_pipelined', 'zktx'), g('set_pipelined', FLOOR)) },
  { name: 'set, 8 sessions in 1 process, vs wire probe', unit: '%', min: 0.75, value: (g) => ratio(g('set_sessions', 'zktx'), g('set_sessions', FLOOR)) },
  { name: 'uncontended lock cycle vs node-zookeeper-client', unit: '×', min: 1.25, value: (g) => ratio(g('lock_uncontended', 'zktx'), g('lock_uncontended', NZC)) },
  {
    name: 'lock cycle p50 minus 2 set p50s of the probe (ms)',
    unit: 'ms',
    max: 0.1,
    value: (g) => (g('lock_uncontended', 'zktx') && g('set', FLOOR) ? g('lock_uncontended', 'zktx').p50_ms - 2 * g('set', FLOOR).p50_ms : null),
  },
  { name: 'executeTransaction vs node-zookeeper-client', unit: '×', min: 1.8, value: (g) => ratio(g('txn_uncontended', 'zktx'), g('txn_uncontended', NZC)) },
  { name: 'contended counter vs node-zookeeper-client', unit: '×', min: 2, value: (g) => ratio(g('lock_contended', 'zktx'), g('lock_contended', NZC)) },
  {
    name: 'CPU per lock cycle vs wire probe',
    unit: '×',
    max: 1.3,
    value: (g) => (g('lock_uncontended', 'zktx') && g('lock_uncontended', FLOOR) ? g('lock_uncontended', 'zktx').cpu_us_per_op / g('lock_uncontended', FLOOR).cpu_us_per_op : null),
  },
  // issue 19: the raw calls of zk.znodes at least as fast as node-zookeeper-client's own
  ...['znode_get', 'znode_set', 'znode_create_delete', 'znode_get_pipelined', 'znode_set_pipelined', 'znode_sessions'].map((s) => ({
    name: `${s} vs node-zookeeper-client`,
    unit: '×',
    min: 1,
    value: (g) => ratio(g(s, 'zktx'), g(s, NZC)),
  })),
  { name: 'native overhead per call (µs)', unit: 'µs', overhead: true, max: 20 },
  // issue 20: zktx ahead of etcd3 on each etcd scenario
  { name: 'etcd: lock cycle vs etcd3', unit: '×', min: 1, value: (g) => ratio(g('etcd_lock_uncontended', ZE), g('etcd_lock_uncontended', 'etcd3')) },
  { name: 'etcd: contended counter vs etcd3', unit: '×', min: 1, value: (g) => ratio(g('etcd_lock_contended', ZE), g('etcd_lock_contended', 'etcd3')) },
  { name: 'etcd: lock handoffs vs etcd3', unit: '×', min: 1, value: (g) => ratio(g('etcd_lock_handoff', ZE), g('etcd_lock_handoff', 'etcd3')) },
  { name: 'etcd: 2-key transfer vs etcd3 STM', unit: '×', min: 1, value: (g) => ratio(g('etcd_transfer', ZE), g('etcd_transfer', 'etcd3')) },
  {
    name: 'etcd: lock cycle p50 minus 2 etcd3 put p50s (ms)',
    unit: 'ms',
    max: 0.1,
    value: (g) => (g('etcd_lock_uncontended', ZE) && g('etcd_put', 'etcd3') ? g('etcd_lock_uncontended', ZE).p50_ms - 2 * g('etcd_put', 'etcd3').p50_ms : null),
  },
];
function ratio(a, b) {
  return a && b ? a.ops_per_s / b.ops_per_s : null;
}
function diff(a, b, f) {
  return a && b ? f(a) - f(b) : null;
}

function usage() {
  return [
    'usage: npm run bench [-- options]',
    '  --quick              short run (about a minute): 2 repetitions of 0.5 s, smaller memory probe',
    '  --reps N             repetitions per scenario and system (full: 3)',
    '  --duration MS        measured time per run (full: 3000)',
    '  --warmup MS          warm-up per run (full: 1000)',
    '  --only a,b           only these scenarios (' + SCENARIOS.map((s) => s.name).join(', ') + '); `etcd`: all etcd ones',
    '  --systems a,b        only these systems (' + Object.keys(SYSTEMS).join(', ') + ')',
    '  --skip-memory        no memory probe',
    '  --skip-coordinator   no cross-service transactions scenario (bench/coordinator.js: 2PC and saga vs two local transactions)',
    '  --out FILE           where to write the JSON (default bench/results/latest.json)',
    '  --zktx DIR           the zktx package to measure (default: this checkout)',
    '  --compare FILE.node  also measure another build of the addon (system zktx@compare), interleaved',
    'ZK_CONNECT=host:port   use that server instead of starting one',
    'ETCD_ENDPOINTS=host:port   use that etcd member for the etcd scenarios instead of starting one',
  ].join('\n');
}

function parseCli(argv) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean', default: false },
      reps: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      only: { type: 'string' },
      systems: { type: 'string' },
      'skip-memory': { type: 'boolean', default: false },
      'skip-coordinator': { type: 'boolean', default: false },
      out: { type: 'string' },
      zktx: { type: 'string' },
      compare: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const profile = { ...PROFILES[values.quick ? 'quick' : 'full'] };
  const int = (name, v, min) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${v}`);
    return n;
  };
  if (values.reps !== undefined) profile.reps = int('reps', values.reps, 1);
  if (values.duration !== undefined) profile.durationMs = int('duration', values.duration, 100);
  if (values.warmup !== undefined) profile.warmupMs = int('warmup', values.warmup, 0);
  const list = (v, known, what) => {
    if (v === undefined) return known;
    const names = v.split(',').map((s) => s.trim()).filter(Boolean);
    for (const n of names) if (!known.includes(n)) throw new Error(`unknown ${what} ${n} (known: ${known.join(', ')})`);
    return known.filter((k) => names.includes(k));
  };
  return {
    help: values.help,
    quick: values.quick,
    skipCoordinator: values['skip-coordinator'],
    profile,
    scenarios: list(
      values.only && values.only.split(',').map((n) => (n.trim() === 'etcd' ? SCENARIOS.filter((s) => s.group === 'etcd').map((s) => s.name).join(',') : n)).join(','),
      SCENARIOS.map((s) => s.name),
      'scenario'
    ),
    systems: list(values.systems, Object.keys(SYSTEMS), 'system'),
    memory: !values['skip-memory'],
    out: values.out ? path.resolve(values.out) : DEFAULT_OUT,
    zktx: values.zktx ? path.resolve(values.zktx) : undefined,
    compare: values.compare ? path.resolve(values.compare) : undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// child processes

/** A forked child with a message inbox: `expect(type)` resolves its next message of that type. */
function spawnChild(file, execArgv = []) {
  const child = childProcess.fork(file, [], {
    serialization: 'advanced', // latencies travel as a Float64Array
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv,
  });
  const inbox = [];
  let waiter = null;
  let exited = null;
  const deliver = () => {
    if (!waiter) return;
    const i = inbox.findIndex((m) => m.type === waiter.type || m.type === 'error');
    if (i >= 0) {
      const [m] = inbox.splice(i, 1);
      const w = waiter;
      waiter = null;
      clearTimeout(w.timer);
      if (m.type === 'error') w.reject(new Error(`pid ${child.pid}: ${m.message}`));
      else w.resolve(m);
    } else if (exited) {
      const w = waiter;
      waiter = null;
      clearTimeout(w.timer);
      w.reject(new Error(`pid ${child.pid} exited (${exited}) before sending "${w.type}"`));
    }
  };
  child.on('message', (m) => {
    inbox.push(m);
    deliver();
  });
  const exitPromise = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      exited = signal || `code ${code}`;
      deliver();
      resolve();
    })
  );
  return {
    child,
    send: (msg) => child.send(msg),
    expect(type, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiter = null;
          reject(new Error(`pid ${child.pid}: no "${type}" within ${timeoutMs} ms`));
        }, timeoutMs);
        waiter = { type, resolve, reject, timer };
        deliver();
      });
    },
    /** Ask it to exit; SIGKILL it (our own child, by its handle) if it has not within `ms`. */
    async finish(ms = 10_000) {
      if (!exited && child.connected) {
        try {
          child.send({ type: 'exit' });
        } catch {}
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      await exitPromise;
      clearTimeout(timer);
    },
  };
}

async function probe(msg, { execArgv = [], timeoutMs = 600_000 } = {}) {
  const c = spawnChild(PROBES, execArgv);
  try {
    c.send(msg);
    return (await c.expect('result', timeoutMs)).result;
  } finally {
    await c.finish();
  }
}

// ---------------------------------------------------------------------------------------------
// one measured run

let runSeq = 0;

async function runOnce(ctx, scenario, system) {
  const run = `${ctx.stamp}-${++runSeq}`;
  const workers = scenario.processes || 1;
  const children = Array.from({ length: workers }, () => spawnChild(WORKER));
  try {
    const init = (worker) =>
      children[worker].send({ type: 'init', system, scenario: scenario.name, connect: ctx.connect, etcd: ctx.etcd, run, worker, workers, warmupMs: ctx.profile.warmupMs });
    const setupTimeout = ctx.profile.warmupMs + 60_000;
    if (scenario.prepare) {
      // worker 0 lays out the run's znodes before anyone else touches them
      init(0);
      await children[0].expect('prepared', setupTimeout);
      for (let w = 1; w < workers; w++) init(w);
    } else {
      for (let w = 0; w < workers; w++) init(w);
    }
    await Promise.all(children.map((c) => c.expect('ready', setupTimeout)));
    const auditBefore = scenario.audit ? await readAudit(children[0]) : null;

    const onEtcd = SYSTEMS[system].backend === 'etcd';
    const before = onEtcd ? await ctx.etcdCounters() : await ctx.packets();
    for (const c of children) c.send({ type: 'go', durationMs: ctx.profile.durationMs });
    const done = await Promise.all(children.map((c) => c.expect('done', ctx.profile.durationMs + 120_000)));
    const after = onEtcd ? await ctx.etcdCounters() : await ctx.packets();

    const ops = done.reduce((n, d) => n + d.ops, 0);
    const result = {
      ops,
      cpuUs: done.reduce((n, d) => n + d.cpuUs, 0),
      opsPerS: done.reduce((r, d) => r + d.ops / (d.elapsedMs / 1000), 0),
      latencies: done.map((d) => d.latencies),
      packets: before === null || after === null ? null : onEtcd ? after.total - before.total : after - before - ctx.probeCost,
    };
    if (onEtcd && before && after) {
      result.etcd = { proposals: after.proposals - before.proposals, serverCpuUs: (after.cpuSeconds - before.cpuSeconds) * 1e6, methods: {} };
      for (const [m, n] of Object.entries(after.methods)) if (n - (before.methods[m] || 0) > 0) result.etcd.methods[m] = n - (before.methods[m] || 0);
    }
    if (scenario.audit) {
      const auditAfter = await readAudit(children[0]);
      const expected = scenario.audit.growth(ops);
      result.audit = { before: auditBefore, after: auditAfter, expected_growth: expected, ok: auditAfter - auditBefore === expected };
    }
    return result;
  } finally {
    await Promise.all(children.map((c) => c.finish()));
  }
}

async function readAudit(c) {
  c.send({ type: 'audit' });
  return (await c.expect('audited', 60_000)).value;
}

// ---------------------------------------------------------------------------------------------
// statistics and report

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function summarize(scenario, system, runs) {
  const lat = new Float64Array(runs.reduce((n, r) => n + r.latencies.reduce((k, a) => k + a.length, 0), 0));
  let at = 0;
  for (const r of runs) for (const a of r.latencies) (lat.set(a, at), (at += a.length));
  lat.sort();
  const ops = runs.reduce((n, r) => n + r.ops, 0);
  const packets = runs.every((r) => r.packets !== null) ? runs.reduce((n, r) => n + r.packets, 0) : null;
  const out = {
    scenario,
    system,
    ops_per_s: median(runs.map((r) => r.opsPerS)),
    p50_ms: percentile(lat, 50),
    p99_ms: percentile(lat, 99),
    req_per_op: packets === null || ops === 0 ? null : packets / ops,
    // per client: each process's CPU over its own ops, i.e. all processes' CPU over all ops
    cpu_us_per_op: median(runs.map((r) => (r.ops ? r.cpuUs / r.ops : NaN))),
    ops_per_s_runs: runs.map((r) => r.opsPerS),
    ops,
  };
  if (runs.some((r) => r.etcd)) {
    // per op: gRPC messages the member received, by method, and raft proposals committed
    const etcdRuns = runs.filter((r) => r.etcd);
    const opsE = etcdRuns.reduce((n, r) => n + r.ops, 0);
    const methods = {};
    for (const r of etcdRuns) for (const [m, n] of Object.entries(r.etcd.methods)) methods[m] = (methods[m] || 0) + n;
    out.etcd_per_op = {
      raft_proposals: opsE ? etcdRuns.reduce((n, r) => n + r.etcd.proposals, 0) / opsE : null,
      // the member's own CPU (process_cpu_seconds_total): on a small machine it shares the cores with the clients
      server_cpu_us: opsE ? etcdRuns.reduce((n, r) => n + r.etcd.serverCpuUs, 0) / opsE : null,
      grpc_messages: Object.fromEntries(Object.entries(methods).map(([m, n]) => [m, opsE ? Math.round((n / opsE) * 100) / 100 : null])),
    };
  }
  const audits = runs.filter((r) => r.audit).map((r) => r.audit);
  if (audits.length) {
    out.audit_ok = audits.every((a) => a.ok);
    out.audits = audits;
  }
  return out;
}

const fmt = (v, digits = 2) => (v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(digits));
const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);

/** (max - min) / median of the repetitions' ops/s: how much to trust one row. */
const spread = (r) => (r.ops_per_s_runs.length < 2 ? '' : `${fmt(((Math.max(...r.ops_per_s_runs) - Math.min(...r.ops_per_s_runs)) / r.ops_per_s) * 100, 0)}%`);

function printTable(results, ratios) {
  const head =
    `${pad('scenario', 23)}${pad('system', 23)}${lpad('ops/s', 9)}${lpad('spread', 8)}${lpad('p50 ms', 9)}${lpad('p99 ms', 9)}${lpad('req/op', 8)}` +
    `${lpad('CPU µs/op', 11)}${lpad('zktx ÷ it', 11)}${lpad('p50 Δ µs', 10)}`;
  console.log(head);
  console.log('-'.repeat(head.length));
  let last = null;
  for (const r of results) {
    const ratio = ratios.find((x) => x.scenario === r.scenario && x.baseline === r.system);
    const flag = r.audit_ok === false ? '  AUDIT FAILED' : '';
    console.log(
      `${pad(r.scenario === last ? '' : r.scenario, 23)}${pad(r.system, 23)}${lpad(fmt(r.ops_per_s, 0), 9)}${lpad(spread(r), 8)}${lpad(fmt(r.p50_ms, 3), 9)}` +
        `${lpad(fmt(r.p99_ms, 3), 9)}${lpad(fmt(r.req_per_op, 2), 8)}${lpad(fmt(r.cpu_us_per_op, 1), 11)}` +
        `${lpad(ratio ? `${fmt(ratio.zktx_over_baseline)}×` : '', 11)}${lpad(ratio ? fmt(ratio.p50_delta_us, 1) : '', 10)}${flag}`
    );
    last = r.scenario;
  }
}

/** Section names of a 64-bit little-endian ELF file (Linux), else null. */
function elfSectionNames(file) {
  const b = fs.readFileSync(file);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) return null;
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const strtab = Number(b.readBigUInt64LE(shoff + b.readUInt16LE(0x3e) * shentsize + 0x18));
  const names = [];
  for (let i = 0; i < shnum; i++) {
    const start = strtab + b.readUInt32LE(shoff + i * shentsize);
    names.push(b.toString('latin1', start, b.indexOf(0, start)));
  }
  return names;
}

/** Which zktx addon the workers load, and whether it is a debug build (DWARF sections kept). */
function addonInfo() {
  const pkg = SYSTEMS.zktx.package();
  // napi build --platform names the binary zktx.<platform>.node (linux-x64-gnu here)
  const built = fs.readdirSync(pkg).find((f) => /^zktx\..+\.node$/.test(f)) || 'zktx.node';
  const file = process.env.ZKTX_NATIVE || path.join(pkg, built);
  let build = 'unknown';
  try {
    const names = elfSectionNames(file);
    // release builds strip symbols (Cargo.toml [profile.release]); debug builds keep DWARF
    if (names) build = names.includes('.debug_info') ? 'debug' : 'release';
  } catch {}
  return { package: pkg, file, build, commit: commitOf(pkg) };
}

/** The git commit checked out in `dir`, or null (not a checkout). */
function commitOf(dir) {
  try {
    return childProcess.execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function machineInfo(ctx, zkVersion) {
  const etcdInfo = ctx.etcd ? { etcd: ctx.etcdVersion, etcd_server: ctx.ownEtcd ? 'one member on loopback, started by the bench (startEtcd)' : `ETCD_ENDPOINTS=${ctx.etcd.join(',')}` } : {};
  const cpus = os.cpus();
  const commit = commitOf(path.join(__dirname, '..'));
  return {
    date: new Date().toISOString(),
    hostname: os.hostname(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: cpus[0] ? cpus[0].model : 'unknown',
    cpus: cpus.length,
    memory_gb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    loadavg_at_start: os.loadavg().map((l) => Math.round(l * 100) / 100),
    node: process.version,
    zookeeper: zkVersion,
    zookeeper_server: ctx.ownServer ? 'standalone on loopback, started by the bench, forceSync=yes' : `ZK_CONNECT=${ctx.connect}`,
    ...etcdInfo,
    commit,
    zktx_addon: addonInfo(),
    profile: ctx.quick ? 'quick' : 'full',
    repetitions: ctx.profile.reps,
    measured_ms_per_run: ctx.profile.durationMs,
    warmup_ms_per_run: ctx.profile.warmupMs,
  };
}

// ---------------------------------------------------------------------------------------------

async function main(argv) {
  let opts;
  try {
    opts = parseCli(argv);
  } catch (err) {
    console.error(`bench: ${err.message}\n${usage()}`);
    return 2;
  }
  if (opts.help) {
    console.log(usage());
    return 0;
  }
  const t0 = Date.now();
  const notes = [];
  if (opts.zktx) process.env.ZKTX_BENCH_PACKAGE = opts.zktx; // read by the workers too

  // load only the systems some selected scenario runs (the `zookeeper` baseline compiles C on first load)
  const wanted = (name, scenario) => (scenario.systems ? scenario.systems.includes(name) : SYSTEMS[name].backend === 'zookeeper');
  const systems = [];
  for (const name of opts.systems) {
    if (name !== 'zktx' && !SCENARIOS.some((s) => opts.scenarios.includes(s.name) && wanted(name, s))) continue;
    const loaded = SYSTEMS[name].load();
    if (loaded.reason) notes.push(`skipped system ${name}: ${loaded.reason}`);
    else systems.push(name);
  }
  if (!systems.includes('zktx')) {
    console.error(`bench: cannot load zktx (${SYSTEMS.zktx.load().reason}); build it: npm run build`);
    return 1;
  }
  const addon = addonInfo();
  if (addon.build === 'debug') notes.push(`${addon.file} is a debug build: zktx's numbers mean little (npm run build makes a release one)`);

  /** The systems a scenario runs on: its own list, else every ZooKeeper system; those selected and loadable. */
  const systemsOf = (scenario) => systems.filter((s) => wanted(s, scenario));
  const selected = SCENARIOS.filter((s) => opts.scenarios.includes(s.name));
  const needEtcd = selected.some((s) => systemsOf(s).some((n) => SYSTEMS[n].backend === 'etcd'));

  let server = null;
  let etcdMember = null;
  const ctx = { quick: opts.quick, profile: opts.profile, stamp: Date.now().toString(36), probeCost: 0 };
  if (process.env.ZK_CONNECT) {
    ctx.connect = process.env.ZK_CONNECT;
    const first = ctx.connect.split('/')[0].split(',')[0];
    const [host, port] = [first.slice(0, first.lastIndexOf(':')), Number(first.slice(first.lastIndexOf(':') + 1))];
    ctx.mntr = () => zkServer.mntr(port, host);
  } else {
    server = await zkServer.startStandalone({ forceSync: true });
    ctx.connect = server.connect;
    ctx.ownServer = true;
    ctx.mntr = () => zkServer.mntr(server.port);
  }

  try {
    if (needEtcd) {
      if (process.env.ETCD_ENDPOINTS) {
        ctx.etcd = process.env.ETCD_ENDPOINTS.split(',').map((e) => e.trim().replace(/^https?:\/\//, ''));
      } else {
        try {
          etcdMember = await zkServer.startEtcd();
          ctx.etcd = etcdMember.endpoints;
          ctx.ownEtcd = true;
        } catch (err) {
          // no etcd here: the ZooKeeper scenarios still run, the etcd systems are dropped
          notes.push(`etcd scenarios skipped: ${err.message.split('\n')[0]}`);
          for (let i = systems.length - 1; i >= 0; i--) if (SYSTEMS[systems[i]].backend === 'etcd') systems.splice(i, 1);
        }
      }
    }
    if (ctx.etcd) {
      try {
        ctx.etcdVersion = zkServer.findEtcd().version;
      } catch {}
      ctx.etcdCounters = async () => {
        try {
          return await etcdMetrics(ctx.etcd[0]);
        } catch {
          return null;
        }
      };
      if (!(await ctx.etcdCounters())) notes.push(`no /metrics on etcd ${ctx.etcd[0]}: requests per op not measured on etcd`);
    }
    let zkVersion = null;
    ctx.packets = async () => {
      try {
        return (await ctx.mntr()).zk_packets_received;
      } catch {
        return null;
      }
    };
    try {
      // The mntr probe is itself a packet: measure what back-to-back probes add, subtract it.
      const m = await ctx.mntr();
      zkVersion = String(m.zk_version).split(',')[0].replace(/-\$\{.*\}$/, '');
      const a = await ctx.packets();
      const b = await ctx.packets();
      const c = await ctx.packets();
      ctx.probeCost = (c - a) / 2;
    } catch (err) {
      notes.push(`no mntr on ${ctx.connect} (${err.message}): requests per op not measured`);
    }
    const machine = machineInfo(ctx, zkVersion);
    const { reps, durationMs, warmupMs } = ctx.profile;
    console.log(
      `zktx bench (${machine.profile}): ${machine.cpus} × ${machine.cpu}, ${machine.node}, ZooKeeper ${zkVersion} at ${ctx.connect}` +
        `${ctx.ownServer ? ' (forceSync=yes)' : ''}${ctx.etcd ? `, etcd ${ctx.etcdVersion} at ${ctx.etcd.join(',')}` : ''}; ${reps} repetitions × ${durationMs} ms after ${warmupMs} ms warm-up`
    );
    for (const n of notes) console.log(`note: ${n}`);

    const zktxApi = require(SYSTEMS.zktx.package()).ZooKeeper.prototype;
    const results = [];
    const failures = [];
    for (const scenario of selected) {
      if (scenario.group === 'etcd' && !ctx.etcd) continue; // noted where etcd could not start
      const scenarioSystems = systemsOf(scenario);
      if (scenarioSystems.length === 0) {
        notes.push(`skipped ${scenario.name}: none of its systems (${scenario.systems.join(', ')}) selected or loadable`);
        continue;
      }
      if (scenario.requires && typeof zktxApi[scenario.requires] !== 'function') {
        notes.push(`skipped ${scenario.name}: zk.${scenario.requires} does not exist yet`);
        continue;
      }
      if (!scenario.op) {
        notes.push(`skipped ${scenario.name}: zk.${scenario.requires} exists; its scenario has no op yet (bench/scenarios.js)`);
        continue;
      }
      const runs = Object.fromEntries(scenarioSystems.map((s) => [s, []]));
      for (let rep = 0; rep < reps; rep++) {
        const order = rep % 2 === 0 ? scenarioSystems : [...scenarioSystems].reverse();
        for (const system of order) {
          try {
            runs[system].push(await runOnce(ctx, scenario, system));
          } catch (err) {
            failures.push({ scenario: scenario.name, system, rep, error: err.message.split('\n')[0] });
            console.log(`FAILED ${scenario.name} ${system} rep ${rep + 1}: ${err.message}`);
          }
        }
      }
      for (const system of scenarioSystems) if (runs[system].length) results.push(summarize(scenario.name, system, runs[system]));
      process.stdout.write(`  ${scenario.name} done (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
    }

    const get = (scenario, system) => results.find((r) => r.scenario === scenario && r.system === system);
    const ratios = [];
    const referenceOf = (name) => SCENARIOS.find((s) => s.name === name).reference || 'zktx';
    for (const r of results) {
      const reference = referenceOf(r.scenario);
      if (r.system === reference) continue;
      const z = get(r.scenario, reference);
      if (z)
        ratios.push({
          scenario: r.scenario,
          reference,
          baseline: r.system,
          zktx_over_baseline: z.ops_per_s / r.ops_per_s,
          p50_delta_us: (z.p50_ms - r.p50_ms) * 1000,
          cpu_per_op_over_baseline: z.cpu_us_per_op / r.cpu_us_per_op,
        });
    }
    const pipelined = results.filter((r) => r.scenario === 'set_pipelined');
    const ceiling = pipelined.length ? pipelined.reduce((best, r) => (r.ops_per_s > best.ops_per_s ? r : best)) : null;

    let overhead = null;
    try {
      overhead = await probe({ probe: 'overhead', connect: ctx.connect, run: `${ctx.stamp}-oh` });
    } catch (err) {
      notes.push(`native overhead probe failed: ${err.message.split('\n')[0]}`);
    }
    const zGet = get('get', 'zktx');
    const baseGets = results.filter((r) => r.scenario === 'get' && r.system !== 'zktx');
    const bestBaseGet = baseGets.length ? baseGets.reduce((a, b) => (a.p50_ms < b.p50_ms ? a : b)) : null;
    const nativeOverhead = {
      method: 'await lock.release() on a released zktx Lock: an async JS -> Rust (tokio) -> JS call that sends nothing',
      per_call_us: overhead ? overhead.async_call_us : null,
      js_await_us: overhead ? overhead.js_await_us : null,
      sync_getter_ns: overhead ? overhead.sync_getter_ns : null,
      get_p50_minus_best_baseline_us: zGet && bestBaseGet ? (zGet.p50_ms - bestBaseGet.p50_ms) * 1000 : null,
      best_baseline_get: bestBaseGet ? bestBaseGet.system : null,
    };

    const memory = [];
    if (opts.memory) {
      const m = ctx.profile.memory;
      for (const system of ['zktx']) {
        try {
          memory.push(
            await probe(
              { probe: 'memory', system, connect: ctx.connect, run: `${ctx.stamp}-mem`, hold: m.hold, cyclesLow: m.cyclesLow, cyclesHigh: m.cyclesHigh },
              { execArgv: ['--expose-gc'] }
            )
          );
        } catch (err) {
          notes.push(`memory probe (${system}) failed: ${err.message.split('\n')[0]}`);
        }
      }
    }

    const targets = TARGETS.map((t) => {
      const value = t.overhead ? nativeOverhead.per_call_us : t.value(get);
      const pass = value === null || Number.isNaN(value) ? null : t.max !== undefined ? value <= t.max : value >= t.min;
      const goal = t.max !== undefined ? `<= ${t.max}` : `>= ${t.min}`;
      return { target: t.name, unit: t.unit, goal, value, verdict: pass === null ? 'N/A' : pass ? 'PASS' : 'MISS' };
    });

    machine.loadavg_at_end = os.loadavg().map((l) => Math.round(l * 100) / 100);

    // ------------------------------------------------------------------ print
    console.log('');
    printTable(results, ratios);
    console.log('');
    for (const s of SCENARIOS.filter((x) => opts.scenarios.includes(x.name) && x.op && results.some((r) => r.scenario === x.name))) console.log(`  ${pad(s.name, 22)} ${s.what}`);
    console.log('  ops/s: median of the repetitions (spread: their max - min, over the median); p50/p99: per operation, all repetitions pooled;');
    console.log('  req/op: requests the server received per operation (mntr zk_packets_received); CPU µs/op: process CPU (all threads) over ops,');
    console.log(`  per client process; zktx ÷ it: ops/s ratio; p50 Δ: zktx's p50 minus its, µs. ${FLOOR}: the protocol by hand on Node's socket (the floor)`);
    if (results.some((r) => r.etcd_per_op)) {
      console.log('  etcd_* rows: "zktx" is zktx-etcd (zktx ÷ it = zktx-etcd ÷ that row; the zktx row is zktx on ZooKeeper); req/op: gRPC messages the etcd');
      console.log('  member received per op (/metrics); etcd3 on etcd_get / etcd_put is the floor: one bare round trip');
      console.log('\netcd, per op (raft proposals committed; the member CPU; gRPC messages it received, by method):');
      for (const r of results.filter((x) => x.etcd_per_op)) {
        const m = Object.entries(r.etcd_per_op.grpc_messages).map(([k, v]) => `${k} ${fmt(v)}`).join(', ');
        console.log(`  ${pad(r.scenario, 22)} ${pad(r.system, 10)} raft ${fmt(r.etcd_per_op.raft_proposals)}  server CPU ${fmt(r.etcd_per_op.server_cpu_us, 0)} µs  ${m}`);
      }
    }
    if (ceiling) console.log(`\nceiling (best pipelined set): ${fmt(ceiling.ops_per_s, 0)} ops/s by ${ceiling.system}`);
    for (const r of results.filter((x) => x.audit_ok !== undefined)) {
      const what = SCENARIOS.find((s) => s.name === r.scenario).audit.what;
      console.log(`audit ${r.scenario} ${r.system}: ${r.audit_ok ? 'ok' : 'FAILED'} (${what}) ${r.audits.map((a) => `${a.before}→${a.after}`).join(', ')}`);
    }
    console.log('\nnative overhead (zktx, no network):');
    console.log(`  async call (released lock.release()): ${fmt(nativeOverhead.per_call_us)} µs per call; a plain JS await: ${fmt(nativeOverhead.js_await_us, 3)} µs; sync getter: ${fmt(nativeOverhead.sync_getter_ns, 0)} ns`);
    if (nativeOverhead.get_p50_minus_best_baseline_us !== null) {
      console.log(`  get p50, zktx minus ${nativeOverhead.best_baseline_get}: ${fmt(nativeOverhead.get_p50_minus_best_baseline_us, 1)} µs (network included, for comparison)`);
    }
    for (const m of memory) {
      console.log(`\nmemory (${m.system}, RSS after gc):`);
      console.log(`  idle ${fmt(m.rss_idle_mb, 1)} MB; holding ${m.held_locks} locks ${fmt(m.rss_holding_mb, 1)} MB (${fmt(m.kb_per_held_lock, 2)} KB/lock); after releasing them ${fmt(m.rss_after_release_mb, 1)} MB`);
      console.log(`  after ${m.cycles_low} lock cycles ${fmt(m.rss_after_low_mb, 1)} MB, after ${m.cycles_high} ${fmt(m.rss_after_high_mb, 1)} MB: growth ${fmt(m.growth_mb, 1)} MB`);
      console.log(`  RSS MB along the way: ${m.rss_series.map((p) => `${p.cycles / 1000}k ${fmt(p.rss_mb, 1)}`).join(', ')}`);
    }
    console.log('\ntargets (reported, not asserted):');
    for (const t of targets) {
      const shown = t.value === null ? '-' : t.unit === '%' ? `${fmt(t.value * 100, 0)}%` : t.unit === '×' ? `${fmt(t.value)}×` : `${fmt(t.value, t.unit === 'ms' ? 3 : 1)} ${t.unit}`;
      const goal = t.unit === '%' ? t.goal.replace(/[\d.]+/, (v) => `${Number(v) * 100}%`) : `${t.goal}${t.unit === '×' ? '×' : ` ${t.unit}`}`;
      console.log(`  ${pad(t.verdict, 5)} ${pad(t.target, 52)} ${lpad(shown, 10)}  goal ${goal}`);
    }
    for (const n of notes) if (!n.startsWith('skipped system')) console.log(`note: ${n}`);
    console.log(`load average at start ${machine.loadavg_at_start.join(' ')}, at end ${machine.loadavg_at_end.join(' ')} (1-minute, 5, 15; other work on the machine adds noise)`);
    for (const f of failures) console.log(`failed run: ${f.scenario} ${f.system} rep ${f.rep + 1}: ${f.error}`);

    const json = {
      machine,
      results: results.map(({ scenario, system, ops_per_s, p50_ms, p99_ms, req_per_op, ...rest }) => ({ scenario, system, ops_per_s, p50_ms, p99_ms, req_per_op, ...rest })),
      ratios,
      ceiling: ceiling ? { ops_per_s: ceiling.ops_per_s, system: ceiling.system } : null,
      native_overhead: nativeOverhead,
      memory,
      targets,
      notes,
      failures,
      seconds: (Date.now() - t0) / 1000,
    };
    fs.mkdirSync(path.dirname(opts.out), { recursive: true });
    fs.writeFileSync(opts.out, JSON.stringify(json, null, 2) + '\n');
    console.log(`\nwrote ${path.relative(process.cwd(), opts.out)} in ${json.seconds.toFixed(0)} s`);
    const auditFailed = results.some((r) => r.audit_ok === false);
    // Transactions across services (bench/coordinator.js): its own ZooKeeper on a short tick and
    // two PostgreSQL clusters; skipped with a note where PostgreSQL is missing.
    let coordinatorFailed = false;
    if (!opts.skipCoordinator) {
      let havePostgres = true;
      try {
        zkServer.findPostgres();
      } catch (err) {
        havePostgres = false;
        console.log(`\ncoordinator scenario skipped: ${err.message}`);
      }
      if (havePostgres) {
        const env = { ...process.env };
        delete env.ZK_CONNECT;
        const r = childProcess.spawnSync(process.execPath, [path.join(__dirname, 'coordinator.js'), '--seconds', opts.quick ? '2' : '4'], { stdio: 'inherit', env });
        coordinatorFailed = r.status !== 0;
      }
    }
    return failures.length || auditFailed || coordinatorFailed ? 1 : 0;
  } finally {
    if (server) await server.stop();
    if (etcdMember) await etcdMember.stop();
  }
}

/** The member's counters: gRPC messages received (in all and per method), raft proposals committed. */
function etcdMetrics(endpoint) {
  const http = require('node:http');
  return new Promise((resolve, reject) => {
    const req = http.get(`http://${endpoint}/metrics`, { timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        const methods = {};
        let total = 0;
        let proposals = 0;
        let cpuSeconds = 0;
        for (const line of body.split('\n')) {
          let m = /^grpc_server_msg_received_total\{grpc_method="([^"]+)",grpc_service="([^"]+)".*\} (\S+)$/.exec(line);
          if (m) {
            const n = Number(m[3]);
            methods[`${m[2].replace(/^etcdserverpb\./, '')}.${m[1]}`] = n;
            total += n;
            continue;
          }
          m = /^etcd_server_proposals_committed_total (\S+)$/.exec(line);
          if (m) proposals = Number(m[1]);
          m = /^process_cpu_seconds_total (\S+)$/.exec(line);
          if (m) cpuSeconds = Number(m[1]);
        }
        resolve({ total, methods, proposals, cpuSeconds });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`bench: ${err.stack || err.message}`);
    process.exit(1);
  }
);
