'use strict';
// Test helpers: a client on the shared server, unique names, and dedicated servers for tests
// that inject faults (kill, SIGSTOP) so they never disturb the shared one. In secure mode
// (ZKTX_TEST_SECURE, see secure.js) clients connect with TLS, an identity and creator-only ACLs,
// and the dedicated servers accept only that.
const { ZooKeeper } = require('../..');
const secure = require('./secure');
const zkScripts = secure.starters(require('../../testing'));

let counter = 0;
/** A unique name per test run, so tests sharing one server never collide. */
const unique = (prefix) => `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter++}`;

/** A client of the shared server (ZK_CONNECT: the one global-setup or `scripts/zk.js run` started, or yours). */
function client(options = {}) {
  return clientAt(process.env.ZK_CONNECT, options);
}

/** A client of a dedicated server. */
function clientAt(connect, options = {}) {
  return new ZooKeeper({ timeout: 10000, connect, ...secure.clientOptions(), ...options });
}

/** `open(options)`: a client of the shared server (session timeout 30 s unless `options` says),
 * closed after the test file's last test; `open.track(c)` closes another client `c` then too. */
function clientsClosedAfterAll() {
  const clients = [];
  afterAll(() => Promise.all(clients.map((c) => c.close().catch(() => {}))));
  const track = (c) => {
    clients.push(c);
    return c;
  };
  const open = (options) => track(client({ timeout: 30000, ...options }));
  open.track = track;
  return open;
}

/** The error `p` rejects with; fails the test if it resolves. */
const rejection = (p) => p.then((v) => { throw new Error(`expected a rejection, got ${JSON.stringify(v)}`); }, (err) => err);

/** `p`, or a rejection naming `what` if it has not settled within `ms`. */
const within = (p, ms, what) => Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms).unref())]);

/** A `zktx/zookeeper` config: `config` as is, plus TLS and the identity in secure mode. */
const compatConfig = (config) => secure.compatConfig(config);

module.exports = { client, clientAt, clientsClosedAfterAll, unique, zkScripts, rejection, within, compatConfig };
