'use strict';
// What `npm run bench` measures: one row per scenario. Each scenario runs, per system and
// repetition, in `processes` fresh Node processes (bench/worker.js), each with `concurrency`
// loops that call `op(slot)` back to back: first for the warm-up, then, after every process said
// it is ready, for the measured section.
//
//   name         the key in the report and in bench/results/latest.json
//   what         one line for the table's legend
//   processes    how many worker processes (default 1)
//   concurrency  operations in flight per process (default 1)
//   sessions     sessions per process (default 1); ctx.sessions holds them, ctx.sessions[0] === sys
//   prepare(sys, ctx)        once per run, in worker 0, before the other workers start (optional)
//   setup(sys, ctx)          once per process before the warm-up (optional)
//   op(sys, ctx) -> (slot) => Promise   one operation
//   audit: { what, read(sys, ctx) -> number, growth(ops) -> number }   a correctness check:
//                read before and after the measured section, it must grow by growth(ops)
//   requires     a zktx method (on ZooKeeper.prototype) the scenario needs; without it the
//                scenario is skipped with a note (hooks for features still to come)
//   systems      the systems it runs on (default: every system whose backend is ZooKeeper)
//   reference    the system every other row is divided by (default 'zktx')
//   group        'etcd' for the etcd scenarios (`--only etcd` picks them all)
//
// ctx = { run, worker, workers }: `run` is unique per (scenario, system, repetition), so no run
// sees another's znodes.

/** What the znode_* scenarios store: 64 bytes, a small configuration value. */
const ZNODE_DATA = Buffer.alloc(64, 'z');

/** Creates `path` and its missing ancestors with the system's raw `create`. */
async function mkdirp(znodes, path) {
  let at = '';
  for (const seg of path.split('/').slice(1)) {
    at += `/${seg}`;
    try {
      await znodes.create(at, Buffer.alloc(0));
    } catch (err) {
      if (err.code !== 'NODEEXISTS') throw err;
    }
  }
}

/** The run's znode directory, and `count` nodes in it holding ZNODE_DATA (worker 0 makes them). */
const znodeDir = (sys, ctx) => `${sys.znodes.root}/${ctx.run}`;
async function znodeNodes(sys, ctx, count) {
  const dir = znodeDir(sys, ctx);
  await mkdirp(sys.znodes, dir);
  await Promise.all(Array.from({ length: count }, (_, i) => sys.znodes.create(`${dir}/n${i}`, ZNODE_DATA)));
}

const accounts = (ctx) => Array.from({ length: 8 }, (_, i) => `bench/bank-${ctx.run}-${i}`);

/**
 * 4 processes move money between 8 accounts with `sys.transfer` (a 2-key transaction); the audit
 * checks that the total never changed. `extra`: the scenario's name, what, and systems.
 */
function bank(extra) {
  return {
    processes: 4,
    prepare: async (sys, ctx) => {
      for (const key of accounts(ctx)) await sys.set(key, 1000);
    },
    audit: {
      what: 'the total of all accounts did not change',
      read: async (sys, ctx) => {
        let total = 0;
        for (const key of accounts(ctx)) total += (await sys.get(key)) ?? 0;
        return total;
      },
      growth: () => 0,
    },
    op: (sys, ctx) => {
      const keys = accounts(ctx);
      return () => {
        const from = Math.floor(Math.random() * keys.length);
        const to = (from + 1 + Math.floor(Math.random() * (keys.length - 1))) % keys.length;
        return sys.transfer(keys[from], keys[to], 1 + Math.floor(Math.random() * 20));
      };
    },
    ...extra,
  };
}

