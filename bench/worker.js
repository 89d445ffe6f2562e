'use strict';
// One benchmark process, driven by bench/run.js over IPC:
//
//   run.js -> {type:'init', system, scenario, connect, etcd, run, worker, workers, warmupMs}
//   worker -> {type:'prepared'}                 (scenarios with prepare) worker 0 prepared the run
//   worker -> {type:'ready'}                    connected, set up and warmed up
//   run.js -> {type:'audit'}                    (scenarios with audit) -> {type:'audited', value}
//   run.js -> {type:'go', durationMs}           measured section starts now
//   worker -> {type:'done', ops, elapsedMs, cpuUs, latencies: Float64Array (ms per op)}
//   run.js -> {type:'exit'}                     close the session and exit
//
// Any failure: {type:'error', message} and exit code 1.

const { performance } = require('node:perf_hooks');
const { SYSTEMS } = require('./systems');
const { SCENARIOS } = require('./scenarios');

/** Per-op latencies in ms, in a growing Float64Array (no per-sample allocation). */
class Samples {
  constructor(capacity = 1 << 16) {
    this.buf = new Float64Array(capacity);
    this.length = 0;
  }

  push(v) {
    if (this.length === this.buf.length) {
      const bigger = new Float64Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.length++] = v;
  }

  toArray() {
    return this.buf.slice(0, this.length);
  }
}

/** `concurrency` loops calling `op(slot)` back to back until `durationMs` passed. */
async function drive(op, concurrency, durationMs, samples) {
  const start = performance.now();
  const end = start + durationMs;
  let ops = 0;
  const loop = async (slot) => {
    while (performance.now() < end) {
      const t0 = performance.now();
      await op(slot);
      samples?.push(performance.now() - t0);
      ops++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, slot) => loop(slot)));
  return { ops, elapsedMs: performance.now() - start };
}

const inbox = [];
let waiting = null;
process.on('message', (msg) => {
  if (waiting) {
    const w = waiting;
    waiting = null;
    w(msg);
  } else inbox.push(msg);
});
const nextMessage = () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise((resolve) => (waiting = resolve)));
const send = (msg) => new Promise((resolve, reject) => process.send(msg, (err) => (err ? reject(err) : resolve())));

async function main() {
  const init = await nextMessage();
  const scenario = SCENARIOS.find((s) => s.name === init.scenario);
  const ctx = { run: init.run, worker: init.worker, workers: init.workers };
  const servers = { etcd: init.etcd }; // connect: ZooKeeper's connect string; etcd: the member's endpoints
  const sys = await SYSTEMS[init.system].open(init.connect, servers);
  ctx.sessions = [sys];
  while (ctx.sessions.length < (scenario.sessions || 1)) ctx.sessions.push(await SYSTEMS[init.system].open(init.connect, servers));
  const concurrency = scenario.concurrency || 1;
  if (scenario.prepare) {
    if (ctx.worker === 0) await scenario.prepare(sys, ctx);
    await send({ type: 'prepared' });
  }
  if (scenario.setup) await scenario.setup(sys, ctx);
  const op = scenario.op(sys, ctx);
  await drive(op, concurrency, init.warmupMs, null);
  await send({ type: 'ready' });
  for (;;) {
    const msg = await nextMessage();
    if (msg.type === 'audit') {
      await send({ type: 'audited', value: await scenario.audit.read(sys, ctx) });
    } else if (msg.type === 'go') {
      const samples = new Samples();
      // CPU of the whole process (every thread: JS, libuv, the addon's own) over the measured section
      const cpu0 = process.cpuUsage();
      const { ops, elapsedMs } = await drive(op, concurrency, msg.durationMs, samples);
      const cpu = process.cpuUsage(cpu0);
      await send({ type: 'done', ops, elapsedMs, cpuUs: cpu.user + cpu.system, latencies: samples.toArray() });
    } else if (msg.type === 'exit') {
      for (const s of ctx.sessions) await s.close();
      process.exit(0);
    }
  }
}

main().catch(async (err) => {
  try {
    await send({ type: 'error', message: err && err.stack ? err.stack : String(err) });
  } catch {}
  process.exit(1);
});
