'use strict';
// coordinator-ownership.test.js with the coordinator's records on etcd (issue 20): every coordinator
// client and worker an `Etcd`; the file says which of its tests carry over and what replaces the
// ZooKeeper-only ones. Secure mode (helpers/secure.js) is about ZooKeeper's TLS and ACLs: there
// this file runs nothing.
if (require('../helpers/secure').mode()) {
  test.skip('coordinator-ownership on etcd: not in secure mode', () => {});
} else {
  process.env.ZKTX_COORD_BACKEND = 'etcd';
  require('./coordinator-ownership.test.js');
}
