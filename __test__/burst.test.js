'use strict';
// A JS thread's calls of one turn (src/bridge.rs, Burst): the first goes to zktx-io at once, the
// ones made after it in the same turn are sent together at a microtask the first queued. What it
// gains is measured by the bench (`znode_sessions`, docs/benchmarks.md), not asserted here; these
// tests check what it must never do: reorder calls, lose one, hold the first call of a turn, wait
// for a timer a test has faked, or keep a worker or a process from exiting.
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const native = require('../binding.js');
const { clientsClosedAfterAll, unique, within } = require('./helpers/zk');
const { runNode } = require('./helpers/procs');

const ROOT = path.join(__dirname, '..');
const open = clientsClosedAfterAll();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const run = runNode;

describe('the calls of one turn', () => {
  it('are applied in the order they were made: the first two at once, the 98 after them in one flush', async () => {
    const zk = open();
    const node = `/${unique('burst-order')}`;
    await zk.znodes.create(node, Buffer.from('start'));
    const before = native.answerStats();
    const sets = [];
    for (let i = 0; i < 100; i++) sets.push(zk.znodes.setData(node, Buffer.from(String(i))));
    const stats = await Promise.all(sets);
    const after = native.answerStats();
    expect(stats.map((s) => s.version)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(String((await zk.znodes.getData(node)).data)).toBe('99');
    expect(after.bursts - before.bursts).toBe(1);
    // the first was made with no other call pending and opened no burst (one call at a time
    // pays no flush); the second, with the first pending, opened it
    expect(after.burstCalls - before.burstCalls).toBe(98);
    await zk.znodes.delete(node);
  });

  it('made across sessions and turns all settle, each turn in order (8 sessions, 20 turns of 64 calls)', async () => {
    const sessions = Array.from({ length: 8 }, () => open());
    const base = `/${unique('burst-sessions')}`;
    await sessions[0].znodes.create(base, Buffer.alloc(0));
    const nodes = [];
    for (let i = 0; i < 8; i++) nodes.push(await sessions[0].znodes.create(`${base}/n${i}`, Buffer.alloc(0)));
    for (let turn = 0; turn < 20; turn++) {
      const calls = [];
      for (let k = 0; k < 64; k++) calls.push(sessions[k % 8].znodes.setData(nodes[k % 8], Buffer.from(`${turn}:${k}`)));
      const stats = await Promise.all(calls);
      // each node got 8 sets this turn, from one session, in the order made
      for (let n = 0; n < 8; n++) {
        const versions = stats.filter((_, k) => k % 8 === n).map((s) => s.version);
        expect(versions).toEqual(Array.from({ length: 8 }, (_, j) => turn * 8 + j + 1));
      }
    }
    for (let n = 0; n < 8; n++) expect(String((await sessions[0].znodes.getData(nodes[n])).data)).toBe(`19:${56 + n}`);
  });

  it('made before the session is established are applied in the order made (ZooKeeper\'s FIFO order of a session)', async () => {
    const setup = open();
    const node = `/${unique('burst-early')}`;
    await setup.znodes.create(node, Buffer.alloc(0));
    for (let round = 0; round < 5; round++) {
      const zk = open(); // not connected yet: every call below waits for the session
      const sets = [];
      for (let i = 0; i < 50; i++) sets.push(zk.znodes.setData(node, Buffer.from(String(i))));
      const versions = (await Promise.all(sets)).map((s) => s.version);
      expect(versions).toEqual(Array.from({ length: 50 }, (_, i) => round * 50 + i + 1));
      await zk.close();
    }
    expect(String((await setup.znodes.getData(node)).data)).toBe('49');
  });

  it('the first calls of a turn (until one is made beside another pending) are on the wire while the thread blocks; the later ones go at its microtask', async () => {
    const zk = open();
    const base = `/${unique('burst-block')}`;
    const shared = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(
      `
      const { parentPort, workerData } = require('node:worker_threads');
      const { ZooKeeper } = require(workerData.root);
      (async () => {
        const zk = new ZooKeeper({ connect: process.env.ZK_CONNECT, timeout: 30000 });
        await zk.znodes.getData('/');
        const first = zk.znodes.create(workerData.base + '-first', Buffer.alloc(0));
        const second = zk.znodes.create(workerData.base + '-second', Buffer.alloc(0));
        const third = zk.znodes.create(workerData.base + '-third', Buffer.alloc(0));
        parentPort.postMessage('blocking');
        Atomics.wait(workerData.shared, 0, 0, 3000); // the main thread wakes it
        await Promise.all([first, second, third]);
        parentPort.postMessage('done');
        await zk.close();
      })().catch((e) => parentPort.postMessage('error: ' + e.message));
      `,
      { eval: true, workerData: { root: ROOT, base, shared }, env: process.env }
    );
    const messages = [];
    worker.on('message', (m) => messages.push(m));
    try {
      await within((async () => { while (!messages.includes('blocking')) await sleep(5); })(), 10000, 'the worker');
      // while the worker is blocked: its first call (made with none pending) and its second (which
      // opened the turn's burst) arrive, its third does not
      await within((async () => { while (!(await zk.znodes.exists(`${base}-first`)).stat) await sleep(20); })(), 2500, 'the first call');
      await within((async () => { while (!(await zk.znodes.exists(`${base}-second`)).stat) await sleep(20); })(), 2500, 'the second call');
      expect((await zk.znodes.exists(`${base}-third`)).stat).toBeNull();
      Atomics.store(shared, 0, 1);
      Atomics.notify(shared, 0);
      await within((async () => { while (!messages.includes('done')) await sleep(5); })(), 10000, 'the third call');
      expect(messages).not.toContainEqual(expect.stringMatching(/^error/));
      expect((await zk.znodes.exists(`${base}-third`)).stat).not.toBeNull();
    } finally {
      Atomics.store(shared, 0, 1);
      Atomics.notify(shared, 0);
      await worker.terminate();
    }
    await zk.znodes.delete(`${base}-first`);
    await zk.znodes.delete(`${base}-second`);
    await zk.znodes.delete(`${base}-third`);
  }, 30000);

  it('settle with queueMicrotask and the global Promise replaced (fake timers, polyfills): the flush is V8\'s own', async () => {
    const node = `/${unique('burst-faked')}`;
    const r = await run(`
      globalThis.queueMicrotask = () => {}; // a fake that never runs what it is given
      globalThis.Promise = class FakePromise extends Promise {};
      const { ZooKeeper } = require(zktx);
      (async () => {
        const zk = new ZooKeeper({ connect: process.env.ZK_CONNECT, timeout: 30000 });
        await zk.znodes.create(${JSON.stringify(node)}, Buffer.alloc(0));
        const sets = [];
        for (let i = 0; i < 20; i++) sets.push(zk.znodes.setData(${JSON.stringify(node)}, Buffer.from(String(i))));
        const t = setTimeout(() => { console.log('HUNG'); process.exit(2); }, 10000);
        const stats = await Promise.all(sets);
        clearTimeout(t);
        console.log('versions', stats.map((s) => s.version).join(','));
        await zk.znodes.delete(${JSON.stringify(node)});
        await zk.close();
      })().catch((e) => { console.error(e); process.exit(1); });
    `);
    expect(r.out).toContain(`versions ${Array.from({ length: 20 }, (_, i) => i + 1).join(',')}`);
    expect(r.code).toBe(0);
  });

  it('made right before process.exit() or a worker\'s exit do not keep either from exiting, nor crash it', async () => {
    const node = `/${unique('burst-exit')}`;
    const r = await run(`
      const { Worker } = require('node:worker_threads');
      const { ZooKeeper } = require(zktx);
      (async () => {
        const zk = new ZooKeeper({ connect: process.env.ZK_CONNECT, timeout: 30000 });
        await zk.znodes.create(${JSON.stringify(node)}, Buffer.alloc(0));
        for (let round = 0; round < 20; round++) {
          const w = new Worker(\`
            const { ZooKeeper } = require(\${JSON.stringify(zktx)});
            const zk = new ZooKeeper({ connect: process.env.ZK_CONNECT, timeout: 30000 });
            zk.znodes.getData('/').then(() => {
              for (let i = 0; i < 32; i++) zk.znodes.setData(\${JSON.stringify(${JSON.stringify(node)})}, Buffer.from('w'));
              process.exit(0); // the worker's thread ends before the turn's flush
            });
          \`, { eval: true, env: process.env });
          await new Promise((resolve) => w.on('exit', resolve));
        }
        const stat = await zk.znodes.setData(${JSON.stringify(node)}, Buffer.from('main'));
        console.log('main still calls', stat.version > 0);
        for (let i = 0; i < 32; i++) zk.znodes.setData(${JSON.stringify(node)}, Buffer.from('last'));
        process.exit(0);
      })().catch((e) => { console.error(e); process.exit(1); });
    `);
    expect(r.out).toContain('main still calls true');
    expect(r.code).toBe(0);
    expect(r.signal).toBeNull();
    const zk = open();
    await zk.znodes.delete(node).catch(() => {});
  }, 60000);
});
