'use strict';
// npm's `prepare` runs both on `npm install` in a clone (or a git dependency), where the addon
// must be built, and on `npm pack` / `npm publish`, where it must not: the main package ships
// JS, types and Rust sources, never a binary (binaries ship in the platform packages, see
// `npm run pack:local`). npm names the command it runs in `npm_command`.
const { spawnSync } = require('node:child_process');

const command = process.env.npm_command;
if (command === 'pack' || command === 'publish') {
  console.error(`zktx: no Rust build for \`npm ${command}\` (the package ships sources; \`npm run pack:local\` adds this machine's binary)`);
  process.exit(0);
}
const napi = process.platform === 'win32' ? 'napi.cmd' : 'napi';
const r = spawnSync(napi, ['build', '--platform', '--release', '--js', 'loader.js', '--dts', 'target/napi/binding.d.ts'], { stdio: 'inherit' });
process.exit(r.status ?? 1);
