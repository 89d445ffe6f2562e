#!/usr/bin/env node
'use strict';
// `npm test`: build the addon if the Rust sources changed, then cargo test and jest, both
// against the ZooKeeper that `scripts/zk.js run` started (ZK_CONNECT). Ends with one line
// "zktx: N passed, M failed" counting both runners.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');

/** Runs a command with live output; resolves { code, output }. */
function run(cmd, args) {
  console.error(`\n> ${[cmd, ...args].join(' ')}`);
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d; process.stdout.write(d); });
    child.stderr.on('data', (d) => { output += d; process.stderr.write(d); });
    child.on('error', (err) => resolve({ code: 127, output: String(err) }));
    child.on('exit', (code) => resolve({ code: code ?? 1, output }));
  });
}

(async () => {
  // `npm run build`: napi build --platform --release (incremental; a no-op when nothing changed).
  const build = await run(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', '--silent', 'build']);
  if (build.code !== 0) process.exit(build.code);

  let passed = 0;
  let failed = 0;
  const cargo = await run('cargo', ['test', '--workspace']);
  for (const m of cargo.output.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed/g)) {
    passed += Number(m[1]);
    failed += Number(m[2]);
  }
  if (cargo.code !== 0 && failed === 0) failed += 1; // a build failure counts too

  const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'zktx-jest-')), 'report.json');
  const jest = await run(process.execPath, [require.resolve('jest/bin/jest'), '--ci', '--json', `--outputFile=${report}`]);
  try {
    const r = JSON.parse(fs.readFileSync(report, 'utf8'));
    passed += r.numPassedTests;
    failed += r.numFailedTests + (r.numRuntimeErrorTestSuites || 0);
  } catch {
    failed += 1;
  }
  if (jest.code !== 0 && failed === 0) failed += 1;
  console.log(`\nzktx: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && cargo.code === 0 && jest.code === 0 ? 0 : 1);
})();
