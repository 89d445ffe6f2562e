'use strict';
// npm's `prepare` runs both on `npm install` in a clone (or a git dependency), where the addon
// must be built, and on `npm pack` / `npm publish`, where it must not: the main package ships
// JS, types and Rust sources, never a binary (binaries ship in the platform packages, see
// `npm run pack:local`). npm names the command it runs in `npm_command`.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const command = process.env.npm_command;
if (command === 'pack' || command === 'publish') {
  // npm bundles what it finds in node_modules and says nothing about what it does not: from a
  // clean clone the tarball would ship a `zktx` command that cannot start offline.
  const root = path.join(__dirname, '..');
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const missing = (pkg.bundleDependencies || pkg.bundledDependencies || [])
    .filter((name) => !fs.existsSync(path.join(root, 'node_modules', name, 'package.json')));
  if (missing.length) {
    for (const name of missing) {
      console.error(`zktx: bundled dependency "${name}" is missing from node_modules: the tarball would ship without it (the zktx command needs it offline); run \`npm ci\` first, then \`npm ${command}\``);
    }
    process.exit(1);
  }
  console.error(`zktx: no Rust build for \`npm ${command}\` (the package ships sources; \`npm run pack:local\` adds this machine's binary)`);
  process.exit(0);
}
const napi = process.platform === 'win32' ? 'napi.cmd' : 'napi';
const r = spawnSync(napi, ['build', '--platform', '--release', '--js', 'loader.js', '--dts', 'target/napi/binding.d.ts'], { stdio: 'inherit' });
process.exit(r.status ?? 1);
