'use strict';
// Attacks on how etcd lock waiters wait (backend/etcd/queue_watch.rs, EtcdQueue in
// backend/etcd.rs, recipe/internals.rs wait_in_queue): one watch of a queue's deletes per client
// and path, shared by that client's waiters, opened before the listing, kept 5 s after the last
// wait, at most 16 kept; the waiter follows the queue from its delete events. Real servers, no
// mocks. Each test names the promise it attacks.
const { startEtcd, startEtcdCluster } = require('../testing');
const { unique } = require('./helpers/zk');
const { etcdKit, etcdctlAt, waitFor } = require('./helpers/etcd');

const describeEtcd = process.env.ETCD_ENDPOINTS ? describe : describe.skip;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const { ENDPOINTS, etcd, etcdctl } = etcdKit();

/** Direct children of a lock path (the contenders), in etcd's key order. */
const keysUnder = (p, at = ENDPOINTS) =>
  etcdctlAt(at, 'get', '--prefix', '--keys-only', `${p}/`)
    .split('\n')
    .filter(Boolean)
    .filter((k) => !k.slice(p.length + 1).includes('/'));
/** Direct children of a lock path in create-revision (queue) order. */
const queueUnder = (p, at = ENDPOINTS) => {
  const got = JSON.parse(etcdctlAt(at, 'get', '--prefix', `${p}/`, '--sort-by=CREATE', '--order=ASCEND', '-w', 'json'));
  return (got.kvs || []).map((kv) => Buffer.from(kv.key, 'base64').toString()).filter((k) => !k.slice(p.length + 1).includes('/'));
};
/** 'acquired' | error code | 'pending' after `ms`. */
const settledWithin = (p, ms) => Promise.race([p.then(() => 'acquired', (e) => e.code || String(e)), sleep(ms).then(() => 'pending')]);
/** The store's current revision. */
const revisionNow = (at = ENDPOINTS) => JSON.parse(etcdctlAt(at, 'get', '/', '-w', 'json')).header.revision;

/**
 * Counts holders of a path: enter() throws when another holder is in (never two exclusive
 * holders), and remembers tokens in holding order.
 */
function exclusiveMonitor() {
  let inside = 0;
  let max = 0;
  const tokens = [];
  return {
    enter(lock) {
      inside++;
      max = Math.max(max, inside);
      tokens.push(lock.token);
    },
    leave() {
      inside--;
    },
    get max() {
      return max;
    },
    tokens,
  };
}

