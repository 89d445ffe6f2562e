'use strict';
// What `npm install zktx` gets: the packed package and its linux-x64-gnu platform package,
// installed from local tarballs only (offline) into an empty project on a PATH without cargo,
// take a lock and run executeTransaction. Also: the shipped binary's glibc floor, and the
// error on a platform without a binary.
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const pkg = require('../package.json');
const PLATFORM = 'linux-x64-gnu';
const binaryName = `zktx.${PLATFORM}.node`;
// `npm run build:dist` (cargo-zigbuild, glibc 2.17) writes the release binary to artifacts/;
// without it the test packs the development build, `npm run build`, from the repo root.
const distBinary = path.join(root, 'artifacts', binaryName);
const devBinary = path.join(root, binaryName);
// .ci/run sets this: there the shipped binary must exist, a missing one is a failure, not a skip.
const requireDist = process.env.ZKTX_REQUIRE_DIST === '1';
const isLinuxX64Gnu = process.platform === 'linux' && process.arch === 'x64' &&
  Boolean(process.report.getReport().header.glibcVersionRuntime);

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const { packLocal } = require('../scripts/pack-local');

/** PATH without any directory holding cargo or rustc, so an install that tried to build fails. */
function pathWithoutCargo() {
  return (process.env.PATH || '').split(path.delimiter).filter((dir) =>
    !['cargo', 'rustc'].some((bin) => fs.existsSync(path.join(dir, bin)))).join(path.delimiter);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}

const describeLinux = isLinuxX64Gnu ? describe : describe.skip;

