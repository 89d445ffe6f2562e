'use strict';
// One shared ZooKeeper for the jest run, unless ZK_CONNECT already names one (npm test starts
// it through scripts/zk.js run; CI and developers can point at an existing ensemble).
const { startStandalone } = require('../../scripts/zk');

module.exports = async () => {
  if (process.env.ZK_CONNECT) return;
  const server = await startStandalone({ tickTime: 500 });
  process.env.ZK_CONNECT = server.connect;
  globalThis.__ZKTX_SERVER__ = server;
};
