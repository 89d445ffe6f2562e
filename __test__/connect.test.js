'use strict';
// Where a client connects: the explicit `connect` option wins over the environment (as libpq's
// explicit parameters beat PGHOST); ZK_CONNECT only fills in when `connect` is not given; only
// ZKTX_CONNECT_OVERRIDE, named for it, overrides an explicit `connect` (the demo and the tests
// run the tutorial, which says 'localhost:2181', against their own server that way).
const { ZooKeeper } = require('..');

/** Runs `f` with these environment variables (undefined: unset), then restores them. */
function withEnv(vars, f) {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const set = (k, v) => { if (v === undefined) delete process.env[k]; else process.env[k] = v; };
  for (const [k, v] of Object.entries(vars)) set(k, v);
  try {
    return f();
  } finally {
    for (const [k, v] of Object.entries(saved)) set(k, v);
  }
}

/** The connect string a client constructed with `options` uses (it never connects: lazy). */
function connectOf(options) {
  const zk = new ZooKeeper(options);
  zk.close();
  return zk.connectString;
}

describe('connect string precedence', () => {
  it('an explicit connect wins over ZK_CONNECT', () => {
    withEnv({ ZK_CONNECT: 'env-host:2181', ZKTX_CONNECT_OVERRIDE: undefined }, () => {
      expect(connectOf({ connect: 'explicit-host:2181' })).toBe('explicit-host:2181');
    });
  });

  it('ZK_CONNECT fills in when connect is not given; else localhost:2181', () => {
    withEnv({ ZK_CONNECT: 'env-host:2181', ZKTX_CONNECT_OVERRIDE: undefined }, () => {
      expect(connectOf({})).toBe('env-host:2181');
      expect(connectOf(undefined)).toBe('env-host:2181');
      expect(connectOf({ connect: undefined })).toBe('env-host:2181');
    });
    withEnv({ ZK_CONNECT: undefined, ZKTX_CONNECT_OVERRIDE: undefined }, () => {
      expect(connectOf({})).toBe('localhost:2181');
    });
  });

  it('ZKTX_CONNECT_OVERRIDE beats an explicit connect and ZK_CONNECT', () => {
    withEnv({ ZK_CONNECT: 'env-host:2181', ZKTX_CONNECT_OVERRIDE: 'override-host:2181' }, () => {
      expect(connectOf({ connect: 'explicit-host:2181' })).toBe('override-host:2181');
      expect(connectOf({})).toBe('override-host:2181');
    });
  });

  it('a malformed explicit connect is refused even when overridden; a malformed variable is named', () => {
    withEnv({ ZKTX_CONNECT_OVERRIDE: 'override-host:2181' }, () => {
      expect(() => new ZooKeeper({ connect: '' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    });
    withEnv({ ZKTX_CONNECT_OVERRIDE: ',' }, () => {
      expect(() => new ZooKeeper({})).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('ZKTX_CONNECT_OVERRIDE') }));
    });
    withEnv({ ZK_CONNECT: ',', ZKTX_CONNECT_OVERRIDE: undefined }, () => {
      expect(() => new ZooKeeper({})).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('ZK_CONNECT') }));
      expect(connectOf({ connect: 'explicit-host:2181' })).toBe('explicit-host:2181'); // not consulted
    });
  });
});

