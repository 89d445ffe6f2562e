'use strict';
// Baseline on etcd: the `etcd3` npm package (the Node client most etcd users have; pure JS on
// @grpc/grpc-js), used as its README shows.
//
// Its lock (node_modules/etcd3/lib/lock.js) is not etcd's Lock RPC nor Go's concurrency.Mutex:
// `client.lock(name).acquire()` grants a fresh lease (LeaseGrant, TTL 30 s; the lease also opens
// a LeaseKeepAlive stream and sends one keep-alive), then one Txn puts `name` under it if its
// create revision is 0; `release()` revokes the lease (LeaseRevoke), which deletes the key.
// So a cycle is 3 round trips, all three raft writes, plus a keep-alive stream per lock. It
// does not wait: when the key exists, acquire() revokes its lease and throws
// EtcdLockFailedError. A caller who must get the lock retries; `lock()` below does, with a
// jittered exponential pause (1 ms doubling up to 32 ms), which is what such code looks like.
//
// A transfer between two keys is etcd3's own software transactional memory (`client.stm()`),
// retried on conflict as zktx's transaction is, at isolation Serializable (the commit compares
// the mod revision of every key read: zktx's 'serializable'). Not its default,
// SerializableSnapshot: etcd3 1.1's commit then requires every written key's mod revision to be
// below the *earliest mod revision read* + 1 (lib/stm.js, `addNotChangedChecks`), where Go's STM
// uses the revision the reads were made at; so a transfer between two accounts last written at
// different revisions conflicts on every attempt, even alone (checked: 20 of 20 failed).

const etcd3 = require('etcd3');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const MAX_PAUSE_MS = 32;

/** A client on `endpoints` ("host:port"). */
function connect(endpoints) {
  return new etcd3.Etcd3({ hosts: endpoints.map((e) => (e.includes('://') ? e : `http://${e}`)) });
}

/** JSON values, as the ZooKeeper systems keep them; null when the key does not exist. */
function kv(client) {
  return {
    get: async (key) => {
      const s = await client.get(key).string();
      return s === null ? null : JSON.parse(s);
    },
    set: async (key, value) => {
      await client.put(key).value(JSON.stringify(value));
    },
  };
}

/** etcd3's lock on `name`, retried while someone else holds it. */
async function lock(client, name) {
  for (let pause = 1; ; pause = Math.min(pause * 2, MAX_PAUSE_MS)) {
    const l = client.lock(name);
    try {
      return await l.acquire();
    } catch (err) {
      if (!(err instanceof etcd3.EtcdLockFailedError)) throw err;
    }
    await sleep(Math.random() * pause);
  }
}

/** Moves `amount` from `from` to `to` (JSON numbers) if `from` has it, in one STM transaction. */
function transfer(client, from, to, amount) {
  return client.stm({ retries: 1000, isolation: 1 /* Isolation.Serializable */ }).transact(async (tx) => {
    const [a, b] = await Promise.all([tx.get(from).string(), tx.get(to).string()]);
    const [x, y] = [a === null ? 0 : JSON.parse(a), b === null ? 0 : JSON.parse(b)];
    if (x < amount) return false;
    await Promise.all([tx.put(from).value(JSON.stringify(x - amount)), tx.put(to).value(JSON.stringify(y + amount))]);
    return true;
  });
}

module.exports = { connect, kv, lock, transfer };
