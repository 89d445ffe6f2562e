'use strict';
// zktx from ES modules: `import { ... } from 'zktx'` names every export, and the default export
// is the ZooKeeper class (as index.d.ts declares). Node resolves 'zktx' from inside the package
// through its own "exports" map, as it would from an app's node_modules.
const { execFileSync } = require('node:child_process');
const path = require('node:path');

describe('ES module entry', () => {
  it('imports every export by name, and the default export is the ZooKeeper class', () => {
    const out = execFileSync(process.execPath, [path.join(__dirname, 'esm', 'imports.mjs')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(JSON.parse(out)).toEqual({ missing: [], namedDiffer: [], defaultIsZooKeeper: true, levels: [1, 2, 3, 4] });
  });
});

describe('the packed package', () => {
  it('passes @arethetypeswrong/cli: types and runtime agree for node10, node16 (CJS and ESM) and bundlers', () => {
    // Pack what package.json "files" ships, minus the native binary (attw reads only JS and
    // types; --ignore-scripts, as `prepare` would build the addon).
    const fs = require('node:fs');
    const os = require('node:os');
    const root = path.join(__dirname, '..');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zktx-attw-'));
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
      fs.copyFileSync(path.join(root, 'package.json'), path.join(tmp, 'package.json'));
      for (const f of pkg.files) {
        if (f.endsWith('.node') || !fs.existsSync(path.join(root, f))) continue;
        fs.cpSync(path.join(root, f), path.join(tmp, f), { recursive: true, filter: (src) => !src.endsWith('.node') });
      }
      const tgz = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', tmp], { cwd: tmp, encoding: 'utf8' }).trim().split('\n').pop();
      const attw = path.join(path.dirname(require.resolve('@arethetypeswrong/cli/package.json')), 'dist', 'index.js');
      let out;
      try {
        out = execFileSync(process.execPath, [attw, '--format', 'json', path.join(tmp, tgz)], { encoding: 'utf8' });
      } catch (err) {
        out = err.stdout; // exit code 1 when it finds problems: the report says which
      }
      const problems = JSON.parse(out).analysis.problems.map((p) => `${p.kind} ${p.entrypoint || ''} ${p.resolutionKind || ''}`);
      expect(problems).toEqual([]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 60000);
});
