process.env.ZKTX_ZK_QUIET='1';
const testing = require('/work/main/testing');
const pg = require('/work/main/node_modules/pg');
const { ZooKeeper, PostgresParticipant } = require('/work/main');
(async () => {
  const z = await testing.startStandalone({ forceSync: true });
  const [a, b] = await Promise.all([testing.startPostgres({ fsync: true }), testing.startPostgres({ fsync: true })]);
  const pools = { a: new pg.Pool(a.config), b: new pg.Pool(b.config) };
  const zk = new ZooKeeper({ connect: z.connect, timeout: 10000 });
  const t = { begin: 0, work: 0, commit: 0, prepare: 0, pcommit: 0, set: 0, get: 0 };
  const timed = (k, p) => async (...x) => { const t0 = performance.now(); try { return await p(...x); } finally { t[k] += performance.now() - t0; } };
  const mk = (pool) => { const p = new PostgresParticipant(pool); return { begin: (g) => p.begin(g), prepare: timed('prepare', (g) => p.prepare(g)), commit: timed('pcommit', (g) => p.commit(g)), rollback: (g) => p.rollback(g), inDoubt: () => p.inDoubt() }; };
  const coord = zk.coordinator('prof', { participants: { a: mk(pools.a), b: mk(pools.b) }, recoveryIntervalMs: 0 });
  const N = 100;
  await zk.set('x', 1);
  let t0 = performance.now();
  for (let i = 0; i < N; i++) await zk.set('x', i);
  t.set = (performance.now() - t0) / N;
  t0 = performance.now();
  for (let i = 0; i < N; i++) await zk.get('x');
  t.get = (performance.now() - t0) / N;
  const total0 = performance.now();
  for (let i = 0; i < N; i++) {
    const s = performance.now();
    let w0, w1;
    await coord.run(async (tx) => { w0 = performance.now(); t.begin += w0 - s; const ca = await tx.participant('a'); await ca.query('SELECT 1'); const cb = await tx.participant('b'); await cb.query('SELECT 1'); w1 = performance.now(); t.work += w1 - w0; });
    t.commit += performance.now() - w1;
  }
  const total = (performance.now() - total0) / N;
  for (const k of ['begin', 'work', 'commit', 'prepare', 'pcommit']) t[k] /= N;
  console.log({ total, ...t });
  await zk.close(); await pools.a.end(); await pools.b.end(); await a.stop(); await b.stop(); await z.stop();
})();
