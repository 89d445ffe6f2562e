'use strict';
// A randomized run on etcd: 4 worker processes loop acquire -> hold -> release on one lock of a
// 3-member cluster, each reaching every member through proxies of its own, while faults are
// injected at seeded random times:
//   kill       kill -9 a member (the leader, half of the time), restart it 0.5..2 s later
//   stop       SIGSTOP a member for 0.5..2.5 s, then SIGCONT
//   partition  cut every proxy of one worker for 0.3..3 s (longer than its lease, often), then heal
// The history is checked: a worker holds from its "acq" line until its "rel" line (printed
// before it releases) or its "lost" line (the loss signal); no two holds overlap, and tokens
// (create revisions) grow in acquisition order. Every worker runs with lostAfter 0.5 on a 2 s
// lease, so a holder cut off is told it lost the lock about 1 s before etcd can give it to
// anyone else. Reproduce with ZKTX_FAULT_SEED=<seed printed>; ZKTX_FAULT_MS sets the duration.
const { startEtcdCluster, startProxy } = require('../../testing');
const { workerPath } = require('../helpers/procs');
const { rng } = require('../helpers/random');
const { sleep, spawnWorker, waitFor } = require('./util');
const { unique } = require('../helpers/zk');

const WORKERS = 4;
const DURATION = Number(process.env.ZKTX_FAULT_MS || 20000);

/** Holds per worker from its lines: [{ w, token, from, to }]. */
function holdsOf(lines) {
  const holds = [];
  lines.forEach((ls, w) => {
    let open = null;
    for (const l of ls) {
      if (l.ev === 'acq') {
        if (open) holds.push({ ...open, to: l.t }); // never seen: a hold ends before the next
        open = { w, token: l.token, from: l.t };
      } else if ((l.ev === 'rel' || l.ev === 'lost') && open) {
        holds.push({ ...open, to: l.t, end: l.ev, reason: l.reason });
        open = null;
      }
    }
    if (open) holds.push({ ...open, to: Infinity });
  });
  return holds.sort((a, b) => a.from - b.from);
}

/** Overlapping holds and tokens out of order, as messages (empty: the history is sound). */
function violations(holds) {
  const found = [];
  for (let i = 1; i < holds.length; i++) {
    const [prev, cur] = [holds[i - 1], holds[i]];
    // Every earlier hold must be over (the latest end among them) before this one starts.
    const latest = holds.slice(0, i).reduce((m, h) => (h.to > m.to ? h : m));
    if (cur.from < latest.to) found.push(`overlap: w${cur.w} acquired (token ${cur.token}) ${(latest.to - cur.from).toFixed(1)} ms before w${latest.w} (token ${latest.token}) stopped holding (${latest.end || 'open'}${latest.reason ? `: ${latest.reason}` : ''})`);
    if (cur.token <= prev.token) found.push(`token order: w${cur.w} got ${cur.token} after w${prev.w}'s ${prev.token}`);
  }
  return found;
}

describe('etcd locks under random faults', () => {
  it('the checker finds an overlap and a token out of order in a made-up history', () => {
    const lines = [
      [{ ev: 'acq', token: 5, t: 0 }, { ev: 'rel', t: 10 }],
      [{ ev: 'acq', token: 7, t: 5 }, { ev: 'lost', t: 20 }, { ev: 'acq', token: 6, t: 30 }, { ev: 'rel', t: 31 }],
    ];
    const found = violations(holdsOf(lines));
    expect(found.some((m) => m.startsWith('overlap: w1'))).toBe(true);
    expect(found.some((m) => m.startsWith('token order'))).toBe(true);
    expect(violations(holdsOf([[{ ev: 'acq', token: 1, t: 0 }, { ev: 'rel', t: 1 }], [{ ev: 'acq', token: 2, t: 2 }, { ev: 'lost', t: 3 }]]))).toEqual([]);
  });

  it('kill -9 and SIGSTOP of members, partitions of holders: holds never overlap, tokens grow', async () => {
    const seed = Number(process.env.ZKTX_FAULT_SEED || Date.now() % 1e9);
    const random = rng(seed);
    const pick = (arr) => arr[Math.floor(random() * arr.length)];
    const between = (lo, hi) => lo + random() * (hi - lo);
    console.log(`[etcd-randomized] seed ${seed} (ZKTX_FAULT_SEED=${seed} to replay), ${DURATION} ms`);
    const cluster = await startEtcdCluster(3, { electionTimeout: 500, heartbeatInterval: 50 });
    const proxies = [];
    const workers = [];
    const faults = [];
    try {
      const lockPath = `/locks/${unique('etcd-random')}`;
      for (let w = 0; w < WORKERS; w++) {
        const mine = [];
        for (const m of cluster.members) mine.push(await startProxy(m.endpoint));
        proxies.push(mine);
        const worker = spawnWorker(workerPath('etcd-looper.js'), [lockPath, mine.map((p) => p.connect).join(','), '0.5']);
        workers.push(worker);
      }
      await Promise.all(workers.map((wk) => wk.next((l) => l.ev === 'ready')));
      const end = Date.now() + DURATION;
      while (Date.now() < end) {
        await sleep(between(300, 1200));
        const kind = pick(['kill', 'stop', 'partition', 'partition']);
        if (kind === 'kill') {
          const victim = random() < 0.5 ? await cluster.leader() : pick(cluster.members);
          faults.push(`kill -9 ${victim.name}`);
          await victim.kill('SIGKILL');
          await sleep(between(500, 2000));
          await victim.restart();
        } else if (kind === 'stop') {
          const victim = pick(cluster.members);
          faults.push(`SIGSTOP ${victim.name}`);
          await victim.kill('SIGSTOP');
          await sleep(between(500, 2500));
          await victim.kill('SIGCONT');
        } else {
          const w = Math.floor(random() * WORKERS);
          faults.push(`partition w${w}`);
          for (const p of proxies[w]) p.partition({ mode: random() < 0.5 ? 'reset' : 'blackhole' });
          await sleep(between(300, 3000));
          for (const p of proxies[w]) p.heal();
        }
        await cluster.waitForQuorum({ timeoutMs: 15000 });
      }
      await sleep(3000); // let everyone settle and report
      const lines = workers.map((wk) => wk.lines);
      const holds = holdsOf(lines);
      const found = violations(holds);
      const acquired = holds.length;
      const lost = holds.filter((h) => h.end === 'lost').length;
      console.log(`[etcd-randomized] seed ${seed}: ${acquired} holds (${lost} ended by a loss signal), faults: ${faults.join(', ')}`);
      expect(found).toEqual([]);
      expect(acquired).toBeGreaterThan(20); // it made progress through the faults
    } finally {
      for (const wk of workers) wk.kill('SIGKILL');
      for (const ps of proxies) for (const p of ps) p.close();
      await cluster.stop();
    }
  }, DURATION + 120000);
});
