'use strict';
// Assembles the installable pair from this clone, as release.yml publishes it: the main
// package (with the optionalDependencies `napi prepublish` adds, without `prepare`) and the
// platform package of this machine with the binary built here (`npm run build`, or
// `npm run build:dist` when artifacts/ has it). Nothing is built.
//
//   npm run pack:local [-- <destination directory>]     (default: dist/)
//   npm install dist/zktx-0.1.0.tgz dist/zktx-linux-x64-gnu-0.1.0.tgz
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const pkg = require('../package.json');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', shell: process.platform === 'win32', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** npm pack `dir` into `dest`: { file, size, files }. */
function pack(dir, dest) {
  const [info] = JSON.parse(run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dest], { cwd: dir }));
  return { file: path.join(dest, info.filename), size: info.size, files: info.files.map((f) => f.path) };
}

/** This machine's platform package directory under npm/ (e.g. linux-x64-gnu), from the loader's naming. */
function platformName() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const glibc = Boolean(process.report.getReport().header.glibcVersionRuntime);
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

/**
 * Packs the pair into `dest`. Returns { main, sources, platform } where `sources` is the plain
 * `npm pack` of the clone (its files and size) and `main` / `platform` the installable tarballs.
 */
function packLocal(dest, { platform = platformName(), binary } = {}) {
  fs.mkdirSync(dest, { recursive: true });
  const binaryName = `${pkg.napi.binaryName}.${platform}.node`;
  if (!fs.existsSync(path.join(root, 'npm', platform))) throw new Error(`no platform package npm/${platform}: zktx ships no binary for it`);
  const dist = path.join(root, 'artifacts', binaryName);
  binary ??= fs.existsSync(dist) ? dist : path.join(root, binaryName);
  if (!fs.existsSync(binary)) throw new Error(`no ${binaryName}: run \`npm run build\` first`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'zktx-pack-local-'));
  try {
    const sources = pack(root, work);
    run('tar', ['xzf', sources.file, '-C', work]);
    const manifestFile = path.join(work, 'package', 'package.json');
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
    manifest.optionalDependencies = Object.fromEntries(fs.readdirSync(path.join(root, 'npm')).map((dir) => [`${pkg.name}-${dir}`, pkg.version]));
    delete manifest.scripts.prepare; // an installed package never builds
    fs.writeFileSync(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
    const main = pack(path.join(work, 'package'), dest);

    const platDir = path.join(work, platform);
    fs.cpSync(path.join(root, 'npm', platform), platDir, { recursive: true });
    fs.copyFileSync(binary, path.join(platDir, binaryName));
    const plat = pack(platDir, dest);
    return { sources: { size: sources.size, files: sources.files }, main, platform: { ...plat, binary } };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

module.exports = { packLocal, platformName, pack };

if (require.main === module) {
  const dest = path.resolve(process.argv[2] || path.join(root, 'dist'));
  try {
    const r = packLocal(dest);
    const kB = (n) => `${(n / 1024).toFixed(1)} kB`;
    console.log(`${path.relative(process.cwd(), r.main.file)}  ${kB(r.main.size)}`);
    console.log(`${path.relative(process.cwd(), r.platform.file)}  ${kB(r.platform.size)} (binary: ${path.relative(root, r.platform.binary)})`);
    console.log(`install with: npm install ${[r.main.file, r.platform.file].map((f) => path.relative(process.cwd(), f)).join(' ')}`);
  } catch (err) {
    console.error(`pack:local: ${err.message}`);
    process.exit(1);
  }
}
