'use strict';
// zktx's etcd locks under real faults, each on dedicated etcd servers from zktx/testing (never the
// shared ETCD_ENDPOINTS one): TLS and etcd's user/password auth, kill -9 of the leader of a
// 3-member cluster while locks are held and waited for, and a holder cut off by a partition
// past its lease (it is told it lost the lock; the next holder's token is larger).
const { Etcd } = require('../..');
const { startEtcd, startEtcdCluster, startProxy } = require('../../testing');
const { unique, rejection, within } = require('../helpers/zk');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const clients = [];
const etcd = (options) => {
  const c = new Etcd({ timeout: 3000, ...options });
  clients.push(c);
  return c;
};
afterEach(() => Promise.all(clients.splice(0).map((c) => c.close().catch(() => {}))));

describe('etcd with TLS and user/password auth', () => {
  let member;
  beforeAll(async () => {
    member = await startEtcd({ tls: { clientAuth: true }, auth: { rootPassword: 'rootpw', users: { alice: 'alice-pw' } } });
  }, 60000);
  afterAll(() => member && member.stop());

  const tlsOf = (m) => ({ ca: m.tls.ca, cert: m.tls.cert, key: m.tls.key });

  it('a client with the CA, a client certificate and a user takes and releases locks', async () => {
    const e = etcd({ endpoints: member.endpoints, tls: tlsOf(member), auth: { user: 'alice', password: 'alice-pw' } });
    const p = `/locks/${unique('etcd-tls')}`;
    const a = await e.lock(p);
    const other = etcd({ endpoints: member.endpoints, tls: tlsOf(member), auth: { user: 'root', password: 'rootpw' } });
    expect((await rejection(other.lock(p, { timeout: 300 }))).code).toBe('TIMEOUT');
    await a.release();
    const b = await other.lock(p);
    expect(b.token).toBeGreaterThan(a.token);
    await b.release();
  });

  it('a wrong password is NOAUTH; no client certificate, or another CA, cannot connect', async () => {
    const wrong = etcd({ endpoints: member.endpoints, tls: tlsOf(member), auth: { user: 'alice', password: 'nope' } });
    const err = await rejection(wrong.lock(`/locks/${unique('etcd-noauth')}`));
    expect(err.code).toBe('NOAUTH');

    const noCert = etcd({ endpoints: member.endpoints, tls: { ca: member.tls.ca }, auth: { user: 'alice', password: 'alice-pw' }, connectTimeout: 2000 });
    const refused = await rejection(noCert.connect());
    expect(['CONNECTIONLOSS', 'TIMEOUT', 'TLS']).toContain(refused.code);

    const otherCa = etcd({ endpoints: member.endpoints, tls: { ...tlsOf(member), ca: member.tls.otherCa }, auth: { user: 'alice', password: 'alice-pw' }, connectTimeout: 2000 });
    const untrusted = await rejection(otherCa.connect());
    expect(['CONNECTIONLOSS', 'TIMEOUT', 'TLS']).toContain(untrusted.code);
  });

  it('https endpoints without tls, and http endpoints with it, are INVALID_ARGUMENT', () => {
    expect(() => new Etcd({ endpoints: [`https://${member.endpoint}`] })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => new Etcd({ endpoints: [`http://${member.endpoint}`], tls: tlsOf(member) })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => new Etcd({ endpoints: member.endpoints, tls: { ca: member.tls.ca, cert: member.tls.cert } })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => new Etcd({ endpoints: member.endpoints, tls: { ...tlsOf(member), rejectUnauthorized: false } })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('etcd cluster failover', () => {
  let cluster;
  beforeAll(async () => {
    cluster = await startEtcdCluster(3, { electionTimeout: 500, heartbeatInterval: 50 });
  }, 60000);
  afterAll(() => cluster && cluster.stop());

  it('kill -9 of the leader: held locks stay held, waiters get in after release, tokens keep growing', async () => {
    const p = `/locks/${unique('etcd-failover')}`;
    // An 8 s lease: failover (election 0.5 s, the dead member's connection given up by pings)
    // fits well inside it even on a loaded machine.
    const [a, b] = [etcd({ endpoints: cluster.endpoints, timeout: 8000 }), etcd({ endpoints: cluster.endpoints, timeout: 8000 })];
    const held = await a.lock(p);
    const lostEarly = held.lost.then((e) => e.reason);
    const waiting = b.lock(p, { timeout: 30000 });
    const leader = await cluster.leader();
    await leader.kill('SIGKILL');
    await cluster.waitForQuorum();
    // The lease outlives the failover and its own TTL (keep-alives go to the new leader).
    await sleep(9000);
    expect(await held.isHeld()).toBe(true);
    const race = await Promise.race([lostEarly, sleep(10).then(() => 'still held')]);
    expect(race).toBe('still held');
    await held.release();
    const next = await waiting;
    expect(next.token).toBeGreaterThan(held.token);
    await next.release();
    await leader.restart();
  }, 60000);
});

describe('etcd partition', () => {
  let member;
  beforeAll(async () => {
    member = await startEtcd();
  }, 60000);
  afterAll(() => member && member.stop());

  it('a holder cut off past its lease is told it lost the lock, and the next holder gets a larger token', async () => {
    const proxy = await startProxy(member.endpoint);
    try {
      const p = `/locks/${unique('etcd-part')}`;
      const holder = etcd({ endpoints: [`127.0.0.1:${proxy.port}`], timeout: 2000, lostAfter: 0.5, requestTimeout: 1000 });
      const other = etcd({ endpoints: member.endpoints, timeout: 2000 });
      const lock = await holder.lock(p);
      const states = [];
      holder.on('state', (s) => states.push(s));
      const lost = lock.lost;
      proxy.partition();
      const err = await within(lost, 10000, 'holder told it lost the lock');
      expect(err.code).toBe('LOCK_LOST');
      expect(err.reason).toBe('DISCONNECTED_TOO_LONG');
      const next = await other.lock(p, { timeout: 10000 });
      expect(next.token).toBeGreaterThan(lock.token);
      proxy.heal();
      expect(states).toContain('SUSPENDED');
      await next.release();
    } finally {
      proxy.close();
    }
  }, 60000);
});
