'use strict';
// The `zktx` command (bin/zktx.js), run as a child process against the shared server, as an
// operator runs it: text by default, --json for scripts, documented exit codes.
const { spawn } = require('node:child_process');
const path = require('node:path');
const { client, unique, zkScripts } = require('./helpers/zk');
const pkg = require('../package.json');

const bin = path.join(__dirname, '..', pkg.bin.zktx);

/** Runs `zktx ...args`; resolves { status, stdout, stderr, json (stdout parsed, when it parses) }. */
function zktx(args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ZKTX_CONNECT_OVERRIDE: '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (status) => {
      let json;
      try {
        json = JSON.parse(stdout);
      } catch {
        // text output
      }
      resolve({ status, stdout, stderr, json });
    });
  });
}

describe('zktx (the CLI)', () => {
  jest.setTimeout(120000); // each case starts a few Node processes: slow on a busy machine
  let zk;
  let other;
  beforeAll(() => { zk = client(); other = client(); });
  afterAll(async () => { await zk.close(); await other.close(); });

  it('zktx locks <path> shows the holder (node, session, since) and the waiters in order', async () => {
    const p = `/zktx-test/${unique('cli-locks')}`;
    const held = await zk.lock(p);
    const waiting = other.lock(p); // queued behind the holder
    const third = client();
    const waiting2 = third.lock(p);
    try {
      // wait until both waiters are queued
      for (let i = 0; i < 300 && (await zk.children(p)).length < 3; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await zk.children(p)).toHaveLength(3);
      const r = await zktx(['locks', p, '--json']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.json.path).toBe(p);
      expect(r.json.free).toBe(false);
      expect(r.json.holders).toEqual([expect.objectContaining({ node: held.nodePath, kind: 'lock', session: expect.stringMatching(/^0x[0-9a-f]+$/) })]);
      expect(Date.parse(r.json.holders[0].since)).toBeGreaterThan(Date.now() - 60000);
      expect(r.json.waiters.map((w) => w.position)).toEqual([1, 2]);
      expect(r.json.waiters.map((w) => w.session)).toHaveLength(2);
      expect(new Set([r.json.holders[0].session, ...r.json.waiters.map((w) => w.session)]).size).toBe(3); // three sessions
      // The same, for a human.
      const text = await zktx(['locks', p]);
      expect(text.status).toBe(0);
      expect(text.stdout).toMatch(new RegExp(`^${p}: 1 holder\\(s\\), 2 waiting\\n`));
      expect(text.stdout).toContain(`HOLDER   ${held.nodePath}`);
      expect(text.stdout).toMatch(/WAIT 1 .*\n.*session 0x[0-9a-f]+, lock, queued since \d{4}-/);
      expect(text.stdout).toMatch(/WAIT 2 /);
    } finally {
      await held.release();
      // Each waiter releases as soon as it holds: which of the two queued first is up to the server.
      await Promise.all([waiting, waiting2].map(async (w) => (await w).release()));
      await third.close();
    }
    const free = await zktx(['locks', p]);
    expect(free.stdout).toBe(`${p}: free (no holder, no waiter)\n`);
  });

  it('zktx keys [prefix] lists keys and values; zktx get <key> prints one, exit 3 when absent', async () => {
    const prefix = unique('cli-keys');
    await zk.set(`${prefix}/a`, { n: 1 });
    await zk.set(`${prefix}/b c`, 'two');
    await zk.set(`${prefix}/counter`, 3);
    await zk.executeTransaction(`${prefix}/counter`, () => 4);
    const keys = await zktx(['keys', prefix, '--json']);
    expect(keys.status).toBe(0);
    expect(keys.json).toEqual([{ key: `${prefix}/a`, value: { n: 1 } }, { key: `${prefix}/b c`, value: 'two' }, { key: `${prefix}/counter`, value: 4 }]);
    const text = await zktx(['keys', prefix]);
    expect(text.stdout).toBe(`${prefix}/a\t{"n":1}\n${prefix}/b c\t"two"\n${prefix}/counter\t4\n`);
    const names = await zktx(['keys', prefix, '--no-values']);
    expect(names.stdout).toBe(`${prefix}/a\n${prefix}/b c\n${prefix}/counter\n`);

    const got = await zktx(['get', `${prefix}/a`, '--json']);
    expect(got).toMatchObject({ status: 0, json: { n: 1 } });
    const missing = await zktx(['get', `${prefix}/nope`]);
    expect(missing).toMatchObject({ status: 3, stdout: `no key "${prefix}/nope"\n` });
  });

  it('zktx in-doubt <coordinator> lists active (undecided) transactions with their session; none once they end', async () => {
    const name = unique('cli-coord').slice(0, 60);
    const coordinator = zk.coordinator(name, { recoveryIntervalMs: 0 });
    let release;
    const blocked = new Promise((r) => { release = r; });
    let txid;
    const running = coordinator.run(async (tx) => { txid = tx.id; await blocked; });
    try {
      let r;
      for (let i = 0; i < 100; i++) {
        r = await zktx(['in-doubt', name, '--json']);
        if (r.json && r.json.transactions.length) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      expect(r.status).toBe(0);
      expect(r.json).toMatchObject({ coordinator: name, exists: true });
      expect(r.json.transactions).toEqual([expect.objectContaining({ txid, state: 'active', decision: null, session: expect.stringMatching(/^0x/) })]);
      const text = await zktx(['in-doubt', name]);
      expect(text.stdout).toMatch(new RegExp(`^${txid}  active .* no decision yet \\(its coordinator's session 0x[0-9a-f]+ is alive\\)\\n$`));
    } finally {
      release();
      await running;
      coordinator.close();
    }
    const after = await zktx(['in-doubt', name]);
    expect(after).toMatchObject({ status: 0, stdout: `coordinator ${name}: nothing in doubt\n` });
    const all = await zktx(['in-doubt', name, '--all', '--json']);
    expect(all.json.transactions).toEqual([expect.objectContaining({ txid, state: 'decided', decision: 'commit', done: true })]);
    const none = await zktx(['in-doubt', unique('no-such-coord')]);
    expect(none.status).toBe(3);
  });

  it('zktx prune-ids <ms> and zktx compact <ms> run the store\'s maintenance', async () => {
    const prune = await zktx(['prune-ids', '86400000', '--json']);
    expect(prune.status).toBe(0);
    expect(prune.json).toEqual({ deleted: expect.any(Number) });
    const compact = await zktx(['compact', '86400000']);
    expect(compact.status).toBe(0);
    expect(compact.stdout).toMatch(/^marked \d+, removed \d+ tombstone\(s\) \(older than 86400000 ms\)\n/);
    const tooYoung = await zktx(['compact', '1000']);
    expect(tooYoung.status).toBe(2);
    expect(tooYoung.stderr).toMatch(/^zktx: INVALID_ARGUMENT: /);
  });

  it('--connect defaults to ZK_CONNECT; errors print their code (and cause) and exit 1', async () => {
    const { connect } = { connect: process.env.ZK_CONNECT };
    const viaEnv = await zktx(['get', unique('nothing')], { ZK_CONNECT: connect });
    expect(viaEnv.status).toBe(3);
    const port = await zkScripts.freePort();
    const refused = await zktx(['locks', '/x', '--connect', `127.0.0.1:${port}`]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^zktx: CONNECTIONLOSS: cannot connect to ZooKeeper at "127\.0\.0\.1:\d+": every host refused the connection .* \(cause: ECONNREFUSED\)\n$/);
    const json = await zktx(['locks', '/x', '--connect', `127.0.0.1:${port}`, '--json']);
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: 'CONNECTIONLOSS', cause: { code: 'ECONNREFUSED' } } });
    const bad = await zktx(['locks', '/x', '--connect', 'localhost:abc']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^zktx: INVALID_ARGUMENT: the `connect` option is not a ZooKeeper connect string: port "abc"/);
  });

  it('in-doubt lists a running saga once, as a saga (its active/<txid> is the saga\'s, not an undecided 2PC transaction)', async () => {
    const name = unique('cli-saga').slice(0, 60);
    let release;
    const blocked = new Promise((r) => { release = r; });
    const coordinator = zk.coordinator(name, {
      recoveryIntervalMs: 0,
      sagas: { s: [{ async action() { await blocked; }, async compensate() {} }] },
    });
    const running = coordinator.saga('s', {});
    let r;
    try {
      for (let i = 0; i < 100; i++) {
        r = await zktx(['in-doubt', name, '--json']);
        if (r.json && r.json.transactions.some((t) => t.state === 'saga running')) break;
        await new Promise((res) => setTimeout(res, 50));
      }
    } finally {
      release();
      await running.catch(() => {});
      coordinator.close();
    }
    expect(r.status).toBe(0);
    expect(r.json.transactions.map((t) => t.state)).toEqual(['saga running']);
  });

  it('--connect wins over ZKTX_CONNECT_OVERRIDE (the override is for code that hardcodes its string, not for the command line)', async () => {
    const port = await zkScripts.freePort();
    const r = await zktx(['get', unique('nothing'), '--connect', `127.0.0.1:${port}`], { ZKTX_CONNECT_OVERRIDE: process.env.ZK_CONNECT });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/CONNECTIONLOSS/);
    // Without --connect the command does not read the override either: ZK_CONNECT, else localhost:2181.
    const viaEnv = await zktx(['get', unique('nothing')], { ZK_CONNECT: process.env.ZK_CONNECT, ZKTX_CONNECT_OVERRIDE: `127.0.0.1:${port}` });
    expect(viaEnv.status).toBe(3);
  });

  it('usage errors exit 2 with help; --help and --version exit 0; recover is left out and says why', async () => {
    const unknown = await zktx(['frobnicate']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'frobnicate'/);
    const missing = await zktx(['locks']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/missing required argument 'path'/);
    const help = await zktx(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/Exit codes: 0 success; 1 a ZooKeeper or zktx error/);
    expect(help.stdout).toMatch(/Not here: recover/);
    expect(help.stdout).toMatch(/\$ZKTX_CONNECT_OVERRIDE is\s+ignored/);
    for (const cmd of ['locks', 'keys', 'get', 'in-doubt', 'prune-ids', 'compact']) expect(help.stdout).toContain(cmd);
    const version = await zktx(['--version']);
    expect(version).toMatchObject({ status: 0, stdout: `${pkg.version}\n` });
  });
});
