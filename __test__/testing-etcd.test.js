'use strict';
// zktx/testing's etcd members, as the etcd backend's tests will use them: one member and a
// 3-member cluster on loopback, crashes (kill -9 of a follower and of the leader), a restarted
// member rejoining with its data, a frozen member (SIGSTOP/SIGCONT), a proxy in front of a
// member, auth and TLS, and nothing left running after stop(). Everything is checked from the
// outside: etcdctl run here (not the helpers' own etcdctl()), and PIDs through /proc.
const childProcess = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const { startEtcd, startEtcdCluster, startProxy, findEtcd } = require('../testing');

/** Runs etcdctl (API v3); resolves { code, stdout, stderr }, never rejects. */
function ctl(endpoints, args, { timeoutS = 5, extra = [] } = {}) {
  const list = Array.isArray(endpoints) ? endpoints.join(',') : endpoints;
  return new Promise((resolve) => {
    childProcess.execFile(
      findEtcd().etcdctl,
      [`--endpoints=${list}`, '--dial-timeout=2s', `--command-timeout=${timeoutS}s`, ...extra, ...args],
      { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8', timeout: (timeoutS + 10) * 1000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code ?? 1 : 0, stdout: stdout.trim(), stderr })
    );
  });
}

async function put(endpoints, key, value, opts) {
  const r = await ctl(endpoints, ['put', key, value], opts);
  if (r.code !== 0) throw new Error(`etcdctl put ${key} on ${endpoints}: ${r.stderr}`);
}

/** The value of `key` (null when absent); `serializable` reads the member's own copy. */
async function get(endpoints, key, { serializable = false, ...opts } = {}) {
  const r = await ctl(endpoints, ['get', key, '--print-value-only', ...(serializable ? ['--consistency=s'] : [])], opts);
  if (r.code !== 0) throw new Error(`etcdctl get ${key} on ${endpoints}: ${r.stderr}`);
  return r.stdout === '' ? null : r.stdout;
}

/**
 * `etcdctl endpoint status -w json` of each endpoint: { endpoint, memberId, leader } with the
 * 64-bit ids kept as decimal text (JSON numbers would round them).
 */
async function endpointStatus(endpoints) {
  const r = await ctl(endpoints, ['endpoint', 'status', '-w', 'json']);
  if (r.code !== 0) throw new Error(`endpoint status ${endpoints}: ${r.stderr}`);
  const list = JSON.parse(r.stdout.replace(/"(cluster_id|member_id|leader)":(\d+)/g, '"$1":"$2"'));
  return list.map((e) => ({ endpoint: e.Endpoint, memberId: e.Status.header.member_id, leader: e.Status.leader }));
}

/** The endpoint that `etcdctl endpoint status` says leads, once the members agree on one. */
async function leaderEndpoint(endpoints, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const st = await endpointStatus(endpoints);
      const leaders = new Set(st.map((s) => s.leader));
      const lead = st.find((s) => s.memberId === s.leader);
      if (leaders.size === 1 && lead) return lead.endpoint;
    } catch {}
    if (Date.now() > deadline) throw new Error(`no agreed leader among ${endpoints} in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Is `pid` a live process (zombies are not)? */
function alive(pid) {
  try {
    return !/^State:\s*Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function procState(pid) {
  return /^State:\s*(\S)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1];
}

/** Does something accept TCP connections on 127.0.0.1:port? */
function accepts(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function eventually(check, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let last;
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw last || new Error(`not true within ${timeoutMs} ms: ${check}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the run\'s shared etcd', () => {
  it('ETCD_ENDPOINTS (scripts/etcd.js run in npm test, else jest\'s global-setup) names a serving etcd', async () => {
    const endpoints = (process.env.ETCD_ENDPOINTS || '').split(',').filter(Boolean);
    expect(endpoints.length).toBeGreaterThan(0);
    for (const e of endpoints) expect(e).toMatch(/^[\w.-]+:\d+$/);
    const key = `/zktx/shared/${process.pid}-${Date.now()}`;
    await put(endpoints, key, 'here');
    expect(await get(endpoints, key)).toBe('here');
    expect((await ctl(endpoints, ['del', key])).stdout).toBe('1');
  });
});

describe('startEtcd: one member', () => {
  let etcd;

  beforeAll(async () => {
    const t0 = Date.now();
    etcd = await startEtcd();
    console.log(`one member started in ${Date.now() - t0} ms`);
  }, 60000);

  afterAll(() => etcd && etcd.stop());

  it('runs one etcd process on free loopback ports and serves put and get through etcdctl', async () => {
    expect(etcd.endpoints).toEqual([`127.0.0.1:${etcd.port}`]);
    expect(etcd.connect).toBe(etcd.endpoints[0]);
    expect(etcd.peerPort).not.toBe(etcd.port);
    expect(alive(etcd.pid)).toBe(true);
    expect(fs.readFileSync(`/proc/${etcd.pid}/cmdline`, 'utf8').split('\0')).toContain(`--data-dir=${etcd.dataDir}`);
    await put(etcd.endpoints, '/zktx/one', 'v1');
    expect(await get(etcd.endpoints, '/zktx/one')).toBe('v1');
    expect(await get(etcd.endpoints, '/zktx/absent')).toBe(null);
    const [status] = await endpointStatus(etcd.endpoints);
    expect(status.memberId).toBe(status.leader); // a one-member cluster leads itself
    expect(BigInt(status.memberId).toString(16)).toBe((await etcd.status()).memberId);
  });

  it('a SIGSTOPped member stops answering; after SIGCONT it answers with its data', async () => {
    await put(etcd.endpoints, '/zktx/frozen', 'before');
    expect(etcd.kill('SIGSTOP')).toBe(true);
    try {
      await eventually(() => procState(etcd.pid) === 'T', 5000);
      const t0 = Date.now();
      const r = await ctl(etcd.endpoints, ['get', '/zktx/frozen'], { timeoutS: 2 });
      expect(r.code).not.toBe(0);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1500); // it timed out: no answer, not a refusal
      expect(await etcd.health({ timeoutMs: 500 })).toBe(false);
      expect(etcd.isRunning()).toBe(true); // frozen, not dead
    } finally {
      etcd.kill('SIGCONT');
    }
    await etcd.waitReady({ timeoutMs: 10000 });
    expect(await get(etcd.endpoints, '/zktx/frozen')).toBe('before');
  });

  it('a TCP proxy in front of the member carries gRPC, and its partition cuts etcdctl off', async () => {
    const proxy = await startProxy(etcd.connect);
    try {
      await put([proxy.connect], '/zktx/proxied', 'through');
      expect(await get(etcd.endpoints, '/zktx/proxied')).toBe('through');
      proxy.partition();
      const r = await ctl([proxy.connect], ['get', '/zktx/proxied'], { timeoutS: 2 });
      expect(r.code).not.toBe(0);
      proxy.heal();
      expect(await get([proxy.connect], '/zktx/proxied')).toBe('through');
      expect(proxy.stats.accepted).toBeGreaterThanOrEqual(2);
    } finally {
      await proxy.close();
    }
  });

  it('kill -9 and restart(): same port, same data, a new PID', async () => {
    await put(etcd.endpoints, '/zktx/durable', 'kept');
    const { pid, port } = etcd;
    etcd.kill('SIGKILL');
    await eventually(() => !etcd.isRunning(), 5000); // reaped: every thread gone
    expect(alive(pid)).toBe(false);
    expect(await accepts(port)).toBe(false);
    await etcd.restart();
    expect(etcd.pid).not.toBe(pid);
    expect(etcd.port).toBe(port);
    expect(await get(etcd.endpoints, '/zktx/durable')).toBe('kept');
  });

  it('stop() leaves no process (by PID), no listening port and no data dir', async () => {
    const member = await startEtcd();
    const { pid, port, dir } = member;
    expect(alive(pid)).toBe(true);
    expect(fs.existsSync(member.dataDir)).toBe(true);
    const t0 = Date.now();
    await member.stop();
    console.log(`one member stopped in ${Date.now() - t0} ms`);
    expect(alive(pid)).toBe(false);
    expect(member.isRunning()).toBe(false);
    expect(await accepts(port)).toBe(false);
    expect(fs.existsSync(dir)).toBe(false);
    await member.stop(); // idempotent
  }, 60000);
});

