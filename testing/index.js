'use strict';
// zktx/testing: real servers for tests, the way Curator ships curator-test. Throwaway
// ZooKeeper (standalone, loopback ensemble, secured), throwaway etcd v3 (one member, a loopback
// cluster, secured), throwaway PostgreSQL clusters (two-phase commit participants), and a TCP
// proxy that injects network faults. Every server runs on a
// free loopback port in a fresh temp dir, is stopped by PID, and dies with the process that
// started it (see processes.js).
//
//   const { startStandalone, startEtcd, startPostgres, startProxy } = require('zktx/testing');
//
// Needs what the servers need: Java and ZooKeeper (Debian's `zookeeper`, or ZOOKEEPER_HOME),
// etcd and etcdctl (Debian's `etcd-server` and `etcd-client`, or ETCD_BIN),
// PostgreSQL (Debian's `postgresql`, or PG_BIN), openssl and keytool for TLS servers.
const { freePort, freePorts } = require('./ports');
const { findZooKeeper, startStandalone, startEnsemble, fourLetter, mntr, superDigest, ZkServer } = require('./zookeeper');
const { makeTlsFiles } = require('./tls');
const { findEtcd, startEtcd, startEtcdCluster, etcdctl, EtcdMember } = require('./etcd');
const { startPostgres, findPostgres, PgServer } = require('./postgres');
const { startProxy, TcpProxy } = require('./proxy');

module.exports = {
  // ZooKeeper
  findZooKeeper,
  startStandalone,
  startEnsemble,
  fourLetter,
  mntr,
  superDigest,
  makeTlsFiles,
  ZkServer,
  // etcd
  findEtcd,
  startEtcd,
  startEtcdCluster,
  etcdctl,
  EtcdMember,
  // PostgreSQL
  startPostgres,
  findPostgres,
  PgServer,
  // network
  freePort,
  freePorts,
  startProxy,
  TcpProxy,
};

/**
 * Moves `zk`'s clock forward by `ms` (tests only): every age limit of that client — a
 * transaction's 5-minute age, `compactTombstones`' horizon — passes that much sooner for what
 * happened before the call, while the limits themselves stay what production uses. Each client
 * has its own clock: advance every client taking part in a scenario.
 */
function advanceClock(zk, ms) {
  if (!zk || !zk._native || typeof zk._native.advanceClockForTesting !== 'function') throw new TypeError('advanceClock needs a zktx ZooKeeper client');
  zk._native.advanceClockForTesting(ms);
}
module.exports.advanceClock = advanceClock;
