'use strict';
// The generative stress test (issue 10): for each seed of SEEDS, 3 worker processes run seeded
// random operations (executeTransaction, zk.transaction at every isolation level, locks of every
// kind with fenced writes, close() mid-operation, process.exit() mid-operation) against a
// dedicated ZooKeeper while seeded faults hit it (partitions, lost answers, SIGSTOP and kill -9 of
// the server, kill -9 of workers); then the history is checked (./checker.js, ./run.js):
//   - serializability over VALUES (never versions): committed writers in commit-zxid order (those
//     without a zxid, and unknown outcomes, placed by search), reads of serializable transactions
//     and written keys of snapshot ones must see exactly their values, creates find keys absent,
//     read-only serializable transactions fit at some point, the end state is the server's;
//     refused writes are never visible; lost updates are named with the writers involved
//   - lock exclusion (exclusive, read/write, semaphore permits) proven by acknowledged fenced
//     writes, tokens in holding order, acknowledged fenced writes stored, refused ones not
//   - close(): once it resolved (no fault at the time), no operation of that client succeeds and
//     its lock nodes are gone
//   - no lock node: 2 session timeouts after a failed release, when every worker is idle, and
//     after every worker closed; every operation ends; every error a documented ZktxError.
// A failure lists the violations and the seed: `npm run stress -- --seed S --seconds N` replays
// the same operation streams and fault schedule (timings differ: outcomes need not be the same);
// `--dump FILE` saves the history, `--recheck FILE` checks a saved one again.
//
// ZKTX_STRESS_SEEDS=1,2,3 and ZKTX_STRESS_MS=12000 override the CI defaults.
//
// The same on etcd (issue 20): seeds ZKTX_STRESS_ETCD_SEEDS (CI: 1,2) run the same operation
// streams through `new Etcd({ endpoints, timeout })` against a dedicated etcd member
// (zktx/testing startEtcd()), each worker behind its own proxy, with the same fault kinds: proxy
// partitions, blackholes and lost answers, SIGSTOP of the member, kill -9 of the member and a
// restart on its data, kill -9 of workers. The checks are the same with etcd's meanings: commit
// order is by revision (the report's zxid is the commit's etcd revision), lock tokens are create
// revisions, lock entries are keys `<lock path>/<name>` on the session's lease (none left: listed
// with `etcdctl get --prefix --keys-only`), the session timeout is the lease TTL (2 s here); and
// etcd's own (checker.js checkRevisions): one revision per write, revisions in real-time order,
// fenced writes after their lock key's creation, excluding holders' fenced writes in disjoint
// revision ranges in token order, commits reading the revisions their values were written at.
// Replay: `npm run stress -- --etcd --seed S --seconds 12` (same --dump / --recheck).
const { zkScripts } = require('../helpers/zk');
const { startEtcd } = require('../../testing');
const secure = require('../helpers/secure');
const { runStress, recheck } = require('./run');

const SEEDS = (process.env.ZKTX_STRESS_SEEDS || '1,2,3').split(',').filter(Boolean).map(Number);
const ETCD_SEEDS = (process.env.ZKTX_STRESS_ETCD_SEEDS ?? '1,2').split(',').filter(Boolean).map(Number);
const MS = Number(process.env.ZKTX_STRESS_MS || 12000);
const TICK = 300;

/** One backend's runs: a dedicated server from `start()`, one test per seed, a summary at the end. */
function stressSuite(backend, start, seeds) {
  const tag = backend === 'zookeeper' ? '[stress]' : `[stress ${backend}]`;
  const replay = (seed) => `npm run stress -- ${backend === 'zookeeper' ? '' : `--${backend} `}--seed ${seed} --seconds ${MS / 1000}`;
  let server;
  beforeAll(async () => {
    server = await start();
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
      `${tag} ${results.length} runs (seeds ${results.map((r) => r.seed).join(',')}), ${total((s) => s.ops)} operations, ` +
        `${total((s) => s.histories)} histories checked, ${total((s) => s.violations)} violations, ` +
        `${(total((s) => s.wallMs) / 1000).toFixed(1)} s\n` +
        `${tag} operations: ${JSON.stringify(merge((s) => s.opsByKind))}\n` +
        `${tag} faults: ${JSON.stringify(merge((s) => s.faults))}\n` +
        `${tag} errors: ${JSON.stringify(merge((s) => s.errors))}\n` +
        `${tag} serial: ${JSON.stringify(merge((s) => s.serial))} locks: ${JSON.stringify(merge((s) => s.locks))}\n` +
        (backend === 'etcd' ? `${tag} revisions: ${JSON.stringify(merge((s) => s.revisions))}\n` : '')
    );
  });

  for (const seed of seeds) {
    it(`seed ${seed}: no violation`, async () => {
      const r = await runStress({ seed, durationMs: MS, server, backend, log: (l) => process.stdout.write(`${tag} seed ${seed}: ${l}\n`) });
      results.push(r);
      process.stdout.write(`${tag} seed ${seed}: ${JSON.stringify(r.summary)}\n${tag} seed ${seed} faults: ${r.faultLog.join('; ')}\n`);
      if (r.violations.length) {
        throw new Error(`${backend} seed ${seed}: ${r.violations.length} violation(s); replay with ${replay(seed)}\n  ${r.violations.slice(0, 30).join('\n  ')}`);
      }
    }, MS + 90000);
  }

  if (backend === 'etcd') {
    // The checks can fail on real data: a run's own history, made wrong in two places a client
    // could have been told wrong, is flagged (the clean history is not).
    it('the revision checks flag violations injected into a real etcd history', () => {
      const r = results.find((x) => x.violations.length === 0);
      if (!r) throw new Error('no clean etcd run to inject violations into (see the seeds above)');
      const clone = () => JSON.parse(JSON.stringify({ run: r.run, backend: r.backend, finals: r.finals, store: r.store, lines: r.lines }));
      expect(recheck(clone()).violations).toEqual([]);
      // a commit that read a key absent reports a mod revision for it
      const misread = clone();
      const reader = misread.lines.flatMap((x) => x.lines).find((l) => l.ev === 'ok' && l.readRevs && Object.values(l.readRevs).includes(-1));
      const [key] = Object.entries(reader.readRevs).find(([, v]) => v === -1);
      reader.readRevs[key] = 7;
      expect(recheck(misread).violations.some((v) => v.includes(`read ${key} absent but reports it read at mod revision 7`))).toBe(true);
      // an acknowledged fenced write at the revision of another write
      const twice = clone();
      const wrote = twice.lines.flatMap((x) => x.lines).filter((l) => l.ev === 'wrote' && l.ok);
      wrote[1].version = wrote[0].version;
      expect(recheck(twice).violations.some((v) => new RegExp(`both at revision ${wrote[0].version} `).test(v))).toBe(true);
    });
  }
}

describe('generative stress test with a history checker', () => {
  stressSuite('zookeeper', () => zkScripts.startStandalone({ tickTime: TICK }), SEEDS);
});

// Secure mode is about ZooKeeper's TLS and ACLs (helpers/backends.js): etcd runs in plain mode.
(secure.mode() || ETCD_SEEDS.length === 0 ? describe.skip : describe)('generative stress test with a history checker, on etcd', () => {
  stressSuite('etcd', () => startEtcd(), ETCD_SEEDS);
});
