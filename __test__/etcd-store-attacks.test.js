'use strict';
// Attacks on the etcd key-value store's promises (crates/zktx-core/src/backend/etcd/kv.rs, the
// facade's get / set / executeTransaction), with zktx's own API and real faults: a TCP proxy
// between one client and etcd (blackhole: nothing moves; responses: requests apply, answers are
// lost), leases revoked behind a client's back, a holder process frozen past its TTL or exiting
// mid-updater, compaction, a 3-member cluster with its leader frozen mid-commit. Every test names
// the promise it attacks. Tests that freeze etcd start their own members; the others use the
// shared etcd at ETCD_ENDPOINTS (the proxy is ours).
const { spawn } = require('node:child_process');
const { Etcd } = require('..');
const { startEtcdCluster } = require('../testing');
const { unique, rejection } = require('./helpers/zk');
const { etcdKit, etcdctlAt, waitFor } = require('./helpers/etcd');

if (!process.env.ETCD_ENDPOINTS) throw new Error('ETCD_ENDPOINTS is not set: run through npm test, or jest with its global-setup');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const { ENDPOINTS, etcd, proxied, clients, children, etcdctl } = etcdKit();

/** The contenders left in the lock queue of store key `key` (its encoded name, as zktx stores it). */
const lockEntries = (key, at = ENDPOINTS) => etcdctlAt(at, 'get', '--prefix', '--keys-only', `/zktx/locks/kv/${encodeKey(key)}/`).split('\n').filter(Boolean);
/** zktx's key encoding (kv.rs encode_key): every byte but [A-Za-z0-9_-] percent-encoded. */
const encodeKey = (key) => [...Buffer.from(key, 'utf8')].map((b) => (/[A-Za-z0-9_-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
/** A child process running `src` with zktx required as `zktx`; resolves once it printed `mark`. */
function child(src, mark) {
  const p = spawn(process.execPath, ['-e', `const zktx = require(${JSON.stringify(require.resolve('..'))});\n${src}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(p);
  let out = '';
  let err = '';
  p.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => p.on('exit', (code, signal) => resolve({ code, signal, out, err })));
  const ready = new Promise((resolve, reject) => {
    p.stdout.on('data', (d) => {
      out += d;
      if (out.includes(mark)) resolve();
    });
    exited.then((r) => reject(new Error(`child exited (${r.code ?? r.signal}) before printing ${mark}: ${r.err}`)));
  });
  return { p, ready, exited, out: () => out };
}
/** After any outcome: the value is either what was committed (resolved) or unchanged (not applied). */
async function expectHonest(settled, reader, key, before, after) {
  const stored = await reader.get(key);
  if (settled.ok) {
    expect(stored).toEqual(after);
  } else if (settled.err.outcome === 'not_applied') {
    expect({ code: settled.err.code, stored }).toEqual({ code: settled.err.code, stored: before });
  } else {
    expect(settled.err.outcome).toBe('unknown');
  }
}
const settle = (p) => p.then((value) => ({ ok: true, value }), (err) => ({ ok: false, err }));

describe('etcd store attacks', () => {
  // ------------------------------------------------------------------------------------------
  // Breaks (failing before the fix of the same commit series)

  it('[close() ends the transaction: the commit fails and writes nothing] close() whose lease revoke fails (connection reset): the updater\'s commit, sent after close() resolved, still writes', async () => {
    // TTL 10 s: the lease the failed revoke left alive outlives the commit.
    const { proxy, client: a } = await proxied({ timeout: 10000, requestTimeout: 4000 });
    const reader = etcd();
    const key = unique('close-lost-revoke');
    await a.set(key, 'before');
    const settled = await settle(a.executeTransaction(key, async () => {
      proxy.partition(); // connections reset: the revoke fails at once
      await a.close(); // resolves: the client is closed
      proxy.heal();
      return 'after';
    }));
    // observed: executeTransaction resolved { value: 'after' } and etcd holds 'after': a write
    // made by a client already closed (its lock key lived on with the unrevoked lease)
    expect(settled.ok ? 'resolved' : settled.err.code).toBe('CLIENT_CLOSED');
    expect(await reader.get(key)).toBe('before');
  }, 30000);

  it('[executeTransaction takes every key get and set take] a 1,000-byte key of unicode (3,000 bytes encoded): executeTransaction refuses it (INVALID_ARGUMENT: lock path over 2048 bytes) while set, get and ZooKeeper\'s executeTransaction accept it', async () => {
    const a = etcd();
    const key = `${unique('long')}-${'€'.repeat(320)}`;
    expect(Buffer.byteLength(key)).toBeLessThanOrEqual(1024);
    await a.set(key, 1);
    // observed: INVALID_ARGUMENT "lock path is 2... bytes long; the limit is 2048 (UTF-8 bytes)"
    const r = await a.executeTransaction(key, (cur) => cur + 1);
    expect(r).toMatchObject({ previous: 1, value: 2 });
    expect(await a.get(key)).toBe(2);
    expect(lockEntries(key)).toEqual([]);
    const prefix = unique('worst');
    const worst = prefix + '\u0001'.repeat(1024 - prefix.length); // 1024 bytes, nearly all percent-encoded
    for (const k of [worst]) {
      await a.executeTransaction(k, 'ok');
      expect(await a.get(k)).toBe('ok');
      expect(lockEntries(k)).toEqual([]);
    }
  });

  it('[an updater that throws rejects with its own error, writes nothing] an updater throwing while etcd is unreachable: the caller gets the lock release\'s CONNECTIONLOSS (outcome "unknown") instead of its error', async () => {
    const { proxy, client: a } = await proxied({ timeout: 10000, requestTimeout: 1000 });
    const reader = etcd();
    const key = unique('throw-partitioned');
    await a.set(key, 'kept');
    const boom = new Error('boom');
    const err = await rejection(a.executeTransaction(key, () => {
      proxy.partition({ mode: 'blackhole' });
      throw boom;
    }));
    proxy.heal();
    // observed: err.code 'CONNECTIONLOSS', err.outcome 'unknown' ("release of /zktx/locks/kv/...:
    // etcd did not confirm the delete"): the caller's own error is lost, and 'unknown' tells it
    // the value may have been written, when an updater that throws never writes
    expect(err).toBe(boom);
    expect(await reader.get(key)).toBe('kept');
    await waitFor(() => lockEntries(key).length === 0, 15000, 'the lock key deleted in the background');
  }, 30000);

  it('[a fenced set on a released lock is LOCK_LOST and writes nothing] release() that etcd did not confirm (partition): a set fenced on that released lock still writes', async () => {
    const { proxy, client: a } = await proxied({ timeout: 10000, requestTimeout: 1000 });
    const b = etcd();
    const key = unique('fence-released');
    const lock = await a.lock(`/zktx-test/${unique('fence-released')}`);
    await b.set(key, 'before');
    proxy.partition({ mode: 'blackhole' });
    const relErr = await rejection(lock.release()); // etcd did not confirm the delete
    expect(relErr.code).toMatch(/CONNECTIONLOSS|TIMEOUT/);
    // The lock is released as far as its holder knows (the delete is retried in the background,
    // still behind the partition). A write fenced on it, from a client that can reach etcd:
    const late = await settle(b.set(key, 'late', { lock }));
    proxy.heal();
    // observed: the set resolved a version and etcd holds 'late'
    expect(late.ok ? 'written' : late.err.code).toBe('LOCK_LOST');
    expect(await b.get(key)).toBe('before');
  }, 30000);

  it('[a lock declared lost by lostAfter fences nothing, as on ZooKeeper] keep-alives unanswered past lostAfter x TTL but not the TTL: once etcd answers again, a fenced set and an updater\'s commit on that lock are LOCK_LOST and write nothing', async () => {
    // TTL 4 s, lostAfter 0.25: declared lost after 1 s of silence; the lease (and the key) live on.
    const { proxy, client: a } = await proxied({ timeout: 4000, lostAfter: 0.25, requestTimeout: 1000 });
    const b = etcd();
    const [key, other] = [unique('lost-after'), unique('lost-after-tx')];
    await b.set(key, 'before');
    await b.set(other, 1);
    const lock = await a.lock(`/zktx-test/${unique('lost-after')}`);
    const updating = a.executeTransaction(other, async (cur) => {
      proxy.partition({ mode: 'blackhole' });
      await sleep(1800); // past lostAfter x TTL (1 s), well within the TTL (4 s)
      proxy.heal();
      await waitFor(() => a.state === 'RECONNECTED' || a.state === 'CONNECTED', 5000, 'keep-alives answered again');
      return cur + 1;
    });
    const committed = await settle(updating);
    expect(committed.ok ? 'written' : committed.err.code).toBe('LOCK_LOST');
    expect(await b.get(other)).toBe(1);
    // the lease lived: the lock key is still there (or being deleted), yet the lock fences nothing
    const late = await settle(b.set(key, 'late', { lock }));
    expect(late.ok ? 'written' : late.err.code).toBe('LOCK_LOST');
    expect(await b.get(key)).toBe('before');
    // a lock taken after the silence is not affected
    const fresh = await a.lock(`/zktx-test/${unique('lost-after-fresh')}`, { timeout: 5000 });
    expect(typeof (await a.set(key, 'fresh', { lock: fresh }))).toBe('number');
    await fresh.release();
  }, 30000);

  // ------------------------------------------------------------------------------------------
  // Attacks that held (kept as specifications)

  it('[a resolved "applied" is applied] the commit\'s answer is lost (requests apply, answers dropped): resolved from etcd\'s history as applied, and the value is there', async () => {
    const { proxy, client: a } = await proxied({ timeout: 10000, requestTimeout: 2000 });
    const reader = etcd();
    const key = unique('answer-lost');
    await a.set(key, 1);
    const settled = await settle(a.executeTransaction(key, (cur) => {
      proxy.partition({ mode: 'responses' });
      setTimeout(() => proxy.heal(), 2500).unref();
      return cur + 1;
    }));
    proxy.heal();
    await expectHonest(settled, reader, key, 1, 2);
    if (settled.ok) expect(settled.value).toMatchObject({ value: 2, previous: 1 });
    else expect(settled.err.outcome).not.toBe('not_applied'); // the commit reached etcd
    await waitFor(() => lockEntries(key).length === 0, 15000, 'no lock key left');
  }, 30000);

  it('[a "not_applied" is not applied] the commit never reaches etcd (blackhole, the client gives up its connection): settled as not applied, and a late delivery cannot apply it', async () => {
    const { proxy, client: a } = await proxied({ timeout: 10000, requestTimeout: 2000 });
    const reader = etcd();
    const key = unique('never-sent');
    await a.set(key, 'before');
    const settled = await settle(a.executeTransaction(key, () => {
      proxy.partition({ mode: 'blackhole' });
      setTimeout(() => proxy.heal(), 3000).unref();
      return 'after';
    }));
    proxy.heal();
    await expectHonest(settled, reader, key, 'before', 'after');
    await sleep(1000); // anything the proxy held is delivered by now
    if (!settled.ok && settled.err.outcome === 'not_applied') expect(await reader.get(key)).toBe('before');
    await waitFor(() => lockEntries(key).length === 0, 15000, 'no lock key left');
  }, 30000);

  it('[compaction before resolution] the commit\'s answer is lost and the history is compacted before zktx can read it: outcome unknown or resolved, never a wrong claim', async () => {
    const { proxy, client: a } = await proxied({ timeout: 10000, requestTimeout: 2000 });
    const reader = etcd();
    const key = unique('compacted');
    await a.set(key, 'before');
    const settled = await settle(a.executeTransaction(key, () => {
      proxy.partition({ mode: 'responses' });
      setTimeout(() => {
        const rev = JSON.parse(etcdctl('get', '/', '-w', 'json')).header.revision;
        etcdctl('compact', String(rev));
        proxy.heal();
      }, 1500).unref();
      return 'after';
    }));
    proxy.heal();
    await expectHonest(settled, reader, key, 'before', 'after');
    if (!settled.ok) expect(settled.err.outcome).not.toBe('not_applied');
    await waitFor(() => lockEntries(key).length === 0, 15000, 'no lock key left');
  }, 30000);

  it('[a fenced commit never writes after its lease expired] a holder frozen (SIGSTOP) inside its updater past its TTL: the next writer gets in, and the frozen one\'s commit writes nothing when it wakes', async () => {
    const key = unique('frozen-holder');
    const b = etcd();
    await b.set(key, 0);
    const c = child(`
      const e = new zktx.Etcd({ endpoints: ${JSON.stringify(ENDPOINTS)}, timeout: 2000 });
      e.executeTransaction(${JSON.stringify(key)}, async (cur) => { console.log('inside'); await new Promise((r) => setTimeout(r, 300)); return cur + 100; })
        .then((r) => console.log('RESULT ok ' + JSON.stringify(r.value)), (err) => console.log('RESULT ' + err.code + ' ' + err.outcome))
        .finally(() => e.close());
    `, 'inside');
    await c.ready;
    c.p.kill('SIGSTOP');
    const mine = await b.executeTransaction(key, (cur) => cur + 1, { timeout: 20000 });
    expect(mine).toMatchObject({ previous: 0, value: 1 });
    c.p.kill('SIGCONT');
    const r = await c.exited;
    expect(r.out).toMatch(/RESULT \S+ not_applied/); // LOCK_LOST / SESSIONEXPIRED, or a lost answer resolved
    expect(await b.get(key)).toBe(1);
    expect(lockEntries(key)).toEqual([]);
  }, 40000);

  it('[a fenced commit never writes after its lease was revoked] etcdctl lease revoke mid-updater: LOCK_LOST / SESSIONEXPIRED, nothing written, no lock key left', async () => {
    const a = etcd();
    const key = unique('revoked');
    await a.set(key, 'before');
    const err = await rejection(a.executeTransaction(key, () => {
      const [lockKey] = lockEntries(key);
      const lease = lockKey.split('/').pop().split('-')[0];
      etcdctl('lease', 'revoke', lease);
      return 'after';
    }));
    expect([err.code, err.outcome]).toEqual([expect.stringMatching(/LOCK_LOST|SESSIONEXPIRED/), 'not_applied']);
    expect(await a.get(key)).toBe('before');
    expect(lockEntries(key)).toEqual([]);
  });

  it('[process.exit() mid-updater leaves nothing] the exit hook revokes the lease: the lock key goes at once and the value is unchanged', async () => {
    const key = unique('exit');
    const b = etcd();
    await b.set(key, 'before');
    const c = child(`
      const e = new zktx.Etcd({ endpoints: ${JSON.stringify(ENDPOINTS)}, timeout: 30000 });
      e.executeTransaction(${JSON.stringify(key)}, () => { console.log('inside'); process.exit(0); });
    `, 'inside');
    await c.ready;
    await c.exited;
    expect(lockEntries(key)).toEqual([]); // TTL 30 s: only the revoke can have removed it
    expect(await b.get(key)).toBe('before');
    expect((await b.executeTransaction(key, 'next', { timeout: 2000 })).previous).toBe('before');
  }, 30000);

  it('[abort / timeout mid-acquire leave nothing] executeTransaction waiting behind a holder, aborted and timed out: ABORTED / TIMEOUT, no key of theirs left, the holder commits', async () => {
    const [a, b] = [etcd(), etcd()];
    const key = unique('abort-wait');
    let release;
    const held = new Promise((r) => { release = r; });
    const holder = a.executeTransaction(key, async () => { await held; return 'holder'; });
    await waitFor(() => lockEntries(key).length === 1, 5000, 'holder in');
    const ac = new AbortController();
    const aborted = rejection(b.executeTransaction(key, 'aborted', { signal: ac.signal }));
    const timedOut = rejection(b.executeTransaction(key, () => 'timed out', { timeout: 300 }));
    await sleep(200);
    ac.abort();
    expect((await aborted).code).toBe('ABORTED');
    expect((await timedOut).code).toBe('TIMEOUT');
    expect(lockEntries(key)).toHaveLength(1);
    release();
    expect((await holder).value).toBe('holder');
    expect(await b.get(key)).toBe('holder');
    expect(lockEntries(key)).toEqual([]);
  });

  it('[odd keys] unicode, %, spaces, slashes and a 1024-byte key: distinct values, encoded names etcdctl sees, and `etcdctl lock` on the encoded name excludes executeTransaction', async () => {
    const a = etcd();
    const u = unique('odd');
    const keys = ['ключ с пробелом', '100%', '%25', 'a b', 'a/b', 'a', 'a%2Fb', `-${'€'.repeat(100)}`].map((k) => u + k);
    keys.push(u + 'z'.repeat(1024 - u.length));
    for (const [i, k] of keys.entries()) await a.executeTransaction(k, (cur) => ({ i, prev: cur ?? null }));
    for (const [i, k] of keys.entries()) {
      expect(await a.get(k)).toEqual({ i, prev: null }); // no two keys share a name
      expect(JSON.parse(etcdctl('get', '--print-value-only', `/zktx/kv/${encodeKey(k)}`).trim()).i).toBe(i);
      expect(lockEntries(k)).toEqual([]);
    }
    const k = `${unique('odd')} ü%`;
    await a.set(k, 0);
    const holder = spawn('etcdctl', ['--endpoints', ENDPOINTS, 'lock', `/zktx/locks/kv/${encodeKey(k)}`, '--', 'sh', '-c', 'sleep 1'], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: 'ignore' });
    children.push(holder);
    await waitFor(() => lockEntries(k).length === 1, 5000, 'etcdctl holds');
    const etcdctlKey = lockEntries(k)[0];
    let queueInside;
    await a.executeTransaction(k, (cur) => { queueInside = lockEntries(k); return cur + 1; }, { timeout: 10000 });
    // while our updater ran, etcdctl's key was gone: only our contender was in the queue
    expect(queueInside).toHaveLength(1);
    expect(queueInside).not.toContain(etcdctlKey);
    expect(await a.get(k)).toBe(1);
  }, 30000);

  it('[huge values] a value of exactly 1,000,000 bytes of JSON round-trips through set, executeTransaction (previous included) and an updater; one byte more is TOO_LARGE and writes nothing', async () => {
    const a = etcd();
    const key = unique('huge');
    const big = 'x'.repeat(1_000_000 - 2); // JSON adds the two quotes
    await a.set(key, big);
    expect((await a.get(key)).length).toBe(big.length);
    const r = await a.executeTransaction(key, (cur) => `${cur.slice(1)}y`);
    expect(r.previous).toBe(big);
    expect(r.value.length).toBe(big.length);
    const tooBig = await rejection(a.executeTransaction(key, (cur) => `${cur}z`));
    expect(tooBig.code).toBe('TOO_LARGE');
    expect((await a.get(key)).endsWith('y')).toBe(true);
    expect(lockEntries(key)).toEqual([]);
  }, 30000);

  it('[serializability on one key] 3 clients x 10 updaters each, interleaved with a foreign unlocked etcdctl put: no increment lost, the foreign write is never overwritten blindly', async () => {
    const cs = [etcd(), etcd(), etcd()];
    const key = unique('serial');
    await cs[0].set(key, 0);
    const outcomes = [];
    const runs = cs.flatMap((c) => Array.from({ length: 10 }, () => settle(c.executeTransaction(key, async (cur) => { await sleep(2); return cur + 1; }, { timeout: 30000 })).then((s) => outcomes.push(s))));
    await sleep(100);
    etcdctl('put', `/zktx/kv/${encodeKey(key)}`, '1000');
    await Promise.all(runs);
    const ok = outcomes.filter((s) => s.ok).length;
    for (const s of outcomes.filter((o) => !o.ok)) expect([s.err.code, s.err.outcome]).toEqual(['BADVERSION', 'not_applied']);
    // every applied increment is counted: those before the foreign put were replaced by it
    const after = outcomes.filter((s) => s.ok && s.value.previous >= 1000).length;
    expect(await cs[0].get(key)).toBe(1000 + after);
    expect(ok).toBeGreaterThanOrEqual(29);
    expect(lockEntries(key)).toEqual([]);
  }, 60000);

  it('[no write of a client applies after its close() resolved] writes in flight when close() is called are answered before it resolves', async () => {
    // 300 ms each way: every write below is on the wire when close() is called.
    const { proxy, client: a } = await proxied({ timeout: 10000, requestTimeout: 4000 });
    const key = unique('close-inflight');
    await a.set(key, 0);
    proxy.delay(300);
    const order = [];
    const writes = [
      a.set(key, 1).then(() => order.push('set'), (e) => order.push(`set:${e.code}`)),
      a.transaction(async (tx) => { tx.set(`${key}-tx`, 1); }).then(() => order.push('transaction'), (e) => order.push(`transaction:${e.code}`)),
    ];
    await sleep(150);
    await a.close();
    order.push('closed');
    await Promise.all(writes);
    // observed before the fix: ['closed', 'set', 'transaction']: close() revoked the lease and
    // resolved while both writes were still on their way, and they applied after it.
    expect(order.indexOf('closed')).toBe(2);
    expect(order.slice(0, 2).sort()).toEqual(['set', 'transaction']);
    proxy.delay(0);
    expect(await etcd().get(key)).toBe(1);
  }, 60000);
});

describe('etcd store attacks on a 3-member cluster', () => {
  let cluster;
  beforeAll(async () => { cluster = await startEtcdCluster(3); }, 60000);
  afterAll(async () => { if (cluster) await cluster.stop(); });

  it.each(['SIGSTOP', 'SIGKILL'])('[outcome honest through a member fault] the leader gets %s right as the commit is sent: the result matches etcd, and no lock key is left', async (signal) => {
    const a = new Etcd({ endpoints: cluster.endpoints, timeout: 6000, requestTimeout: 3000 });
    clients.push(a);
    const key = unique(`leader-${signal}`);
    await a.set(key, 'before');
    const leader = await cluster.leader();
    const settled = await settle(a.executeTransaction(key, () => {
      leader.kill(signal);
      return 'after';
    }));
    if (signal === 'SIGSTOP') leader.kill('SIGCONT');
    else await leader.restart();
    await cluster.waitForQuorum({ all: true });
    const reader = new Etcd({ endpoints: cluster.endpoints, timeout: 6000 });
    clients.push(reader);
    await expectHonest(settled, reader, key, 'before', 'after');
    await waitFor(() => lockEntries(key, cluster.connect).length === 0, 20000, 'no lock key left');
  }, 60000);
});
