'use strict';
// Against a secured ensemble: the auth and acl options, on dedicated servers (one with a digest
// super user to inspect and clean up what clients cannot see, one that enforces authentication).
//
// ZooKeeper's digest provider accepts any "user:password" and grants that identity: a wrong
// password is not refused at connect, it is another identity, refused (NOAUTH) by the ACLs.
const { spawnSync } = require('node:child_process');
const util = require('node:util');
const raw = require('node-zookeeper-client');
const { ZooKeeper } = require('..');
const { clientAt, unique, zkScripts } = require('./helpers/zk');

const SUPER = 'super:super-secret-pw';
const ALICE = 'alice:alice-secret-pw';
const BOB = 'bob:bob-secret-pw';
const digest = (userPassword) => [{ scheme: 'digest', credentials: userPassword }];
const ALICE_ID = ZooKeeper.digestId('alice', 'alice-secret-pw');

/** A raw client (node-zookeeper-client) with the given digest identity, promisified. */
async function rawClient(connect, userPassword) {
  const c = raw.createClient(connect, { sessionTimeout: 5000, retries: 0 });
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('raw client: no connection')), 10000);
    c.once('connected', () => { clearTimeout(t); resolve(); });
    c.connect();
  });
  if (userPassword) c.addAuthInfo('digest', Buffer.from(userPassword));
  const p = (m) => (...args) => new Promise((resolve, reject) => c[m](...args, (err, ...r) => (err ? reject(err) : resolve(r))));
  return {
    getACL: async (path) => (await p('getACL')(path))[0],
    children: async (path) => (await p('getChildren')(path))[0],
    getData: async (path) => (await p('getData')(path))[0],
    remove: (path) => p('remove')(path, -1),
    mkdirp: (path) => p('mkdirp')(path),
    close: () => c.close(),
  };
}

/** Every node under `path` (itself included), depth first, as seen by `c` (the super user). */
async function tree(c, path) {
  const out = [path];
  for (const child of await c.children(path)) out.push(...(await tree(c, `${path === '/' ? '' : path}/${child}`)));
  return out;
}

const aclOf = (acls) => acls.map((a) => ({ perms: a.permission, scheme: a.id.scheme, id: a.id.id }));

