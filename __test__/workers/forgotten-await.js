'use strict';
// A zktx call whose rejection nobody handles (a forgotten `await`): Node prints the error and
// exits 1. Used by __test__/stack.test.js to check the trace names this file and line.
const { ZooKeeper } = require('../..');

async function handleRequest() {
  const zk = new ZooKeeper({ connect: '127.0.0.1:1', timeout: 10000 });
  await zk.close();
  zk.get('orders/last'); // FORGOTTEN-AWAIT: rejects with CLIENT_CLOSED, unhandled
}

handleRequest();
