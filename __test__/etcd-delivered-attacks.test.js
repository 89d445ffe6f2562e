'use strict';
// Attacks on 1d28406: an etcd acquisition reaches JS only if NativeLock.provablyHeld (a
// keep-alive sent less than lostAfter x TTL ago was answered), else LOCK_LOST, the key(s)
// released in the background. Promises attacked: no false LOCK_LOST in healthy conditions; a
// rejected acquisition leaves no key and does not break the next acquire of the same path.
// Real etcd at ETCD_ENDPOINTS; the proxy is ours.
const diagnostics = require('node:diagnostics_channel');
const { unique } = require('./helpers/zk');
const { etcdKit, etcdctlAt } = require('./helpers/etcd');

const describeEtcd = process.env.ETCD_ENDPOINTS ? describe : describe.skip;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const { ENDPOINTS, etcd, proxied } = etcdKit();
const keysUnder = (p) => etcdctlAt(ENDPOINTS, 'get', '--prefix', '--keys-only', `${p}/`).split('\n').filter(Boolean);

/**
 * Blocks the JS thread `ms` right after the proxy forwarded the `nth` answer of at least `min`
 * bytes (a lock's join: its listing names the long path; keep-alive answers are ~30 bytes). The
 * proxy runs on this thread: while blocked, nothing more reaches the client, keep-alive answers
 * included, but zktx's I/O thread decides on the answer forwarded just before.
 */
function blockAfterAnswer(proxy, { min, nth = 1, ms }) {
  let seen = 0;
  for (const pair of proxy.pairs) {
    pair.upstream.on('data', (c) => {
      if (c.length >= min && ++seen === nth) {
        const until = Date.now() + ms;
        while (Date.now() < until); // the proxy's own listener wrote the chunk already
      }
    });
  }
}

describeEtcd('etcd: an acquisition delivered only while its lease provably lives', () => {
  it('[no false LOCK_LOST] healthy etcd, lostAfter 0.03 at a 2 s TTL (a valid fraction): every acquisition is delivered', async () => {
    // lostAfter x TTL = 60 ms, but keep-alives go every max(lostAfter x TTL / 3, 100 ms) =
    // 100 ms: the last answered one is older than 60 ms most of the time, and provablyHeld
    // says no on a healthy, idle etcd. Observed: 26 of 60 acquisitions LOCK_LOST (lostAfter
    // 0.05: 3 of 60; 0.01: 47 of 60; TTL 30 s, lostAfter 0.003: 7 of 60).
    const c = etcd({ timeout: 2000, lostAfter: 0.03 });
    const p = `/locks/${unique('dl-small-lostafter')}`;
    const outcomes = { acquired: 0 };
    for (let i = 0; i < 60; i++) {
      try {
        const l = await c.lock(p);
        outcomes.acquired++;
        await l.release();
      } catch (err) {
        outcomes[err.code] = (outcomes[err.code] || 0) + 1;
        await sleep(50);
      }
      await sleep(17);
    }
    expect(outcomes).toEqual({ acquired: 60 });
  });

  it.each([
    ['lock', (c, p) => c.lock(`${p}/a`), 1],
    ['multiLock', (c, p) => c.multiLock([`${p}/a`, `${p}/b`]), 2],
  ])('[LOCK_LOST leaves no key and does not break the next acquire] %s rejected LOCK_LOST (JS thread blocked 1 s after the join answer): acquiring again at once succeeds, not ALREADY_HELD', async (_, acquire, joins) => {
    // The message says "released; acquire again". The release runs in the background and holds
    // the path's registration until etcd confirms the delete, so the same client acquiring
    // again at once got ALREADY_HELD ("zktx locks are not reentrant"): by hand, 9 of 10
    // LOCK_LOSTs were followed by ALREADY_HELD on the immediate retry (lasting 1-8 ms).
    const rounds = 5;
    const outcomes = [];
    // each LOCK_LOST is published on zktx:lock:failed too (once per path), as any other refusal
    const published = [];
    const onFailed = (e) => published.push(e.error.code);
    diagnostics.subscribe('zktx:lock:failed', onFailed);
    for (let round = 0; round < rounds; round++) {
      const p = `/locks/${unique('dl-retry')}-${'x'.repeat(120)}`;
      const { proxy, client } = await proxied({ timeout: 2000, lostAfter: 0.3 });
      await client.connect();
      blockAfterAnswer(proxy, { min: 150, nth: joins, ms: 1000 });
      const first = await acquire(client, p).then((l) => l.release().then(() => 'acquired'), (e) => e.code);
      // Again at once, and on until acquired (a keep-alive still unanswered since the block is
      // a fair LOCK_LOST again): never ALREADY_HELD.
      const tries = [];
      for (let i = 0; i < 20 && tries[tries.length - 1] !== 'acquired'; i++) {
        tries.push(await acquire(client, p).then((l) => l.release().then(() => 'acquired'), (e) => e.code));
      }
      const again = tries.join(',');
      await sleep(300);
      outcomes.push({ first, again, keysLeft: keysUnder(p).length });
      await client.close();
    }
    diagnostics.unsubscribe('zktx:lock:failed', onFailed);
    console.log(JSON.stringify(outcomes));
    const lostCount = outcomes.flatMap((o) => [o.first, ...o.again.split(',')]).filter((c) => c === 'LOCK_LOST').length;
    expect(published.filter((c) => c === 'LOCK_LOST').length).toBe(lostCount * joins);
    // The trigger itself: the blocked rounds must be LOCK_LOST (else the attack did not happen).
    expect(outcomes.filter((o) => o.first === 'LOCK_LOST').length).toBeGreaterThanOrEqual(rounds - 1);
    expect(outcomes.filter((o) => o.keysLeft > 0)).toEqual([]);
    expect(outcomes.filter((o) => o.again.includes('ALREADY_HELD') || !o.again.endsWith('acquired'))).toEqual([]);
  }, 60000);
});