describe('a secured server (digest identities, creator-only ACLs)', () => {
  let server;
  let superUser;
  const clients = [];
  const at = (options) => {
    const zk = clientAt(server.connect, { timeout: 5000, ...options });
    clients.push(zk);
    return zk;
  };
  beforeAll(async () => {
    server = await zkScripts.startStandalone({ tickTime: 500, auth: { digestSuperUser: SUPER } });
    superUser = await rawClient(server.connect, SUPER);
  });
  afterAll(async () => {
    await Promise.all(clients.map((zk) => zk.close().catch(() => {})));
    if (superUser) superUser.close();
    if (server) await server.stop();
  });

  it("an authenticated client locks, transacts and fences as before, and every node it creates carries its ACL", async () => {
    const alice = at({ auth: digest(ALICE), acl: 'creator-all' });
    const lock = await alice.lock('/app/locks/orders');
    await alice.set('order-1', { state: 'new' }, { lock });
    await lock.release();
    const r = await alice.executeTransaction('order-1', (cur) => ({ ...cur, state: 'paid' }));
    expect(r.value).toEqual({ state: 'paid' });
    await alice.transaction(async (tx) => { tx.set('order-2', { n: (await tx.get('order-1')).state }); }, { id: unique('tx') });
    expect(await alice.get('order-2')).toEqual({ n: 'paid' });
    await alice.pruneTransactionIds(3600000); // creates the clock node, keeps the marker
    const sem = await alice.semaphore('/app/sem', 2).acquire();
    const rw = await alice.readWriteLock('/app/rw').readLock();

    // What zktx created: /zktx, its values, the txn-ids marker, the clock, lock directories
    // and lock nodes; all with alice's identity only (the super user sees them).
    const nodes = [...(await tree(superUser, '/zktx')), ...(await tree(superUser, '/app'))];
    expect(nodes).toEqual(expect.arrayContaining(['/zktx/clock', '/zktx/kv', '/zktx/txn-ids', '/app/sem', '/app/rw']));
    expect(nodes.some((n) => n.startsWith('/zktx/txn-ids/'))).toBe(true);
    expect(nodes.some((n) => n.startsWith('/app/sem/_c_'))).toBe(true);
    for (const node of nodes) {
      expect([node, aclOf(await superUser.getACL(node))]).toEqual([node, [{ perms: 31, scheme: 'digest', id: ALICE_ID }]]);
    }
    await sem.release();
    await rw.release();
  });

  it('another identity can neither delete a holder\'s lock node nor write a key: NOAUTH, nothing changed', async () => {
    const alice = at({ auth: digest(ALICE), acl: 'creator-all' });
    const bob = at({ auth: digest(BOB), acl: 'creator-all' });
    const key = unique('owned');
    await alice.set(key, { owner: 'alice' });
    const lock = await alice.lock('/app/locks/owned');
    const [node] = await superUser.children('/app/locks/owned');

    const bobRaw = await rawClient(server.connect, BOB);
    try {
      await expect(bobRaw.remove(`/app/locks/owned/${node}`)).rejects.toMatchObject({ code: raw.Exception.NO_AUTH });
      await expect(bobRaw.getData(`/zktx/kv/${key}`)).rejects.toMatchObject({ code: raw.Exception.NO_AUTH });
    } finally {
      bobRaw.close();
    }
    for (const attempt of [
      () => bob.set(key, { owner: 'bob' }),
      () => bob.executeTransaction(key, { owner: 'bob' }),
      () => bob.transaction((tx) => tx.set(key, { owner: 'bob' })),
      () => bob.get(key),
      () => bob.lock('/app/locks/owned', { timeout: 200 }),
    ]) {
      const err = await attempt().then(() => null, (e) => e);
      expect(err).toMatchObject({ name: 'ZktxError', code: 'NOAUTH', outcome: 'not_applied' });
      expect(err.message).toMatch(/auth option/);
    }

    // Verified by the first client: value unchanged, lock still held and still fences writes.
    expect(await alice.get(key)).toEqual({ owner: 'alice' });
    expect(await lock.isHeld()).toBe(true);
    expect(await superUser.children('/app/locks/owned')).toEqual([node]);
    await alice.set(key, { owner: 'alice', v: 2 }, { lock });
    await lock.release();
  });

  it('an unauthenticated client gets NOAUTH and changes nothing; a wrong digest password is just another identity', async () => {
    const alice = at({ auth: digest(ALICE), acl: 'creator-all' });
    const key = unique('guarded');
    await alice.set(key, 1);
    const anonymous = at({});
    const guesser = at({ auth: digest('alice:wrong-password') });
    await guesser.connect(); // the server does not refuse it...
    for (const zk of [anonymous, guesser]) {
      await expect(zk.set(key, 2)).rejects.toMatchObject({ code: 'NOAUTH', outcome: 'not_applied' }); // ...its ACLs do
      await expect(zk.set(unique('new-key'), 2)).rejects.toMatchObject({ code: 'NOAUTH' }); // no CREATE on /zktx/kv
      await expect(zk.lock('/app/locks/guarded', { timeout: 200 })).rejects.toMatchObject({ code: 'NOAUTH' });
    }
    expect(await alice.get(key)).toBe(1);
    expect(await superUser.children('/zktx/kv')).not.toContain(expect.stringMatching(/^new-key/));
  });

  it('an auth scheme the server has no provider for is AUTHFAILED at connect, at once', async () => {
    const zk = at({ auth: [{ scheme: 'nosuch', credentials: 'x' }] });
    const t0 = Date.now();
    const err = await zk.connect().then(() => null, (e) => e);
    expect(err).toMatchObject({ code: 'AUTHFAILED' });
    expect(err.message).toMatch(/"nosuch"/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it("'read-only': what zktx creates can be read by anyone and changed by no one, its creator included", async () => {
    const ro = clientAt(`${server.connect}/ro`, { timeout: 5000, acl: 'read-only' });
    clients.push(ro);
    // Not even zktx's own directories: creating inside a world:read node needs CREATE on it.
    await superUser.mkdirp('/ro');
    await expect(ro.set('frozen', 'v1')).rejects.toMatchObject({ code: 'NOAUTH' });
    // With the directories made by an admin (open ACL here), a value is written once...
    await superUser.remove('/ro/zktx');
    await superUser.mkdirp('/ro/zktx/kv');
    await superUser.mkdirp('/ro/zktx/clock');
    await ro.set('frozen', 'v1');
    expect(aclOf(await superUser.getACL('/ro/zktx/kv/frozen'))).toEqual([{ perms: 1, scheme: 'world', id: 'anyone' }]);
    expect(await ro.get('frozen')).toBe('v1');
    // ...and never changed again.
    await expect(ro.set('frozen', 'v2')).rejects.toMatchObject({ code: 'NOAUTH' });
    expect(await ro.get('frozen')).toBe('v1');
  });

  it('an explicit ACL list: full rights for alice, read-only for bob', async () => {
    await superUser.mkdirp('/shared');
    const acl = [
      { perms: 'rwcda', scheme: 'digest', id: ALICE_ID },
      { perms: ['read'], scheme: 'digest', id: ZooKeeper.digestId('bob', 'bob-secret-pw') },
    ];
    const alice = clientAt(`${server.connect}/shared`, { timeout: 5000, auth: digest(ALICE), acl });
    const bob = clientAt(`${server.connect}/shared`, { timeout: 5000, auth: digest(BOB) });
    clients.push(alice, bob);
    await alice.set('doc', { v: 1 });
    expect(await bob.get('doc')).toEqual({ v: 1 });
    await expect(bob.set('doc', { v: 2 })).rejects.toMatchObject({ code: 'NOAUTH' });
    expect(await alice.get('doc')).toEqual({ v: 1 });
  });

  it('secrets never appear in errors, util.inspect(zk), or debug-level logs', async () => {
    const alice = at({ auth: digest(ALICE), acl: 'creator-all' });
    await alice.connect();
    expect(util.inspect(alice, { depth: 10, showHidden: true })).not.toMatch(/alice-secret-pw/);
    for (const bad of [
      () => new ZooKeeper({ auth: [{ scheme: 'digest', credentials: 'no-colon-secret-pw' }] }),
      () => new ZooKeeper({ auth: [{ scheme: 'digest', credentials: 42 }] }),
      () => new ZooKeeper({ auth: digest(ALICE), acl: [{ perms: 'rwcda', scheme: 'digest', id: ALICE }] }), // the password, not its digest
    ]) {
      let err;
      try {
        bad();
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect(`${err.message} ${err.stack}`).not.toMatch(/secret-pw|no-colon/);
    }

    // A child process at debug level 4: connect, write, get refused, reconnect-free close.
    const script = `
      const { ZooKeeper } = require(${JSON.stringify(require.resolve('..'))});
      (async () => {
        const a = new ZooKeeper({ connect: ${JSON.stringify(server.connect)}, debug_level: 4, timeout: 5000, auth: [{ scheme: 'digest', credentials: ${JSON.stringify(ALICE)} }], acl: 'creator-all' });
        await a.set('logged', 1);
        const b = new ZooKeeper({ connect: ${JSON.stringify(server.connect)}, timeout: 5000, auth: [{ scheme: 'digest', credentials: Buffer.from(${JSON.stringify(BOB)}) }] });
        const err = await b.set('logged', 2).catch((e) => e);
        console.error('refused:', err.code, err.message);
        const c = new ZooKeeper({ connect: ${JSON.stringify(server.connect)}, timeout: 5000, auth: [{ scheme: 'nosuch', credentials: 'nosuch-secret-pw' }] });
        console.error('authfailed:', (await c.connect().catch((e) => e)).message);
        await Promise.all([a.close(), b.close(), c.close()]);
      })().catch((e) => { console.error('FAILED', e); process.exit(1); });`;
    const env = { ...process.env };
    delete env.ZK_CONNECT;
    const out = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8', timeout: 30000 });
    expect(out.status).toBe(0);
    expect(out.stderr).toMatch(/DEBUG/); // the debug log really was on
    expect(out.stderr).toMatch(/refused: NOAUTH/);
    expect(out.stderr).toMatch(/authfailed: AUTHFAILED/);
    expect(out.stderr).not.toMatch(/secret-pw/);
    expect(out.stdout).not.toMatch(/secret-pw/);
  });
});

describe('a server that enforces authentication (enforce.auth.enabled)', () => {
  let server;
  beforeAll(async () => {
    server = await zkScripts.startStandalone({ tickTime: 500, auth: { enforce: ['digest'] } });
  });
  afterAll(async () => { if (server) await server.stop(); });

  it('refuses an unauthenticated session with AUTHFAILED at connect, within the connect, not a hang', async () => {
    const anonymous = clientAt(server.connect, { timeout: 5000 });
    const t0 = Date.now();
    await expect(anonymous.connect()).rejects.toMatchObject({ code: 'AUTHFAILED' });
    expect(Date.now() - t0).toBeLessThan(2000);
    await anonymous.close();
    const alice = clientAt(server.connect, { timeout: 5000, auth: digest(ALICE) });
    await alice.set(unique('enforced'), 1);
    await alice.close();
  });
});

describe('a server with SASL DIGEST-MD5 users that enforces SASL', () => {
  let server;
  const sasl = (password) => ({ mechanism: 'DIGEST-MD5', username: 'alice', password });
  beforeAll(async () => {
    server = await zkScripts.startStandalone({ tickTime: 500, auth: { saslUsers: { alice: 'alice-sasl-pw' }, enforce: ['sasl'] } });
  });
  afterAll(async () => { if (server) await server.stop(); });

  it('a wrong SASL password is AUTHFAILED at connect, within a bounded time, not a hang; so is no SASL at all', async () => {
    for (const options of [{ sasl: sasl('wrong-sasl-pw') }, {}]) {
      const zk = clientAt(server.connect, { timeout: 5000, ...options });
      const t0 = Date.now();
      const err = await zk.connect().then(() => null, (e) => e);
      expect(err).toMatchObject({ name: 'ZktxError', code: 'AUTHFAILED' });
      expect(err.message).not.toMatch(/pw/);
      expect(Date.now() - t0).toBeLessThan(2000);
      await zk.close();
    }
  });

  it('the SASL password never appears in util.inspect(zk) or debug-level logs', async () => {
    const zk = clientAt(server.connect, { timeout: 5000, sasl: sasl('alice-sasl-pw') });
    await zk.connect();
    expect(util.inspect(zk, { depth: 10, showHidden: true })).not.toMatch(/sasl-pw/);
    await zk.close();
    const script = `
      const { ZooKeeper } = require(${JSON.stringify(require.resolve('..'))});
      (async () => {
        const o = (password) => ({ connect: ${JSON.stringify(server.connect)}, debug_level: 4, timeout: 5000, sasl: { username: 'alice', password } });
        const a = new ZooKeeper(o('alice-sasl-pw'));
        await a.set('logged', 1);
        const b = new ZooKeeper(o('wrong-sasl-pw'));
        console.error('authfailed:', (await b.connect().catch((e) => e)).message);
        await Promise.all([a.close(), b.close()]);
      })().catch((e) => { console.error('FAILED', e); process.exit(1); });`;
    const out = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
    expect(out.status).toBe(0);
    expect(out.stderr).toMatch(/DEBUG/);
    expect(out.stderr).toMatch(/authfailed: AUTHFAILED/);
    expect(`${out.stderr}${out.stdout}`).not.toMatch(/sasl-pw/);
  });

  it('the right password locks and transacts under creator-all, and the identity survives a server restart', async () => {
    const alice = clientAt(server.connect, { timeout: 8000, sasl: sasl('alice-sasl-pw'), acl: 'creator-all' });
    try {
      const key = unique('sasl');
      const lock = await alice.lock('/sasl/locks/a');
      await alice.set(key, 1, { lock });
      await lock.release();
      await alice.executeTransaction(key, (n) => n + 1);
      const states = [];
      alice.on('state', (st) => states.push(st));
      server.kill('SIGKILL');
      await server.restart(); // sessions survive a restart within their timeout
      const t0 = Date.now();
      while (!states.includes('RECONNECTED') && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 50));
      expect(states).toContain('RECONNECTED');
      // Creator-only nodes: only an identity re-established after the reconnect may write them.
      await alice.executeTransaction(key, (n) => n + 1);
      expect(await alice.get(key)).toBe(3);
    } finally {
      await alice.close();
    }
  });
});

describe('auth and acl options', () => {
  const refused = (options) => {
    try {
      new ZooKeeper(options).close();
    } catch (e) {
      return e.code;
    }
    return 'accepted';
  };

  it('accepts the presets, perms as letters or names, and credentials as a string or a Buffer', () => {
    expect(refused({ sasl: { username: 'u', password: 'p' }, acl: 'creator-all' })).toBe('accepted');
    for (const acl of ['open', 'creator-all', 'read-only', [{ perms: 'r', scheme: 'world', id: 'anyone' }], [{ perms: ['read', 'write', 'all'], scheme: 'ip', id: '127.0.0.1' }]]) {
      expect([acl, refused({ auth: [{ scheme: 'digest', credentials: Buffer.from('u:p') }], acl })]).toEqual([acl, 'accepted']);
    }
  });

  it('refuses with INVALID_ARGUMENT what ZooKeeper would refuse or misread, before connecting', () => {
    for (const options of [
      { acl: 'creator-all' }, // the auth scheme needs an authenticated identity
      { acl: 'nobody' },
      { acl: [] },
      { acl: [{ perms: '', scheme: 'world', id: 'anyone' }] },
      { acl: [{ perms: 'rwx', scheme: 'world', id: 'anyone' }] },
      { acl: [{ perms: ['read', 'fly'], scheme: 'world', id: 'anyone' }] },
      { acl: [{ perms: 'r', scheme: 'world' }] },
      { acl: [{ perms: 'r', scheme: 'world', id: 'anyone', extra: 1 }] },
      { acl: [{ perms: 'r', scheme: 'digest', id: 'alice' }] },
      { auth: { scheme: 'digest', credentials: 'u:p' } },
      { auth: [{ credentials: 'u:p' }] },
      { auth: [{ scheme: 'digest', credentials: 'nocolon' }] },
      { auth: [{ scheme: 'digest', credentials: null }] },
      { sasl: { mechanism: 'GSSAPI', username: 'u', password: 'p' } },
      { sasl: { username: '', password: 'p' } },
      { sasl: { username: 'u' } },
      { sasl: 'u:p' },
    ]) {
      expect([options, refused(options)]).toEqual([options, 'INVALID_ARGUMENT']);
    }
  });

  it('digestId is the id ZooKeeper derives from user:password', () => {
    expect(ZooKeeper.digestId('super', 'super-secret-pw')).toBe(zkScripts.superDigest(SUPER));
    expect(ZooKeeper.digestId('alice', 'pw')).toMatch(/^alice:[A-Za-z0-9+/]{27}=$/);
  });
});
