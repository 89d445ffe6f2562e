'use strict';
// The `logger` option: each client's records (the Rust core's and zookeeper-client's) go to its
// own logger, at its own debug_level; a client without one prints to stderr at its level only.
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { client } = require('./helpers/zk');
const { ZooKeeper } = require('..');

/** A logger (the documented convention: `logger[level](message, fields)`) that keeps its records. */
function collector() {
  const records = [];
  const logger = {};
  for (const level of ['debug', 'info', 'warn', 'error']) {
    logger[level] = function (message, fields) {
      if (this !== logger) throw new Error('called without its this');
      records.push({ level, message, fields });
    };
  }
  return { logger, records };
}

const settle = () => new Promise((r) => setTimeout(r, 300));
const sessionsOf = (records) => new Set(records.map((r) => r.fields.session).filter(Boolean));

describe('logger option', () => {
  it('two clients with different loggers each receive their own records, at their own level', async () => {
    const a = collector();
    const b = collector();
    const zkA = client({ logger: a.logger, debug_level: ZooKeeper.ZOO_LOG_LEVEL_DEBUG });
    const zkB = client({ logger: b.logger, debug_level: ZooKeeper.ZOO_LOG_LEVEL_INFO });
    await Promise.all([zkA.connect(), zkB.connect()]);
    const lock = await zkA.lock(`/zktx-test/logging-${process.pid}`);
    await lock.release();
    await Promise.all([zkA.close(), zkB.close()]);
    await settle();

    // A asked for debug: the core's own debug record of its session, with structured fields.
    const established = a.records.filter((r) => r.message === 'ZooKeeper session established');
    expect(established).toEqual([{ level: 'debug', message: 'ZooKeeper session established', fields: expect.objectContaining({ session: expect.any(String), timeout_ms: expect.any(Number), target: 'zktx_core::session' }) }]);
    // B asked for info: no debug record reached it, but zookeeper-client's info records did.
    expect(b.records.filter((r) => r.level === 'debug')).toEqual([]);
    expect(b.records.some((r) => r.level === 'info' && r.fields.target.startsWith('zookeeper_client'))).toBe(true);
    // Every record names (at most) its own client's session, including those of
    // zookeeper-client's connection task, which runs outside any call of the client.
    const sa = sessionsOf(a.records);
    const sb = sessionsOf(b.records);
    expect(sa.size).toBe(1);
    expect(sb.size).toBe(1);
    expect([...sa][0]).not.toBe([...sb][0]);
    expect([...sa][0]).toBe(established[0].fields.session);
    // The records of a client's connection task (the `serve` span) reach its logger.
    expect(a.records.some((r) => r.fields.target === 'zookeeper_client::session' && r.fields.session === [...sa][0] && /enter state/.test(r.message))).toBe(true);
  });

  it('refuses a logger without debug/info/warn/error methods', () => {
    expect(() => new ZooKeeper({ logger: { info() {} } })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('logger.debug must be a function') }));
    expect(() => new ZooKeeper({ logger: 'console' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('a logger that throws loses its record, never the process', async () => {
    const boom = () => { throw new Error('logger broke'); };
    const zk = client({ logger: { debug: boom, info: boom, warn: boom, error: boom }, debug_level: ZooKeeper.ZOO_LOG_LEVEL_DEBUG });
    await zk.connect();
    await zk.get('logging-nothing');
    await zk.close();
    await settle();
  });

  it('a client without a logger prints to stderr at its own debug_level; one with a logger prints nothing there', () => {
    const script = `
      const { ZooKeeper } = require(${JSON.stringify(path.join(__dirname, '..'))});
      (async () => {
        const records = [];
        const keep = (level) => (message, fields) => records.push({ level, message, fields });
        const logged = new ZooKeeper({ timeout: 10000, debug_level: ZooKeeper.ZOO_LOG_LEVEL_DEBUG,
          logger: { debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') } });
        const plain = new ZooKeeper({ timeout: 10000, debug_level: Number(process.argv[1]) });
        await Promise.all([logged.connect(), plain.connect()]);
        await Promise.all([logged.close(), plain.close()]);
        await new Promise((r) => setTimeout(r, 300));
        console.log(JSON.stringify({ debug: records.filter((r) => r.level === 'debug').length }));
      })();`;
    const run = (level) => spawnSync(process.execPath, ['-e', script, String(level)], { encoding: 'utf8', timeout: 30000 });

    const info = run(ZooKeeper.ZOO_LOG_LEVEL_INFO);
    expect(info.status).toBe(0);
    expect(JSON.parse(info.stdout).debug).toBeGreaterThan(0); // the logged client's debug records went to its logger
    expect(info.stderr).toMatch(/ INFO /);
    expect(info.stderr).not.toMatch(/DEBUG/);
    expect(info.stderr).not.toMatch(/ZooKeeper session established/); // the logged client's debug record

    const warn = run(ZooKeeper.ZOO_LOG_LEVEL_WARN);
    expect(warn.status).toBe(0);
    expect(warn.stderr).toBe('');
  });

  it('at the default level (warn), a warning goes to the logger of the client it concerns, not to stderr', () => {
    // A "server" that accepts connections and hangs up: zookeeper-client warns that it fails to
    // establish a session there. Every client of the process is at WARN: no span may be lost to
    // tracing's level filter (the client's, or zookeeper-client's own connect span).
    const script = `
      const net = require('node:net');
      const { ZooKeeper } = require(${JSON.stringify(path.join(__dirname, '..'))});
      const server = net.createServer((s) => s.destroy()).listen(0, '127.0.0.1', async () => {
        const records = [];
        const keep = (level) => (message, fields) => records.push({ level, message, fields });
        const logged = new ZooKeeper({ connect: '127.0.0.1:' + server.address().port, timeout: 10000, connectTimeout: 1500,
          logger: { debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') } });
        const plain = new ZooKeeper({ timeout: 10000 });
        await plain.connect();
        await logged.connect().catch((e) => console.log(JSON.stringify({ code: e.code })));
        await new Promise((r) => setTimeout(r, 200));
        console.log(JSON.stringify({ warns: records.filter((r) => r.level === 'warn').map((r) => r.fields.target), below: records.filter((r) => r.level !== 'warn' && r.level !== 'error').length }));
        await plain.close(); await logged.close(); server.close();
      });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const [failed, seen] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(failed.code).toBe('TIMEOUT');
    expect(seen.warns.length).toBeGreaterThan(0);
    expect(seen.warns.every((t) => t.startsWith('zookeeper_client'))).toBe(true);
    expect(seen.below).toBe(0);
  });
});
