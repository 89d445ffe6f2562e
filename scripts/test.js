#!/usr/bin/env node
'use strict';
// `npm test`: build the addon if the Rust sources changed, then cargo test and jest, both
// against the ZooKeeper that `scripts/zk.js run` started (ZK_CONNECT).
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const steps = [
  [process.execPath, [path.join(__dirname, 'build-addon.js')]],
  ['cargo', ['test', '--workspace']],
  [process.execPath, [require.resolve('jest/bin/jest'), '--ci']],
];
for (const [cmd, args] of steps) {
  console.error(`\n> ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status || 1);
}
