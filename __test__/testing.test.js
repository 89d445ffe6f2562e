'use strict';
// zktx/testing's PostgreSQL clusters, as the two-phase commit tests will use them: two
// independent clusters at once, each able to PREPARE TRANSACTION, a prepared transaction that
// survives a crash (kill -9 of every process, then restart), and nothing left behind.
const fs = require('node:fs');
const { Client } = require('pg');
const { startPostgres } = require('../testing');

/** Live (not zombie) children of `pid`, from /proc: a postmaster's backends and background workers. */
function childrenOf(pid) {
  const found = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) === pid && state !== 'Z') found.push(Number(entry));
    } catch {}
  }
  return found;
}

/** Is `pid` a live process (zombies are not)? */
function alive(pid) {
  try {
    return !/^State:\s*Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

async function withClient(server, fn) {
  const client = new Client(server.config);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

describe('startPostgres', () => {
  let a;
  let b;

  beforeAll(async () => {
    const t0 = Date.now();
    [a, b] = await Promise.all([startPostgres(), startPostgres({ maxPreparedTransactions: 5 })]);
    console.log(`two clusters started at once in ${Date.now() - t0} ms`);
  }, 120000);

  afterAll(async () => {
    await Promise.all([a && a.stop(), b && b.stop()]);
  });

  it('starts two independent clusters: own port, own data dir, own postmaster', async () => {
    expect(a.port).not.toBe(b.port);
    expect(a.dataDir).not.toBe(b.dataDir);
    expect(a.pid).not.toBe(b.pid);
    expect(a.host).toBe('127.0.0.1');
    expect(a.connectionString).toBe(`postgresql://postgres@127.0.0.1:${a.port}/postgres`);
    await a.psql('CREATE TABLE only_in_a (x int)');
    expect(await a.psql("SELECT to_regclass('only_in_a') IS NOT NULL")).toBe('t');
    expect(await b.psql("SELECT to_regclass('only_in_a') IS NOT NULL")).toBe('f');
  });

  it('allows prepared transactions on both (max_prepared_transactions > 0)', async () => {
    expect(Number(await a.psql('SHOW max_prepared_transactions'))).toBe(20);
    const { rows } = await b.query('SHOW max_prepared_transactions');
    expect(Number(rows[0].max_prepared_transactions)).toBe(5);
  });

  it('runs PREPARE TRANSACTION and COMMIT PREPARED on each, through pg', async () => {
    for (const [server, gid] of [[a, 'x'], [b, 'x']]) {
      await withClient(server, async (c) => {
        await c.query('CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)');
        await c.query('BEGIN');
        await c.query('INSERT INTO accounts VALUES (1, 100)');
        await c.query(`PREPARE TRANSACTION '${gid}'`);
        // prepared, not committed: invisible, and listed in pg_prepared_xacts
        expect((await c.query('SELECT count(*)::int AS n FROM accounts')).rows[0].n).toBe(0);
        expect((await server.preparedTransactions()).map((t) => t.gid)).toEqual([gid]);
        await c.query(`COMMIT PREPARED '${gid}'`);
        expect((await c.query('SELECT balance FROM accounts WHERE id = 1')).rows).toEqual([{ balance: 100 }]);
      });
      expect(await server.preparedTransactions()).toEqual([]);
    }
  });

  it('restart() keeps the port and the data', async () => {
    const { port, pid } = a;
    const t0 = Date.now();
    await a.restart();
    console.log(`restart (fast shutdown + start) in ${Date.now() - t0} ms`);
    expect(a.port).toBe(port);
    expect(a.pid).not.toBe(pid);
    expect(await a.psql('SELECT balance FROM accounts WHERE id = 1')).toBe('100');
  });

  it('a prepared transaction survives kill() (SIGKILL of every process) and a restart', async () => {
    await withClient(b, async (c) => {
      await c.query('BEGIN');
      await c.query('UPDATE accounts SET balance = balance - 30 WHERE id = 1');
      await c.query("PREPARE TRANSACTION 'zktx:bank:tx-1'");
    });
    const listed = b.processes();
    const before = [b.pid, ...childrenOf(b.pid)];
    expect(before.length).toBeGreaterThan(3); // checkpointer, walwriter, ... have their own PIDs
    // Backends come and go between two looks (an autovacuum worker, the client that just
    // disconnected): every process listed and still alive is the postmaster's, and the
    // long-lived ones are listed.
    expect(listed).toContain(b.pid);
    expect(listed.filter((p) => before.includes(p)).length).toBeGreaterThan(3);
    expect(listed.filter(alive).filter((p) => !before.includes(p) && !childrenOf(b.pid).includes(p))).toEqual([]);
    const t0 = Date.now();
    await b.kill();
    expect(b.isRunning()).toBe(false);
    expect(before.filter(alive)).toEqual([]); // all at once, not once they notice
    expect(b.processes()).toEqual([]);
    await b.restart();
    console.log(`kill + crash recovery in ${Date.now() - t0} ms`);
    const prepared = await b.preparedTransactions();
    expect(prepared.map((t) => [t.gid, t.database])).toEqual([['zktx:bank:tx-1', 'postgres']]);
    // still holding its row lock and its effect pending: commit it now, as recovery would
    expect(await b.psql('SELECT balance FROM accounts WHERE id = 1')).toBe('100');
    await b.psql("COMMIT PREPARED 'zktx:bank:tx-1'");
    expect(await b.psql('SELECT balance FROM accounts WHERE id = 1')).toBe('70');
  });

  it('stop() leaves no process and no temp dir', async () => {
    const server = await startPostgres();
    const { pid, dir } = server;
    const before = [pid, ...childrenOf(pid)];
    expect(before.every(alive)).toBe(true);
    const t0 = Date.now();
    await server.stop();
    console.log(`stop in ${Date.now() - t0} ms`);
    expect(before.filter(alive)).toEqual([]);
    expect(server.processes()).toEqual([]);
    expect(server.isRunning()).toBe(false);
    expect(fs.existsSync(dir)).toBe(false);
    await server.stop(); // idempotent
  }, 60000);
});
