'use strict';
// coordinator-saga.test.js with the coordinator's records on etcd (helpers/on-etcd.js).
require('../helpers/on-etcd').onEtcd(require.resolve('./coordinator-saga.test.js'));
