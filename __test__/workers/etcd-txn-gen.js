'use strict';
// Generative transactions on etcd for etcd-transaction-attacks.test.js: seeded random reads (in
// one to three ticks), sets, creates, deletes and create+delete of a few keys, some read-only,
// some throwing. Prints one JSON line per committed transaction ({ zxid, reads, writes }, a
// delete as version -1) and a summary. Arguments: prefix, number of keys, operations, seed, and
// optionally the isolation level (default serializable).
const { Etcd } = require('../..');
const { waitForGo } = require('../helpers/procs');
const { rng } = require('../helpers/random');

const [prefix, nKeys, ops, seed, isolation = 'serializable'] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]), process.argv[6]];
const keys = Array.from({ length: nKeys }, (_, i) => `${prefix}-${i}`);
const r = rng(seed);
const int = (n) => Math.floor(r() * n);
const pick = () => keys[int(keys.length)];

(async () => {
  const etcd = new Etcd({ endpoints: process.env.ETCD_ENDPOINTS, timeout: 10000 });
  await etcd.connect();
  await waitForGo();
  const counts = { committed: 0, nodeexists: 0, thrown: 0, conflicts: 0 };
  for (let i = 0; i < ops; i++) {
    // The plan is drawn before the transaction so that every attempt runs the same plan.
    const ticks = Array.from({ length: 1 + int(3) }, () => Array.from({ length: 1 + int(3) }, pick));
    const readOnly = r() < 0.25;
    const plan = readOnly ? [] : Array.from({ length: 1 + int(3) }, () => ({ key: pick(), op: ['set', 'set', 'create', 'delete', 'createDelete', 'setFromRead'][int(6)] }));
    const throws = r() < 0.05;
    let last;
    let log;
    try {
      await etcd.transaction(async (tx) => {
        last = tx;
        log = new Map();
        const seen = {};
        for (const batch of ticks) {
          const values = await tx.getMany(batch);
          batch.forEach((k, j) => { seen[k] = values[j]; });
        }
        for (const [j, { key, op }] of plan.entries()) {
          const value = `${seed}-${i}-${tx.attempt}-${j}`;
          if (op === 'set') tx.set(key, value);
          else if (op === 'setFromRead') tx.set(key, `${value}:${JSON.stringify(seen[key] ?? null)}`);
          else if (op === 'delete') tx.delete(key);
          else if (op === 'create') {
            try { tx.create(key, value); } catch (err) { if (err.code !== 'NODEEXISTS') throw err; }
          } else { // create + delete: "must be absent", writes nothing
            try { tx.create(key, value); tx.delete(key); } catch (err) { if (err.code !== 'NODEEXISTS') throw err; }
          }
        }
        if (throws) throw Object.assign(new Error('planned'), { code: 'PLANNED' });
        for (const key of new Set(plan.map((p) => p.key))) log.set(key, tx._writes.get(key));
      }, { retries: 200, isolation });
      counts.committed += 1;
      counts.conflicts += last.attempt;
      const writes = {};
      const reads = { ...last.committed.reads };
      for (const [key, w] of log) {
        if (!w) continue;
        if (w.kind === 'set' || w.kind === 'create') writes[key] = { version: last.committed.versions[key], value: JSON.parse(w.json) };
        else if (w.kind === 'delete') writes[key] = { version: -1 };
        else if (!(key in reads)) reads[key] = -1; // create + delete: the key was absent at the commit
      }
      process.stdout.write(`${JSON.stringify({ zxid: last.committed.zxid, reads, writes })}\n`);
    } catch (err) {
      if (err.code === 'NODEEXISTS') counts.nodeexists += 1;
      else if (err.code === 'PLANNED') counts.thrown += 1;
      else throw err;
    }
  }
  process.stdout.write(`${JSON.stringify({ summary: true, ...counts })}\n`);
  await etcd.close();
})().catch((err) => {
  console.error(`${err.code}: ${err.stack}`);
  process.exit(1);
});