describeLinux('the packed package', () => {
  let tmp;
  let binary;

  beforeAll(() => {
    binary = fs.existsSync(distBinary) ? distBinary : devBinary;
    if (requireDist && binary !== distBinary) throw new Error(`${distBinary} missing: run npm run build:dist`);
    if (!fs.existsSync(binary)) throw new Error(`no ${binaryName}: run npm run build`);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zktx-pack-'));
  });

  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('installs from its tarballs offline, without cargo, and takes a lock and runs executeTransaction', () => {
    const t0 = Date.now();
    // `npm run pack:local`: the main package as release.yml publishes it (with the
    // optionalDependencies `napi prepublish` adds, without `prepare`: npm 11 lists it as an
    // install script to approve; its absence is what the install output below must show) and
    // the platform package, npm/linux-x64-gnu plus the binary, as `napi artifacts` assembles it.
    const { sources, main, platform: plat } = packLocal(tmp, { platform: PLATFORM, binary });
    expect(sources.files).not.toContain(binaryName); // binaries live in the platform packages
    for (const f of ['Cargo.toml', 'Cargo.lock', 'build.rs', 'src/lib.rs', 'crates/zktx-core/Cargo.toml',
      'crates/zktx-core/src/lib.rs', 'loader.js', 'binding.js', 'index.js', 'index.d.ts', 'LICENSE', 'CHANGELOG.md',
      'testing/index.js', 'testing/index.d.ts', 'testing/zookeeper.js', 'testing/etcd.js', 'testing/postgres.js', 'testing/proxy.js',
      'znode.js', 'zookeeper.js', 'zookeeper.d.ts', 'src/znode.rs', 'crates/zktx-core/src/znode.rs', 'tracing.js',
      'etcd.js', 'election.js', 'src/etcd.rs', 'crates/zktx-core/src/backend/etcd.rs',
      // the vendored zookeeper-client that Cargo.toml's [patch.crates-io] points to: a build from these sources needs it
      'crates/zookeeper-client/Cargo.toml', 'crates/zookeeper-client/src/lib.rs', 'crates/zookeeper-client/LICENSE']) {
      expect(sources.files).toContain(f);
    }
    const mainTgz = main.file;
    expect(plat.files).toContain(binaryName);

    const app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    // No npm_* from the `npm test` around us: npm_config_local_prefix would make this install
    // land in the repository instead of `app`.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
    Object.assign(env, {
      PATH: pathWithoutCargo(),
      npm_config_offline: 'true',
      npm_config_cache: path.join(tmp, 'npm-cache'), // empty: nothing may come from a registry
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
    });
    expect(spawnSync('cargo', ['--version'], { env }).error).toBeTruthy();
    const installed = spawnSync(npm, ['install', mainTgz, plat.file], { cwd: app, env, encoding: 'utf8' });
    expect(installed.status).toBe(0);
    expect(`${installed.stdout}${installed.stderr}`).not.toMatch(/install.scripts/i);

    const script = `
      const { ZooKeeper } = require('zktx');
      (async () => {
        const zk = new ZooKeeper({ connect: process.env.ZK_CONNECT, timeout: 10000 });
        const key = 'package-test-' + process.pid;
        const lock = await zk.lock('/zktx-package-test/' + process.pid);
        const held = await lock.isHeld();
        await lock.release();
        const tx = await zk.executeTransaction(key, (cur) => (cur ?? 0) + 1);
        await zk.close();
        const loaded = Object.keys(require.cache).find((f) => f.endsWith('.node'));
        const compat = require('zktx/zookeeper');
        const zookeeper = new compat({ connect: process.env.ZK_CONNECT, timeout: 10000 });
        await new Promise((resolve) => { zookeeper.on('connect', resolve); zookeeper.init({}); });
        const created = await zookeeper.create('/zktx-package-test-' + process.pid, 'x', compat.constants.ZOO_EPHEMERAL);
        await zookeeper.close();
        console.log(JSON.stringify({ held, value: tx.value, loaded, created: created === '/zktx-package-test-' + process.pid }));
      })().catch((err) => { console.error(err); process.exit(1); });`;
    const out = JSON.parse(run(process.execPath, ['-e', script], { cwd: app, env }).trim().split('\n').pop());
    expect(out).toEqual({
      held: true,
      value: 1,
      loaded: path.join(fs.realpathSync(app), 'node_modules', `${pkg.name}-${PLATFORM}`, binaryName),
      created: true,
    });
    // The same install as an ES module: every export by name, the default export, a lock
    // released by Symbol.asyncDispose (what `await using` calls), an error pointing at this file.
    const esm = `
      import * as all from 'zktx';
      import ZooKeeperDefault, { ZooKeeper, executeTransaction, ZOO_LOG_LEVEL_WARN, ZktxError } from 'zktx';
      const zk = new ZooKeeperDefault({ connect: process.env.ZK_CONNECT, timeout: 10000 });
      const path = '/zktx-package-test/esm-' + process.pid;
      {
        const lock = await zk.lock(path);
        await lock[Symbol.asyncDispose]();
      }
      const again = await zk.lock(path, { timeout: 2000 });
      await again.release();
      const err = await zk.lock('relative').catch((e) => e);
      await zk[Symbol.asyncDispose]();
      console.log(JSON.stringify({
        same: ZooKeeperDefault === ZooKeeper, level: ZOO_LOG_LEVEL_WARN, fn: typeof executeTransaction,
        names: Object.keys(all).length, code: err instanceof ZktxError && err.code, stack: err.stack.includes('esm-check.mjs'),
      }));`;
    fs.writeFileSync(path.join(app, 'esm-check.mjs'), esm);
    const esmOut = JSON.parse(run(process.execPath, ['esm-check.mjs'], { cwd: app, env }).trim().split('\n').pop());
    expect(esmOut).toMatchObject({ same: true, level: 2, fn: 'function', code: 'INVALID_ARGUMENT', stack: true });
    expect(esmOut.names).toBeGreaterThan(5);
    // zktx/testing, as curator-test is to Curator: the servers' starters, from CommonJS and ESM,
    // without pg (an optional peer, not installed here); a proxy forwards to the shared server,
    // and an etcd member starts and serves from the installed files.
    const testingCheck = `
      const testing = require('zktx/testing');
      (async () => {
        const proxy = await testing.startProxy(process.env.ZK_CONNECT);
        const ruok = await testing.fourLetter(proxy.port, 'ruok');
        await proxy.close();
        const port = await testing.freePort();
        const etcd = await testing.startEtcd();
        const etcdHealthy = await etcd.health();
        await etcd.stop();
        console.log(JSON.stringify({
          starters: ['startStandalone', 'startEnsemble', 'startEtcd', 'startEtcdCluster', 'startPostgres', 'startProxy'].map((f) => typeof testing[f]),
          ruok, port: Number.isInteger(port), etcdHealthy, file: require.resolve('zktx/testing'),
        }));
      })().catch((err) => { console.error(err); process.exit(1); });`;
    const testingOut = JSON.parse(run(process.execPath, ['-e', testingCheck], { cwd: app, env }).trim().split('\n').pop());
    expect(testingOut).toEqual({
      starters: ['function', 'function', 'function', 'function', 'function', 'function'],
      ruok: 'imok',
      port: true,
      etcdHealthy: true,
      file: path.join(fs.realpathSync(app), 'node_modules', 'zktx', 'testing', 'index.js'),
    });
    const testingEsm = "import { startPostgres, PgServer } from 'zktx/testing'; console.log(typeof startPostgres, typeof PgServer);";
    expect(run(process.execPath, ['--input-type=module', '-e', testingEsm], { cwd: app, env }).trim()).toBe('function function');
    // The `zktx` command, with its bundled commander (nothing came from a registry).
    const zktxBin = path.join(app, 'node_modules', '.bin', 'zktx');
    expect(run(zktxBin, ['--version'], { cwd: app, env }).trim()).toBe(pkg.version);
    expect(JSON.parse(run(zktxBin, ['locks', '/zktx-package-test/none', '--json'], { cwd: app, env }))).toMatchObject({ free: true, holders: [], waiters: [] });
    expect(fs.realpathSync(path.join(app, 'node_modules', 'zktx', 'node_modules', 'commander'))).toContain(fs.realpathSync(app));
    console.log(`package test: packed ${(main.size / 1024).toFixed(1)} kB + ${PLATFORM} ` +
      `${(plat.size / 1024).toFixed(1)} kB (${path.relative(root, binary)}), installed and ran in ${Date.now() - t0} ms`);
  }, 120000);
});