describe('a malformed connect string is refused by the constructor, naming the string and its source', () => {
  const refused = (options, env = {}) => withEnv({ ZK_CONNECT: undefined, ZKTX_CONNECT_OVERRIDE: undefined, ...env }, () => {
    try {
      new ZooKeeper(options).close();
    } catch (err) {
      return err;
    }
    throw new Error(`accepted ${JSON.stringify(options)}`);
  });

  it.each([
    ['zk://h:2181', /a URL scheme \("zk:\/\/"\) is not part of it/],
    ['localhost:abc', /port "abc" of "localhost:abc" is not a number from 1 to 65535/],
    ['localhost:0', /port "0"/],
    ['localhost:65536', /port "65536"/],
    ['h1:2181,,h2:2181', /an empty host \(a stray comma\?\)/],
    ['h:2181/app/', /chroot "\/app\/" ends with "\/"/],
    ['h:2181/a//b', /chroot "\/a\/\/b" has an empty node name/],
    ['h:2181/a/../b', /relative node name/],
    ['::1:2181', /several ":" \(write an IPv6 address in brackets/],
    ['[::1:2181', /opens "\[" without "\]"/],
    ['bad host:2181', /"bad host" in "bad host:2181" is not a host name or address/],
    ['', /it is empty/],
  ])('%j', (connect, why) => {
    const err = refused({ connect });
    expect(err).toMatchObject({ name: 'ZktxError', code: 'INVALID_ARGUMENT' });
    expect(err.message).toMatch(why);
    expect(err.message).toContain('the `connect` option');
    expect(err.message).toContain(`got ${JSON.stringify(connect)}`);
  });

  it('names ZK_CONNECT or ZKTX_CONNECT_OVERRIDE when the string came from there', () => {
    expect(refused({}, { ZK_CONNECT: 'localhost:abc' }).message).toMatch(/^ZK_CONNECT \(environment variable\) is not a ZooKeeper connect string: port "abc"/);
    expect(refused({}, { ZKTX_CONNECT_OVERRIDE: 'zk://h:2181' }).message).toMatch(/^ZKTX_CONNECT_OVERRIDE \(environment variable\) is not a ZooKeeper connect string/);
  });

  it('accepts what ZooKeeper accepts: several hosts, default port, IPv6 in brackets, a chroot, spaces around hosts (trimmed)', () => {
    withEnv({ ZK_CONNECT: undefined, ZKTX_CONNECT_OVERRIDE: undefined }, () => {
      for (const c of ['localhost', 'zk1:2181,zk2:2182,zk3:2183/app/orders', '[::1]:2181', '[::1]', '10.0.0.1:2181/', 'zk-1.example.com:65535']) {
        expect(connectOf({ connect: c })).toBe(c);
      }
      expect(connectOf({ connect: ' zk1:2181 , zk2:2181' })).toBe('zk1:2181,zk2:2181');
    });
  });
});

describe('connect strings as written in the wild', () => {
  it('a fully qualified host name with its trailing root dot is a host name', () => {
    withEnv({ ZK_CONNECT: undefined, ZKTX_CONNECT_OVERRIDE: undefined }, () => {
      expect(connectOf({ connect: 'zk-0.zk-hs.default.svc.cluster.local.:2181' })).toBe('zk-0.zk-hs.default.svc.cluster.local.:2181');
      expect(connectOf({ connect: 'zk1.example.com.:2181,zk2.example.com.:2181/app' })).toBe('zk1.example.com.:2181,zk2.example.com.:2181/app');
      expect(() => new ZooKeeper({ connect: 'a..b:2181' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
      expect(() => new ZooKeeper({ connect: '.:2181' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    });
  });

  it('zookeeper-client takes a root-dotted name too: an unknown one fails as not found, not as an invalid address', async () => {
    const zk = new ZooKeeper({ connect: 'zktx-nowhere.invalid.:2181', connectTimeout: 5000 });
    try {
      await expect(zk.children('/')).rejects.toMatchObject({ code: 'CONNECTIONLOSS', cause: { code: 'ENOTFOUND' } });
    } finally {
      await zk.close().catch(() => {});
    }
  });

  it('a root-dotted name reaches the server (localhost.), when this machine resolves it', async () => {
    const dns = require('node:dns').promises;
    const resolved = await dns.lookup('localhost.').then(() => true, () => false);
    if (!resolved) return; // the parser case above still holds
    const port = process.env.ZK_CONNECT.split(',')[0].split(':').pop();
    const zk = new ZooKeeper({ connect: `localhost.:${port}`, connectTimeout: 5000 });
    try {
      expect(Array.isArray(await zk.children('/'))).toBe(true);
    } finally {
      await zk.close();
    }
  });

  it('a string the constructor accepts with spaces around hosts works, whatever the host order option', async () => {
    for (const host_order_deterministic of [true, false]) {
      for (const connect of [`${process.env.ZK_CONNECT} `, ` ${process.env.ZK_CONNECT}`]) {
        const zk = new ZooKeeper({ connect, host_order_deterministic, connectTimeout: 3000 });
        try {
          expect(zk.connectString).toBe(process.env.ZK_CONNECT);
          expect(Array.isArray(await zk.children('/'))).toBe(true);
        } finally {
          await zk.close().catch(() => {});
        }
      }
    }
  });
});

describe('one deadline per connect', () => {
  it('a session that opens late leaves the chroot check only what is left of connectTimeout', async () => {
    // A proxy that hands the server's answers over late (70% of connectTimeout), and passes
    // on only the handshake and pings (request type 11): the chroot check's exists (type 3)
    // never gets an answer.
    const net = require('node:net');
    const [host, port] = process.env.ZK_CONNECT.split(',')[0].split('/')[0].split(':');
    const connectTimeout = 2000;
    const sockets = [];
    const proxy = net.createServer((client) => {
      const server = net.connect(Number(port), host);
      sockets.push(client, server);
      let handshake = true;
      let answers = null;
      client.on('data', (d) => {
        if (handshake || (d.length >= 12 && d.readInt32BE(8) === 11)) server.write(d);
        handshake = false;
      });
      server.on('data', (d) => {
        answers = (answers || new Promise((r) => setTimeout(r, connectTimeout * 0.7))).then(() => client.write(d));
      });
      for (const s of [client, server]) s.on('error', () => {});
    });
    await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
    const zk = new ZooKeeper({ connect: `127.0.0.1:${proxy.address().port}/zktx-test`, connectTimeout });
    const t0 = Date.now();
    try {
      await expect(zk.children('/')).rejects.toMatchObject({ code: 'TIMEOUT' });
      expect(Date.now() - t0).toBeLessThan(connectTimeout + 700);
    } finally {
      await zk.close().catch(() => {});
      for (const s of sockets) s.destroy();
      await new Promise((r) => proxy.close(r));
    }
  });
});