describe('startEtcdCluster(3)', () => {
  let cluster;

  beforeAll(async () => {
    const t0 = Date.now();
    cluster = await startEtcdCluster(3);
    console.log(`3-member cluster started in ${Date.now() - t0} ms`);
  }, 90000);

  afterAll(() => cluster && cluster.stop());

  it('three members on their own ports, one leader, every member serving the same data', async () => {
    expect(cluster.members).toHaveLength(3);
    expect(cluster.endpoints).toEqual(cluster.members.map((m) => m.endpoint));
    expect(cluster.connect).toBe(cluster.endpoints.join(','));
    expect(new Set(cluster.members.map((m) => m.pid)).size).toBe(3);
    const list = await ctl(cluster.endpoints, ['member', 'list']);
    expect(list.stdout.split('\n')).toHaveLength(3);
    const leader = await cluster.leader();
    expect(await leaderEndpoint(cluster.endpoints)).toBe(leader.endpoint);
    await put([cluster.endpoints[0]], '/zktx/everywhere', 'same');
    for (const m of cluster.members) expect(await get([m.endpoint], '/zktx/everywhere')).toBe('same');
  });

  it('keeps serving after kill -9 of a follower; the restarted follower rejoins and catches up', async () => {
    const leader = await cluster.leader();
    const follower = cluster.members.find((m) => m !== leader);
    const others = cluster.members.filter((m) => m !== follower).map((m) => m.endpoint);
    const { pid } = follower;
    expect(follower.kill('SIGKILL')).toBe(true);
    await eventually(() => !alive(pid), 5000);
    await put(others, '/zktx/while-follower-down', 'written');
    expect(await get(others, '/zktx/while-follower-down')).toBe('written');
    const memberId = (await endpointStatus([others[0]]))[0].leader; // the leader is unchanged
    expect(BigInt(memberId).toString(16)).toBe((await leader.status()).memberId);
    await follower.restart();
    expect(follower.pid).not.toBe(pid);
    // its own copy (a serializable read is not forwarded to the leader) has what it missed
    await eventually(async () => (await get([follower.endpoint], '/zktx/while-follower-down', { serializable: true })) === 'written');
    expect((await ctl(cluster.endpoints, ['endpoint', 'health'])).code).toBe(0);
  });

  it('keeps serving after kill -9 of the leader: the others elect a new one, and the old leader rejoins', async () => {
    const oldLeaderEndpoint = await leaderEndpoint(cluster.endpoints);
    const old = cluster.members.find((m) => m.endpoint === oldLeaderEndpoint);
    const survivors = cluster.members.filter((m) => m !== old).map((m) => m.endpoint);
    const { pid } = old;
    const t0 = Date.now();
    old.kill('SIGKILL');
    await eventually(() => !alive(pid), 5000);
    const newLeader = await leaderEndpoint(survivors);
    console.log(`new leader after kill -9 of the leader in ${Date.now() - t0} ms`);
    expect(survivors).toContain(newLeader);
    expect((await cluster.leader()).endpoint).toBe(newLeader);
    await put(survivors, '/zktx/after-failover', 'ok');
    expect(await get(survivors, '/zktx/after-failover')).toBe('ok');
    await old.restart();
    await eventually(async () => (await get([old.endpoint], '/zktx/after-failover', { serializable: true })) === 'ok');
    const st = await endpointStatus(cluster.endpoints);
    expect(new Set(st.map((s) => s.leader)).size).toBe(1); // one leader, known to all three
    expect(st.find((s) => s.endpoint === old.endpoint).memberId).not.toBe(st[0].leader);
  });

  it('a SIGSTOPped member stops answering while the others serve; after SIGCONT it answers again', async () => {
    const frozen = cluster.members[2];
    const others = cluster.members.slice(0, 2).map((m) => m.endpoint);
    frozen.kill('SIGSTOP');
    try {
      await eventually(() => procState(frozen.pid) === 'T', 5000);
      const r = await ctl([frozen.endpoint], ['get', '/zktx/everywhere'], { timeoutS: 2 });
      expect(r.code).not.toBe(0);
      expect(await frozen.health({ timeoutMs: 500 })).toBe(false);
      await put(others, '/zktx/while-frozen', 'yes');
    } finally {
      frozen.kill('SIGCONT');
    }
    await eventually(async () => (await get([frozen.endpoint], '/zktx/while-frozen', { serializable: true })) === 'yes');
    expect(await get([frozen.endpoint], '/zktx/while-frozen')).toBe('yes');
    await cluster.waitForQuorum({ all: true });
  });

  it('stop() leaves none of the members running (by PID) and removes the data', async () => {
    const other = await startEtcdCluster({ size: 3 });
    const pids = other.members.map((m) => m.pid);
    expect(pids.every(alive)).toBe(true);
    const t0 = Date.now();
    await other.stop();
    console.log(`3-member cluster stopped in ${Date.now() - t0} ms`);
    expect(pids.filter(alive)).toEqual([]);
    for (const m of other.members) expect(await accepts(m.port)).toBe(false);
    expect(fs.existsSync(other.dataDir)).toBe(false);
    await other.stop(); // idempotent
  }, 90000);
});

