#!/usr/bin/env node
'use strict';
// What recording each public call's site costs (index.js `traced`): Error.captureStackTrace on a
// bare object plus one `.then`, per call. Measured in CPU time of this process (robust against
// other processes on a busy machine), best of 7 rounds, at two stack depths (capture walks up to
// Error.stackTraceLimit frames; formatting happens only when a call fails). For scale, the
// wall time of one `zk.get` round trip when ZK_CONNECT names a server.
// `node scripts/zk.js run -- node bench/call-site.js`
const { ZooKeeper } = require('..');

function wrap(impl) {
  const wrapper = function (...args) {
    const site = {};
    Error.captureStackTrace(site, wrapper);
    return impl.apply(this, args).then(undefined, (err) => { throw Object.assign(err, { site }); });
  };
  return wrapper;
}

const deep = (n, f) => (n === 0 ? f() : deep(n - 1, f));

async function cpuNsPerCall(f, n) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await f();
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1000) / n;
}

(async () => {
  const impl = async (x) => x;
  const traced = wrap(impl);
  for (const depth of [5, 30]) {
    let plain = Infinity;
    let site = Infinity;
    for (let r = 0; r < 7; r++) {
      plain = Math.min(plain, await cpuNsPerCall(() => deep(depth, () => impl(1)), 50000));
      site = Math.min(site, await cpuNsPerCall(() => deep(depth, () => traced(1)), 50000));
    }
    console.log(`stack depth ${depth}: ${(plain / 1000).toFixed(2)} µs plain call, ${(site / 1000).toFixed(2)} µs with its site recorded: +${((site - plain) / 1000).toFixed(2)} µs per call`);
  }
  if (process.env.ZK_CONNECT) {
    const zk = new ZooKeeper({ timeout: 10000, connect: process.env.ZK_CONNECT });
    await zk.set('bench-call-site', 1);
    const times = [];
    for (let i = 0; i < 2000; i++) {
      const t0 = process.hrtime.bigint();
      await zk.get('bench-call-site');
      times.push(Number(process.hrtime.bigint() - t0));
    }
    times.sort((a, b) => a - b);
    console.log(`zk.get round trip (wall): median ${(times[1000] / 1000).toFixed(0)} µs`);
    await zk.close();
  }
})();
