'use strict';
// A JS thread that blocks (a long synchronous computation, Atomics.wait, a sync file read on a
// stuck disk) for longer than its session timeout keeps its ZooKeeper session and the locks held
// on it: zktx's sessions live on its I/O thread, `zktx-io`, which answers the server's pings
// whatever the JS thread does. A client whose socket is read and written by the JS thread
// (node-zookeeper-client, the `zookeeper` C binding's callbacks) sends no ping while its thread is
// blocked, and the server expires the session after the timeout. This is the guarantee that keeps
// zktx's calls one hand-off slower than such a client one call at a time (docs/benchmarks.md):
// these tests pin it.
const { clientsClosedAfterAll, unique } = require('./helpers/zk');

const open = clientsClosedAfterAll();

/** Blocks this thread, event loop and all, for `ms` milliseconds. */
const block = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

describe('a JS thread blocked past its session timeout', () => {
  it('keeps its session, its ephemeral nodes and the lock it holds (3 timeouts long)', async () => {
    const zk = open({ timeout: 2000 });
    const other = open();
    const path = `/${unique('blocked-lock')}`;
    const lock = await zk.lock(path);
    const session = await zk.znodes.sessionId();
    const eph = `/${unique('blocked-eph')}`;
    await zk.znodes.create(eph, Buffer.from('mine'), { mode: 'ephemeral' });
    let lost = null;
    lock.lost.then((reason) => { lost = reason; });

    expect(block(6000)).toBe('timed-out'); // the server's timeout: at most 2 s (negotiated down from 2 s, never up)

    // what the server says now, asked by another session
    expect((await other.znodes.exists(eph)).stat).not.toBeNull();
    expect((await other.znodes.exists(lock.nodePath)).stat).not.toBeNull();
    // and what this client says
    expect(await zk.znodes.sessionId()).toBe(session);
    expect(await lock.isHeld()).toBe(true);
    expect(lock.signal.aborted).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    expect(lost).toBeNull();
    // a contender still waits: the lock was never free
    await expect(other.lock(path, { timeout: 200 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    await lock.release();
    await zk.znodes.delete(eph);
  }, 30000);

  it('gets its calls made before the block answered after it, in order', async () => {
    const zk = open({ timeout: 2000 });
    const node = `/${unique('blocked-calls')}`;
    await zk.znodes.create(node, Buffer.alloc(0));
    const sets = [];
    for (let i = 0; i < 20; i++) sets.push(zk.znodes.setData(node, Buffer.from(String(i))));
    block(5000);
    const stats = await Promise.all(sets);
    expect(stats.map((s) => s.version)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(String((await zk.znodes.getData(node)).data)).toBe('19');
    await zk.znodes.delete(node);
  }, 30000);
});