describeEtcd('etcd queue watch attacks', () => {
  it('[liveness, one client over 256 paths] a client waiting on 300 paths at once gets each lock after its release (no CONNECTIONLOSS from evicted watches)', async () => {
    const [a, b] = [etcd(), etcd()];
    const base = `/locks/${unique('qw-many')}`;
    const paths = Array.from({ length: 300 }, (_, i) => `${base}/p${i}`);
    const held = await Promise.all(paths.map((p) => b.lock(p)));
    const waits = paths.map((p) => a.lock(p, { timeout: 40000 }));
    const outcomes = waits.map((w) => w.then(() => 'acquired', (e) => e.code || String(e)));
    await sleep(1500);
    await Promise.all(held.map((l) => l.release()));
    const got = await Promise.all(outcomes);
    const failed = got.filter((o) => o !== 'acquired');
    expect(failed).toEqual([]);
    await Promise.all(waits.map((w) => w.then((l) => l.release(), () => {})));
  }, 90000);

  it('[liveness, one client over 256 paths] a client waiting on 256 paths starts 120 more waits at once: all get their locks after the releases (observed: CONNECTIONLOSS "the watch could not be opened")', async () => {
    // Past 256 watches, opening one closed every watch without a receiver, and a waiter took its
    // receiver only after etcd confirmed its watch: the burst's waits closed each other's watches
    // while they were being opened, retried in step (same backoff) and did it again until they
    // gave up (the retry period: twice the request timeout). Three bursts: it depends on timing.
    const [a, b] = [etcd(), etcd()];
    const base = `/locks/${unique('qw-burst')}`;
    const longPaths = Array.from({ length: 256 }, (_, i) => `${base}/long${i}`);
    const longHeld = await Promise.all(longPaths.map((p) => b.lock(p)));
    const longWaits = longPaths.map((p) => a.lock(p).then((l) => l.release()));
    await sleep(1500);
    const failed = [];
    for (let round = 0; round < 3; round++) {
      const burstPaths = Array.from({ length: 120 }, (_, i) => `${base}/burst${round}-${i}`);
      const burstHeld = await Promise.all(burstPaths.map((p) => b.lock(p)));
      const burst = burstPaths.map((p) => a.lock(p).then((l) => l.release().then(() => 'acquired'), (e) => `${e.code}: ${e.message}`));
      await sleep(1000);
      await Promise.all(burstHeld.map((l) => l.release()));
      const got = await Promise.all(burst.map((w) => Promise.race([w, sleep(25000).then(() => 'pending')])));
      failed.push(...got.filter((g) => g !== 'acquired'));
    }
    expect(failed.slice(0, 3)).toEqual([]);
    await Promise.all(longHeld.map((l) => l.release()));
    await Promise.all(longWaits);
  }, 120000);

  it('[at most 16 watches kept after their waits] a client done waiting on 300 paths keeps no more than 16 queue watches open', async () => {
    // A member of its own: the metric counts every watcher on the member.
    const member = await startEtcd();
    const http = require('node:http');
    const metric = (name) =>
      new Promise((resolve, reject) => {
        http
          .get(`http://${member.connect}/metrics`, (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve(Number(body.match(new RegExp(`^${name} (\\S+)$`, 'm'))[1])));
          })
          .on('error', reject);
      });
    const [a, b] = [etcd({ endpoints: member.connect }), etcd({ endpoints: member.connect })];
    const base = `/locks/${unique('qw-kept')}`;
    const paths = Array.from({ length: 300 }, (_, i) => `${base}/p${i}`);
    const before = await metric('etcd_debugging_mvcc_watcher_total');
    const held = await Promise.all(paths.map((p) => b.lock(p)));
    const waits = paths.map((p) => a.lock(p, { timeout: 30000 }).then((l) => l.release()));
    await sleep(500);
    await Promise.all(held.map((l) => l.release()));
    await Promise.all(waits);
    await sleep(200);
    const kept = (await metric('etcd_debugging_mvcc_watcher_total')) - before;
    // Observed once a waiter holds its receiver from the start (the fix above): 300 until the
    // next idle check, 5-10 s later (before it, the cap closed watches in use, see the burst).
    try {
      expect(kept).toBeLessThanOrEqual(16);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await member.stop();
    }
  }, 60000);

  it('[liveness, one client over 256 paths] two clients taking turns on 300 paths for 8 s: every acquire succeeds (no CONNECTIONLOSS from watches evicted while opening)', async () => {
    const [a, b] = [etcd(), etcd()];
    const base = `/locks/${unique('qw-churn')}`;
    const paths = Array.from({ length: 300 }, (_, i) => `${base}/p${i}`);
    const errors = [];
    let rounds = 0;
    const until = Date.now() + 8000;
    const worker = async (client, p) => {
      while (Date.now() < until) {
        try {
          const l = await client.lock(p, { timeout: 30000 });
          rounds++;
          await sleep(5);
          await l.release();
        } catch (e) {
          errors.push(`${p}: ${e.code} ${e.message}`);
          if (e.code === 'ALREADY_HELD') await sleep(50);
        }
      }
    };
    await Promise.all(paths.flatMap((p) => [worker(a, p), worker(b, p)]));
    expect(errors.filter((e) => !/ALREADY_HELD/.test(e)).slice(0, 5)).toEqual([]);
    expect(rounds).toBeGreaterThan(300);
  }, 120000);

  it('[never two holders, tokens grow] one client\'s 3 waiters sharing the watch, two other clients and an `etcdctl lock` loop hammer one path: one holder at a time, tokens in holding order', async () => {
    const fs = require('node:fs');
    const { spawn } = require('node:child_process');
    const p = `/locks/${unique('qw-hammer')}`;
    const marker = `/tmp/break-qwatch-in-${process.pid}-${Date.now()}`;
    const [a, b, c] = [etcd(), etcd(), etcd()];
    let inside = 0;
    let max = 0;
    let overlapEtcdctl = 0;
    let held = 0;
    const tokens = [];
    const until = Date.now() + 6000;
    const loop = async (take) => {
      while (Date.now() < until) {
        const l = await take();
        inside++;
        max = Math.max(max, inside);
        tokens.push(l.token);
        held++;
        if (fs.existsSync(marker)) overlapEtcdctl++;
        await sleep(Math.floor(Math.random() * 5));
        if (fs.existsSync(marker)) overlapEtcdctl++;
        inside--;
        await l.release();
      }
    };
    const script = `end=$(( $(date +%s) + 6 )); while [ $(date +%s) -lt $end ]; do etcdctl --endpoints ${ENDPOINTS} lock ${p} sh -c 'touch ${marker}; sleep 0.05; rm -f ${marker}' >/dev/null; done`;
    const child = spawn('sh', ['-c', script], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: 'ignore' });
    const childDone = new Promise((r) => child.on('exit', r));
    await Promise.all([
      loop(() => a.semaphore(p, 1).acquire({ timeout: 30000 })),
      loop(() => a.semaphore(p, 1).acquire({ timeout: 30000 })),
      loop(() => a.semaphore(p, 1).acquire({ timeout: 30000 })),
      loop(() => b.lock(p, { timeout: 30000 })),
      loop(() => c.lock(p, { timeout: 30000 })),
    ]);
    await childDone;
    expect({ max, overlapEtcdctl }).toEqual({ max: 1, overlapEtcdctl: 0 });
    expect(held).toBeGreaterThan(20);
    const sorted = [...tokens].sort((x, y) => x - y);
    expect(tokens).toEqual(sorted);
  }, 60000);

  it('[never two holders, liveness] 12 waiters of one client share the watch while some abort, some time out, and the holder hands off', async () => {
    const p = `/locks/${unique('qw-share')}`;
    const [a, b] = [etcd(), etcd()];
    const mon = exclusiveMonitor();
    const first = await b.semaphore(p, 1).acquire();
    mon.enter(first);
    const aborts = [];
    const waits = [];
    for (let i = 0; i < 12; i++) {
      const ac = new AbortController();
      aborts.push(ac);
      const opts = i % 4 === 1 ? { timeout: 700 } : { signal: ac.signal };
      waits.push(
        a
          .semaphore(p, 1)
          .acquire(opts)
          .then(async (l) => {
            mon.enter(l);
            await sleep(30);
            mon.leave();
            await l.release();
            return 'acquired';
          }, (e) => e.code),
      );
    }
    await sleep(400);
    for (let i = 0; i < 12; i += 4) aborts[i].abort(); // 0, 4, 8 abort mid-wait
    await sleep(600); // 1, 5, 9 time out
    mon.leave();
    await first.release();
    const got = await Promise.all(waits.map((w) => Promise.race([w, sleep(15000).then(() => 'pending')])));
    expect(got).toEqual(['ABORTED', 'TIMEOUT', 'acquired', 'acquired', 'ABORTED', 'TIMEOUT', 'acquired', 'acquired', 'ABORTED', 'TIMEOUT', 'acquired', 'acquired']);
    expect(mon.max).toBe(1);
    for (let i = 1; i < mon.tokens.length; i++) expect(mon.tokens[i]).toBeGreaterThan(mon.tokens[i - 1]);
    expect(keysUnder(p)).toEqual([]);
  });

  it('[semaphore ≤ permits, liveness] one client\'s 9 waiters on a 3-permit semaphore behind another client\'s 3 holders all get in, never more than 3 at once', async () => {
    const p = `/locks/${unique('qw-sem3')}`;
    const [a, b] = [etcd(), etcd()];
    let inside = 0;
    let max = 0;
    const holders = await Promise.all([0, 1, 2].map(() => b.semaphore(p, 3).acquire()));
    inside = 3;
    const waits = Array.from({ length: 9 }, () =>
      a
        .semaphore(p, 3)
        .acquire({ timeout: 20000 })
        .then(async (l) => {
          inside++;
          max = Math.max(max, inside);
          await sleep(50);
          inside--;
          await l.release();
          return 'acquired';
        }, (e) => e.code),
    );
    await sleep(500);
    for (const h of holders) {
      inside--;
      await h.release();
      await sleep(100);
    }
    expect(await Promise.all(waits)).toEqual(Array(9).fill('acquired'));
    expect(max).toBeLessThanOrEqual(3);
  });

  it('[liveness] a waiter that joins while the shared watch is torn down after 5 s idle still gets the lock after the release', async () => {
    const p = `/locks/${unique('qw-linger')}`;
    const [a, b] = [etcd(), etcd()];
    // Open the shared watch with one wait, then wait again at moments around its idle teardown.
    for (const pause of [4950, 5000, 5050, 5100, 9980, 10020]) {
      const held = await b.lock(p);
      const w = a.lock(p, { timeout: 15000 });
      w.catch(() => {});
      await sleep(100);
      await held.release();
      const l = await w;
      await l.release();
      await sleep(pause);
    }
    const held = await b.lock(p);
    const w = a.lock(p, { timeout: 15000 });
    w.catch(() => {});
    await sleep(100);
    await held.release();
    expect(await settledWithin(w, 10000)).toBe('acquired');
    await (await w).release();
  }, 90000);

  it('[liveness] compacting the store while waiters follow the queue does not strand them', async () => {
    const p = `/locks/${unique('qw-compact')}`;
    const [a, b] = [etcd(), etcd()];
    const held = await b.lock(p);
    const waits = [0, 1, 2].map(() => a.semaphore(p, 1).acquire({ timeout: 20000 }).then(async (l) => { await sleep(20); await l.release(); return 'acquired'; }, (e) => e.code));
    await sleep(300);
    for (let i = 0; i < 20; i++) etcdctl('put', `${p}/sub/noise`, `${i}`);
    etcdctl('compact', String(revisionNow()));
    await held.release();
    expect(await Promise.all(waits.map((w) => Promise.race([w, sleep(10000).then(() => 'pending')])))).toEqual(['acquired', 'acquired', 'acquired']);
  });

  it('[never two holders vs etcdctl/Go keys] a Go-style key released and re-created under the same name (same lease) stays excluded from our holder', async () => {
    const p = `/locks/${unique('qw-goname')}`;
    const a = etcd();
    const lease = etcdctl('lease', 'grant', '30').match(/lease ([0-9a-f]+) granted/)[1];
    const goKey = `${p}/${lease}`;
    etcdctl('put', '--lease', lease, goKey, '');
    const w = a.lock(p, { timeout: 15000 });
    w.catch(() => {});
    await sleep(300);
    // The Go holder releases and joins again, behind us: we hold, it waits.
    etcdctl('del', goKey);
    etcdctl('put', '--lease', lease, goKey, '');
    expect(await settledWithin(w, 6000)).toBe('acquired');
    const l = await w;
    const keys = JSON.parse(etcdctl('get', '--prefix', `${p}/`, '-w', 'json')).kvs.map((kv) => ({ key: Buffer.from(kv.key, 'base64').toString(), rev: kv.create_revision }));
    const mine = keys.find((k) => k.key !== goKey);
    const theirs = keys.find((k) => k.key === goKey);
    expect(mine.rev).toBeLessThan(theirs.rev); // the Go key is behind ours: it waits for us
    await l.release();
    etcdctl('lease', 'revoke', lease);
  });

  it('[never two holders vs etcdctl lock] one client\'s 4 waiters sharing the watch and `etcdctl lock` take turns, one holder at a time', async () => {
    const p = `/locks/${unique('qw-etcdctl')}`;
    const a = etcd();
    // etcdctl lock holds while its command runs; its key is `<p>/<lease hex>`.
    const { spawn } = require('node:child_process');
    const child = spawn('etcdctl', ['--endpoints', ENDPOINTS, 'lock', p, 'sleep', '1'], { env: { ...process.env, ETCDCTL_API: '3' } });
    const done = new Promise((r) => child.on('exit', r));
    await waitFor(() => keysUnder(p).length === 1, 5000, 'etcdctl holds');
    const etcdctlKey = keysUnder(p)[0];
    let overlapped = false;
    const waits = [0, 1, 2, 3].map(() =>
      a
        .semaphore(p, 1)
        .acquire({ timeout: 20000 })
        .then(async (l) => {
          if (keysUnder(p).includes(etcdctlKey)) overlapped = true;
          await sleep(50);
          await l.release();
          return 'acquired';
        }, (e) => e.code),
    );
    await done;
    expect(await Promise.all(waits)).toEqual(Array(4).fill('acquired'));
    expect(overlapped).toBe(false);
  });

  it('[waiter whose key vanished wakes LOCK_LOST] deleting one waiter\'s key wakes it with LOCK_LOST while its siblings on the same watch keep waiting and then get in', async () => {
    const p = `/locks/${unique('qw-vanish')}`;
    const [a, b] = [etcd(), etcd()];
    const held = await b.lock(p);
    const waits = [0, 1, 2].map(() => a.semaphore(p, 1).acquire({ timeout: 20000 }).then(async (l) => { await l.release(); return 'acquired'; }, (e) => e.code));
    await sleep(500);
    const keys = queueUnder(p);
    expect(keys.length).toBe(4);
    etcdctl('del', keys[2]); // one waiter's key, in the middle of the queue
    const raced = await Promise.all(waits.map((w) => Promise.race([w, sleep(6000).then(() => 'pending')])));
    expect(raced.filter((o) => o === 'LOCK_LOST').length).toBe(1);
    expect(raced.filter((o) => o === 'pending').length).toBe(2);
    await held.release();
    expect((await Promise.all(waits)).filter((o) => o === 'acquired').length).toBe(2);
  });

  it('[waiter whose lease ended wakes SESSIONEXPIRED/LOCK_LOST] revoking the waiting client\'s lease wakes all its waiters on the shared watch', async () => {
    const p = `/locks/${unique('qw-revoke')}`;
    const [a, b] = [etcd(), etcd()];
    const held = await b.lock(p);
    const waits = [0, 1, 2].map(() => a.semaphore(p, 1).acquire({ timeout: 20000 }).then(() => 'acquired', (e) => e.code));
    await sleep(500);
    const leaseHex = queueUnder(p)[1].split('/').pop().split('-')[0];
    etcdctl('lease', 'revoke', leaseHex);
    const got = await Promise.all(waits.map((w) => Promise.race([w, sleep(6000).then(() => 'pending')])));
    for (const g of got) expect(['LOCK_LOST', 'SESSIONEXPIRED']).toContain(g);
    await held.release();
  });

  it('[never two holders, liveness with nested paths] waiters on <p> and <p>/sub of one client: deletes under <p>/sub never wake <p>\'s waiter into holding, and both hand off', async () => {
    const p = `/locks/${unique('qw-nested')}`;
    const [a, b] = [etcd(), etcd()];
    const outer = await b.lock(p);
    const inner = await b.lock(`${p}/sub`);
    const wOuter = a.lock(p, { timeout: 20000 });
    const wInner = a.lock(`${p}/sub`, { timeout: 20000 });
    wOuter.catch(() => {});
    wInner.catch(() => {});
    await sleep(300);
    await inner.release();
    expect(await settledWithin(wInner, 5000)).toBe('acquired');
    expect(await settledWithin(wOuter, 500)).toBe('pending');
    await (await wInner).release();
    expect(await settledWithin(wOuter, 500)).toBe('pending');
    await outer.release();
    expect(await settledWithin(wOuter, 5000)).toBe('acquired');
    await (await wOuter).release();
  });

  it('[liveness] a client closed mid-wait and a new one made: the new client\'s waiter gets the lock after the release', async () => {
    const p = `/locks/${unique('qw-reopen')}`;
    const b = etcd();
    const held = await b.lock(p);
    const a1 = etcd();
    const w1 = a1.lock(p, { timeout: 20000 }).then(() => 'acquired', (e) => e.code);
    await sleep(300);
    await a1.close();
    expect(await w1).toBe('CLIENT_CLOSED');
    const a2 = etcd();
    const w2 = a2.lock(p, { timeout: 20000 });
    w2.catch(() => {});
    await sleep(300);
    await held.release();
    expect(await settledWithin(w2, 5000)).toBe('acquired');
    await (await w2).release();
  });
});

