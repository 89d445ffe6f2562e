'use strict';
// Two builds of the addon against node-zookeeper-client in one process, on one server: copies of
// each addon loaded side by side (each has its own zktx-io), node-zookeeper-client beside them,
// taking turns round after round (order alternating), medians over rounds of ops/s, ÷ nzc and
// process CPU per call.
//
//   ZK_CONNECT=... node bench/ab-addons.js BEFORE.node AFTER.node
//   env: OP=get|set  DEPTH=128 (calls in flight)  SESSIONS=1  N=20000 (calls per round)  ROUNDS=6
//
// E.g. DEPTH=1 (one call at a time), DEPTH=512 SESSIONS=8 (the bench's znode_sessions).
const fs = require('node:fs'), os = require('node:os'), path = require('node:path');
const ROOT = path.join(__dirname, '..');
const CONNECT = process.env.ZK_CONNECT;
const N = Number(process.env.N || 20000), ROUNDS = Number(process.env.ROUNDS || 6), DEPTH = Number(process.env.DEPTH || 128), SESSIONS = Number(process.env.SESSIONS || 1), OP = process.env.OP || 'get';
const nzc = require('node-zookeeper-client');
const [BEFORE, AFTER] = process.argv.slice(2);
if (!BEFORE || !AFTER || !CONNECT) {
  console.error('usage: ZK_CONNECT=host:port node bench/ab-addons.js BEFORE.node AFTER.node');
  process.exit(2);
}
const data = Buffer.alloc(64);
async function variant(name, file) {
  const copy = path.join(os.tmpdir(), `zktx-ab-${process.pid}-${name}.node`);
  fs.copyFileSync(file, copy);
  for (const k of Object.keys(require.cache)) if (k.startsWith(ROOT + path.sep) && !k.includes('node_modules')) delete require.cache[k];
  process.env.ZKTX_NATIVE = copy;
  const { ZooKeeper } = require(ROOT);
  const many = []; for (let i = 0; i < SESSIONS; i++) { const z = new ZooKeeper({ connect: CONNECT, timeout: 30000 }); await z.znodes.getData('/'); many.push(z); }
  fs.unlinkSync(copy);
  let k = 0;
  return { name, many, call: OP === 'get' ? (p) => many[(k++) % many.length].znodes.getData(p) : (p) => many[(k++) % many.length].znodes.setData(p, data) };
}
(async () => {
  const vs = [await variant('A', path.resolve(BEFORE)), await variant('B', path.resolve(AFTER))];
  const cs = []; for (let i = 0; i < SESSIONS; i++) { const x = nzc.createClient(CONNECT); await new Promise((r) => { x.once('connected', r); x.connect(); }); cs.push(x); }
  let j = 0;
  vs.push({ name: 'nzc', call: OP === 'get' ? (p) => new Promise((res, rej) => cs[(j++) % cs.length].getData(p, (e, d) => e ? rej(e) : res(d))) : (p) => new Promise((res, rej) => cs[(j++) % cs.length].setData(p, data, -1, (e, d) => e ? rej(e) : res(d))) });
  const node = '/ab6-' + process.pid;
  await vs[0].many[0].znodes.create(node, Buffer.alloc(64));
  const res = Object.fromEntries(vs.map((v) => [v.name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const v of (r % 2 ? [...vs].reverse() : vs)) {
      const c0 = process.cpuUsage(); const t0 = process.hrtime.bigint();
      let issued = 0;
      await Promise.all(Array.from({ length: DEPTH }, async () => { while (issued++ < N) await v.call(node); }));
      const s = Number(process.hrtime.bigint() - t0) / 1e9; const cu = process.cpuUsage(c0);
      res[v.name].push({ ops: N / s, cpu: (cu.user + cu.system) / N });
    }
  }
  const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
  const base = med(res.nzc.map((x) => x.ops));
  console.log(`${OP} depth ${DEPTH} sessions ${SESSIONS}`);
  for (const v of vs) { const o = med(res[v.name].map((x) => x.ops)); console.log(' ', v.name.padEnd(4), 'ops/s', o.toFixed(0).padStart(6), '÷nzc', (o / base).toFixed(2), 'cpu µs/op', med(res[v.name].map((x) => x.cpu)).toFixed(1)); }
  await vs[0].many[0].znodes.delete(node);
  for (const x of cs) x.close(); for (const v of vs) if (v.many) for (const z of v.many) await z.close();
})();
