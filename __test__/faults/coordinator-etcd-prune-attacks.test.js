'use strict';
// Attacks on the coordinator's prune marks on etcd (`<base>/prune-marks`, worktree
// prune-attacks), through the JS API: what a caller can pass to prune(), and prunes racing on
// the marks key. The clock attacks (pruners whose clocks differ, a restarted server clock, a
// tree copied from another cluster) are Rust tests beside the code they broke
// (crates/zktx-core/src/coordinator/mod.rs, `a_pruner_an_hour_*`, `records_age_by_*`,
// `a_restarted_prune_clock_*`, `marks_of_another_cluster_*`): they need a machine's clock
// under control. Real etcd (ETCD_ENDPOINTS).
const { etcdctl, startEtcd, startEtcdCluster } = require('../../testing');
const { Etcd } = require('../..');
const { unique } = require('../helpers/zk');

jest.setTimeout(90000);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const ENDPOINTS = () => process.env.ETCD_ENDPOINTS.split(',');
const HOUR = 3600 * 1000;

let etcd;
beforeAll(() => {
  etcd = new Etcd({ endpoints: process.env.ETCD_ENDPOINTS });
});
afterAll(() => etcd.close());

/** Every key under the coordinator tree `name`, as `key=value` lines. */
async function tree(name) {
  const out = JSON.parse(await etcdctl(ENDPOINTS(), ['get', '--prefix', `/zktx/coordinators/${name}`, '-w', 'json']));
  return (out.kvs || []).map((kv) => `${Buffer.from(kv.key, 'base64')}=${Buffer.from(kv.value || '', 'base64')}`);
}

