'use strict';
// Test helpers: a client on the shared server, unique names, and dedicated servers for tests
// that inject faults (kill, SIGSTOP) so they never disturb the shared one.
const { ZooKeeper } = require('../..');
const zkScripts = require('../../scripts/zk');

let counter = 0;
/** A unique name per test run, so tests sharing one server never collide. */
const unique = (prefix) => `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter++}`;

function client(options = {}) {
  return new ZooKeeper({ timeout: 10000, ...options });
}

/** A client of a dedicated server (ZK_CONNECT, which overrides `connect`, is swapped meanwhile). */
function clientAt(connect, options = {}) {
  const saved = process.env.ZK_CONNECT;
  process.env.ZK_CONNECT = connect;
  try {
    return client(options);
  } finally {
    process.env.ZK_CONNECT = saved;
  }
}

module.exports = { client, clientAt, unique, zkScripts };