const SCENARIOS = [
  {
    name: 'lock_uncontended',
    what: 'lock + unlock of one lock, 1 process',
    op: (sys, ctx) => async () => {
      const lock = await sys.lock(`lu-${ctx.run}`);
      await lock.release();
    },
  },
  {
    name: 'txn_uncontended',
    what: "the tutorial's executeTransaction(key, value), 1 process",
    op: (sys, ctx) => {
      let value = 0;
      return () => sys.executeTransaction(`bench/txn-${ctx.run}`, ++value);
    },
  },
  {
    name: 'lock_contended',
    what: '4 processes increment one counter under one lock (read, +1, write)',
    processes: 4,
    audit: {
      what: 'counter grew by the number of increments counted',
      read: async (sys, ctx) => (await sys.get(`bench/counter-${ctx.run}`)) ?? 0,
      growth: (ops) => ops,
    },
    op: (sys, ctx) => {
      const key = `bench/counter-${ctx.run}`;
      const increment = (current) => (current ?? 0) + 1;
      return () => sys.executeTransaction(key, increment);
    },
  },
  {
    name: 'lock_many',
    what: '4 processes, each lock + unlock of its own lock',
    processes: 4,
    op: (sys, ctx) => async () => {
      const lock = await sys.lock(`many-${ctx.run}-${ctx.worker}`);
      await lock.release();
    },
  },
  {
    name: 'get',
    what: 'read one key, one at a time, 1 process',
    setup: (sys, ctx) => sys.set(`bench/get-${ctx.run}`, { n: 1 }),
    op: (sys, ctx) => {
      const key = `bench/get-${ctx.run}`;
      return () => sys.get(key);
    },
  },
  {
    name: 'set',
    what: 'write one key, one at a time, 1 process',
    op: (sys, ctx) => {
      const key = `bench/set-${ctx.run}`;
      let n = 0;
      return () => sys.set(key, { n: ++n });
    },
  },
  {
    name: 'set_pipelined',
    what: 'writes with 128 in flight on one session (128 keys), 1 process',
    concurrency: 128,
    op: (sys, ctx) => {
      const keys = Array.from({ length: 128 }, (_, slot) => `bench/pipe-${ctx.run}-${slot}`);
      let n = 0;
      return (slot) => sys.set(keys[slot], { n: ++n });
    },
  },
  {
    name: 'set_sessions',
    what: 'writes, 8 sessions × 64 in flight (512 keys), 1 process',
    sessions: 8,
    concurrency: 8 * 64,
    op: (sys, ctx) => {
      const keys = Array.from({ length: 8 * 64 }, (_, slot) => `bench/sess-${ctx.run}-${slot}`);
      let n = 0;
      return (slot) => ctx.sessions[slot % 8].set(keys[slot], { n: ++n });
    },
  },
  bank({
    name: 'tx_bank',
    what: '4 processes move money between 8 accounts: a transaction over 2 keys',
    requires: 'transaction',
  }),
  {
    name: 'rw_mixed',
    what: '4 processes share a read-write lock: 90% read the key under a read lock, 10% write it under the write lock',
    processes: 4,
    requires: 'readWriteLock',
    prepare: (sys, ctx) => sys.set(`bench/rw-${ctx.run}`, 0),
    op: (sys, ctx) => {
      const [name, key] = [`rw-${ctx.run}`, `bench/rw-${ctx.run}`];
      return async () => {
        if (Math.random() < 0.1) {
          const lock = await sys.writeLock(name);
          try {
            await sys.setUnder(lock, key, ctx.worker);
          } finally {
            await lock.release();
          }
        } else {
          const lock = await sys.readLock(name);
          try {
            await sys.get(key);
          } finally {
            await lock.release();
          }
        }
      };
    },
  },
  // The raw calls (zk.znodes against each client's own getData / setData / create / delete),
  // 64-byte values, no recipe and no JSON: what an application doing its own ZooKeeper work sees.
  {
    name: 'znode_get',
    what: 'raw getData of one 64-byte znode, one at a time, 1 process',
    prepare: (sys, ctx) => znodeNodes(sys, ctx, 1),
    op: (sys, ctx) => {
      const node = `${znodeDir(sys, ctx)}/n0`;
      return () => sys.znodes.get(node);
    },
  },
  {
    name: 'znode_set',
    what: 'raw setData of one znode (64 bytes, any version), one at a time, 1 process',
    prepare: (sys, ctx) => znodeNodes(sys, ctx, 1),
    op: (sys, ctx) => {
      const node = `${znodeDir(sys, ctx)}/n0`;
      return () => sys.znodes.set(node, ZNODE_DATA);
    },
  },
  {
    name: 'znode_create_delete',
    what: 'raw create of a persistent znode then its delete (2 writes per op), 1 process',
    prepare: (sys, ctx) => znodeNodes(sys, ctx, 0),
    op: (sys, ctx) => {
      const dir = znodeDir(sys, ctx);
      let n = 0;
      return async () => {
        const node = `${dir}/c${++n}`;
        await sys.znodes.create(node, ZNODE_DATA);
        await sys.znodes.remove(node);
      };
    },
  },
  {
    name: 'znode_get_pipelined',
    what: 'raw getData with 128 in flight on one session (128 znodes), 1 process',
    concurrency: 128,
    prepare: (sys, ctx) => znodeNodes(sys, ctx, 128),
    op: (sys, ctx) => {
      const nodes = Array.from({ length: 128 }, (_, i) => `${znodeDir(sys, ctx)}/n${i}`);
      return (slot) => sys.znodes.get(nodes[slot]);
    },
  },
  {
    name: 'znode_set_pipelined',
    what: 'raw setData with 128 in flight on one session (128 znodes), 1 process',
    concurrency: 128,
    prepare: (sys, ctx) => znodeNodes(sys, ctx, 128),
    op: (sys, ctx) => {
      const nodes = Array.from({ length: 128 }, (_, i) => `${znodeDir(sys, ctx)}/n${i}`);
      return (slot) => sys.znodes.set(nodes[slot], ZNODE_DATA);
    },
  },
  {
    name: 'znode_sessions',
    what: 'raw getData, 8 sessions × 64 in flight (512 znodes), 1 process: the ceiling of one process',
    sessions: 8,
    concurrency: 8 * 64,
    prepare: (sys, ctx) => znodeNodes(sys, ctx, 8 * 64),
    op: (sys, ctx) => {
      const nodes = Array.from({ length: 8 * 64 }, (_, i) => `${znodeDir(sys, ctx)}/n${i}`);
      return (slot) => ctx.sessions[slot % 8].znodes.get(nodes[slot]);
    },
  },
  // etcd (issue 20): zktx's Etcd against the `etcd3` npm package on the same member started by
  // the bench, and zktx on the bench's ZooKeeper for reference. Every row is divided by zktx-etcd.
  {
    name: 'etcd_lock_uncontended',
    what: 'etcd: lock + unlock of one lock, 1 process (zktx on ZooKeeper for reference)',
    group: 'etcd',
    systems: ['zktx-etcd', 'etcd3', 'zktx'],
    reference: 'zktx-etcd',
    op: (sys, ctx) => async () => {
      const lock = await sys.lock(`elu-${ctx.run}`);
      await lock.release();
    },
  },
  {
    name: 'etcd_lock_contended',
    what: 'etcd: 4 processes take one lock in turn and increment a counter under it (get, +1, put); ops = handoffs',
    group: 'etcd',
    processes: 4,
    systems: ['zktx-etcd', 'etcd3', 'zktx'],
    reference: 'zktx-etcd',
    audit: {
      what: 'counter grew by exactly the number of increments counted (no lost update)',
      read: async (sys, ctx) => (await sys.get(`bench/ecounter-${ctx.run}`)) ?? 0,
      growth: (ops) => ops,
    },
    op: (sys, ctx) => {
      const [name, key] = [`ec-${ctx.run}`, `bench/ecounter-${ctx.run}`];
      return async () => {
        const lock = await sys.lock(name);
        try {
          await sys.set(key, ((await sys.get(key)) ?? 0) + 1);
        } finally {
          await lock.release();
        }
      };
    },
  },
  {
    name: 'etcd_lock_handoff',
    what: 'etcd: 4 processes take one lock in turn, nothing under it (the recipe alone: release, wake, hold); ops = handoffs',
    group: 'etcd',
    processes: 4,
    systems: ['zktx-etcd', 'etcd3', 'zktx'],
    reference: 'zktx-etcd',
    op: (sys, ctx) => async () => {
      const lock = await sys.lock(`eh-${ctx.run}`);
      await lock.release();
    },
  },
  bank({
    name: 'etcd_transfer',
    what: 'etcd: 4 processes move money between 8 accounts, a 2-key transaction (zktx: transaction; etcd3: its STM; zktx on ZooKeeper for reference)',
    group: 'etcd',
    systems: ['zktx-etcd', 'etcd3', 'zktx'],
    reference: 'zktx-etcd',
  }),
  // The floor on etcd: one bare etcd3 round trip, a linearizable read and a raft write. A lock
  // cycle on etcd is at least two writes (join, delete).
  {
    name: 'etcd_get',
    what: 'etcd floor: one etcd3 get (linearizable Range), one at a time, 1 process',
    group: 'etcd',
    systems: ['etcd3'],
    setup: (sys, ctx) => sys.set(`bench/eget-${ctx.run}`, { n: 1 }),
    op: (sys, ctx) => {
      const key = `bench/eget-${ctx.run}`;
      return () => sys.get(key);
    },
  },
  {
    name: 'etcd_put',
    what: 'etcd floor: one etcd3 put (a raft write), one at a time, 1 process',
    group: 'etcd',
    systems: ['etcd3'],
    op: (sys, ctx) => {
      const key = `bench/eput-${ctx.run}`;
      let n = 0;
      return () => sys.set(key, { n: ++n });
    },
  },
  // A scenario whose `requires` names a zktx method that does not exist yet is skipped with a
  // note; one with `op: null` is a placeholder. Add new ones here, with their op for every
  // system (zktx in systems.js, the baselines in baselines/recipe.js).
];

module.exports = { SCENARIOS };
