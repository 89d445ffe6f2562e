'use strict';
// A saga process: runs SAGAS `pay` sagas (CONCURRENCY at a time) through the coordinator and
// prints, one JSON line each on stdout, every step as it starts (`{"step", "op", "txid"}`) and
// what each caller was told (`{"told": {txid, outcome, code}}`). The test kills some of these
// processes with -9 mid-saga. The coordinator's records are on ZooKeeper (ZK_CONNECT), or on etcd
// (ETCD_ENDPOINTS) with ZKTX_COORD_BACKEND=etcd. Inputs come from a seeded PRNG (SEED) so a run can be replayed.
const pg = require('pg');
const { coordinatorClient } = require('../coordinator/bank');
const { sagas } = require('../coordinator/saga');
const { clientOptions } = require('../helpers/secure'); // TLS + identity in secure mode

const { ZK_CONNECT, PG_CONFIG, COORD, SERVICE, SAGAS = '8', CONCURRENCY = '3', SEED = '1', SESSION_MS = '2000' } = process.env;
const say = (msg) => process.stdout.write(`${JSON.stringify(msg)}\n`);
const rand = require('../helpers/random').randInt(Number(SEED));

(async () => {
  const zk = coordinatorClient({ connect: ZK_CONNECT, timeout: Number(SESSION_MS), ...clientOptions() });
  const pool = new pg.Pool({ ...JSON.parse(PG_CONFIG), max: 4 }).on('error', () => {}); // idle clients closed at shutdown
  pool.on('error', () => {});
  const coord = zk.coordinator(COORD, {
    sagas: sagas({ pool, service: SERVICE, onStep: (ctx) => say({ step: ctx.step, op: ctx.op, txid: ctx.txid }) }),
    recoveryIntervalMs: 0,
  });
  const inputs = Array.from({ length: Number(SAGAS) }, () => ({ account: 1 + rand(8), amount: 1 + rand(50), reject: rand(4) === 0 }));
  let next = 0;
  const runner = async () => {
    while (next < inputs.length) {
      const input = inputs[next++];
      try {
        const txid = await coord.saga('pay', input);
        say({ told: { txid, outcome: 'done', input } });
      } catch (err) {
        say({ told: { txid: err.txid, outcome: 'failed', code: err.code, message: err.message, input } });
      }
    }
  };
  await Promise.all(Array.from({ length: Number(CONCURRENCY) }, runner));
  await pool.end();
  await zk.close();
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
