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
