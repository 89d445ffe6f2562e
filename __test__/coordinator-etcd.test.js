'use strict';
// The coordinator suite of coordinator.test.js with its records on etcd (issue 20): the same
// bank, crash points and refusals, every client and worker an `Etcd`.
process.env.ZKTX_COORD_BACKEND = 'etcd';
require('./coordinator.test.js');
