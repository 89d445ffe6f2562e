#!/usr/bin/env node
'use strict';
// `npm test`: build the addon if the Rust sources changed, then cargo test and jest, both
// against the ZooKeeper that `scripts/zk.js run` started (ZK_CONNECT) and the etcd member that
// `scripts/etcd.js run` started (ETCD_ENDPOINTS). Ends with one line
// "zktx: N passed, M failed" counting both runners.
//
// `npm run test:secure` (--secure): the fault, concurrency and znode suites only, unchanged, in secure
// mode (ZKTX_TEST_SECURE, __test__/helpers/secure.js): TLS-only servers that enforce
// authentication, clients with TLS, an identity and acl 'creator-all'. No cargo test; jest's
// global-setup starts the servers. ZKTX_TEST_SECURE=sasl picks SASL instead of digest.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const secure = process.argv.includes('--secure');
// What runs in secure mode (jest path patterns): every suite that injects faults or races
// processes, the lock and transaction contracts, and the raw API's: znodes, watches, the tree
// cache and zktx/zookeeper (issue 19: they must hold on TLS-only, authenticating servers too).
const SECURE_SUITES = ['__test__/faults/', '__test__/(concurrency|locks|guarantees|transaction|znode|znode-attacks|zookeeper)\\.test\\.js$'];
// Not yet in the secure run: the coordinator suites of issue 18 (ownership, liveness, attacks,
// generative). Their fixtures make application clients in chroots of their own and give
// participant calls deadlines of about a second; against the TLS-only, authenticating servers
// the chroot clients time out (60 s) and TLS connects outlast those deadlines. Making them run
// there is open work (see CHANGELOG); they run in `npm test` against a plain server.
// And the etcd suites of the coordinator (secure mode is about ZooKeeper's TLS and ACLs).
const SECURE_SKIPPED = ['/node_modules/', '__test__/faults/coordinator-(ownership|liveness|attacks|generative)\\.test\\.js$', '__test__/faults/coordinator-[a-z]*-?etcd[a-z-]*\\.test\\.js$'];

/** Runs a command with live output; resolves { code, output }. */
function run(cmd, args, env = process.env) {
  console.error(`\n> ${[cmd, ...args].join(' ')}`);
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
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
  let skipped = 0;
  let cargo = { code: 0 };
  if (!secure) {
    cargo = await run('cargo', ['test', '--workspace']);
    for (const m of cargo.output.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed/g)) {
      passed += Number(m[1]);
      failed += Number(m[2]);
    }
    if (cargo.code !== 0 && failed === 0) failed += 1; // a build failure counts too
  }

  const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'zktx-jest-')), 'report.json');
  const env = secure ? { ...process.env, ZKTX_TEST_SECURE: process.env.ZKTX_TEST_SECURE || '1' } : process.env;
  const jest = await run(process.execPath, [require.resolve('jest/bin/jest'), '--ci', '--json', `--outputFile=${report}`, ...(secure ? [...SECURE_SUITES, '--testPathIgnorePatterns', ...SECURE_SKIPPED] : [])], env);
  try {
    const r = JSON.parse(fs.readFileSync(report, 'utf8'));
    passed += r.numPassedTests;
    failed += r.numFailedTests + (r.numRuntimeErrorTestSuites || 0);
    skipped += r.numPendingTests;
  } catch {
    failed += 1;
  }
  if (jest.code !== 0 && failed === 0) failed += 1;
  console.log(`\nzktx${secure ? ` (secure: TLS + ${env.ZKTX_TEST_SECURE === 'sasl' ? 'SASL' : 'digest'} auth)` : ''}: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(failed === 0 && cargo.code === 0 && jest.code === 0 ? 0 : 1);
})();