describeEtcd('etcd queue watch attacks on a member that limits streams per client', () => {
  // etcd --max-concurrent-streams (or an HTTP/2 proxy in front of etcd: nginx allows 128 streams
  // per connection by default, Go's HTTP/2 server 250): each queue watch is a gRPC stream of its
  // own on the client's one connection per endpoint, so the watches a client keeps open after its
  // waits (up to 256, 5-10 s, before: now at most 16) took streams its next waits and releases
  // needed. The next step is one Watch stream per client carrying every queue watch, as Go's
  // clientv3 does; a client waiting on more paths at once than the limit allows still needs it.
  let member;
  beforeAll(async () => {
    member = await startEtcd({ extraFlags: { 'max-concurrent-streams': '100' } });
  }, 60000);
  afterAll(async () => {
    if (member) await member.stop();
  });

  it('[liveness] a client that waited on 60 paths can, right after, wait on 60 others and release them: idle kept watches do not starve its requests', async () => {
    const a = etcd({ endpoints: member.connect });
    const b = etcd({ endpoints: member.connect });
    const round = async (tag) => {
      const paths = Array.from({ length: 60 }, (_, i) => `/locks/${unique(`qw-streams-${tag}`)}/p${i}`);
      const held = await Promise.all(paths.map((p) => b.lock(p)));
      const waits = paths.map((p) =>
        a.lock(p, { timeout: 3000 }).then(
          (l) => l.release().then(() => 'released', (e) => `release ${e.code}`),
          (e) => `acquire ${e.code}`,
        ),
      );
      await sleep(300);
      await Promise.all(held.map((l) => l.release()));
      const got = await Promise.all(waits);
      const counts = {};
      for (const g of got) counts[g] = (counts[g] || 0) + 1;
      return counts;
    };
    expect(await round('r1')).toEqual({ released: 60 });
    // Observed: { released: ~40, 'release CONNECTIONLOSS' / 'acquire TIMEOUT': the rest }: the
    // 60 watches kept from round 1 hold 60 of the client's 100 streams for 5 s more.
    expect(await round('r2')).toEqual({ released: 60 });
  }, 60000);
});