describe('prune() on etcd', () => {
  it('refuses an olderThanMs that is not a number of ms from an hour to ten years with INVALID_ARGUMENT, writing nothing', async () => {
    const name = unique('prune');
    const coord = etcd.coordinator(name, { recoveryIntervalMs: 0 });
    await coord.run(async () => 1);
    const before = await tree(name);
    const bad = [undefined, null, NaN, -1, -0.5, -HOUR, 0, HOUR - 1, HOUR - 0.5, Infinity, -Infinity, 1e300, 2 ** 64, 315360000001, '3600000', 3600000n, {}, [HOUR]];
    for (const olderThanMs of bad) {
      const err = await coord.prune(olderThanMs).then(
        (n) => ({ resolved: n }),
        (e) => e,
      );
      expect([String(olderThanMs), err.name, err.code]).toEqual([String(olderThanMs), 'ZktxError', 'INVALID_ARGUMENT']);
    }
    expect(await tree(name)).toEqual(before);
    // The bounds themselves, and a fraction, are accepted: nothing ended that long ago.
    for (const olderThanMs of [HOUR, HOUR + 0.5, 315360000000]) expect(await coord.prune(olderThanMs)).toBe(0);
  });

  // Broke before the server's clock: marks were (ms, revision) pairs taken as they stood, so
  // a copy's marks (another cluster's revisions, a billion further on) deleted a decision written
  // a moment before (pruned: 1), and outcome() then presumed that committed transaction aborted.
  it('marks copied from another cluster (its revisions, its cluster id) delete nothing, and a commit stays committed', async () => {
    const name = unique('prune');
    const coord = etcd.coordinator(name, { recoveryIntervalMs: 0 });
    const key = `/zktx/coordinators/${name}/prune-marks`;
    const txid = await coord.run(async (tx) => tx.id);
    const longAgo = Date.now() - 2 * HOUR;
    const copies = [
      JSON.stringify([[longAgo, 1e9]]), // the marks of a version before the server's clock
      JSON.stringify({ cluster: 1, lease: 1, marks: [{ wall: longAgo, revision: 1e9, clock: 0 }] }),
    ];
    for (const copy of copies) {
      await etcdctl(ENDPOINTS(), ['put', '--', key, copy]);
      expect(await coord.prune(HOUR)).toBe(0);
      expect(await coord.outcome(txid)).toBe('committed');
    }
  });

  it('prunes racing on the marks key all succeed, and each leaves its mark', async () => {
    const name = unique('prune');
    const coords = [0, 1, 2, 3].map(() => etcd.coordinator(name, { recoveryIntervalMs: 0 }));
    const other = new Etcd({ endpoints: process.env.ETCD_ENDPOINTS });
    try {
      coords.push(other.coordinator(name, { recoveryIntervalMs: 0 }));
      const txid = await coords[0].run(async (tx) => tx.id);
      const counts = await Promise.all(coords.flatMap((c) => [c.prune(HOUR), c.prune(HOUR)]));
      expect(counts).toEqual(new Array(10).fill(0));
      const marks = (await tree(name)).find((kv) => kv.startsWith(`/zktx/coordinators/${name}/prune-marks=`));
      expect(JSON.parse(marks.slice(marks.indexOf('=') + 1)).marks).toHaveLength(10);
      expect(await coords[1].outcome(txid)).toBe('committed');
    } finally {
      await other.close();
    }
  });

  // What the prune clock rests on: a lease's countdown is counted by the leader, and a new leader
  // restarts it (etcd 3.4: Promote refreshes every lease) rather than carrying it forward, so two
  // readings never differ by more than the time between them (plus etcd's whole second).
  it('the prune clock across a leader killed -9: never counts more than the time that passed, and nothing fresh is pruned', async () => {
    const cluster = await startEtcdCluster(3);
    const client = new Etcd({ endpoints: cluster.endpoints.join(','), timeout: 10000 });
    try {
      const id = 1 + Math.floor(Math.random() * 2 ** 31);
      const api = async (member, what, body) => (await fetch(`http://${member.endpoint}/v3/lease/${what}`, { method: 'POST', body: JSON.stringify(body) })).json();
      const counted = async () => {
        for (const m of cluster.members.filter((x) => x.isRunning())) {
          const r = await api(m, 'timetolive', { ID: id }).catch(() => null);
          if (r && r.grantedTTL) return Number(r.grantedTTL) - Number(r.TTL);
        }
        throw new Error('no member answered');
      };
      await api(cluster.members[0], 'grant', { ID: id, TTL: 630720000 });
      const name = unique('prune');
      const coord = client.coordinator(name, { recoveryIntervalMs: 0 });
      const txid = await coord.run(async (tx) => tx.id);
      expect(await coord.prune(HOUR)).toBe(0);
      await sleep(3000);
      const t0 = performance.now();
      const before = await counted();
      (await cluster.leader()).kill('SIGKILL');
      await cluster.leader();
      const after = await counted();
      const passed = Math.ceil((performance.now() - t0) / 1000);
      expect(after - before).toBeLessThanOrEqual(passed + 1);
      // A client of the two members left (one that picks the dead member fails the call with
      // CONNECTIONLOSS, nothing applied: prune is called again later, like any periodic call).
      const live = cluster.members.filter((m) => m.isRunning()).map((m) => m.endpoint);
      const survivor = new Etcd({ endpoints: live.join(','), timeout: 10000 });
      try {
        const again = survivor.coordinator(name, { recoveryIntervalMs: 0 });
        expect(await again.prune(HOUR)).toBe(0);
        expect(await again.outcome(txid)).toBe('committed');
      } finally {
        await survivor.close();
      }
    } finally {
      await client.close();
      await cluster.stop();
    }
  });

  // The prune clock is a lease the pruner grants and asks about: a user with read and write on
  // the keys (not root) may do both.
  it('with user/password auth, a user who is not root prunes (grants and reads the clock lease)', async () => {
    const member = await startEtcd({ auth: { rootPassword: 'rootpw', users: { alice: 'alice-pw' } } });
    const alice = new Etcd({ endpoints: member.endpoints.join(','), auth: { user: 'alice', password: 'alice-pw' } });
    try {
      const coord = alice.coordinator(unique('prune'), { recoveryIntervalMs: 0 });
      const txid = await coord.run(async (tx) => tx.id);
      expect(await coord.prune(HOUR)).toBe(0);
      expect(await coord.prune(HOUR)).toBe(0);
      expect(await coord.outcome(txid)).toBe('committed');
    } finally {
      await alice.close();
      await member.stop();
    }
  });
});
