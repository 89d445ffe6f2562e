'use strict';
// The generative stress test (issue 10): for each seed of SEEDS, 3 worker processes run seeded
// random operations (executeTransaction, zk.transaction at every isolation level, locks of every
// kind with fenced writes, close() mid-operation, process.exit() mid-operation) against a
// dedicated ZooKeeper while seeded faults hit it (partitions, lost answers, SIGSTOP and kill -9 of
// the server, kill -9 of workers); then the history is checked (./checker.js): serializability
// over values, lock exclusion proven by fenced writes, durability, no refused write present, no
// lock node left, every error a documented ZktxError. A failure lists the violations and the
// seed: `npm run stress -- --seed S --seconds N` replays the same operations and faults.
//
// ZKTX_STRESS_SEEDS=1,2,3 and ZKTX_STRESS_MS=12000 override the CI defaults.
const { zkScripts } = require('../helpers/zk');
const { runStress } = require('./run');

const SEEDS = (process.env.ZKTX_STRESS_SEEDS || '1,2,3').split(',').map(Number);
const MS = Number(process.env.ZKTX_STRESS_MS || 12000);
const TICK = 300;

describe('generative stress test with a history checker', () => {
  let server;
  beforeAll(async () => {
    server = await zkScripts.startStandalone({ tickTime: TICK });
  });
  afterAll(async () => {
    if (server) {
      server.kill('SIGCONT');
      await server.stop();
    }
  });

  const results = [];
  afterAll(() => {
    const total = (f) => results.reduce((n, r) => n + f(r.summary), 0);
    const merge = (f) => {
      const out = {};
      for (const r of results) for (const [k, v] of Object.entries(f(r.summary) || {})) out[k] = (out[k] || 0) + v;
      return out;
    };
    process.stdout.write(
      `[stress] ${results.length} runs (seeds ${results.map((r) => r.seed).join(',')}), ${total((s) => s.ops)} operations, ` +
        `${total((s) => s.histories)} histories checked, ${total((s) => s.violations)} violations, ` +
        `${(total((s) => s.wallMs) / 1000).toFixed(1)} s\n` +
        `[stress] operations: ${JSON.stringify(merge((s) => s.opsByKind))}\n` +
        `[stress] faults: ${JSON.stringify(merge((s) => s.faults))}\n` +
        `[stress] errors: ${JSON.stringify(merge((s) => s.errors))}\n` +
        `[stress] serial: ${JSON.stringify(merge((s) => s.serial))} locks: ${JSON.stringify(merge((s) => s.locks))}\n`
    );
  });

  for (const seed of SEEDS) {
    it(`seed ${seed}: no violation`, async () => {
      const r = await runStress({ seed, durationMs: MS, server, log: (l) => process.stdout.write(`[stress] seed ${seed}: ${l}\n`) });
      results.push(r);
      process.stdout.write(`[stress] seed ${seed}: ${JSON.stringify(r.summary)}\n[stress] seed ${seed} faults: ${r.faultLog.join('; ')}\n`);
      if (r.violations.length) {
        throw new Error(`seed ${seed}: ${r.violations.length} violation(s); replay with npm run stress -- --seed ${seed} --seconds ${MS / 1000}\n  ${r.violations.slice(0, 30).join('\n  ')}`);
      }
    }, MS + 90000);
  }
});
