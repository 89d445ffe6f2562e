'use strict';
// Every ```js block of README.md and of docs/*.md (the guides) runs, as a user would run it, against the test server. A block
// that needs nothing from outside is a program and runs exactly as written (an ES module if it
// imports, else CommonJS: a top-level await there is the SyntaxError a reader would get). A block
// that uses names it does not define (`zk`, `db`, `data`: a fragment of a larger program) gets
// them, and runs inside an async function, as it would inside a request handler.
// Each block runs in its own process, in a chroot of its own (so its keys never meet other
// tests'), with ZKTX_CONNECT_OVERRIDE since README's examples say 'localhost:2181'.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const nzk = require('node-zookeeper-client');
const { unique } = require('./helpers/zk');

const root = path.join(__dirname, '..');

/** The ```js blocks of a markdown file: { line, code } (indentation of list items removed). */
function jsBlocks(file) {
  const lines = fs.readFileSync(path.join(root, file), 'utf8').split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```js\s*$/.exec(lines[i]);
    if (!open) continue;
    const indent = open[1].length;
    const body = [];
    for (i++; !/^\s*```\s*$/.test(lines[i]); i++) body.push(lines[i].slice(Math.min(indent, lines[i].search(/\S|$/))));
    blocks.push({ line: i - body.length, code: body.join('\n') });
  }
  return blocks;
}

/** What a block may use without defining it. */
const FIXTURES = {
  zk: "const zk = new (require('zktx').ZooKeeper)({ timeout: 10000 });",
  db: 'const db = { rows: new Map(), save(resource, value) { this.rows.set(resource, value); } };',
  data: 'const data = { total: 42 };',
};

function program(code) {
  const defines = (name) => new RegExp(`\\b(const|let|var|function|class)\\s+${name}\\b|\\{[^}]*\\b${name}\\b[^}]*\\}\\s*=`).test(code);
  const fixtures = Object.entries(FIXTURES).filter(([name]) => new RegExp(`\\b${name}\\b`).test(code) && !defines(name)).map(([, f]) => f);
  if (/^\s*import\s/m.test(code)) return { file: 'block.mjs', text: code };
  if (fixtures.length === 0) return { file: 'block.js', text: code };
  return { file: 'block.js', text: `'use strict';\n${fixtures.join('\n')}\n(async () => {\n${code}\n})().catch((err) => { console.error(err); process.exit(1); });\n` };
}

/** Runs a block as a program (see `program`) in a new directory under `tmp`, with `env` added. */
function runBlock(tmp, code, env) {
  const { file, text } = program(code);
  const dir = fs.mkdtempSync(path.join(tmp, 'block-'));
  fs.writeFileSync(path.join(dir, file), text);
  return spawnSync(process.execPath, [path.join(dir, file)], { cwd: dir, encoding: 'utf8', timeout: 30000, env: { ...process.env, ...env } });
}
/** Creates the znode `chroot` (ZooKeeper needs a chroot to exist). */
function mkdirp(connect, chroot) {
  return new Promise((resolve, reject) => {
    const c = nzk.createClient(connect);
    c.once('connected', () => c.mkdirp(chroot, (err) => { c.close(); if (err) reject(err); else resolve(); }));
    c.connect();
  });
}

