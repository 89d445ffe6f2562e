'use strict';
// coordinator-ownership.test.js with the coordinator's records on etcd (helpers/on-etcd.js).
require('../helpers/on-etcd').onEtcd(require.resolve('./coordinator-ownership.test.js'));
