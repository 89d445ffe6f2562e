'use strict';
// Attacks on the burst of a JS thread's calls (src/bridge.rs, Burst: the first call of a turn
// goes to zktx-io at once, the later ones at a microtask the first queued) and on the exit hook
// that flushes it. Each test runs a fresh node process: what it attacks is per thread, for the
// thread's life.
const { clientsClosedAfterAll, unique } = require('./helpers/zk');
const { runNode } = require('./helpers/procs');

const open = clientsClosedAfterAll();

const run = runNode;

describe('calls made in the turn of process.exit()', () => {
  it('are all sent before the exit hook closes the session (32 creates, 5 runs)', async () => {
    // Before: close_all_sync flushed the turn's calls to zktx-io and closed the sessions on
    // another runtime at once; the close won: 1-4 of 32 applied in 13 of 15 runs.
    const zk = open();
    const applied = [];
    for (let round = 0; round < 5; round++) {
      const base = `/${unique('burst-exit-sent')}`;
      const r = await run(`
        const { ZooKeeper } = require(zktx);
        (async () => {
          const zk = new ZooKeeper({ connect: process.env.ZK_CONNECT, timeout: 30000 });
          await zk.znodes.create(${JSON.stringify(base)}, Buffer.alloc(0));
          for (let i = 0; i < 32; i++) zk.znodes.create(${JSON.stringify(base)} + '/n' + i, Buffer.alloc(0)).catch(() => {});
          process.exit(0);
        })().catch((e) => { console.error(e); process.exit(1); });
      `);
      expect(r.code).toBe(0);
      const { children } = await zk.znodes.getChildren(base);
      applied.push(children.length);
      for (const c of children) await zk.znodes.delete(`${base}/${c}`);
      await zk.znodes.delete(base);
    }
    expect(applied).toEqual([32, 32, 32, 32, 32]);
  }, 90000);
});

describe('a Promise.prototype.then replaced before the first call', () => {
  it('that throws: calls still resolve, and keep resolving once it is restored', async () => {
    // Before: the flush was queued through the `then` found at the first call and kept for the
    // thread's life: every call rejected INTERNAL (its request sent all the same), restored or not.
    const node = `/${unique('burst-then-throws')}`;
    const r = await run(`
      const original = Promise.prototype.then;
      Promise.prototype.then = function (f, g) {
        if (typeof f === 'function' && f.name.startsWith('zktx')) throw new TypeError('no then for you');
        return original.call(this, f, g);
      };
      const { ZooKeeper } = require(zktx);
      (async () => {
        const zk = new ZooKeeper({ connect: process.env.ZK_CONNECT, timeout: 30000 });
        const outcome = (p) => p.then(() => 'ok', (e) => e.code);
        console.log('patched', await outcome(zk.znodes.create(${JSON.stringify(node)}, Buffer.alloc(0))));
        Promise.prototype.then = original;
        console.log('restored', await outcome(zk.znodes.getData(${JSON.stringify(node)})));
        await zk.znodes.delete(${JSON.stringify(node)}).catch(() => {});
        await zk.close();
      })().catch((e) => { console.error(e); process.exit(1); });
    `);
    expect(r.out).toContain('patched ok');
    expect(r.out).toContain('restored ok');
    expect(r.code).toBe(0);
    const zk = open();
    await zk.znodes.delete(node).catch(() => {});
  });

  it('that defers callbacks to a scheduler never run (a fake): the calls after the first of a turn still settle', async () => {
    // Before: the flush waited in the fake scheduler: every call after the first of a turn hung,
    // for the thread's life (restoring `then` did not help).
    const node = `/${unique('burst-then-held')}`;
    const r = await run(`
      const original = Promise.prototype.then;
      const held = [];
      Promise.prototype.then = function (f, g) {
        if (typeof f === 'function' && f.name.startsWith('zktx')) { held.push(f); return this; }
        return original.call(this, f, g);
      };
      const { ZooKeeper } = require(zktx);
      (async () => {
        const zk = new ZooKeeper({ connect: process.env.ZK_CONNECT, timeout: 30000 });
        const t = setTimeout(() => { console.log('HUNG'); process.exit(2); }, 10000);
        await zk.znodes.create(${JSON.stringify(node)}, Buffer.alloc(0));
        const sets = [];
        for (let i = 0; i < 10; i++) sets.push(zk.znodes.setData(${JSON.stringify(node)}, Buffer.from(String(i))));
        console.log('versions', (await Promise.all(sets)).map((s) => s.version).join(','));
        Promise.prototype.then = original;
        const again = [zk.znodes.getData(${JSON.stringify(node)}), zk.znodes.getData(${JSON.stringify(node)})];
        console.log('restored', (await Promise.all(again)).map((g) => String(g.data)).join(','));
        clearTimeout(t);
        await zk.znodes.delete(${JSON.stringify(node)});
        await zk.close();
      })().catch((e) => { console.error(e); process.exit(1); });
    `);
    expect(r.out).not.toContain('HUNG');
    expect(r.out).toContain(`versions ${Array.from({ length: 10 }, (_, i) => i + 1).join(',')}`);
    expect(r.out).toContain('restored 9,9');
    expect(r.code).toBe(0);
    const zk = open();
    await zk.znodes.delete(node).catch(() => {});
  });
});
