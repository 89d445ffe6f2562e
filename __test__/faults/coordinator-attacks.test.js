'use strict';
// A coordinator tree's id, and what outcome() may say: the breaks an adversarial review found
// (worktree break-coord, 314a387), as specifications. A tree's id is bound to that tree, so a copy
// of it (a restore from another's backup) refuses to run instead of sharing the id; a lost id is
// never silently replaced; a commit decision's branches are resolved by the id it recorded;
// outcome() never presumes the abort of a transaction that is not its own.
// Real servers: ZooKeeper (ZK_CONNECT, via scripts/zk.js), two PostgreSQL clusters (bank fixture).
// On etcd (coordinator-attacks-etcd.test.js: ZKTX_COORD_BACKEND=etcd) every test carries over: a
// tree is a coordinator name on the shared member (etcd has no chroot), "another tree of the same
// name" (where a backup is restored) is another etcd member, and the operator's hand is etcdctl.
const { startEtcd } = require('../../testing');
const { bankCoordinator, told, audit, useBank, BACKEND, coordinatorClient, coordinatorClientAt, ZooKeeper } = require('../coordinator/bank');
const { etcdctlAt } = require('../helpers/etcd');
const { unique } = require('../helpers/zk');
const { clientOptions } = require('../helpers/secure');

jest.setTimeout(60000);

const ON_ETCD = BACKEND === 'etcd';

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

// etcd: "another tree of the same name" (another application's etcd, the cluster a backup is
// restored into) is a member of this file's own; the shared member holds every other tree.
let elsewhereMember;
if (ON_ETCD) {
  beforeAll(async () => { elsewhereMember = await startEtcd(); });
  afterAll(async () => { await elsewhereMember?.stop(); });
}

/** A raw client of the whole ZooKeeper server (no chroot): what an operator or a backup tool uses. */
function raw() {
  const nzk = require('node-zookeeper-client');
  return new Promise((resolve, reject) => {
    const c = nzk.createClient(process.env.ZK_CONNECT.split('/')[0]);
    const t = setTimeout(() => reject(new Error('raw client: no connection')), 10000);
    c.once('connected', () => { clearTimeout(t); resolve(c); });
    c.connect();
  });
}
const p = (fn) => new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));
const freshId = () => require('crypto').randomBytes(8).toString('hex');

/**
 * One application's coordinator tree, and an operator's raw access to its id record:
 * `{ zk, name(base), id: { get, set, del, create }, close }` (`id.get()` is null when absent).
 * ZooKeeper: a chroot of its own (`/unique`), coordinators named as asked (`bank`). etcd (no
 * chroot): coordinator names of the tree's own (`bank-<tag>`) on the shared member, or with
 * `elsewhere` the same names on another member (another cluster). `of`: a new client (a new
 * process) of that tree.
 */
async function application({ of, elsewhere } = {}) {
  if (ON_ETCD) {
    const endpoint = elsewhere ? elsewhereMember.endpoints[0] : (of ? of.endpoint : process.env.ETCD_ENDPOINTS.split(',')[0]);
    const tag = of ? of.tag : (elsewhere && elsewhere !== true ? elsewhere.tag : unique('t'));
    const name = (base) => `${base}-${tag}`; // "-": a name's "." is percent-encoded in its key
    const idKey = (base = 'bank') => `/zktx/coordinators/${name(base)}/id`;
    const ctl = (...args) => etcdctlAt(endpoint, ...args);
    const zk = coordinatorClientAt(endpoint, { timeout: 4000 });
    return {
      zk, endpoint, tag, name, idKey,
      id: {
        get: async (base) => { const v = ctl('get', '--print-value-only', idKey(base)).replace(/\n$/, ''); return v === '' ? null : v; },
        set: async (data, base) => { ctl('put', idKey(base), data); },
        create: async (data, base) => { ctl('put', idKey(base), data); },
        del: async (base) => { ctl('del', idKey(base)); },
      },
      close: () => zk.close(),
    };
  }
  const chroot = of ? of.chroot : `/${unique('app')}`;
  const admin = await raw();
  await p((cb) => admin.mkdirp(chroot, cb));
  const idKey = (base = 'bank') => `/zktx/coordinators/${base}/id`;
  const path = (base) => `${chroot}${idKey(base)}`;
  const zk = new ZooKeeper({ connect: `${process.env.ZK_CONNECT}${chroot}`, timeout: 4000, ...clientOptions() });
  return {
    zk, chroot, name: (base) => base, idKey,
    id: {
      get: (base) => p((cb) => admin.getData(path(base), cb)).then((b) => b.toString(), (e) => (e.getCode && e.getCode() === -101 ? null : Promise.reject(e))),
      set: (data, base) => p((cb) => admin.setData(path(base), Buffer.from(data), -1, cb)),
      create: (data, base) => p((cb) => admin.mkdirp(path(base), Buffer.from(data), cb)),
      del: (base) => p((cb) => admin.remove(path(base), -1, cb)),
    },
    close: async () => { admin.close(); await zk.close(); },
  };
}
/** The id a tree's gids carry (the record holds `<id> <binding>`). */
const treeId = async (app, base) => (await app.id.get(base)).split(' ')[0];

