'use strict';
// require('zktx/zookeeper'): programs written the way the `zookeeper` package's README and
// examples write them, with only the require changed, against a real server.
const path = require('node:path');
const { spawn } = require('node:child_process');
const ZooKeeper = require('../zookeeper');
const { ZktxError } = require('..');
const { unique, compatConfig } = require('./helpers/zk');
const { startProxy } = require('../testing');

const host = process.env.ZK_CONNECT;

/** The README's createClient. */
function createClient(timeoutMs = 5000) {
  const config = {
    connect: host,
    timeout: timeoutMs,
    debug_level: ZooKeeper.constants.ZOO_LOG_LEVEL_WARN,
    host_order_deterministic: false,
  };
  return new ZooKeeper(compatConfig(config)); // secure mode (npm run test:secure): TLS and an identity too
}

/** The README's "ready when connected": on('connect'), then init(config). */
function connected(client) {
  return new Promise((resolve) => {
    client.on('connect', () => resolve(client));
    client.init({});
  });
}

describe("require('zktx/zookeeper')", () => {
  const clients = [];
  let client;
  let root;
  const open = async () => {
    const c = await connected(createClient());
    clients.push(c);
    return c;
  };
  beforeAll(async () => {
    client = await open();
    root = `/${unique('zookeeper-compat')}`;
    await client.create(root, '', ZooKeeper.ZOO_PERSISTENT);
  });
  afterAll(async () => { await Promise.all(clients.map((c) => c.close())); });

  it('exports the promise class as the default, the callback class as .ZooKeeper, and the constants on both and as .constants', () => {
    expect(typeof ZooKeeper).toBe('function');
    expect(ZooKeeper.Promise).toBe(ZooKeeper);
    expect(Object.getPrototypeOf(ZooKeeper.prototype)).toBe(ZooKeeper.ZooKeeper.prototype);
    expect(ZooKeeper.constants).toMatchObject({
      ZOO_PERSISTENT: 0, ZOO_EPHEMERAL: 1, ZOO_SEQUENCE: 2, ZOO_EPHEMERAL_SEQUENTIAL: 3, ZOO_CONTAINER: 4,
      ZOO_PERSISTENT_WITH_TTL: 5, ZOO_PERSISTENT_SEQUENTIAL_WITH_TTL: 6, ZOK: 0, ZNONODE: -101, ZNODEEXISTS: -110,
      ZBADVERSION: -103, ZNOTEMPTY: -111, ZCONNECTIONLOSS: -4, ZOO_CONNECTED_STATE: 3, ZOO_LOG_LEVEL_WARN: 2,
      ZOO_CHANGED_EVENT: 3, ZOO_PERM_ALL: 31,
    });
    for (const k of ['ZOO_EPHEMERAL', 'ZOO_SEQUENCE', 'ZOK', 'ZNONODE', 'ZOO_LOG_LEVEL_DEBUG']) {
      expect(ZooKeeper[k]).toBe(ZooKeeper.constants[k]);
      expect(ZooKeeper.ZooKeeper[k]).toBe(ZooKeeper.constants[k]);
    }
  });

  it("the README's create: resolves the created path; creating it again rejects '-110 node exists'", async () => {
    const p = `${root}/myPath`;
    const createdPath = await client.create(p, 'data', ZooKeeper.constants.ZOO_EPHEMERAL);
    expect(createdPath).toBe(p);
    const error = await client.create(p, 'data', ZooKeeper.constants.ZOO_EPHEMERAL).catch((e) => e);
    expect(error.message).toBe('-110 node exists');
    expect(error).toBeInstanceOf(ZktxError);
    expect(error).toMatchObject({ code: 'NODEEXISTS', rc: ZooKeeper.ZNODEEXISTS });
    expect(client.state).toBe(ZooKeeper.ZOO_CONNECTED_STATE);
    expect(client.client_id).toMatch(/^[0-9a-f]+$/);
  });

  it("client_id / client_password resume a session (the C client's zoo_init with a clientid): its ephemeral node outlives the killed process that made it", async () => {
    const node = `${root}/resumed`;
    const program = `
      const ZooKeeper = require(${JSON.stringify(require.resolve('../zookeeper'))});
      const { compatConfig } = require(${JSON.stringify(require.resolve('./helpers/secure'))});
      const c = new ZooKeeper(compatConfig({ connect: ${JSON.stringify(host)}, timeout: 4000 }));
      c.on('connect', async () => {
        await c.create(${JSON.stringify(node)}, 'mine', ZooKeeper.ZOO_EPHEMERAL);
        console.log(JSON.stringify({ id: c.client_id, password: c.client_password }));
      });
      c.init({});`;
    const child = spawn(process.execPath, ['-e', program], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => { out += d; if (out.includes('\n')) resolve(out.split('\n')[0]); });
      child.on('exit', (code) => reject(new Error(`child exited (${code}) before printing its session`)));
    });
    child.kill('SIGKILL'); // dropped without close(): its session lives on until the server expires it
    const { id, password } = JSON.parse(line);
    expect(id).toMatch(/^[0-9a-f]+$/);
    expect(password).toMatch(/^[0-9a-f]{32}$/);

    const resumed = new ZooKeeper(compatConfig({ connect: host, timeout: 4000 }));
    clients.push(resumed);
    await new Promise((resolve) => { resumed.once('connect', resolve); resumed.init({ client_id: id, client_password: password }); });
    expect(resumed.client_id).toBe(id);
    expect(resumed.client_password).toBe(password);
    const [stat, data] = await resumed.get(node, false);
    expect(data.toString()).toBe('mine');
    expect(stat).toMatchObject({ ephemeralOwner: id, createdInThisSession: true });
    // well past the session timeout (4 s): the session lives, through this client
    await new Promise((r) => setTimeout(r, 6000));
    expect((await client.exists(node, false)).ephemeralOwner).toBe(id);
    await resumed.close(); // closing it ends that session: the node goes
    expect(await client.pathExists(node, false)).toBe(false);
  }, 30000);

  it("a wrong client_password: the server refuses to resume, and the client ends as the C client's would (close with ZOO_EXPIRED_SESSION_STATE, calls reject '-112 session expired')", async () => {
    const owner = await open();
    const wrong = new ZooKeeper(compatConfig({ connect: host, timeout: 4000 }));
    clients.push(wrong);
    const closed = new Promise((resolve) => wrong.once('close', (c, code) => resolve(code)));
    wrong.init({ client_id: owner.client_id, client_password: '00'.repeat(16) });
    expect(await closed).toBe(ZooKeeper.ZOO_EXPIRED_SESSION_STATE);
    expect(wrong.state).toBe(ZooKeeper.ZOO_EXPIRED_SESSION_STATE);
    await expect(wrong.get(root, false)).rejects.toMatchObject({ message: '-112 session expired', rc: -112, code: 'SESSIONEXPIRED' });
    expect(await owner.pathExists(root, false)).toBe(true); // the owner's session is untouched
  });

  it('init refuses a session id or password that cannot be one, and a zktx key that is not an object (INVALID_ARGUMENT)', () => {
    const thrown = (f) => { try { f(); } catch (err) { return err; } throw new Error('expected a throw'); };
    const fresh = () => new ZooKeeper(compatConfig({ connect: host, timeout: 5000 }));
    for (const [config, message] of [
      [{ client_id: client.client_id }, /both hex strings/],
      [{ client_id: 'xyz', client_password: '00'.repeat(16) }, /session.id must be a session id in hex/],
      [{ client_id: client.client_id, client_password: 'abc' }, /session.password must be/],
      [{ client_id: client.client_id, client_password: '00'.repeat(8) }, /16 bytes/],
    ]) {
      const err = thrown(() => fresh().init(config));
      expect(err).toBeInstanceOf(ZktxError);
      expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(message) });
    }
    const options = thrown(() => new ZooKeeper({ connect: host, zktx: 'tls' }).init({}));
    expect(options).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/zktx must be an object/) });
  });

  it('get resolves [stat, data] (a Buffer, or a string with data_as_buffer false); set and delete_ take versions', async () => {
    const p = `${root}/data`;
    await client.create(p, 'v0', ZooKeeper.ZOO_PERSISTENT);
    const [stat, data] = await client.get(p, false);
    expect(Buffer.isBuffer(data)).toBe(true);
    expect(data.toString()).toBe('v0');
    expect(stat).toMatchObject({ version: 0, dataLength: 2, numChildren: 0, ephemeralOwner: '0', createdInThisSession: false });
    expect(stat.mtime).toBeInstanceOf(Date);
    const s1 = await client.set(p, 'v1', 0);
    expect(s1.version).toBe(1);
    await expect(client.set(p, 'v2', 0)).rejects.toMatchObject({ message: '-103 bad version', rc: -103 });
    const strings = await connected(new ZooKeeper(compatConfig({ connect: host, timeout: 5000, data_as_buffer: false })));
    clients.push(strings);
    expect((await strings.get(p, false))[1]).toBe('v1');
    await client.delete_(p, 1);
    await expect(client.exists(p, false)).rejects.toMatchObject({ message: '-101 no node' });
    expect(await client.pathExists(p, false)).toBe(false);
  });

  it('get_children, get_children2, mkdirp, sync, get_acl / set_acl', async () => {
    await client.mkdirp(`${root}/a/b/c`);
    await client.mkdirp(`${root}/a/b/c`); // again: no error
    expect(await client.get_children(`${root}/a`, false)).toEqual(['b']);
    const [children, stat] = await client.get_children2(`${root}/a/b`, false);
    expect(children).toEqual(['c']);
    expect(stat.numChildren).toBe(1);
    expect(await client.sync(`${root}/a`)).toBe(`${root}/a`);
    const [acl] = await client.get_acl(`${root}/a`);
    expect(acl).toEqual([{ perms: 31, scheme: 'world', auth: 'anyone' }]);
    await client.set_acl(`${root}/a/b/c`, -1, ZooKeeper.constants.ZOO_READ_ACL_UNSAFE);
    await expect(client.set(`${root}/a/b/c`, 'x', -1)).rejects.toMatchObject({ message: '-102 not authenticated' });
  });

  it('a w_get watcher is called once with (type, state, path); get(path, true) emits the event on the client', async () => {
    const p = `${root}/watched`;
    await client.create(p, 'v0', ZooKeeper.ZOO_PERSISTENT);
    const other = await open();
    const event = new Promise((resolve) => client.w_get(p, (type, state, where) => resolve([type, state, where])));
    await new Promise((r) => setTimeout(r, 50));
    await other.set(p, 'v1', -1);
    expect(await event).toEqual([ZooKeeper.ZOO_CHANGED_EVENT, ZooKeeper.ZOO_CONNECTED_STATE, p]);
    const emitted = new Promise((resolve) => client.once('deleted', (zk, where) => resolve([zk, where])));
    await client.get(p, true);
    await other.delete_(p, -1);
    expect(await emitted).toEqual([client, p]);
  });

  it('the callback API: a_create, a_get, a_exists call back (rc, error, ...result)', async () => {
    const p = `${root}/callbacks`;
    const created = await new Promise((resolve) => client.a_create(p, 'cb', ZooKeeper.ZOO_PERSISTENT, (rc, error, value) => resolve([rc, error, value])));
    expect(created).toEqual([0, 'ok', p]);
    const got = await new Promise((resolve) => client.a_get(p, false, (rc, error, stat, data) => resolve([rc, stat.version, data.toString()])));
    expect(got).toEqual([0, 0, 'cb']);
    const missing = await new Promise((resolve) => client.a_exists(`${p}/none`, false, (rc, error) => resolve([rc, error])));
    expect(missing).toEqual([ZooKeeper.ZNONODE, 'no node']);
  });

  it("close() ends the session: 'close' is emitted and the client's ephemeral nodes are gone", async () => {
    const c = await open();
    const p = await c.create(`${root}/eph-`, '', ZooKeeper.ZOO_EPHEMERAL | ZooKeeper.ZOO_SEQUENCE);
    const closed = new Promise((resolve) => c.once('close', resolve));
    await c.close();
    await closed;
    expect(await client.pathExists(p, false)).toBe(false);
  });

  it('transaction (zktx\'s addition: the package has no multi) commits all or nothing', async () => {
    const p = `${root}/tx`;
    await client.create(p, 'v0', ZooKeeper.ZOO_PERSISTENT);
    const results = await client.transaction([{ op: 'check', path: p, version: 0 }, { op: 'set', path: p, data: 'v1' }, { op: 'create', path: `${p}/kid` }]);
    expect(results.map((r) => r.op)).toEqual(['check', 'set', 'create']);
    await expect(client.transaction([{ op: 'delete', path: `${p}/kid` }, { op: 'check', path: p, version: 0 }])).rejects.toMatchObject({ message: '-103 bad version', index: 1 });
    expect(await client.get_children(p, false)).toEqual(['kid']);
  });

  it("an expired session ends the client, as with the C client: pending watchers are told of the disconnection but never of the expiry, 'close' is emitted, calls reject '-112 session expired'", async () => {
    const proxy = await startProxy(host);
    try {
      const c = await connected(new ZooKeeper(compatConfig({ connect: proxy.connect, timeout: 1000 })));
      clients.push(c);
      const p = `${root}/expiring`;
      await client.create(p, '', ZooKeeper.ZOO_PERSISTENT);
      const calls = [];
      await c.w_get(p, (type, state, path) => calls.push([type, state, path]));
      const closed = new Promise((resolve) => c.once('close', (zk, code) => resolve(code)));
      await new Promise((r) => setTimeout(r, 50));
      proxy.partition();
      await new Promise((r) => setTimeout(r, 3500)); // past the session timeout
      proxy.heal();
      expect(await closed).toBe(ZooKeeper.ZOO_EXPIRED_SESSION_STATE);
      // The package's watcher_fn returns once the session expired (node-zk.cpp WATCHER_PROLOG).
      expect(calls).toEqual([[ZooKeeper.ZOO_SESSION_EVENT, ZooKeeper.ZOO_CONNECTING_STATE, '']]);
      expect(c.state).toBe(ZooKeeper.ZOO_EXPIRED_SESSION_STATE);
      expect(c.is_unrecoverable).toBe(true);
      await expect(c.get(p, false)).rejects.toMatchObject({ message: '-112 session expired', rc: -112 });
    } finally {
      await proxy.close();
    }
  });

  it("two processes running the tutorial's lock (create EPHEMERAL|SEQUENCE, get_children, w_exists, delete_) never lose an increment", async () => {
    const lockDir = `${root}/lock`;
    const counter = `${root}/counter`;
    await client.create(lockDir, '', ZooKeeper.ZOO_PERSISTENT);
    await client.create(counter, '0', ZooKeeper.ZOO_PERSISTENT);
    const ROUNDS = 40;
    const worker = path.join(__dirname, 'zookeeper', 'lock-worker.js');
    const run = () => new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [worker, host, lockDir, counter, String(ROUNDS)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => { out += d; });
      child.stderr.on('data', (d) => { out += d; });
      child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`worker exited ${code}: ${out}`))));
    });
    const outputs = await Promise.all([run(), run()]);
    expect(outputs).toEqual(['done\n', 'done\n']);
    const [, data] = await client.get(counter, false);
    expect(Number(data.toString())).toBe(2 * ROUNDS);
    expect(await client.get_children(lockDir, false)).toEqual([]);
  });
});
