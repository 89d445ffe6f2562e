#!/usr/bin/env node
'use strict';
// Builds the Rust addon with cargo and copies it to ./zktx.node, where binding.js loads it.
// `--debug` builds without optimizations (faster to compile, for development).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const debug = process.argv.includes('--debug');
const args = ['build', '-p', 'zktx', ...(debug ? [] : ['--release'])];
const t0 = Date.now();
const r = spawnSync('cargo', args, { cwd: root, stdio: 'inherit' });
if (r.error) {
  console.error(`zktx: cannot run cargo (${r.error.message}). Install Rust (https://rustup.rs) and retry.`);
  process.exit(1);
}
if (r.status !== 0) process.exit(r.status || 1);
const lib = { linux: 'libzktx.so', darwin: 'libzktx.dylib', win32: 'zktx.dll' }[process.platform];
const targetDir = process.env.CARGO_TARGET_DIR || path.join(root, 'target');
const built = path.join(targetDir, debug ? 'debug' : 'release', lib);
const dest = path.join(root, 'zktx.node');
// Copy to a temp name then rename: a process that has the old addon loaded keeps a valid file.
fs.copyFileSync(built, `${dest}.tmp`);
fs.renameSync(`${dest}.tmp`, dest);
console.error(`zktx: built ${debug ? 'debug' : 'release'} addon in ${((Date.now() - t0) / 1000).toFixed(1)} s -> zktx.node`);