/** Participant wrapper: `hooks[op](side, gid, call)` replaces op when present. */
const wrapWith = (hooks) => (side, part) => {
  const w = {};
  for (const op of ['begin', 'prepare', 'commit', 'rollback', 'inDoubt']) {
    w[op] = (gid) => (hooks[op] ? hooks[op](side, gid, () => part[op](gid)) : part[op](gid));
  }
  return w;
};


describe("a coordinator tree's id", () => {
  // Two applications in their own trees (ZooKeeper: chroots; etcd: clusters), one restored from
  // the other's backup: B's tree carries A's id record verbatim. Were the id used, A's recovery
  // would take B's prepared branches for its own (no record of them in A's tree: presumed abort)
  // and roll them back while B's caller is told committed (the break: 3 branches touched, the
  // transfer applied nowhere).
  it(`${ON_ETCD ? "an etcd cluster restored from another's backup" : "a chroot restored from another's backup"} refuses to make gids or recover (COORDINATOR_ID) until re-keyed; re-keyed, the original's recovery leaves its prepared branches alone and its committed transfer is applied`, async () => {
    const A = await application();
    const B = await application({ elsewhere: A });
    try {
      const a = bankCoordinator(A.zk, A.name('bank'), ps);
      expect((await a.recover()).errors).toEqual([]); // A's tree, with its id, exists
      const copied = await A.id.get();
      await B.id.create(copied); // the restore: the record as the backup has it

      const refused = bankCoordinator(B.zk, B.name('bank'), ps);
      await expect(refused.recover()).rejects.toMatchObject({ name: 'ZktxError', code: 'COORDINATOR_ID', message: expect.stringContaining('copy') });
      const run = await told(refused, { from: { side: 'a', id: 1 }, toId: 1, amount: 100 });
      expect({ outcome: run.outcome, code: run.code, prepared: (await audit(servers)).prepared }).toEqual({ outcome: 'failed', code: 'COORDINATOR_ID', prepared: 0 });
      expect(await B.id.get()).toBe(copied); // refusing wrote nothing

      await B.id.set(freshId()); // the operator re-keys the copy
      let bothPrepared;
      const prepared = new Promise((resolve) => { bothPrepared = resolve; });
      let proceed;
      const held = new Promise((resolve) => { proceed = resolve; });
      let n = 0;
      const b = bankCoordinator(B.zk, B.name('bank'), ps, {
        wrap: wrapWith({ prepare: async (side, gid, call) => { await call(); if (++n === 2) { bothPrepared(); await held; } } }),
      });
      const running = told(b, { from: { side: 'a', id: 1 }, toId: 1, amount: 100 });
      await prepared;
      const report = await a.recover();
      proceed();
      const result = await running;
      const bReport = await b.recover();
      const facts = await audit(servers);
      expect({
        aTouchedForeignBranches: report.rolledBack + report.aborted,
        bCaller: result.outcome,
        bOutcome: await b.outcome(result.txid),
        applied: facts.committed.has(result.txid),
        bRecoveryErrors: bReport.errors,
        idsDiffer: (await treeId(A)) !== (await treeId(B)),
        bBound: (await B.id.get()).includes(' '),
      }).toEqual({ aTouchedForeignBranches: 0, bCaller: 'committed', bOutcome: 'committed', applied: true, bRecoveryErrors: [], idsDiffer: true, bBound: true });
    } finally {
      await Promise.all([A.close(), B.close()]);
    }
  });

  // The break (found running the saga suite on etcd, there on ZooKeeper too): the first
  // processes of a new tree, at once. One read no id record; another created it and began a
  // transaction; the first then listed the tree, found a record and no id, and refused with
  // COORDINATOR_ID ("its id was lost") a tree that had its id all along.
  it('a new tree first used by several processes at once: no run is refused, the tree keeps one id', async () => {
    const clients = Array.from({ length: 4 }, () => coordinatorClient({ ...clientOptions() }));
    try {
      await Promise.all(clients.map((c) => c.connect()));
      const refused = [];
      const split = [];
      const TREES = 100;
      // A participant without begin: the run's handle is the branch's gid, which carries the id.
      const p = { prepare: async () => {}, commit: async () => {}, rollback: async () => {}, inDoubt: async () => [] };
      for (let trial = 0; trial < TREES; trial++) {
        const name = unique('fresh');
        const coords = clients.map((c) => c.coordinator(name, { participants: { p }, recoveryIntervalMs: 0 }));
        const runs = await Promise.all(coords.flatMap((coord) => [0, 1, 2].map(() => coord.run(async (tx) => ({ id: (await tx.participant('p')).split(':')[2] })).catch((e) => `${e.code}: ${e.message}`))));
        refused.push(...runs.filter((r) => typeof r === 'string').map((r) => `tree ${trial}: ${r}`));
        const ids = new Set(runs.filter((r) => r.id).map((r) => r.id));
        if (ids.size > 1) split.push(`tree ${trial}: ids ${[...ids].join(', ')}`);
      }
      expect({ refused: refused.slice(0, 3), split }).toEqual({ refused: [], split: [] });
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  /** A committed transfer whose b branch failed to commit (left to recovery), in a tree of its own. */
  async function halfCommitted(A) {
    const first = bankCoordinator(A.zk, A.name('bank'), ps, {
      wrap: wrapWith({ commit: async (side, gid, call) => { if (side === 'b') throw new Error('b is away for a moment'); return call(); } }),
    });
    const result = await told(first, { from: { side: 'a', id: 2 }, toId: 2, amount: 50 });
    expect(result).toMatchObject({ outcome: 'committed' }); // decided; b pending
    await A.zk.close(); // that process ends
    return result;
  }

  // The break: the next process drew a fresh id, and recovery committed gids of the new id (which
  // do not exist) while the decided branch stayed prepared forever, holding its row locks.
  it('a tree whose id record was deleted after a commit decision refuses to draw a new id (COORDINATOR_ID naming the record and the old id); the id restored alone, recovery commits the decided branch', async () => {
    const A = await application();
    let second;
    try {
      await halfCommitted(A);
      const old = await treeId(A);
      await A.id.del();
      second = await application({ of: A }); // a new process, same application
      const c = bankCoordinator(second.zk, second.name('bank'), ps);
      const err = await c.recover().catch((e) => e);
      expect(err).toMatchObject({ name: 'ZktxError', code: 'COORDINATOR_ID' });
      expect(err.message).toContain(A.idKey());
      expect(err.message).toContain(old);
      expect(await A.id.get()).toBe(null); // no id was drawn
      expect((await audit(servers)).prepared).toBe(1);

      await A.id.create(old); // the operator restores it, alone
      const reports = [await c.recover(), await c.recover()];
      const facts = await audit(servers);
      expect({ halfApplied: facts.halfApplied, prepared: facts.prepared, errors: reports.map((r) => r.errors), bound: (await A.id.get()).startsWith(`${old} `) })
        .toEqual({ halfApplied: [], prepared: 0, errors: [[], []], bound: true });
    } finally {
      await A.close();
      await second?.close();
    }
  });

  it("a commit decision's branches are committed by the id the decision recorded, after the tree was re-keyed", async () => {
    const A = await application();
    let second;
    try {
      await halfCommitted(A);
      await A.id.set(freshId()); // re-keyed (by an operator) since the decision
      second = await application({ of: A });
      const c = bankCoordinator(second.zk, second.name('bank'), ps);
      const report = await c.recover();
      const facts = await audit(servers);
      // Both branches count: recovery commits every branch of the decision again (a's, committed
      // already, is success through its zktx_committed row, found under the recorded id's gid).
      expect({ committed: report.committed, errors: report.errors, halfApplied: facts.halfApplied, prepared: facts.prepared })
        .toEqual({ committed: 2, errors: [], halfApplied: [], prepared: 0 });
    } finally {
      await A.close();
      await second?.close();
    }
  });
});

describe('outcome() of a transaction that is not its own', () => {
  // The break: x (same client, same tree, another name) had no record and no active node for
  // y's txid, so it recorded an abort in its own tree (fencing nothing) and said `aborted`; the
  // transaction then committed in y. README's manual rolls back on anything but `committed`.
  it('asked by bare txid about another coordinator\'s transaction, a coordinator says unknown (never aborted) and writes nothing; the transaction then commits', async () => {
    const A = await application();
    try {
      const x = bankCoordinator(A.zk, A.name('x'), ps);
      const y = bankCoordinator(A.zk, A.name('y'), ps);
      let said;
      const r = await told(y, { from: { side: 'a', id: 3 }, toId: 3, amount: 7, afterWork: (txid) => { said = x.outcome(txid); } });
      const answer = await said;
      const facts = await audit(servers);
      expect({ y: r.outcome, xSaid: answer, applied: facts.committed.has(r.txid), xLater: await x.outcome(r.txid), yLater: await y.outcome(r.txid) })
        .toEqual({ y: 'committed', xSaid: 'unknown', applied: true, xLater: 'unknown', yLater: 'committed' });
    } finally {
      await A.close();
    }
  });

  it("asked by gid, a coordinator answers for its own branches and refuses (INVALID_ARGUMENT) another name's, another tree's and a malformed gid", async () => {
    const A = await application();
    const B = await application({ elsewhere: A });
    try {
      const bank = A.name('bank');
      const y = bankCoordinator(A.zk, bank, ps);
      const x = bankCoordinator(A.zk, A.name('x'), ps);
      const elsewhere = bankCoordinator(B.zk, B.name('bank'), ps); // same name, another tree
      expect((await elsewhere.recover()).errors).toEqual([]);
      const r = await told(y, { from: { side: 'b', id: 4 }, toId: 4, amount: 3 });
      const gid = `zktx:${bank}:${await treeId(A)}:${r.txid}:a`;
      expect(await y.outcome(gid)).toBe('committed');
      expect(await y.outcome(`zktx:${bank}:${gid.slice(`zktx:${bank}:`.length).toUpperCase()}`)).toBe('committed');
      for (const [who, asked] of [[x, gid], [elsewhere, gid], [y, `zktx:${bank}:${freshId()}:${r.txid}:a`], [y, `zktx:${bank}:${r.txid}:a`], [y, `zktx:${bank}:${await treeId(A)}:${r.txid}:`]]) {
        await expect(who.outcome(asked)).rejects.toMatchObject({ name: 'ZktxError', code: 'INVALID_ARGUMENT' });
      }
      expect(await elsewhere.outcome(r.txid)).toBe('unknown');
      // A gid of its own tree with no record: presumed aborted (the gid proves the txid is its own).
      const never = `zktx:${bank}:${await treeId(A)}:${'0'.repeat(12)}${'1'.repeat(20)}:a`;
      expect(await y.outcome(never)).toBe('aborted');
    } finally {
      await Promise.all([A.close(), B.close()]);
    }
  });
});
