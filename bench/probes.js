'use strict';
// Single-process measurements that are not throughput, run by bench/run.js (fork, one message
// in, one out):
//
//   {probe:'overhead', connect, run}  zktx only: cost of one JS -> Rust -> JS call, no network.
//   {probe:'memory', system, connect, run, hold, cyclesLow, cyclesHigh}   needs --expose-gc:
//       RSS idle, holding `hold` locks on distinct paths, and after cyclesLow and cyclesHigh
//       lock + unlock cycles (growth between the two = a leak).

const { performance } = require('node:perf_hooks');
const { SYSTEMS } = require('./systems');

const MB = 1024 * 1024;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * zktx's binding cost per call: `release()` of a lock already released is an async napi call
 * (promise, tokio future, completion back on the JS thread) that returns before any request.
 * Compared with an `await` of an already resolved promise: the part JS would pay anyway.
 */
async function overhead({ connect, run }) {
  const sys = await SYSTEMS.zktx.open(connect);
  const lock = await sys.lock(`overhead-${run}`);
  await lock.release();
  const timeAsync = async (n, fn) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await fn();
    return ((performance.now() - t0) * 1000) / n;
  };
  const noop = () => Promise.resolve();
  await timeAsync(20_000, () => lock.release()); // warm-up: JIT, tokio threads
  await timeAsync(20_000, noop);
  const rounds = [];
  for (let r = 0; r < 5; r++) rounds.push(await timeAsync(20_000, () => lock.release()));
  const jsAwaitUs = await timeAsync(200_000, noop);
  // A sync napi getter: the bare JS -> Rust -> JS crossing without a promise.
  let sink = 0;
  const n = 1_000_000;
  for (let i = 0; i < 100_000; i++) sink += lock.released ? 1 : 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) sink += lock.released ? 1 : 0;
  const syncNs = ((performance.now() - t0) * 1e6) / n;
  await sys.close();
  rounds.sort((a, b) => a - b);
  return {
    async_call_us: rounds[2], // median of 5 rounds of 20,000 calls
    async_call_rounds_us: rounds,
    js_await_us: jsAwaitUs,
    sync_getter_ns: syncNs + (sink < 0 ? 1 : 0), // sink: keeps the loop from being optimized away
  };
}

function rssMB() {
  global.gc();
  global.gc();
  return process.memoryUsage().rss / MB;
}

/** Runs `count` calls of `fn(i, lane)` with `parallel` lanes each running one at a time. */
async function pool(count, parallel, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async (_, lane) => {
      while (next < count) await fn(next++, lane);
    })
  );
}

async function memory({ system, connect, run, hold, cyclesLow, cyclesHigh }) {
  if (typeof global.gc !== 'function') throw new Error('memory probe needs node --expose-gc');
  const sys = await SYSTEMS[system].open(connect);
  const lanes = 16;
  // warm every code path once before the idle figure
  // each lane cycles its own lock (zktx refuses a second acquisition by one client: ALREADY_HELD)
  const cycle = async (i, lane) => (await sys.lock(`mem-${run}/c${lane}`)).release();
  await pool(lanes * 4, lanes, cycle);
  await sleep(100);
  const idle = rssMB();

  const t0 = performance.now();
  const held = new Array(hold);
  await pool(hold, 64, async (i) => {
    held[i] = await sys.lock(`mem-${run}/h${i}`);
  });
  const holding = rssMB();
  const holdSeconds = (performance.now() - t0) / 1000;
  await pool(hold, 64, (i) => held[i].release());
  held.length = 0;
  const afterRelease = rssMB();

  const t1 = performance.now();
  await pool(cyclesLow, lanes, cycle);
  const low = rssMB();
  // the trend between low and high, in 9 steps: a leak climbs steadily, warm-up levels off
  const series = [{ cycles: cyclesLow, rss_mb: low }];
  for (let step = 1; step <= 9; step++) {
    const target = cyclesLow + Math.round(((cyclesHigh - cyclesLow) * step) / 9);
    await pool(target - series[series.length - 1].cycles, lanes, cycle);
    series.push({ cycles: target, rss_mb: rssMB() });
  }
  const high = series[series.length - 1].rss_mb;
  const cycleSeconds = (performance.now() - t1) / 1000;
  await sys.close();
  return {
    system,
    rss_idle_mb: idle,
    rss_holding_mb: holding,
    held_locks: hold,
    kb_per_held_lock: ((holding - idle) * 1024) / hold,
    rss_after_release_mb: afterRelease,
    cycles_low: cyclesLow,
    rss_after_low_mb: low,
    cycles_high: cyclesHigh,
    rss_after_high_mb: high,
    growth_mb: high - low,
    rss_series: series,
    hold_seconds: holdSeconds,
    cycle_seconds: cycleSeconds,
  };
}

const PROBES = { overhead, memory };

process.once('message', async (msg) => {
  try {
    const result = await PROBES[msg.probe](msg);
    process.send({ type: 'result', result }, () => process.exit(0));
  } catch (err) {
    process.send({ type: 'error', message: err && err.stack ? err.stack : String(err) }, () => process.exit(1));
  }
});
