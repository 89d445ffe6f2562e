#!/usr/bin/env node
'use strict';
// `npm run stress -- [--etcd] [--minutes N] [--seconds N] [--seed S] [--seeds S1,S2] [--workers N] [--dump FILE]`
// `npm run stress -- --recheck FILE` checks a dumped run again; `--faults serverStop=5,partition=1`
// replaces the fault weights (see FAULTS in __test__/stress/generator.js).
// Runs the generative stress test (__test__/stress) for longer than CI does, on its own ZooKeeper
// (started here, tick 300 ms), or with --etcd on its own etcd member (startEtcd()), one run per
// seed (default: one random seed). Prints the summary of each run and every violation with the
// seed that replays it; exits 1 on a violation.
const fs = require('node:fs');
const { parseArgs } = require('node:util');
const { startStandalone, startEtcd } = require('../testing');
const { runStress } = require('../__test__/stress/run');

(async () => {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      minutes: { type: 'string' },
      seconds: { type: 'string' },
      seed: { type: 'string' },
      seeds: { type: 'string' },
      workers: { type: 'string' },
      dump: { type: 'string' },
      recheck: { type: 'string' },
      faults: { type: 'string' },
      etcd: { type: 'boolean' },
    },
  });
  if (values.recheck) {
    // re-check a dumped run with the current checker (no ZooKeeper needed)
    const r = require('../__test__/stress/run').recheck(JSON.parse(fs.readFileSync(values.recheck, 'utf8')));
    console.log(`[stress] ${values.recheck}: ${r.violations.length} violation(s)\n  ${r.violations.join('\n  ')}`);
    process.exit(r.violations.length ? 1 : 0);
  }
  const ms = values.seconds !== undefined ? Number(values.seconds) * 1000 : Number(values.minutes ?? 1) * 60000;
  const seeds = values.seeds ? values.seeds.split(',').map(Number) : [values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31)];
  if (!(ms > 0) || seeds.some((s) => !Number.isInteger(s))) {
    console.error('usage: npm run stress -- [--etcd] [--minutes N | --seconds N] [--seed S | --seeds S1,S2] [--workers N] [--dump FILE]');
    process.exit(2);
  }
  let failed = 0;
  const backend = values.etcd ? 'etcd' : 'zookeeper';
  const flag = values.etcd ? '--etcd ' : '';
  for (const seed of seeds) {
    const server = values.etcd ? await startEtcd() : await startStandalone({ tickTime: 300 });
    try {
      // --faults serverStop=5,killWorker=1: other fault weights (kinds left out: none)
      const faultWeights = values.faults ? Object.fromEntries(values.faults.split(',').map((kv) => kv.split('=')).map(([k, w]) => [k, Number(w)])) : undefined;
      const r = await runStress({ seed, durationMs: ms, server, backend, workers: Number(values.workers || 3), faultWeights, log: (l) => console.log(`[stress] ${l}`) });
      console.log(`[stress] seed ${seed}: ${JSON.stringify(r.summary, null, 1)}`);
      console.log(`[stress] faults (ms since start): ${r.faultLog.join('; ')}`);
      if (values.dump) fs.writeFileSync(seeds.length > 1 ? `${values.dump}.${seed}` : values.dump, JSON.stringify(r));
      if (r.violations.length) {
        failed += 1;
        console.log(`[stress] seed ${seed}: ${r.violations.length} violation(s) (replay: npm run stress -- ${flag}--seed ${seed} --seconds ${ms / 1000}):\n  ${r.violations.join('\n  ')}`);
      }
    } finally {
      server.kill('SIGCONT');
      await server.stop();
    }
  }
  process.exit(failed ? 1 : 0);
})().catch((err) => {
  console.error(err);
  process.exit(2);
});
