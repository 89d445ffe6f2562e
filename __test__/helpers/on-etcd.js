'use strict';
// Runs a coordinator suite again with its records on etcd (issue 20): every coordinator client
// and worker an `Etcd` (coordinator/bank.js reads ZKTX_COORD_BACKEND); the suite says which of
// its tests carry over. Secure mode (helpers/secure.js) is about ZooKeeper's TLS and ACLs: there
// the wrapper runs nothing.
function onEtcd(suite) {
  const name = require('node:path').basename(suite, '.test.js');
  if (require('./secure').mode()) {
    test.skip(`${name} on etcd: not in secure mode`, () => {});
    return;
  }
  process.env.ZKTX_COORD_BACKEND = 'etcd';
  require(suite);
}

module.exports = { onEtcd };
