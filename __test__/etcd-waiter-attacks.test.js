'use strict';
// Attacks on the etcd waiter's decision (backend/etcd.rs, d9777fc: "decide from the watch's
// events only while the lease provably lives; else list again: a read says the truth"). A read
// says the truth as of when etcd served it; its answer can arrive after the lease expired.
// Real etcd at ETCD_ENDPOINTS, one TCP proxy of ours in front of the attacked client.
const { spawn } = require('node:child_process');
const path = require('node:path');
const { etcdKit, etcdctlAt, waitFor, jsonWorker } = require('./helpers/etcd');
const { unique } = require('./helpers/zk');

const describeEtcd = process.env.ETCD_ENDPOINTS ? describe : describe.skip;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const { ENDPOINTS, etcd, proxied, children } = etcdKit();
const { startProxy } = require('../testing');

function worker(lockPath, endpoints, requestTimeout) {
  return jsonWorker(children, [path.join(__dirname, 'workers', 'etcd-late-answer.js'), lockPath, ...(requestTimeout ? [String(requestTimeout)] : [])], endpoints);
}
const keysUnder = (p) => etcdctlAt(ENDPOINTS, 'get', '--prefix', '--keys-only', `${p}/`).split('\n').filter(Boolean);

/** Calls `then` once, right after the next chunk of at least `min` bytes `proxy` forwards from its client to etcd. */
function afterNextRequest(proxy, then, min = 0) {
  let armed = true;
  const t0 = Date.now();
  for (const pair of proxy.pairs) {
    pair.client.on('data', (c) => {
      if (process.env.WT_DEBUG) console.log('up', c.length, Date.now() - t0);
      if (armed && c.length >= min) {
        armed = false;
        then();
      }
    });
    if (process.env.WT_DEBUG) pair.upstream.on('data', (c) => console.log('down', c.length, Date.now() - t0));
  }
}

