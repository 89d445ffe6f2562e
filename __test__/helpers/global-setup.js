'use strict';
// One shared ZooKeeper for the jest run, unless ZK_CONNECT already names one (npm test starts
// it through scripts/zk.js run; CI and developers can point at an existing ensemble); the same
// for etcd with ETCD_ENDPOINTS (scripts/etcd.js run in npm test). In secure
// mode (ZKTX_TEST_SECURE, helpers/secure.js) it makes the run's certificates and identity and
// always starts its own TLS-only server: a server named by ZK_CONNECT would not match them.
const testing = require('../../testing');
const secure = require('./secure');

/** One etcd member for the run's etcd suites, unless ETCD_ENDPOINTS names one. */
async function sharedEtcd() {
  if (process.env.ETCD_ENDPOINTS) return;
  const member = await testing.startEtcd();
  process.env.ETCD_ENDPOINTS = member.endpoints.join(',');
  globalThis.__ZKTX_ETCD__ = member;
}

module.exports = async () => {
  await sharedEtcd();
  // Tests choose their server (shared or dedicated) explicitly; an override from the environment
  // would send the dedicated-server tests to the shared one. Take it as the shared server.
  if (process.env.ZKTX_CONNECT_OVERRIDE) {
    process.env.ZK_CONNECT = process.env.ZK_CONNECT || process.env.ZKTX_CONNECT_OVERRIDE;
    delete process.env.ZKTX_CONNECT_OVERRIDE;
  }
  if (secure.mode()) {
    if (process.env.ZK_CONNECT) process.stderr.write(`secure mode: not using ZK_CONNECT=${process.env.ZK_CONNECT} (plaintext); starting a TLS-only server\n`);
    globalThis.__ZKTX_SECURE_CLEANUP__ = secure.prepare(testing);
    process.stderr.write(`secure mode: TLS only, client certificates, ${secure.mode()} authentication enforced, acl 'creator-all'\n`);
  } else if (process.env.ZK_CONNECT) {
    return;
  }
  const server = await secure.starters(testing).startStandalone({ tickTime: 500 });
  process.env.ZK_CONNECT = server.connect;
  globalThis.__ZKTX_SERVER__ = server;
};
