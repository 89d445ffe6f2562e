'use strict';
// A bank process: runs transfers through the coordinator and appends what it was told about
// each one (committed, or the error code) to OUT, one JSON line per transfer, written before
// the next starts. CRASH_AT makes it kill -9 itself at a step boundary of its first transfer:
// work (after the work, before any prepare), prepare:1 / prepare:2 (after the first / second
// branch prepared), decision (when the first branch is asked to commit: the decision is
// recorded), commit:1 / commit:2 (after the first / both branches committed).
const fs = require('node:fs');
const { pools, bankCoordinator, told, coordinatorClient } = require('../coordinator/bank');

const { ZK_CONNECT, PG_CONFIG, COORD, OUT, CRASH_AT = '', TRANSFERS = '20', SEED = '1', SESSION_MS = '2000' } = process.env;
const config = JSON.parse(PG_CONFIG);
const rand = require('../helpers/random').randInt(Number(SEED));

const counts = { prepare: 0, commit: 0 };
const begun = new Set();
function crashIf(point) {
  if (CRASH_AT === point) {
    fs.appendFileSync(OUT, `${JSON.stringify({ crashing: point })}\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
function wrap(name, p) {
  return {
    begin: (gid) => {
      const txid = gid.split(':').at(-2);
      if (!begun.has(txid)) fs.appendFileSync(OUT, `${JSON.stringify({ begun: txid })}\n`);
      begun.add(txid);
      return p.begin(gid);
    },
    prepare: async (gid) => { await p.prepare(gid); counts.prepare++; crashIf(`prepare:${counts.prepare}`); },
    commit: async (gid) => { crashIf('decision'); await p.commit(gid); counts.commit++; crashIf(`commit:${counts.commit}`); },
    rollback: (gid) => p.rollback(gid),
    inDoubt: () => p.inDoubt(),
  };
}

(async () => {
  const zk = coordinatorClient({ connect: ZK_CONNECT, timeout: Number(SESSION_MS) });
  const ps = pools(config);
  const coord = bankCoordinator(zk, COORD, ps, { wrap });
  for (let i = 0; i < Number(TRANSFERS); i++) {
    const from = { side: rand(2) ? 'a' : 'b', id: 1 + rand(8) };
    const op = { from, toId: 1 + rand(8), amount: 1 + rand(300) };
    const t0 = Date.now();
    const said = await told(coord, { ...op, afterWork: () => crashIf('work') });
    fs.appendFileSync(OUT, `${JSON.stringify({ ...said, ms: Date.now() - t0 })}\n`);
    if (CRASH_AT === 'work') break;
  }
  await ps.a.end();
  await ps.b.end();
  await zk.close();
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
