'use strict';
// Explicit resource management: `await using` a ZooKeeper closes it, `await using` a Lock,
// MultiLock or semaphore lease releases it, at scope exit.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { client, unique } = require('./helpers/zk');

const root = path.join(__dirname, '..');

describe('Symbol.asyncDispose', () => {
  it('releases a Lock, a MultiLock and a semaphore lease, and closes a ZooKeeper', async () => {
    const zk = client();
    const observer = client();
    const p = `/${unique('dispose')}`;
    try {
      const lock = await zk.lock(p);
      const lease = await zk.semaphore(`${p}-sem`, 1).acquire();
      const multi = await zk.multiLock([`${p}-a`, `${p}-b`]);
      for (const held of [lock, lease, multi]) {
        expect(typeof held[Symbol.asyncDispose]).toBe('function');
        await held[Symbol.asyncDispose]();
        expect(held.released).toBe(true);
      }
      for (const q of [p, `${p}-sem`, `${p}-a`, `${p}-b`]) expect(await observer.children(q)).toEqual([]);
      const again = await zk.lock(p); // held at dispose: the server deletes it with the session
      await zk[Symbol.asyncDispose]();
      expect(zk.state).toBe('CLOSED');
      expect(await observer.children(p)).toEqual([]);
      expect(again.released).toBe(false);
    } finally {
      await zk.close();
      await observer.close();
    }
  });

  it('`await using`, compiled by TypeScript 5.9 to ES2022, releases and closes at scope exit', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zktx-using-'));
    try {
      // A consumer's project: zktx and @types/node under node_modules.
      fs.mkdirSync(path.join(tmp, 'node_modules'));
      fs.symlinkSync(root, path.join(tmp, 'node_modules', 'zktx'), 'dir');
      fs.symlinkSync(path.join(root, 'node_modules', '@types'), path.join(tmp, 'node_modules', '@types'), 'dir');
      fs.copyFileSync(path.join(__dirname, 'dispose', 'await-using.ts'), path.join(tmp, 'await-using.ts'));
      fs.writeFileSync(path.join(tmp, 'tsconfig.json'), JSON.stringify({
        compilerOptions: { strict: true, target: 'es2022', lib: ['es2022', 'esnext.disposable'], module: 'commonjs', types: ['node'], outDir: 'out' },
        files: ['await-using.ts'],
      }));
      try {
        execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', tmp], { encoding: 'utf8' });
      } catch (err) {
        throw new Error(`tsc failed: ${err.stdout}`);
      }
      const js = fs.readFileSync(path.join(tmp, 'out', 'await-using.js'), 'utf8');
      expect(js).toMatch(/__addDisposableResource/); // lowered: Node 20 has no `await using` syntax
      const out = execFileSync(process.execPath, [path.join(tmp, 'out', 'await-using.js'), process.env.ZK_CONNECT, `/${unique('using')}`], { encoding: 'utf8' });
      expect(JSON.parse(out)).toEqual({
        insideLockScope: 1,
        token: 'number',
        afterLockScope: 0,
        insideClientScope: 4,
        held: [false, false, false],
        afterClientScope: 0,
        state: 'CLOSED',
      });
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 60000);
});
