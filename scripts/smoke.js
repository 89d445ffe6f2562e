#!/usr/bin/env node
'use strict';
// Loads the addon and constructs a client (it connects lazily: no server needed), then prints
// which binary loaded. The release workflow runs it on each platform's own machine.
const { ZooKeeper } = require('..');

const zk = new ZooKeeper({ connect: '127.0.0.1:2181' });
zk.close().then(() => {
  const loaded = Object.keys(require.cache).find((f) => f.endsWith('.node'));
  console.log(`zktx: loaded ${loaded} on ${process.platform}-${process.arch}, Node ${process.version}`);
}, (err) => {
  console.error(err);
  process.exit(1);
});
