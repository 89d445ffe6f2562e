'use strict';
// zk.znodes: the raw ZooKeeper API, on a dedicated server (TTL nodes need extendedTypesEnabled;
// the fault tests cut a proxy in front of it). Every call here reads or writes exactly the znode
// it names; the JSON store's keys never look like znode paths.
const { ZooKeeper, ZktxError } = require('..');
const { clientAt, unique, zkScripts, rejection, within } = require('./helpers/zk');
const { startProxy } = require('../testing');
const { execFile } = require('node:child_process');
const { cacheTree, converges, write } = require('./helpers/tree');
const secure = require('./helpers/secure');

const TICK = 200; // sessions of 400..4000 ms
const isZktxError = (e) => e instanceof ZktxError && typeof e.code === 'string';

describe('zk.znodes', () => {
  let server;
  let zk;
  let other;
  let root;
  const clients = [];
  const open = (options = {}) => {
    const c = clientAt(server.connect, { timeout: 4000, ...options });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    server = await zkScripts.startStandalone({ tickTime: TICK, extraConfig: { extendedTypesEnabled: true } });
    zk = open();
    other = open();
    root = `/${unique('znode')}`;
    await zk.znodes.create(root);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    if (server) await server.stop();
  });

  describe('data and Stat', () => {
    it('create returns the created path; getData returns the bytes as a Buffer and every Stat field as a number', async () => {
      const path = `${root}/plain`;
      const before = Date.now();
      expect(await zk.znodes.create(path, Buffer.from([0, 1, 255]))).toBe(path);
      const { data, stat } = await other.znodes.getData(path);
      expect(Buffer.isBuffer(data)).toBe(true);
      expect([...data]).toEqual([0, 1, 255]);
      expect(stat).toEqual({
        czxid: expect.any(Number), mzxid: expect.any(Number), pzxid: expect.any(Number),
        ctime: expect.any(Number), mtime: expect.any(Number),
        version: 0, cversion: 0, aversion: 0, ephemeralOwner: '0', dataLength: 3, numChildren: 0,
      });
      expect(stat.czxid).toBe(stat.mzxid);
      expect(stat.ctime).toBeGreaterThanOrEqual(before - 5000);
    });

    it('strings are stored as UTF-8; no data is an empty node', async () => {
      await zk.znodes.create(`${root}/text`, 'héllo');
      expect((await zk.znodes.getData(`${root}/text`)).data.toString('utf8')).toBe('héllo');
      await zk.znodes.create(`${root}/empty`);
      expect((await zk.znodes.getData(`${root}/empty`)).stat.dataLength).toBe(0);
    });

    it('setData and delete take a version: a stale one is BADVERSION and changes nothing', async () => {
      const path = `${root}/versioned`;
      await zk.znodes.create(path, 'v0');
      const s1 = await zk.znodes.setData(path, 'v1', { version: 0 });
      expect(s1.version).toBe(1);
      const stale = await rejection(other.znodes.setData(path, 'lost', { version: 0 }));
      expect(isZktxError(stale)).toBe(true);
      expect(stale).toMatchObject({ code: 'BADVERSION', outcome: 'not_applied' });
      expect((await zk.znodes.getData(path)).data.toString()).toBe('v1');
      await expect(zk.znodes.delete(path, { version: 0 })).rejects.toMatchObject({ code: 'BADVERSION' });
      expect((await zk.znodes.setData(path, 'any')).version).toBe(2); // no version: any
      await zk.znodes.delete(path, { version: 2 });
      expect((await zk.znodes.exists(path)).stat).toBeNull();
    });

    it("ZooKeeper's own codes: NONODE, NODEEXISTS, NOTEMPTY, NOCHILDRENFOREPHEMERALS", async () => {
      await expect(zk.znodes.getData(`${root}/missing`)).rejects.toMatchObject({ code: 'NONODE', outcome: 'not_applied' });
      await expect(zk.znodes.create(`${root}/missing/child`)).rejects.toMatchObject({ code: 'NONODE' });
      await expect(zk.znodes.create(root)).rejects.toMatchObject({ code: 'NODEEXISTS' });
      await zk.znodes.create(`${root}/parent`);
      await zk.znodes.create(`${root}/parent/kid`);
      await expect(zk.znodes.delete(`${root}/parent`)).rejects.toMatchObject({ code: 'NOTEMPTY' });
      await zk.znodes.create(`${root}/eph-parent`, '', { mode: 'ephemeral' });
      await expect(zk.znodes.create(`${root}/eph-parent/kid`)).rejects.toMatchObject({ code: 'NOCHILDRENFOREPHEMERALS' });
    });

    it('exists answers a Stat or null; getChildren lists names with the parent Stat', async () => {
      const dir = `${root}/dir`;
      expect(await zk.znodes.exists(dir)).toEqual({ stat: null });
      await zk.znodes.create(dir);
      await zk.znodes.create(`${dir}/a`);
      await zk.znodes.create(`${dir}/b`);
      expect((await zk.znodes.exists(dir)).stat).toMatchObject({ numChildren: 2, cversion: 2 });
      const { children, stat } = await zk.znodes.getChildren(dir);
      expect(children.sort()).toEqual(['a', 'b']);
      expect(stat.numChildren).toBe(2);
    });
  });

  describe('modes', () => {
    it('sequential nodes get a 10-digit suffix in creation order', async () => {
      await zk.znodes.create(`${root}/q`);
      const a = await zk.znodes.create(`${root}/q/job-`, 'a', { sequential: true });
      const b = await other.znodes.create(`${root}/q/job-`, 'b', { sequential: true });
      expect(a).toMatch(new RegExp(`^${root}/q/job-\\d{10}$`));
      expect(Number(b.slice(-10))).toBe(Number(a.slice(-10)) + 1);
    });

    it('an ephemeral node belongs to its session and is gone when that session closes', async () => {
      const owner = open();
      const path = await owner.znodes.create(`${root}/eph-`, 'x', { mode: 'ephemeral', sequential: true });
      const { stat } = await zk.znodes.getData(path);
      expect(stat.ephemeralOwner).toBe(await owner.znodes.sessionId());
      await owner.close();
      expect((await zk.znodes.exists(path)).stat).toBeNull();
    });

    it('container and TTL nodes are created (TTL only for persistent nodes)', async () => {
      expect(await zk.znodes.create(`${root}/container`, '', { mode: 'container' })).toBe(`${root}/container`);
      expect(await zk.znodes.create(`${root}/ttl`, 'x', { ttl: 60000 })).toBe(`${root}/ttl`);
      expect((await zk.znodes.getData(`${root}/ttl`)).data.toString()).toBe('x');
      await expect(zk.znodes.create(`${root}/ttl-eph`, 'x', { mode: 'ephemeral', ttl: 1000 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    });
  });

  describe('ACLs', () => {
    it('a node created read-only for everyone cannot be written (NOAUTH); getAcl/setAcl read and replace its ACL', async () => {
      const path = `${root}/frozen`;
      await zk.znodes.create(path, 'v', { acl: [{ perms: 'ra', scheme: 'world', id: 'anyone' }] });
      const { acl, stat } = await other.znodes.getAcl(path);
      expect(acl).toEqual([{ perms: 1 | 16, scheme: 'world', id: 'anyone' }]);
      expect(stat.aversion).toBe(0);
      await expect(other.znodes.setData(path, 'w')).rejects.toMatchObject({ code: 'NOAUTH', outcome: 'not_applied' });
      await expect(zk.znodes.setAcl(path, 'open', { version: 5 })).rejects.toMatchObject({ code: 'BADVERSION' });
      expect((await zk.znodes.setAcl(path, 'open', { version: 0 })).aversion).toBe(1);
      expect((await other.znodes.setData(path, 'w')).version).toBe(1);
    });
  });

  describe('codes of refused options', () => {
    it('INVALIDACL for an ACL the server refuses (a malformed ip entry; creator-all with no identity); UNIMPLEMENTED for a TTL node on a server without extendedTypesEnabled', async () => {
      await expect(zk.znodes.create(`${root}/bad-ip`, '', { acl: [{ perms: 'r', scheme: 'ip', id: 'not-an-address' }] })).rejects.toMatchObject({ code: 'INVALIDACL', outcome: 'not_applied' });
      // creator-all needs an identity: in secure mode every client has one (the server enforces it)
      if (!secure.mode()) await expect(zk.znodes.create(`${root}/creator-only`, '', { acl: 'creator-all' })).rejects.toMatchObject({ code: 'INVALIDACL', outcome: 'not_applied' });
      const plain = await zkScripts.startStandalone({ tickTime: TICK });
      try {
        const c = clientAt(plain.connect, { timeout: 4000 });
        clients.push(c);
        await expect(c.znodes.create('/ttl', 'x', { ttl: 1000 })).rejects.toMatchObject({ code: 'UNIMPLEMENTED' });
        await c.close();
      } finally {
        await plain.stop();
      }
    });
  });

  describe('multi', () => {
    it('applies create, set, check and delete all together', async () => {
      const p = `${root}/multi-ok`;
      await zk.znodes.create(p, 'old');
      const results = await zk.znodes.multi([
        { op: 'check', path: p, version: 0 },
        { op: 'set', path: p, data: 'new', version: 0 },
        { op: 'create', path: `${p}/seq-`, data: 'c', sequential: true },
        { op: 'create', path: `${p}/tmp` },
        { op: 'delete', path: `${p}/tmp` },
      ]);
      expect(results.map((r) => r.op)).toEqual(['check', 'set', 'create', 'create', 'delete']);
      expect(results[1].stat.version).toBe(1);
      expect(results[2].path).toMatch(/\/seq-\d{10}$/);
      expect((await zk.znodes.getChildren(p)).children).toEqual([results[2].path.split('/').pop()]);
    });

    it('all or nothing: a failing op rejects with its own code and index, and no op is applied', async () => {
      const p = `${root}/multi-fail`;
      await zk.znodes.create(p, 'keep');
      const err = await rejection(zk.znodes.multi([
        { op: 'set', path: p, data: 'lost' },
        { op: 'create', path: `${p}/new` },
        { op: 'delete', path: `${root}/nope` },
      ]));
      expect(err).toMatchObject({ code: 'NONODE', outcome: 'not_applied', index: 2 });
      expect((await zk.znodes.getData(p)).data.toString()).toBe('keep');
      expect((await zk.znodes.exists(`${p}/new`)).stat).toBeNull();
    });
  });

  it('sync resolves once the server caught up', async () => {
    await expect(zk.znodes.sync(root)).resolves.toBeUndefined();
  });

  describe('bad input', () => {
    it('is INVALID_ARGUMENT before anything is sent, even with no server reachable', async () => {
      const nowhere = new ZooKeeper({ connect: '127.0.0.1:1', timeout: 2000, connectTimeout: 60000 });
      clients.push(nowhere);
      const t0 = Date.now();
      const cases = [
        () => nowhere.znodes.getData('relative'),
        () => nowhere.znodes.getData('/a//b'),
        () => nowhere.znodes.getData('/a/'),
        () => nowhere.znodes.create('/a/../b'),
        () => nowhere.znodes.create('/a', 42),
        () => nowhere.znodes.create('/a', '', { mode: 'forever' }),
        () => nowhere.znodes.create('/a', '', { ttl: -1 }),
        () => nowhere.znodes.create('/a', '', { acl: [] }),
        () => nowhere.znodes.setData('/a', '', { version: -2 }),
        () => nowhere.znodes.delete('/'),
        () => nowhere.znodes.delete('/a', { version: 1.5 }),
        () => nowhere.znodes.multi([]),
        () => nowhere.znodes.multi([{ op: 'check', path: '/a' }]),
        () => nowhere.znodes.multi([{ op: 'rename', path: '/a' }]),
        () => nowhere.znodes.getData('/a', { bogus: true }),
        () => nowhere.znodes.getData('/a', { signal: new AbortController().signal }),
        () => nowhere.znodes.getData('/\uD800'),
      ];
      for (const make of cases) {
        const e = await rejection(make());
        expect(isZktxError(e)).toBe(true);
        expect(e).toMatchObject({ code: 'INVALID_ARGUMENT', outcome: 'not_applied' });
      }
      expect(Date.now() - t0).toBeLessThan(1000);
    });

    it('the session option (a session to resume) takes a hex id and a 16-byte password; anything else is INVALID_ARGUMENT at construction', async () => {
      const id = await zk.znodes.sessionId();
      const password = await zk.znodes.sessionPassword();
      expect(password).toMatch(/^[0-9a-f]{32}$/);
      for (const session of [null, 'x', { id }, { id, password: 'abc' }, { id, password: '00'.repeat(15) }, { id: '0', password }, { id: 'g1', password }, { id: '1'.repeat(17), password }, { id, password, extra: 1 }]) {
        let err;
        try {
          clients.push(new ZooKeeper({ connect: server.connect, session }));
        } catch (e) {
          err = e;
        }
        expect(isZktxError(err)).toBe(true);
        expect(err).toMatchObject({ code: 'INVALID_ARGUMENT' });
        expect(err.message).not.toContain(password);
      }
    });

    it('after close() every call rejects CLIENT_CLOSED', async () => {
      const c = open();
      await c.znodes.exists(root);
      await c.close();
      await expect(c.znodes.getData(root)).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
      await expect(c.znodes.create(`${root}/after-close`)).rejects.toMatchObject({ code: 'CLIENT_CLOSED', outcome: 'not_applied' });
      await expect(c.znodes.addWatch(root)).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
      expect((await zk.znodes.exists(`${root}/after-close`)).stat).toBeNull();
    });

    it("the JSON store refuses a key that looks like a znode path, and points to zk.znodes", async () => {
      await zk.znodes.create(`${root}/config`, '{"a":1}');
      const err = await rejection(zk.get(`${root}/config`));
      expect(err).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect(err.message).toMatch(/zk\.znodes\.getData/);
      await expect(zk.set('/config/app', 1)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(zk.executeTransaction('/config/app', 1)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    });
  });

  describe('one-shot watches', () => {
    it('a data watch fires once with the next change, and the read that set it saw the value before', async () => {
      const path = `${root}/w-data`;
      await zk.znodes.create(path, 'v0');
      const { data, watch } = await zk.znodes.getData(path, { watch: true });
      expect(data.toString()).toBe('v0');
      await other.znodes.setData(path, 'v1');
      expect(await within(watch, 5000, 'data watch')).toEqual({ type: 'changed', path });
    });

    it('an exists watch on an absent node fires when it is created; a deleted node fires deleted', async () => {
      const path = `${root}/w-exists`;
      const r = await zk.znodes.exists(path, { watch: true });
      expect(r.stat).toBeNull();
      await other.znodes.create(path);
      expect(await within(r.watch, 5000, 'exists watch')).toEqual({ type: 'created', path });
      const again = await zk.znodes.exists(path, { watch: true });
      await other.znodes.delete(path);
      expect(await within(again.watch, 5000, 'exists watch')).toEqual({ type: 'deleted', path });
    });

    it('a children watch fires when a child is created', async () => {
      const dir = `${root}/w-children`;
      await zk.znodes.create(dir);
      const { children, watch } = await zk.znodes.getChildren(dir, { watch: true });
      expect(children).toEqual([]);
      await other.znodes.create(`${dir}/kid`);
      expect(await within(watch, 5000, 'children watch')).toEqual({ type: 'children', path: dir });
    });

    it('an AbortSignal removes the watch: it resolves aborted at once; an already aborted signal refuses the read (ABORTED)', async () => {
      const path = `${root}/w-abort`;
      await zk.znodes.create(path);
      const ac = new AbortController();
      const { watch } = await zk.znodes.getData(path, { watch: true, signal: ac.signal });
      ac.abort();
      expect(await within(watch, 5000, 'aborted watch')).toEqual({ type: 'aborted', path });
      await expect(zk.znodes.getData(path, { watch: true, signal: ac.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    });

    it('{ watch: listener } calls the listener once with the event, and the result still has the promise of it', async () => {
      const path = `${root}/w-listener`;
      await zk.znodes.create(path, 'v0');
      const calls = [];
      const { watch } = await zk.znodes.getData(path, { watch: (ev) => calls.push(ev) });
      const kids = await zk.znodes.getChildren(path, { watch: (ev) => calls.push(ev) });
      await other.znodes.setData(path, 'v1');
      await other.znodes.create(`${path}/kid`);
      expect(await within(watch, 5000, 'data watch')).toEqual({ type: 'changed', path });
      await within(kids.watch, 5000, 'children watch');
      await other.znodes.setData(path, 'v2'); // fired watches stay fired: no more calls
      await zk.znodes.sync(path);
      // one call per watch; two watches' callbacks are not ordered with each other
      expect([...calls].sort((a, b) => a.type.localeCompare(b.type))).toEqual([{ type: 'changed', path }, { type: 'children', path }]);
      await expect(zk.znodes.getData(path, { watch: 'yes' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    });

    it('closing the client ends a pending watch with closed', async () => {
      const c = open();
      const path = `${root}/w-close`;
      await c.znodes.create(path);
      const { watch } = await c.znodes.getData(path, { watch: true });
      await c.close();
      expect(await within(watch, 5000, 'watch at close')).toEqual({ type: 'closed', path });
    });
  });

  describe('persistent watches (addWatch)', () => {
    const next = async (w, what) => {
      const r = await within(w.next(), 8000, what);
      return r.value;
    };

    it('a persistent watch keeps firing: every data change and child change of the node, in order', async () => {
      const path = `${root}/pw`;
      await zk.znodes.create(path, 'v0');
      const w = await zk.znodes.addWatch(path);
      await other.znodes.setData(path, 'v1');
      await other.znodes.setData(path, 'v2');
      await other.znodes.create(`${path}/kid`);
      expect(await next(w, 'first')).toEqual({ type: 'changed', path });
      expect(await next(w, 'second')).toEqual({ type: 'changed', path });
      expect(await next(w, 'third')).toEqual({ type: 'children', path });
      w.close();
      expect(await next(w, 'end')).toEqual({ type: 'aborted', path });
      expect(await w.next()).toEqual({ value: undefined, done: true });
    });

    it('a recursive watch sees descendants created, changed and deleted; an AbortSignal ends the iteration', async () => {
      const path = `${root}/pwr`;
      await zk.znodes.create(path);
      const ac = new AbortController();
      const w = await zk.znodes.addWatch(path, { recursive: true, signal: ac.signal });
      await other.znodes.create(`${path}/a`);
      await other.znodes.create(`${path}/a/b`, 'x');
      await other.znodes.setData(`${path}/a/b`, 'y');
      await other.znodes.delete(`${path}/a/b`);
      const seen = [];
      for await (const ev of w) {
        seen.push(ev);
        if (seen.length === 4) ac.abort();
      }
      expect(seen).toEqual([
        { type: 'created', path: `${path}/a` },
        { type: 'created', path: `${path}/a/b` },
        { type: 'changed', path: `${path}/a/b` },
        { type: 'deleted', path: `${path}/a/b` },
        { type: 'aborted', path },
      ]);
    });

    it('is an EventEmitter too: each event under its type and as "event", in the iterator\'s order, the last one aborted', async () => {
      const path = `${root}/pw-events`;
      await zk.znodes.create(path, 'v0');
      const w = await zk.znodes.addWatch(path, { recursive: true });
      const all = [];
      const changed = [];
      w.on('event', (ev) => all.push(ev));
      w.on('changed', (ev) => changed.push(ev));
      const aborted = new Promise((resolve) => w.once('aborted', resolve));
      // listening before the writes: the event can arrive before the writer's own answer
      const deleted = new Promise((resolve) => w.once('deleted', resolve));
      await other.znodes.setData(path, 'v1');
      await other.znodes.create(`${path}/a`);
      await other.znodes.delete(`${path}/a`);
      expect(await within(deleted, 8000, 'deleted event')).toEqual({ type: 'deleted', path: `${path}/a` });
      expect(w.ended).toBe(false);
      w.close();
      expect(await within(aborted, 8000, 'aborted event')).toEqual({ type: 'aborted', path });
      expect(w.ended).toBe(true);
      expect(all).toEqual([
        { type: 'changed', path },
        { type: 'created', path: `${path}/a` },
        { type: 'deleted', path: `${path}/a` },
        { type: 'aborted', path },
      ]);
      expect(changed).toEqual([{ type: 'changed', path }]);
      // read through listeners only: nothing was queued for an iterator nobody started
      expect(await w.next()).toEqual({ value: undefined, done: true });
    });

    it('a listener that throws does not stop the other listeners nor the iterator; its error surfaces as uncaught', async () => {
      // In a process of its own: jest takes uncaught exceptions as the test's failure.
      const path = `${root}/pw-throw`;
      await zk.znodes.create(path, 'v0');
      const program = `
        const { ZooKeeper } = require(${JSON.stringify(require.resolve('..'))});
        const secure = require(${JSON.stringify(require.resolve('./helpers/secure'))});
        const zk = new ZooKeeper({ connect: ${JSON.stringify(server.connect)}, timeout: 4000, ...secure.clientOptions() });
        const out = { uncaught: [], others: [] };
        process.on('uncaughtException', (err) => out.uncaught.push(err.message));
        (async () => {
          const w = await zk.znodes.addWatch(${JSON.stringify(path)});
          w.on('changed', () => { throw new Error('listener bug'); });
          w.on('event', (ev) => out.others.push(ev.type));
          const iterated = w.next();
          await zk.znodes.setData(${JSON.stringify(path)}, 'v1');
          out.iterated = (await iterated).value;
          await new Promise((r) => setTimeout(r, 200));
          const before = { ...out, others: out.others.slice() }; // before close() adds 'aborted'
          w.close();
          await zk.close();
          console.log(JSON.stringify(before));
        })();`;
      const { stdout } = await new Promise((resolve, reject) => {
        execFile(process.execPath, ['-e', program], { timeout: 30000 }, (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve({ stdout: out })));
      });
      expect(JSON.parse(stdout)).toEqual({ uncaught: ['listener bug'], others: ['changed'], iterated: { type: 'changed', path } });
    });

    describe('across faults', () => {
      let proxy;
      beforeEach(async () => { proxy = await startProxy(server.connect); });
      afterEach(async () => { await proxy.close(); });

      it('a listener gets the resync event after a connection loss, then later changes', async () => {
        const watcher = clientAt(proxy.connect, { timeout: 4000 });
        clients.push(watcher);
        const path = `${root}/pw-loss-events`;
        await zk.znodes.create(path, 'v0');
        const w = await watcher.znodes.addWatch(path);
        const seen = [];
        w.on('event', (ev) => seen.push(ev));
        const resynced = new Promise((resolve) => w.once('resync', resolve));
        proxy.partition();
        await new Promise((r) => setTimeout(r, 500));
        proxy.heal();
        expect(await within(resynced, 10000, 'resync event')).toEqual({ type: 'resync', reason: 'reconnected', path });
        const changed = new Promise((resolve) => w.once('changed', resolve));
        await other.znodes.setData(path, 'after');
        expect(await within(changed, 8000, 'change after the reconnect')).toEqual({ type: 'changed', path });
        expect(seen).toEqual([{ type: 'resync', reason: 'reconnected', path }, { type: 'changed', path }]);
        w.close();
      });

      it('after a connection loss the watch is set again (zookeeper-client does not): a resync event, then later changes still arrive', async () => {
        const watcher = clientAt(proxy.connect, { timeout: 4000 });
        clients.push(watcher);
        const path = `${root}/pw-loss`;
        await zk.znodes.create(path, 'v0');
        const w = await watcher.znodes.addWatch(path);
        proxy.partition();
        await new Promise((r) => setTimeout(r, 500));
        proxy.heal();
        expect(await next(w, 'resync')).toEqual({ type: 'resync', reason: 'reconnected', path });
        await other.znodes.setData(path, 'after');
        expect(await next(w, 'change after the reconnect')).toEqual({ type: 'changed', path });
        w.close();
      });

      it('after an expiry the watch is set on the new session: resync (expired), then changes arrive', async () => {
        const watcher = clientAt(proxy.connect, { timeout: 1000 });
        clients.push(watcher);
        const path = `${root}/pw-expiry`;
        await zk.znodes.create(path, 'v0');
        const w = await watcher.znodes.addWatch(path);
        proxy.partition();
        await new Promise((r) => setTimeout(r, 3000));
        proxy.heal();
        expect(await next(w, 'resync')).toEqual({ type: 'resync', reason: 'expired', path });
        await other.znodes.setData(path, 'after');
        expect(await next(w, 'change on the new session')).toEqual({ type: 'changed', path });
        w.close();
      });
    });
  });

  describe('tree cache', () => {
    it('starts from a snapshot of the subtree, then follows creates, changes and deletes', async () => {
      const top = `${root}/tc`;
      await zk.znodes.create(top, 'top');
      await zk.znodes.create(`${top}/a`, 'a0');
      const cache = await zk.znodes.treeCache(top);
      expect(cacheTree(cache)).toEqual({ [top]: 'top', [`${top}/a`]: 'a0' });
      const seen = [];
      for (const t of ['created', 'changed', 'deleted']) cache.on(t, (p) => seen.push([t, p]));
      // one write at a time: the cache re-reads a node on its event, so a node created and
      // deleted before that read is never seen (it converges, but reports no event for it)
      const next = (type) => within(new Promise((resolve) => cache.once(type, resolve)), 8000, type);
      const created = next('created');
      await other.znodes.create(`${top}/a/b`, 'b0');
      await created;
      const changed = next('changed');
      await other.znodes.setData(`${top}/a`, 'a1');
      await changed;
      const deleted = next('deleted');
      await other.znodes.delete(`${top}/a/b`);
      await deleted;
      await converges(cache, other, top, 'after three writes');
      expect(seen).toEqual([['created', `${top}/a/b`], ['changed', `${top}/a`], ['deleted', `${top}/a/b`]]);
      expect(cache.children(top)).toEqual(['a']);
      cache.close();
    });

    it('converges to what the server holds under two concurrent writers', async () => {
      const top = `${root}/tc-writers`;
      await zk.znodes.create(top);
      const cache = await zk.znodes.treeCache(top);
      const w1 = open();
      const w2 = open();
      await Promise.all([write(w1, top, 1500, 1), write(w2, top, 1500, 2)]);
      await converges(cache, other, top, 'after concurrent writers');
      cache.close();
    });

    describe('across faults', () => {
      let proxy;
      beforeEach(async () => { proxy = await startProxy(server.connect); });
      afterEach(async () => { await proxy.close(); });

      for (const [name, session, cutMs] of [['a connection loss', 4000, 600], ['an expiry', 1000, 3000]]) {
        it(`converges after ${name} with writes made while cut (a resync re-reads the subtree)`, async () => {
          const top = `${root}/tc-${session}`;
          await zk.znodes.create(top);
          const c = clientAt(proxy.connect, { timeout: session });
          clients.push(c);
          const cache = await c.znodes.treeCache(top);
          const resynced = new Promise((resolve) => cache.once('resync', resolve));
          proxy.partition();
          await write(other, top, cutMs, 7);
          await new Promise((r) => setTimeout(r, Math.max(0, (session === 1000 ? 3000 : 300) - cutMs)));
          proxy.heal();
          expect(await within(resynced, 10000, 'resync')).toBe(session === 1000 ? 'expired' : 'reconnected');
          await write(other, top, 300, 8);
          await converges(cache, other, top, `after ${name}`);
          cache.close();
        });
      }
    });
  });

  describe('across faults (fault proxy)', () => {
    let proxy;
    beforeEach(async () => { proxy = await startProxy(server.connect); });
    afterEach(async () => { await proxy.close(); });

    it('a connection loss shorter than the session loses no event: a change made while cut fires after the reconnect', async () => {
      const watcher = clientAt(proxy.connect, { timeout: 4000 });
      clients.push(watcher);
      const path = `${root}/w-loss`;
      await zk.znodes.create(path, 'before');
      const { watch } = await watcher.znodes.getData(path, { watch: true });
      let fired = false;
      watch.then(() => { fired = true; });
      proxy.partition();
      await other.znodes.setData(path, 'during');
      await new Promise((r) => setTimeout(r, 800));
      expect(fired).toBe(false); // nothing can reach it while cut
      proxy.heal();
      expect(await within(watch, 8000, 'watch after reconnect')).toEqual({ type: 'changed', path });
      expect((await watcher.znodes.getData(path)).data.toString()).toBe('during');
    });

    it('a cut longer than the session: the watch resolves expired (re-read on the new session), and new calls work on a new session', async () => {
      const watcher = clientAt(proxy.connect, { timeout: 1000 });
      clients.push(watcher);
      const path = `${root}/w-expiry`;
      await zk.znodes.create(path, 'before');
      const firstSession = await watcher.znodes.sessionId();
      const { watch } = await watcher.znodes.getData(path, { watch: true });
      proxy.partition();
      await new Promise((r) => setTimeout(r, 3000)); // the server expires the session
      proxy.heal();
      expect(await within(watch, 10000, 'watch at expiry')).toEqual({ type: 'expired', path });
      expect((await watcher.znodes.getData(path)).data.toString()).toBe('before');
      expect(await watcher.znodes.sessionId()).not.toBe(firstSession);
    });

    it('every call has a deadline: a read while cut rejects TIMEOUT, a write TIMEOUT with outcome unknown', async () => {
      const c = clientAt(proxy.connect, { timeout: 4000, requestTimeout: 500 });
      clients.push(c);
      await c.znodes.exists(root);
      proxy.partition({ mode: 'blackhole' });
      const t0 = Date.now();
      await expect(c.znodes.getData(root)).rejects.toMatchObject({ code: 'TIMEOUT', outcome: 'not_applied' });
      await expect(c.znodes.setData(root, 'x')).rejects.toMatchObject({ code: 'TIMEOUT', outcome: 'unknown' });
      expect(Date.now() - t0).toBeLessThan(3000);
      proxy.heal();
    });
  });
});