/** README.md, then the guides. */
const DOCS = ['README.md', ...fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

describe('README and docs examples', () => {
  const blocks = DOCS.flatMap((file) => jsBlocks(file).map((b) => ({ ...b, file })));
  let tmp;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zktx-readme-'));
    fs.mkdirSync(path.join(tmp, 'node_modules'));
    fs.symlinkSync(root, path.join(tmp, 'node_modules', 'zktx'), 'dir');
    // An example may use a package a user would install beside zktx (prom-client, pg): the
    // project has it as a devDependency.
    for (const dep of ['prom-client', 'pg']) fs.symlinkSync(path.dirname(require.resolve(`${dep}/package.json`)), path.join(tmp, 'node_modules', dep), 'dir');
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('has examples to run', () => {
    expect(blocks.filter((b) => b.file === 'README.md').length).toBeGreaterThanOrEqual(1);
    expect(blocks.length).toBeGreaterThanOrEqual(3);
  });

  for (const [i, block] of blocks.entries()) {
    it(`the example at ${block.file}:${block.line} runs`, async () => {
      const chroot = `/${unique(`readme-${i}`)}`;
      const connect = process.env.ZK_CONNECT;
      await mkdirp(connect.split('/')[0], chroot);
      // ZKTX_ZK_QUIET: zktx/testing's servers report their start on stderr, which must stay empty
      const r = runBlock(tmp, block.code, { ZKTX_CONNECT_OVERRIDE: `${connect}${chroot}`, ZK_CONNECT: `${connect}${chroot}`, ZKTX_ZK_QUIET: '1' });
      expect({ status: r.status, signal: r.signal, stderr: r.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
    }, 40000);
  }
});

// Issue 20: "the README's examples run on either backend by changing only the connection". Each
// README example that builds a ZooKeeper and uses what etcd has runs again with that one line
// changed: `new ZooKeeper(...)` becomes `new Etcd({ endpoints })`, and the import names Etcd.
describe('README examples on etcd, only the connection changed', () => {
  const ETCD_ONLY_MISSING = /\.(znodes|election|compactTombstones|children)\b/;
  /** The block with its ZooKeeper construction (a balanced `new ZooKeeper(...)`) replaced. */
  function onEtcd(code) {
    const at = code.indexOf('new ZooKeeper(');
    if (at < 0) return null;
    let depth = 0;
    let end = at + 'new ZooKeeper'.length;
    for (; end < code.length; end++) {
      if (code[end] === '(') depth++;
      if (code[end] === ')' && --depth === 0) break;
    }
    const swapped = `${code.slice(0, at)}new Etcd({ endpoints: process.env.ETCD_ENDPOINTS })${code.slice(end + 1)}`;
    return swapped.replace(/\{([^}]*)\bZooKeeper\b([^}]*)\}(\s*=\s*require\('zktx'\)|\s*from\s*'zktx')/, '{$1Etcd$2}$3');
  }
  // README's examples, and the coordinator guide's (the coordinator runs on etcd too).
  const blocks = ['README.md', 'docs/coordinator.md']
    .flatMap((file) => jsBlocks(file).map((b) => ({ ...b, file, etcd: onEtcd(b.code) })))
    .filter((b) => b.etcd && !ETCD_ONLY_MISSING.test(b.code));
  let tmp;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zktx-readme-etcd-'));
    fs.mkdirSync(path.join(tmp, 'node_modules'));
    fs.symlinkSync(root, path.join(tmp, 'node_modules', 'zktx'), 'dir');
    fs.symlinkSync(path.dirname(require.resolve('pg/package.json')), path.join(tmp, 'node_modules', 'pg'), 'dir');
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('has README examples to run on etcd (the opening one and the quick start), and the coordinator guide\'s', () => {
    expect(blocks.filter((b) => b.file === 'README.md').length).toBeGreaterThanOrEqual(2);
    expect(blocks.filter((b) => b.file === 'docs/coordinator.md').length).toBeGreaterThanOrEqual(1);
    for (const b of blocks) expect(b.etcd).not.toMatch(/\bZooKeeper\b/);
  });

  for (const block of blocks) {
    it(`the example at ${block.file}:${block.line} runs on etcd`, () => {
      // No ZooKeeper reachable: a block that still used one would fail (connection refused).
      const r = runBlock(tmp, block.etcd, { ZK_CONNECT: '127.0.0.1:1', ZKTX_CONNECT_OVERRIDE: '127.0.0.1:1', ZKTX_ZK_QUIET: '1' });
      expect({ status: r.status, signal: r.signal, stderr: r.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
    }, 40000);
  }
});
