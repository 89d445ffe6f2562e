'use strict';
// What the I/O thread's linger (src/bridge.rs, `Linger`) gains and costs, in one process: copies
// of the addon loaded side by side (each has its own `zktx-io`), the variants taking turns round
// after round, each round one caller pattern on one client:
//
//   node bench/linger.js [--rounds 6] [--calls 2000] [--before OTHER.node] [--only a,b]
//   taskset -c 0 node bench/linger.js     # one core for the whole process
//
// Variants: `linger` (this build), `off` (this build with ZKTX_LINGER_US=0), and with --before
// another build (its own default window). Patterns: `back-to-back` (getData one at a time),
// `slow` (150-300 µs of JS work before each call), `pairs` (two calls, then 200 µs of work),
// `threes` (three calls, then 200 µs), `edge` (40-120 µs of work: gaps around the window),
// `work-50` (50 µs of work before each call: the spin competes with it on one core), `waiter`
// (as back-to-back, while a lock acquisition of the same process waits for its turn).
// Reported, medians over rounds: p50 of a call (µs), CPU of zktx-io per call (µs, its
// schedstat), zktx-io's voluntary context switches per call (≈2 without the linger, <2 when it
// catches calls), the process's CPU per call, the wall time per iteration (the JS work and the
// call), and each variant's p50, iteration and zktx-io CPU divided by `off`'s of the same round.
// Uses ZK_CONNECT.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const ROOT = path.join(__dirname, '..');
const { values: opts } = parseArgs({ options: { rounds: { type: 'string' }, calls: { type: 'string' }, before: { type: 'string' }, only: { type: 'string' } } });
const ROUNDS = Number(opts.rounds ?? 6);
const CALLS = Number(opts.calls ?? 2000);
const PATTERNS = opts.only ? opts.only.split(',') : ['back-to-back', 'slow', 'pairs', 'threes', 'edge', 'work-50', 'waiter'];
const CONNECT = process.env.ZK_CONNECT;
if (!CONNECT) throw new Error('set ZK_CONNECT');

function spin(us) {
  const end = process.hrtime.bigint() + BigInt(Math.round(us * 1000));
  while (process.hrtime.bigint() < end);
}

/** The facade over one copy of the addon, with ZKTX_LINGER_US as given while its zktx-io starts. */
async function variant(name, file, linger) {
  const copy = path.join(os.tmpdir(), `zktx-linger-${process.pid}-${name}.node`);
  fs.copyFileSync(file, copy); // another file: another dlopen, its own statics and threads
  for (const k of Object.keys(require.cache)) if (k.startsWith(ROOT + path.sep) && !k.includes('node_modules')) delete require.cache[k];
  process.env.ZKTX_NATIVE = copy;
  const { ZooKeeper } = require(ROOT);
  const before = new Set(ioThreads());
  if (linger === undefined) delete process.env.ZKTX_LINGER_US;
  else process.env.ZKTX_LINGER_US = String(linger);
  const zk = new ZooKeeper({ connect: CONNECT, timeout: 30000 });
  await zk.znodes.getData('/'); // starts this copy's zktx-io, which reads ZKTX_LINGER_US
  delete process.env.ZKTX_LINGER_US;
  const tid = ioThreads().find((t) => !before.has(t));
  fs.unlinkSync(copy);
  return { name, ZooKeeper, zk, tid, rows: {} };
}

function ioThreads() {
  return fs.readdirSync('/proc/self/task').filter((t) => {
    try {
      return fs.readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim() === 'zktx-io';
    } catch {
      return false;
    }
  });
}

function threadStats(tid) {
  const ns = Number(fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  const vcs = Number(/\nvoluntary_ctxt_switches:\s+(\d+)/.exec(fs.readFileSync(`/proc/self/task/${tid}/status`, 'utf8'))[1]);
  return { ns, vcs };
}

async function round(v, pattern, node) {
  const zk = v.zk;
  for (let i = 0; i < 200; i++) await zk.znodes.getData(node);
  const lat = new Float64Array(CALLS);
  const t0 = threadStats(v.tid);
  const c0 = process.cpuUsage();
  const w0 = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) {
    if (pattern === 'slow') spin(150 + Math.random() * 150);
    else if (pattern === 'pairs' && i % 2 === 0) spin(200);
    else if (pattern === 'threes' && i % 3 === 0) spin(200);
    else if (pattern === 'edge') spin(40 + Math.random() * 80);
    else if (pattern === 'work-50') spin(50);
    const s = process.hrtime.bigint();
    await zk.znodes.getData(node);
    lat[i] = Number(process.hrtime.bigint() - s) / 1000;
  }
  const wall = Number(process.hrtime.bigint() - w0) / 1000 / CALLS;
  const c = process.cpuUsage(c0);
  const t1 = threadStats(v.tid);
  lat.sort();
  return { p50: lat[CALLS >> 1], io: (t1.ns - t0.ns) / 1000 / CALLS, vcs: (t1.vcs - t0.vcs) / CALLS, cpu: (c.user + c.system) / CALLS, wall };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

(async () => {
  const built = path.join(ROOT, 'zktx.linux-x64-gnu.node');
  const variants = [await variant('linger', built), await variant('off', built, 0)];
  if (opts.before) variants.push(await variant('before', path.resolve(opts.before)));
  const node = `/zktx-bench-linger-${process.pid}`;
  await variants[0].zk.znodes.create(node, Buffer.alloc(64));
  const cpus = (() => {
    try {
      return require('node:os').availableParallelism();
    } catch {
      return os.cpus().length;
    }
  })();
  console.log(`linger bench: ${ROUNDS} rounds x ${CALLS} calls, ${cpus} CPU(s) available, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  for (const pattern of PATTERNS) {
    const waiting = [];
    if (pattern === 'waiter') {
      for (const v of variants) {
        const holder = new v.ZooKeeper({ connect: CONNECT, timeout: 30000 });
        const lockPath = `${node}-lock-${v.name}`;
        const held = await holder.lock(lockPath);
        const wait = v.zk.lock(lockPath).then((l) => l.release(), () => {});
        waiting.push({ holder, held, wait });
      }
      await new Promise((r) => setTimeout(r, 300)); // the waiters are queued
    }
    for (const v of variants) v.rows[pattern] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 ? [...variants].reverse() : variants;
      const got = {};
      for (const v of order) got[v.name] = await round(v, pattern, node);
      for (const v of variants) v.rows[pattern].push({ ...got[v.name], p50Ratio: got[v.name].p50 / got.off.p50, wallRatio: got[v.name].wall / got.off.wall, ioRatio: got[v.name].io / got.off.io });
    }
    for (const w of waiting) {
      await w.held.release();
      await w.wait;
      await w.holder.close();
    }
    console.log(`\n${pattern}`);
    console.log('| variant | p50 µs | zktx-io CPU µs/call | zktx-io vol. switches/call | process CPU µs/call | µs per iteration (work + call) | p50 ÷ off | iteration ÷ off | zktx-io CPU ÷ off |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const v of variants) {
      const rows = v.rows[pattern];
      const m = (k, d = 1) => median(rows.map((x) => x[k])).toFixed(d);
      console.log(`| ${v.name} | ${m('p50')} | ${m('io')} | ${m('vcs', 2)} | ${m('cpu')} | ${m('wall')} | ${m('p50Ratio', 3)} | ${m('wallRatio', 3)} | ${m('ioRatio', 3)} |`);
    }
  }
  await variants[0].zk.znodes.delete(node);
  for (const v of variants) await v.zk.close();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