describeEtcd('etcd waiter attacks', () => {
  it('[one holder at a time; tokens increase; a lost lease is reported as lost] a queue answer delayed past the lease\'s expiry does not make a holder', async () => {
    // W joins a free lock; its join reaches etcd (W first), then the line slows to 5 s each
    // way: the answer is on its way while no keep-alive reaches etcd, W's 2 s lease expires
    // and deletes its key, and X (behind W) takes the lock. W's answer would say "first".
    // requestTimeout 10 s lets the join wait for it. Held with and without the acquire-time lease check: the HTTP/2
    // ping (a sixth of the TTL) drops the slowed connection first; the join is retried, finds
    // the lease gone, and W queues on a new lease behind X (its token above X's).
    const p = `/locks/${unique('wt-late-answer')}`;
    const { proxy, client: w } = await proxied({ timeout: 2000, requestTimeout: 10000 });
    const x = etcd({ timeout: 2000 });
    await (await w.lock(`${p}-warm`)).release(); // lease granted, connection open
    await sleep(200);
    afterNextRequest(proxy, () => proxy.delay(5000));
    const history = [];
    const wLock = w.lock(p, { timeout: 20000 }).then(
      (l) => {
        history.push({ who: 'W', at: Date.now(), token: l.token });
        return l;
      },
      (e) => {
        history.push({ who: 'W', at: Date.now(), error: e.code });
        return null;
      },
    );
    await waitFor(() => keysUnder(p).length === 1, 5000, "W's key");
    const xLock = await x.lock(p, { timeout: 15000 });
    history.push({ who: 'X', at: Date.now(), token: xLock.token });
    await sleep(4500); // X holds while W's late answer arrives
    const xReleasedAt = Date.now();
    await xLock.release();
    proxy.delay(0);
    const wl = await wLock;
    if (wl) await wl.release().catch(() => {});
    const wEntry = history.find((h) => h.who === 'W');
    const xEntry = history.find((h) => h.who === 'X');
    // W must not hold while X does (observed without the fix: W acquired ~3 s into X's hold,
    // its token below X's).
    const overlap = wEntry.token !== undefined && wEntry.at >= xEntry.at && wEntry.at < xReleasedAt;
    expect({ overlap, wToken: wEntry.token, xToken: xEntry.token, wError: wEntry.error, wAfterX: wEntry.at - xEntry.at }).toEqual(
      expect.objectContaining({ overlap: false }),
    );
  }, 60000);

  it('[one holder at a time; tokens increase] a waiter frozen (SIGSTOP) with its join answered but unread, past its lease: on SIGCONT it does not hold while the next contender does', async () => {
    // W's join reaches etcd (W first on a free lock); W is frozen before it reads the answer;
    // its 2 s lease expires; X, queued behind W, takes the lock; W thaws with "first" in its
    // socket. Repeated: the thaw races the answer against the timers that fired meanwhile.
    const rounds = Number(process.env.WT_ROUNDS || 8);
    const outcomes = [];
    for (let round = 0; round < rounds; round++) {
      const p = `/locks/${unique('wt-frozen-join')}`;
      const proxy = await startProxy(ENDPOINTS.split(',')[0]);
      // Odd rounds: requestTimeout 10 s, so that the join's own deadline (which fired during
      // the freeze) cannot fail it first; even rounds: the defaults.
      const requestTimeout = round % 2 ? 10000 : undefined;
      const w = worker(p, proxy.connect, requestTimeout);
      await w.line((l) => l.ready, 10000, 'worker ready');
      await sleep(100);
      afterNextRequest(proxy, () => w.child.kill('SIGSTOP'), 100);
      w.child.kill('SIGUSR2');
      await waitFor(() => keysUnder(p).length === 1, 5000, "W's key");
      const x = etcd({ timeout: 2000 });
      const xLock = await x.lock(p, { timeout: 15000 }); // once W's lease expired
      const xAt = Date.now();
      w.child.kill('SIGCONT');
      // X holds 4 s more (W's verdict comes within it, or W queued again behind X).
      await w.line((l) => l.result, 4000, 'worker result').catch(() => null);
      const xReleasedAt = Date.now();
      await xLock.release();
      const r = await w.line((l) => l.result, 20000, 'worker result');
      const overlap = r.result === 'acquired' && r.at >= xAt && r.at < xReleasedAt;
      outcomes.push({ round, requestTimeout, w: r.result, wToken: r.token, wLostAtOnce: r.lost, xToken: xLock.token, overlap });
      w.child.kill('SIGKILL');
      await proxy.close();
    }
    console.log(JSON.stringify(outcomes));
    // Observed before the acquire-time lease check: every requestTimeout-10-s round acquired
    // ~0.1 s after SIGCONT while X held, W's token below X's, lock.signal not aborted (4 of 4;
    // with the defaults the join's own deadline failed it first and W queued behind X).
    expect(outcomes.filter((o) => o.overlap)).toEqual([]);
    expect(outcomes.filter((o) => o.w === 'acquired' && !(o.wToken > o.xToken))).toEqual([]);
  }, 180000);
});

describeEtcd('etcd waiter attacks: the JS thread', () => {
  it('[one holder at a time; tokens increase] the JS thread blocked 3.5 s (past the 2 s lease) while the waiter\'s turn comes: the lock it then gets is held, its token above the last holder\'s', async () => {
    const p = `/locks/${unique('wt-busy')}`;
    const [h, w] = [etcd({ timeout: 2000 }), etcd({ timeout: 2000 })];
    const held = await h.lock(p);
    const waiting = w.lock(p, { timeout: 15000 });
    await waitFor(() => keysUnder(p).length === 2, 5000, "W's key");
    // The holder's key goes 0.5 s into the block (etcdctl in a shell started before it).
    const key = keysUnder(p).find((k) => k.endsWith(`/${held.nodePath.split('/').pop()}`));
    spawn('sh', ['-c', `sleep 0.5; ETCDCTL_API=3 etcdctl --endpoints=${ENDPOINTS} del ${key}`], { stdio: 'ignore' });
    const until = Date.now() + 3500;
    while (Date.now() < until); // busy: timers, promises and callbacks wait
    const lock = await waiting;
    expect(lock.token).toBeGreaterThan(held.token);
    expect(lock.signal.aborted).toBe(false);
    expect(await lock.isHeld()).toBe(true);
    await lock.release();
    expect(keysUnder(p)).toEqual([]);
  }, 30000);
});