describe('secured members', () => {
  it('auth: root and the listed users read and write; no user or a wrong password is refused', async () => {
    const etcd = await startEtcd({ auth: { users: { alice: 'alice-pw' } } });
    try {
      expect(etcd.auth.user).toBe('root');
      const as = (user, password) => ({ extra: [`--user=${user}:${password}`] });
      await put(etcd.endpoints, '/zktx/secret', 's', as('root', etcd.auth.password));
      expect(await get(etcd.endpoints, '/zktx/secret', as('alice', 'alice-pw'))).toBe('s');
      await put(etcd.endpoints, '/zktx/secret', 't', as('alice', 'alice-pw'));
      const anonymous = await ctl(etcd.endpoints, ['get', '/zktx/secret']);
      expect(anonymous.code).not.toBe(0);
      expect(anonymous.stderr).toMatch(/user name is empty/);
      const wrong = await ctl(etcd.endpoints, ['get', '/zktx/secret'], as('alice', 'nope'));
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr).toMatch(/authentication failed/);
    } finally {
      await etcd.stop();
    }
  }, 60000);

  it('TLS: https only; the CA and a client certificate get in, no certificate or another CA does not', async () => {
    const etcd = await startEtcd({ tls: {} });
    try {
      expect(etcd.clientUrl).toBe(`https://${etcd.endpoint}`);
      const { paths } = etcd.tls;
      const url = [`https://${etcd.endpoint}`];
      const withCert = { extra: [`--cacert=${paths.ca}`, `--cert=${paths.clientCert}`, `--key=${paths.clientKey}`] };
      await put(url, '/zktx/tls', 'ok', withCert);
      expect(await get(url, '/zktx/tls', withCert)).toBe('ok');
      expect((await ctl(url, ['get', '/zktx/tls'], { timeoutS: 2, extra: [`--cacert=${paths.ca}`] })).code).not.toBe(0);
      const otherCa = { timeoutS: 2, extra: [`--cacert=${paths.otherCa}`, `--cert=${paths.clientCert}`, `--key=${paths.clientKey}`] };
      expect((await ctl(url, ['get', '/zktx/tls'], otherCa)).code).not.toBe(0);
      expect((await ctl([etcd.endpoint], ['get', '/zktx/tls'], { timeoutS: 2 })).code).not.toBe(0); // no plaintext
      expect((await etcd.status()).isLeader).toBe(true);
    } finally {
      await etcd.stop();
    }
  }, 60000);

  it('a TLS cluster with auth: every member https, root through the cluster handle', async () => {
    const cluster = await startEtcdCluster(3, { tls: {}, auth: {} });
    try {
      expect(cluster.members.every((m) => m.clientUrl.startsWith('https://'))).toBe(true);
      await cluster.etcdctl('put', '/zktx/secured-cluster', 'yes');
      expect((await cluster.members[2].etcdctl('get', '/zktx/secured-cluster', '--print-value-only')).trim()).toBe('yes');
      expect((await cluster.leader()).endpoints).toHaveLength(1);
    } finally {
      await cluster.stop();
    }
  }, 90000);
});