describeEtcd('etcd queue watch attacks on a 3-member cluster', () => {
  let cluster;
  beforeAll(async () => {
    cluster = await startEtcdCluster(3);
  }, 60000);
  afterAll(async () => {
    if (cluster) await cluster.stop();
  });

  it('[liveness: re-list ≤ TTL/2] with the default 30 s session, waiters that join after a member was SIGSTOPped get the lock after a release through the others', async () => {
    const p = `/locks/${unique('qw-stopfirst')}`;
    const all = cluster.members.map((m) => m.endpoint);
    for (const victim of cluster.members) {
      const others = cluster.members.filter((m) => m !== victim).map((m) => m.endpoint);
      const a = etcd({ endpoints: all, timeout: 30000 });
      const b = etcd({ endpoints: others, timeout: 30000 });
      const held = await b.lock(p);
      await a.semaphore(p, 1).acquire({ timeout: 0 }).catch(() => {}); // a connects to every member
      victim.kill('SIGSTOP');
      const t0 = Date.now();
      const waits = [0, 1, 2].map(() => a.semaphore(p, 1).acquire({ timeout: 40000 }).then(async (l) => { await l.release(); return 'acquired'; }, (e) => `${e.code} after ${Date.now() - t0} ms`));
      await sleep(1000);
      await held.release().catch(() => {});
      const got = await Promise.all(waits.map((w) => Promise.race([w, sleep(20000).then(() => 'pending')])));
      victim.kill('SIGCONT');
      expect([victim.name, ...got]).toEqual([victim.name, 'acquired', 'acquired', 'acquired']);
      await cluster.waitForQuorum?.();
      await a.close();
      await b.close();
      await sleep(1000);
    }
  }, 180000);

  it('[liveness: re-list ≤ TTL/2] the next wait on a path whose kept watch lives on a member SIGSTOPped since still gets the lock after a release', async () => {
    const p = `/locks/${unique('qw-keptstop')}`;
    const all = cluster.members.map((m) => m.endpoint);
    for (const victim of cluster.members) {
      const others = cluster.members.filter((m) => m !== victim).map((m) => m.endpoint);
      // A 10 s lease: the point is the kept watch on the frozen member, not whether a's
      // keep-alive moves off it within a 4 s lease on a loaded machine (a CI rehearsal lost
      // a's lease that way: the waits ended LOCK_LOST).
      const a = etcd({ endpoints: all, timeout: 10000 });
      const b = etcd({ endpoints: others, timeout: 10000 });
      // A first wait opens the path's watch, kept 5 s after it.
      let held = await b.lock(p);
      const first = a.lock(p, { timeout: 10000 });
      await sleep(200);
      await held.release();
      await (await first).release();
      held = await b.lock(p);
      victim.kill('SIGSTOP');
      const waits = [0, 1, 2].map(() => a.semaphore(p, 1).acquire({ timeout: 30000 }).then(async (l) => { await l.release(); return 'acquired'; }, (e) => e.code));
      await sleep(300);
      await held.release().catch(() => {});
      const got = await Promise.all(waits.map((w) => Promise.race([w, sleep(15000).then(() => 'pending')])));
      victim.kill('SIGCONT');
      expect([victim.name, ...got]).toEqual([victim.name, 'acquired', 'acquired', 'acquired']);
      await cluster.waitForQuorum?.();
      await a.close();
      await b.close();
      await sleep(1000);
    }
  }, 180000);

  for (const signal of ['SIGSTOP', 'SIGKILL']) {
    it(`[liveness: re-list ≤ TTL/2] a waiter whose shared watch may live on a member hit by ${signal} still gets the lock after a release through the others`, async () => {
      const p = `/locks/${unique(`qw-${signal}`)}`;
      const all = cluster.members.map((m) => m.endpoint);
      for (const victim of cluster.members) {
        const others = cluster.members.filter((m) => m !== victim).map((m) => m.endpoint);
        const a = etcd({ endpoints: all });
        const b = etcd({ endpoints: others });
        const held = await b.lock(p);
        const waits = [0, 1, 2].map(() => a.semaphore(p, 1).acquire({ timeout: 30000 }).then(async (l) => { await l.release(); return 'acquired'; }, (e) => e.code));
        await sleep(500);
        victim.kill(signal);
        await held.release().catch(() => {}); // a killed leader may lose the answer: retried in the background
        expect([victim.name, ...(await Promise.all(waits.map((w) => Promise.race([w, sleep(15000).then(() => 'pending')]))))]).toEqual([victim.name, 'acquired', 'acquired', 'acquired']);
        if (signal === 'SIGSTOP') victim.kill('SIGCONT');
        else await victim.restart();
        await cluster.waitForQuorum?.();
        await a.close();
        await b.close();
        await sleep(1000);
      }
    }, 180000);
  }
});
