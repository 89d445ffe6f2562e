'use strict';
// Bench-only packages that build native code. The `zookeeper` C binding compiles with node-gyp,
// so it is not a devDependency: `npm install` stays fast and can never fail on it. The bench
// installs it into bench/.deps on first use; if that fails, its baseline is skipped with a note.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const DIR = path.join(__dirname, '.deps');

/** Resolves `pkg` from bench/.deps, installing `pkg@version` there first if needed. */
function ensureDep(pkg, version) {
  try {
    return require.resolve(pkg, { paths: [DIR] });
  } catch {
    // not installed yet
  }
  fs.mkdirSync(DIR, { recursive: true });
  const env = { ...process.env };
  // Debian's nodejs ships its headers in /usr/include/node; point node-gyp there (no download).
  if (!env.npm_config_nodedir && fs.existsSync('/usr/include/node/node.h')) env.npm_config_nodedir = '/usr';
  console.error(`bench: installing ${pkg}@${version} into bench/.deps (builds native code, once)...`);
  const r = spawnSync('npm', ['install', '--prefix', DIR, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', `${pkg}@${version}`], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`npm install ${pkg}@${version} failed (exit ${r.status})`);
  return require.resolve(pkg, { paths: [DIR] });
}

module.exports = { ensureDep };
