'use strict';
// A coordinator tree's id, and what outcome() may say: the breaks an adversarial review found
// (worktree break-coord, 314a387), as specifications. A tree's id is bound to that tree, so a copy
// of it (a restore from another's backup) refuses to run instead of sharing the id; a lost id is
// never silently replaced; a commit decision's branches are resolved by the id it recorded;
// outcome() never presumes the abort of a transaction that is not its own.
// Real servers: ZooKeeper (ZK_CONNECT, via scripts/zk.js), two PostgreSQL clusters (bank fixture).
const nzk = require('node-zookeeper-client');
const { bankCoordinator, told, audit, useBank, ZooKeeper } = require('../coordinator/bank');
const { unique } = require('../helpers/zk');
const { clientOptions } = require('../helpers/secure');

jest.setTimeout(60000);

let servers;
let ps;

useBank(clientOptions(), (bank) => ({ servers, pools: ps } = bank));

// The breaks leave branches prepared (holding row locks) forever: roll them back after each
// test, or the next test's schema reset waits for their locks.
afterEach(async () => {
  for (const s of Object.values(servers)) {
    const gids = (await s.psql('SELECT gid FROM pg_prepared_xacts')).split('\n').filter(Boolean);
    for (const gid of gids) await s.psql(`ROLLBACK PREPARED '${gid}'`);
  }
});

/** A raw client of the whole server (no chroot): what an operator or a backup tool uses. */
function raw() {
  return new Promise((resolve, reject) => {
    const c = nzk.createClient(process.env.ZK_CONNECT.split('/')[0]);
    const t = setTimeout(() => reject(new Error('raw client: no connection')), 10000);
    c.once('connected', () => { clearTimeout(t); resolve(c); });
    c.connect();
  });
}
const p = (fn) => new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));
const zget = (c, path) => p((cb) => c.getData(path, cb)).then((b) => b.toString());
const zmkdirp = (c, path, data) => p((cb) => c.mkdirp(path, data ? Buffer.from(data) : undefined, cb));
const zdelete = (c, path) => p((cb) => c.remove(path, -1, cb));
const zset = (c, path, data) => p((cb) => c.setData(path, Buffer.from(data), -1, cb));
const zcreate = (c, path, data) => p((cb) => c.create(path, Buffer.from(data), cb));
const idPath = (chroot, name = 'bank') => `${chroot}/zktx/coordinators/${name}/id`;
/** The id a tree's gids carry (the node holds `<id> <binding>`). */
const treeId = async (c, chroot, name) => (await zget(c, idPath(chroot, name))).split(' ')[0];
const freshId = () => require('crypto').randomBytes(8).toString('hex');

/** A client in a chroot of its own, and the chroot. */
async function application(chroot = `/${unique('app')}`) {
  const c = await raw();
  await zmkdirp(c, chroot);
  c.close();
  return { chroot, zk: new ZooKeeper({ connect: `${process.env.ZK_CONNECT}${chroot}`, timeout: 4000, ...clientOptions() }) };
}

/** Participant wrapper: `hooks[op](side, gid, call)` replaces op when present. */
const wrapWith = (hooks) => (side, part) => {
  const w = {};
  for (const op of ['begin', 'prepare', 'commit', 'rollback', 'inDoubt']) {
    w[op] = (gid) => (hooks[op] ? hooks[op](side, gid, () => part[op](gid)) : part[op](gid));
  }
  return w;
};


describe("a coordinator tree's id", () => {
  /** A committed transfer whose b branch failed to commit (left to recovery), in a tree of its own. */
  async function halfCommitted(A) {
    const first = bankCoordinator(A.zk, 'bank', ps, {
      wrap: wrapWith({ commit: async (side, gid, call) => { if (side === 'b') throw new Error('b is away for a moment'); return call(); } }),
    });
    const result = await told(first, { from: { side: 'a', id: 2 }, toId: 2, amount: 50 });
    expect(result).toMatchObject({ outcome: 'committed' }); // decided; b pending
    await A.zk.close(); // that process ends
    return result;
  }

  it("a commit decision's branches are committed by the id the decision recorded, after the tree was re-keyed", async () => {
    const A = await application();
    const admin = await raw();
    let second;
    try {
      await halfCommitted(A);
      await zset(admin, idPath(A.chroot), freshId()); // re-keyed (by an operator) since the decision
      second = (await application(A.chroot)).zk;
      const c = bankCoordinator(second, 'bank', ps);
      const report = await c.recover();
      const facts = await audit(servers);
      // Both branches count: recovery commits every branch of the decision again (a's, committed
      // already, is success through its zktx_committed row, found under the recorded id's gid).
      expect({ committed: report.committed, errors: report.errors, halfApplied: facts.halfApplied, prepared: facts.prepared })
        .toEqual({ committed: 2, errors: [], halfApplied: [], prepared: 0 });
    } finally {
      admin.close();
      await second?.close();
    }
  });
});
