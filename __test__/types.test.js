'use strict';
// index.d.ts (and index.d.mts, for ES modules) are the public contract for TypeScript users: a
// usage file exercising every export must type-check under --strict with each module setting a
// user may have (commonjs, node16 from CJS and ESM, bundler), and misuse must not.
const { execFile, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const tsc = require.resolve('typescript/bin/tsc');
const dir = path.join(__dirname, 'types');

function check(project) {
  try {
    execFileSync(process.execPath, [tsc, '-p', project], { stdio: 'pipe' });
    return '';
  } catch (err) {
    return String(err.stdout || err.message);
  }
}

function checkAsync(project) {
  return new Promise((resolve) => {
    execFile(process.execPath, [tsc, '-p', project], (err, stdout) => resolve(err ? String(stdout || err.message) : ''));
  });
}

describe('index.d.ts', () => {
  it('type-checks programs using every export under --strict with module commonjs, node16 and bundler', async () => {
    const configs = ['tsconfig.json', 'tsconfig.node16.json', 'tsconfig.bundler.json'];
    const outputs = await Promise.all(configs.map((c) => checkAsync(path.join(dir, c))));
    expect(Object.fromEntries(configs.map((c, i) => [c, outputs[i]]))).toEqual({ 'tsconfig.json': '', 'tsconfig.node16.json': '', 'tsconfig.bundler.json': '' });
  }, 180000);

  it('rejects misuse (unknown option, wrong value type)', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zktx-types-'));
    fs.writeFileSync(path.join(tmp, 'bad.ts'), [
      `import { ZooKeeper } from '${path.join(__dirname, '..', 'index').replace(/\\\\/g, '/')}';`,
      "const zk = new ZooKeeper({ conect: 'x' });",
      "zk.lock('/a', { timeout: 'soon' });",
    ].join('\n'));
    fs.writeFileSync(path.join(tmp, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, target: 'es2022', module: 'commonjs', types: ['node'], typeRoots: [path.join(__dirname, '..', 'node_modules', '@types')] },
      files: ['bad.ts'],
    }));
    const out = check(tmp);
    fs.rmSync(tmp, { recursive: true, force: true });
    expect(out).toMatch(/conect/);
    expect(out).toMatch(/bad\.ts\(3,\d+\): error TS2322/); // timeout: 'soon' is not a number
  }, 60000);
});