describe('npm pack in the clone', () => {
  it('starts no Rust build: it packs sources and says how to add a binary', () => {
    // A PATH without cargo: a `prepare` that tried to build would fail the pack.
    const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k))), PATH: pathWithoutCargo() };
    const t0 = Date.now();
    const r = spawnSync(npm, ['pack', '--dry-run', '--json'], { cwd: root, env, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/no Rust build for `npm pack`.*npm run pack:local/);
    const [info] = JSON.parse(r.stdout);
    expect(info.files.map((f) => f.path)).not.toContain(binaryName);
    expect(Date.now() - t0).toBeLessThan(20000);
  });
});

describe('npm pack from a clean clone (no node_modules)', () => {
  it('refuses, naming the bundled dependency that is missing, rather than pack a zktx command that cannot start offline', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zktx-clean-pack-'));
    try {
      const clone = spawnSync('git', ['clone', '-q', root, path.join(dir, 'c')], { encoding: 'utf8' });
      expect(clone.status).toBe(0);
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
      const r = spawnSync(npm, ['pack', '--dry-run', '--json'], { cwd: path.join(dir, 'c'), env, encoding: 'utf8' });
      if (r.status === 0) {
        const [info] = JSON.parse(r.stdout);
        expect(info.bundled).toContain('commander');
      } else {
        expect(r.stderr).toMatch(/bundled dependency "commander" is missing.*npm ci/);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60000);
});

describeLinux('the linux-x64-gnu binary we ship', () => {
  const check = fs.existsSync(distBinary) || requireDist ? it : it.skip;
  check('needs no glibc symbol newer than 2.17 (objdump -T)', () => {
    const out = execFileSync('objdump', ['-T', distBinary], { encoding: 'utf8' });
    const versions = [...new Set(out.match(/GLIBC_[0-9.]+/g))];
    const newest = versions.sort((a, b) => {
      const [x, y] = [a, b].map((v) => v.slice(6).split('.').map(Number));
      return x[0] - y[0] || (x[1] ?? 0) - (y[1] ?? 0) || (x[2] ?? 0) - (y[2] ?? 0);
    }).pop();
    console.log(`objdump -T ${path.relative(root, distBinary)}: newest symbol version ${newest}`);
    expect(versions.length).toBeGreaterThan(0);
    expect(newest).toBe('GLIBC_2.17');
  });
});

describe('on a platform without a binary', () => {
  it('says which platform, what ships, and how to build from source', () => {
    // The generated loader reads process.platform/arch when required: fake them in a child.
    const script = `
      Object.defineProperty(process, 'platform', { value: 'freebsd' });
      Object.defineProperty(process, 'arch', { value: 'riscv64' });
      delete process.env.ZKTX_NATIVE;
      try { require(${JSON.stringify(path.join(root, 'binding.js'))}); } catch (err) {
        console.log(JSON.stringify({ code: err.code, message: err.message }));
      }`;
    const { code, message } = JSON.parse(run(process.execPath, ['-e', script]));
    expect(code).toBe('ERR_ZKTX_NO_NATIVE_ADDON');
    expect(message).toMatch(/cannot load the native addon for freebsd-riscv64/);
    expect(message).toMatch(/No prebuilt binary is published for freebsd-riscv64; binaries ship for: linux-x64-gnu, linux-x64-musl, linux-arm64-gnu, darwin-x64, darwin-arm64, win32-x64-msvc/);
    expect(message).toMatch(/Cargo\.toml, Cargo\.lock, build\.rs, src\/, crates\//);
    expect(message).toMatch(/run `npm install && npm run build` inside its directory/);
  });

  it('on a shipped platform whose package is missing, names the optional dependency', () => {
    const script = `
      Object.defineProperty(process, 'platform', { value: 'darwin' });
      Object.defineProperty(process, 'arch', { value: 'arm64' });
      delete process.env.ZKTX_NATIVE;
      try { require(${JSON.stringify(path.join(root, 'binding.js'))}); } catch (err) {
        console.log(JSON.stringify({ message: err.message }));
      }`;
    const { message } = JSON.parse(run(process.execPath, ['-e', script]));
    expect(message).toMatch(/prebuilt binary for darwin-arm64 ships as the optional dependency zktx-darwin-arm64/);
  });
});
