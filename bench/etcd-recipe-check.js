#!/usr/bin/env node
'use strict';
// node bench/etcd-recipe-check.js [range|listed|countdown] [runs] [seconds]
//
// zktx's etcd lock recipe written by hand on etcd3, to check the cause of the deadlock that
// `npm run bench -- --only etcd_lock_handoff` shows in zktx-etcd, and its fix, without building
// the addon. Each run: 4 processes take one lock in a loop (join Txn: put-if-absent + list; wait
// for the key just ahead; release: delete if the create revision is ours) for `seconds`; a run
// whose processes do not all finish within 10 s after that is counted as hung.
//
//   range   as crates/zktx-core/src/backend/etcd.rs does today (EtcdQueue::watch_gone): a Range
//           "does the predecessor's key exist?", then a watch for its delete from that read.
//           Keys are named by lease id, so a predecessor that released and joined again has a
//           key of the same name *behind* us: we wait for it, it waits for us.
//   listed  the fix: watch for the delete of the predecessor's key from the revision of the
//           listing that named it (the first delete after it is that incarnation's), no Range.
//   countdown  the next step for exclusive locks: the keys ahead are known at the join (listed
//           in its Txn; later joiners have larger revisions), so one prefix watch from the
//           join's revision, deletes only, counts them down; hold on the last one, no listing.
//
// Measured 2026-12-07 (runs of 6–10 s): range hung 4 of 11 runs, listed 0 of 16, countdown 0
// of 12. countdown made no more handoffs than listed here (207–388 against 247–562 per run on a
// loaded machine): in this JS client every waiter pays for every delete event; what it saves in
// zktx (a Range on each handoff's critical path) is to be measured on the addon.
//
// Measured on the addon since (docs/benchmarks.md, "The handoff, before and after"): what held
// handoffs back was neither variant's reads but etcd 3.4's "unsynced" watchers: a watch whose
// start revision is already past when the server registers it is served by a loop that runs
// every 100 ms. `range` and `listed` both watch from a past revision (listed more often);
// zktx's waiters now watch first (one watch per client and lock path, kept open), list once
// after etcd confirmed it, and follow the queue from the delete events, as `countdown` does.
// Starts its own etcd member (zktx/testing), or uses ETCD_ENDPOINTS.

const childProcess = require('node:child_process');

const PROCESSES = 4;

async function contender(variant, name, seconds, endpoints) {
  const { Etcd3 } = require('etcd3');
  const c = new Etcd3({ hosts: endpoints.map((e) => `http://${e}`) });
  const listAll = () => c.getAll().prefix(`${name}/`).sort('Create', 'Ascend');
  const waitDelete = async (key, fromRevision) => {
    const w = await c.watch().key(key).startRevision(String(fromRevision + 1)).create();
    await new Promise((resolve) => {
      w.on('delete', resolve);
      w.on('error', resolve); // the caller lists again
    });
    w.cancel().catch(() => {});
  };
  const lease = c.lease(30);
  const id = await lease.grant();
  const key = `${name}/${BigInt(id).toString(16)}`;
  const lock = async () => {
    const res = await c.if(key, 'Create', '==', 0).then(c.put(key).value('').lease(id), listAll()).else(listAll()).commit();
    if (!res.succeeded) throw new Error(`${key} exists already`);
    const mine = Number(res.header.revision); // the put's create revision
    let revision = mine;
    let kvs = res.responses[1].response_range.kvs;
    if (variant === 'countdown') {
      const ahead = new Set(kvs.filter((kv) => Number(kv.create_revision) < mine).map((kv) => kv.key.toString()));
      if (ahead.size === 0) return mine;
      // etcd3 1.1.2 maps ignore('delete') to etcd's NOPUT filter and ignore('put') to NODELETE
      // (watch.js operationNames): this asks for deletes only
      const w = await c.watch().prefix(`${name}/`).ignore('delete').startRevision(String(revision + 1)).create();
      await new Promise((resolve) => {
        w.on('delete', (kv) => {
          ahead.delete(kv.key.toString());
          if (ahead.size === 0) resolve();
        });
        w.on('error', (err) => {
          console.error(err);
          process.exit(1); // a real client would list again here
        });
      });
      w.cancel().catch(() => {});
      return mine;
    }
    for (;;) {
      const ahead = kvs.filter((kv) => Number(kv.create_revision) < mine);
      if (ahead.length === 0) return mine;
      const predecessor = ahead[ahead.length - 1].key.toString();
      if (variant === 'range') {
        const got = await c.get(predecessor).exec();
        if (got.kvs.length) await waitDelete(predecessor, Number(got.header.revision));
      } else {
        await waitDelete(predecessor, revision);
      }
      const listed = await listAll().exec();
      revision = Number(listed.header.revision);
      kvs = listed.kvs;
    }
  };
  let cycles = 0;
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    const token = await lock();
    await c.if(key, 'Create', '==', token).then(c.delete().key(key)).commit();
    cycles++;
  }
  await lease.revoke();
  c.close();
  return cycles;
}

async function main() {
  const [variant = 'listed', runs = '6', seconds = '10'] = process.argv.slice(2);
  if (!['range', 'listed', 'countdown'].includes(variant)) throw new Error('variant: range, listed or countdown');
  let member = null;
  let endpoints = process.env.ETCD_ENDPOINTS && process.env.ETCD_ENDPOINTS.split(',');
  if (!endpoints) {
    member = await require('../testing').startEtcd();
    endpoints = member.endpoints;
  }
  let hung = 0;
  try {
    for (let run = 1; run <= Number(runs); run++) {
      const name = `/recipe-check/${variant}-${Date.now().toString(36)}-${run}`;
      const children = Array.from({ length: PROCESSES }, () => childProcess.fork(__filename, ['--child', variant, name, seconds, endpoints.join(',')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
      const results = await Promise.all(
        children.map(
          (child) =>
            new Promise((resolve) => {
              const timer = setTimeout(() => child.kill('SIGKILL'), (Number(seconds) + 10) * 1000);
              child.on('message', (cycles) => resolve(cycles));
              child.on('exit', () => {
                clearTimeout(timer);
                resolve(null);
              });
            })
        )
      );
      const finished = results.filter((r) => r !== null);
      if (finished.length < PROCESSES) hung++;
      console.log(`${variant} run ${run}: ${finished.length}/${PROCESSES} finished, ${finished.reduce((a, b) => a + b, 0)} cycles`);
    }
  } finally {
    if (member) await member.stop();
  }
  console.log(`${variant}: ${hung} of ${runs} runs hung`);
  return hung ? 1 : 0;
}

if (process.argv[2] === '--child') {
  const [, variant, name, seconds, endpoints] = process.argv.slice(2);
  contender(variant, name, Number(seconds), endpoints.split(',')).then(
    (cycles) => process.send(cycles, () => process.exit(0)),
    (err) => {
      console.error(err);
      process.exit(1);
    }
  );
} else {
  main().then(
    (code) => process.exit(code),
    (err) => {
      console.error(err);
      process.exit(2);
    }
  );
}
