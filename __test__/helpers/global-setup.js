'use strict';
// One shared ZooKeeper for the jest run, unless ZK_CONNECT already names one (npm test starts
// it through scripts/zk.js run; CI and developers can point at an existing ensemble).
const { startStandalone } = require('../../testing');

module.exports = async () => {
  // Tests choose their server (shared or dedicated) explicitly; an override from the environment
  // would send the dedicated-server tests to the shared one. Take it as the shared server.
  if (process.env.ZKTX_CONNECT_OVERRIDE) {
    process.env.ZK_CONNECT = process.env.ZK_CONNECT || process.env.ZKTX_CONNECT_OVERRIDE;
    delete process.env.ZKTX_CONNECT_OVERRIDE;
  }
  if (process.env.ZK_CONNECT) return;
  const server = await startStandalone({ tickTime: 500 });
  process.env.ZK_CONNECT = server.connect;
  globalThis.__ZKTX_SERVER__ = server;
};
