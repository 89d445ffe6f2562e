'use strict';
// A bank coordinator process for the partition test: one transfer whose branches both prepare,
// then it says `{"prepared": txid}` on stdout and waits for a `go` line on stdin before the
// decision (the test cuts its network meanwhile). Then it prints what it was told:
// `{"told": {txid, outcome, code}}`. ZK_CONNECT is the fault proxy in front of ZooKeeper (on etcd,
// ZKTX_COORD_BACKEND=etcd: ETCD_ENDPOINTS is the proxy in front of etcd).
const readline = require('node:readline');
const { pools, bankCoordinator, told, coordinatorClient } = require('../coordinator/bank');
const { clientOptions } = require('../helpers/secure'); // TLS + identity in secure mode

const { ZK_CONNECT, PG_CONFIG, COORD, SESSION_MS = '2000' } = process.env;
const say = (msg) => process.stdout.write(`${JSON.stringify(msg)}\n`);

const lines = readline.createInterface({ input: process.stdin });
const go = new Promise((resolve) => lines.on('line', (l) => { if (l.trim() === 'go') resolve(); }));

let prepared = 0;
function wrap(name, p) {
  return {
    begin: (gid) => p.begin(gid),
    prepare: async (gid) => {
      await p.prepare(gid);
      if (++prepared === 2) {
        say({ prepared: gid.split(':').at(-2) });
        await go;
      }
    },
    commit: (gid) => p.commit(gid),
    rollback: (gid) => p.rollback(gid),
    inDoubt: () => p.inDoubt(),
  };
}

(async () => {
  const zk = coordinatorClient({ connect: ZK_CONNECT, timeout: Number(SESSION_MS), ...clientOptions() });
  zk.on('state', (state) => say({ state }));
  const ps = pools(JSON.parse(PG_CONFIG));
  const coord = bankCoordinator(zk, COORD, ps, { wrap });
  say({ told: await told(coord, { from: { side: 'a', id: 1 }, toId: 1, amount: 100 }) });
  lines.close();
  await ps.a.end();
  await ps.b.end();
  await zk.close();
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
