'use strict';
// The two backends, for suites that run the same contract on both (issue 20): how to make a
// client, and how a test peeks at what the server holds. In secure mode (helpers/secure.js) only
// ZooKeeper runs: that mode is about ZooKeeper's TLS and ACLs (etcd's TLS and auth have their
// own tests in faults/etcd-faults.test.js).
const { ZooKeeper, Etcd } = require('../..');
const secure = require('./secure');
const { etcdctlAt } = require('./etcd');

/** `etcdctl` (API v3) on the shared etcd; its stdout. */
const etcdctl = (...args) => etcdctlAt(process.env.ETCD_ENDPOINTS, ...args);

const ZOOKEEPER = {
  name: 'zookeeper',
  client: (o = {}) => new ZooKeeper({ timeout: 10000, connect: process.env.ZK_CONNECT, ...secure.clientOptions(), ...o }),
  /** Versions count writes of a key (a znode's data version), starting at 0. */
  revisions: false,
  /** The contenders left in a key's executeTransaction lock queue. */
  lockEntries: (zk, key) => zk.children(`/zktx/locks/kv/${key}`),
  /** Writes raw bytes at the key's value, as another client would. */
  writeForeign: (zk, key, data) => zk.znodes.setData(`/zktx/kv/${key}`, Buffer.from(data)),
  /** The (encoded) transaction ids whose markers exist. */
  markers: (zk) => zk.children('/zktx/txn-ids'),
};

const ETCD = {
  name: 'etcd',
  client: (o = {}) => {
    if (!process.env.ETCD_ENDPOINTS) throw new Error('ETCD_ENDPOINTS is not set: run through npm test, or jest with its global-setup');
    return new Etcd({ endpoints: process.env.ETCD_ENDPOINTS, timeout: 10000, ...o });
  },
  /** Versions are mod revisions: global, growing with every write anywhere. */
  revisions: true,
  lockEntries: async (_zk, key) => etcdctl('get', '--prefix', '--keys-only', `/zktx/locks/kv/${key}/`).split('\n').filter(Boolean),
  writeForeign: async (_zk, key, data) => etcdctl('put', `/zktx/kv/${key}`, data),
  markers: async () => etcdctl('get', '--prefix', '--keys-only', '/zktx/txn-ids/').split('\n').filter(Boolean).map((k) => k.slice('/zktx/txn-ids/'.length)),
};

const BACKENDS = secure.mode() ? [ZOOKEEPER] : [ZOOKEEPER, ETCD];

module.exports = { BACKENDS, ZOOKEEPER, ETCD, etcdctl };
