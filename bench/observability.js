#!/usr/bin/env node
'use strict';
// What observability costs: lock cycles (acquire + release) and gets, with nobody subscribed to
// zktx's diagnostics_channel events, with a subscriber on every channel but zktx:lock:lost, on
// every channel (a lost-subscriber watches each lock for loss: one more request per lock), and
// with a logger at debug level (every record of zookeeper-client crosses into JS). Rounds alternate so drift of
// this shared machine hits every mode alike. Needs ZK_CONNECT:
//   node scripts/zk.js run --tick 500 -- node bench/observability.js [iterations] [rounds]
const diagnostics = require('node:diagnostics_channel');
const { performance } = require('node:perf_hooks');
const { ZooKeeper } = require('..');

const N = Number(process.argv[2] || 2000);
const ROUNDS = Number(process.argv[3] || 3);
const CHANNELS = ['lock:acquire', 'lock:acquired', 'lock:failed', 'lock:released', 'lock:lost', 'transaction:attempt', 'transaction:conflict', 'transaction:commit', 'executeTransaction:start', 'executeTransaction:commit', 'executeTransaction:error', 'session:state'].map((c) => `zktx:${c}`);

async function measure(zk, what) {
  const t0 = performance.now();
  if (what === 'lock') {
    for (let i = 0; i < N; i++) await (await zk.lock('/bench-observability')).release();
  } else {
    for (let i = 0; i < N; i++) await zk.get('bench-observability');
  }
  return ((performance.now() - t0) * 1000) / N; // µs per op
}

(async () => {
  let events = 0;
  const onEvent = () => { events++; };
  const nothing = () => {};
  const plain = new ZooKeeper({ timeout: 10000 });
  const logged = new ZooKeeper({ timeout: 10000, debug_level: ZooKeeper.ZOO_LOG_LEVEL_DEBUG, logger: { debug: nothing, info: nothing, warn: nothing, error: nothing } });
  await Promise.all([plain.connect(), logged.connect()]);
  await measure(plain, 'lock'); // warm up
  const modes = {
    none: () => measure(plain, current),
    subscribed: async () => {
      const some = CHANNELS.filter((c) => c !== 'zktx:lock:lost');
      some.forEach((c) => diagnostics.subscribe(c, onEvent));
      try { return await measure(plain, current); } finally { some.forEach((c) => diagnostics.unsubscribe(c, onEvent)); }
    },
    'subscribed+lost': async () => {
      CHANNELS.forEach((c) => diagnostics.subscribe(c, onEvent));
      try { return await measure(plain, current); } finally { CHANNELS.forEach((c) => diagnostics.unsubscribe(c, onEvent)); }
    },
    logger: () => measure(logged, current),
  };
  let current;
  const results = { lock: {}, get: {} };
  for (let r = 0; r < ROUNDS; r++) {
    for (const what of ['lock', 'get']) {
      current = what;
      const order = Object.keys(modes);
      if (r % 2) order.reverse(); // alternate, so drift hits every mode alike
      for (const m of order) (results[what][m] ||= []).push(await modes[m]());
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const [what, byMode] of Object.entries(results)) {
    console.log(`${what} (${N} x ${ROUNDS} rounds, median µs/op): ${Object.entries(byMode).map(([m, xs]) => `${m} ${median(xs).toFixed(0)} [${xs.map((x) => x.toFixed(0)).join(', ')}]`).join('; ')}`);
  }
  console.log(`events delivered while subscribed: ${events}`);
  await Promise.all([plain.close(), logged.close()]);
})();
