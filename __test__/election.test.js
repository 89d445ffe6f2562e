'use strict';
// Leader election (zk.election): the contract against a real server. Faults (kill -9, SIGSTOP,
// partition) are in faults/election-faults.test.js, Curator interop in election-curator.test.js.
const { ZooKeeper, ZktxError, Election, Leadership, Lock } = require('..');
const { client, unique, rejection, within } = require('./helpers/zk');
const { runWorkers, workerPath } = require('./helpers/procs');
const { checkFencedHistory } = require('./helpers/checker');
const { waitFor } = require('./faults/util');

const isZktx = (err, code) => err instanceof ZktxError && err.code === code;

describe('zk.election', () => {
  let zk;
  let others = [];
  const another = () => {
    const c = client();
    others.push(c);
    return c;
  };
  beforeAll(() => { zk = client(); });
  afterEach(async () => {
    await Promise.all(others.map((c) => c.close()));
    others = [];
  });
  afterAll(() => zk.close());

  it('the first candidate leads at once, the next leads when it resigns, and tokens grow', async () => {
    const path = `/elections/${unique('handover')}`;
    const a = zk.election(path, { id: 'node-a' });
    const b = another().election(path, { id: 'node-b' });
    expect(a).toBeInstanceOf(Election);
    const first = await a.lead();
    expect(first).toBeInstanceOf(Leadership);
    expect(first).toBeInstanceOf(Lock);
    expect(first.id).toBe('node-a');
    expect(first.nodePath).toMatch(new RegExp(`^${path}/_c_[0-9a-f]{32}-latch-\\d{10}$`));
    let bLeads = false;
    const second = b.lead().then((l) => { bLeads = true; return l; });
    await waitFor(async () => (await a.participants()).length === 2, { what: 'b to take part' });
    expect(bLeads).toBe(false);
    expect(await first.isLeader()).toBe(true);
    await first.resign();
    const next = await within(second, 10000, 'b to lead');
    expect(next.token).toBeGreaterThan(first.token);
    expect(first.signal.aborted).toBe(false); // resigning is not a loss
    expect(await first.isLeader()).toBe(false);
    expect(await a.leader()).toEqual({ id: 'node-b', node: next.nodePath.split('/').pop() });
    await next.resign();
    expect(await a.leader()).toBeNull();
    expect(await zk.children(path)).toEqual([]);
  });

  it('participants() lists every candidate with its id, the leader first; leader() names it; both empty for a path nobody uses', async () => {
    const path = `/elections/${unique('participants')}`;
    expect(await zk.election(path).participants()).toEqual([]);
    expect(await zk.election(path).leader()).toBeNull();
    const ids = ['alpha', 'βeta', ''];
    const elections = ids.map((id) => another().election(path, { id }));
    const leader = await elections[0].lead();
    const waiting = [];
    for (const [k, e] of elections.slice(1).entries()) {
      waiting.push(e.lead());
      await waitFor(async () => (await e.participants()).length === k + 2, { what: `candidate ${k + 2}` });
    }
    const ps = await zk.election(path).participants();
    expect(ps.map((p) => p.id)).toEqual(ids);
    expect(ps.map((p) => p.isLeader)).toEqual([true, false, false]);
    expect(ps[0].node).toBe(leader.nodePath.split('/').pop());
    expect(await zk.election(path).leader()).toEqual({ id: 'alpha', node: ps[0].node });
    // The candidate node's data is the id's UTF-8 bytes, as Curator's LeaderLatch writes it.
    expect((await zk.znodes.getData(`${path}/${ps[1].node}`)).data).toEqual(Buffer.from('βeta'));
    await leader.resign();
    const l1 = await waiting[0];
    await l1.resign();
    await (await waiting[1]).resign();
  });

  it('a leader\'s fenced write commits; after it resigns the same write is refused with LOCK_LOST and nothing changes', async () => {
    const path = `/elections/${unique('fence')}`;
    const key = unique('leader-key');
    const leadership = await zk.election(path, { id: 'a' }).lead();
    expect(await zk.set(key, { by: 'a', token: leadership.token }, { lock: leadership })).toBe(0);
    expect(await zk.transaction(async (t) => { t.set(key, { by: 'a', n: 2 }); return 'done'; }, { lock: leadership })).toBe('done');
    expect(await zk.get(key)).toEqual({ by: 'a', n: 2 });
    await leadership.resign();
    const err = await rejection(zk.set(key, { by: 'a', n: 3 }, { lock: leadership }));
    expect(isZktx(err, 'LOCK_LOST')).toBe(true);
    expect(err.outcome).toBe('not_applied');
    expect(await zk.get(key)).toEqual({ by: 'a', n: 2 });
  });

  it('a candidate whose node someone deletes: its signal aborts with LOCK_LOST, fenced writes are refused, and the next candidate leads', async () => {
    const path = `/elections/${unique('deleted')}`;
    const key = unique('deleted-key');
    const leadership = await zk.election(path, { id: 'a' }).lead();
    const next = another().election(path, { id: 'b' }).lead();
    await waitFor(async () => (await zk.children(path)).length === 2, { what: 'b to take part' });
    await another().znodes.delete(leadership.nodePath);
    const lost = await within(leadership.lost, 10000, 'the loss');
    expect(isZktx(lost, 'LOCK_LOST')).toBe(true);
    expect(lost.reason).toBe('NODE_DELETED');
    expect(lost.message).toContain(`leadership of ${path} lost`);
    expect(leadership.signal.aborted).toBe(true);
    expect(leadership.signal.reason).toBe(lost);
    expect((await rejection(zk.set(key, 1, { lock: leadership }))).code).toBe('LOCK_LOST');
    expect(await zk.get(key)).toBeUndefined();
    const b = await within(next, 10000, 'b to lead');
    expect(b.token).toBeGreaterThan(leadership.token);
    await b.resign();
  });

  it('abort while waiting rejects ABORTED (cause: the reason) and leaves no candidate node; so does a timeout (TIMEOUT)', async () => {
    const path = `/elections/${unique('abort')}`;
    const leader = await zk.election(path, { id: 'a' }).lead();
    const waiter = another().election(path, { id: 'b' });
    const controller = new AbortController();
    const waiting = rejection(waiter.lead({ signal: controller.signal }));
    await waitFor(async () => (await zk.children(path)).length === 2, { what: 'b to take part' });
    const reason = new Error('shutting down');
    controller.abort(reason);
    const err = await waiting;
    expect(isZktx(err, 'ABORTED')).toBe(true);
    expect(err.cause).toBe(reason);
    await waitFor(async () => (await zk.children(path)).length === 1, { what: 'the aborted node to go' });
    expect(await zk.children(path)).toEqual([leader.nodePath.split('/').pop()]);

    const timedOut = await rejection(waiter.lead({ timeout: 200 }));
    expect(isZktx(timedOut, 'TIMEOUT')).toBe(true);
    expect(await zk.children(path)).toEqual([leader.nodePath.split('/').pop()]);
    expect(isZktx(await rejection(waiter.lead({ signal: AbortSignal.abort() })), 'ABORTED')).toBe(true);
    expect(await zk.children(path)).toEqual([leader.nodePath.split('/').pop()]);
    // After all that, the same object can still take part.
    await leader.resign();
    const b = await waiter.lead({ timeout: 5000 });
    expect(await zk.election(path).leader()).toEqual({ id: 'b', node: b.nodePath.split('/').pop() });
    await b.resign();
  });

  it('closing the client while it waits rejects CLIENT_CLOSED and its node goes with the session', async () => {
    const path = `/elections/${unique('close')}`;
    const leader = await zk.election(path, { id: 'a' }).lead();
    const c = client();
    const waiting = rejection(c.election(path, { id: 'b' }).lead());
    await waitFor(async () => (await zk.children(path)).length === 2, { what: 'b to take part' });
    await c.close();
    expect(isZktx(await waiting, 'CLIENT_CLOSED')).toBe(true);
    expect(await zk.children(path)).toEqual([leader.nodePath.split('/').pop()]);
    expect(() => c.election(path)).toThrow(expect.objectContaining({ code: 'CLIENT_CLOSED' }));
    await leader.resign();
  });

  it('closing the leader\'s client: its signal aborts (SESSION_ENDED) and the next candidate leads', async () => {
    const path = `/elections/${unique('close-leader')}`;
    const c = client();
    const leadership = await c.election(path, { id: 'a' }).lead();
    const next = zk.election(path, { id: 'b' }).lead();
    await waitFor(async () => (await zk.children(path)).length === 2, { what: 'b to take part' });
    const signal = leadership.signal;
    await c.close();
    expect((await within(leadership.lost, 10000, 'the loss')).reason).toBe('SESSION_ENDED');
    expect(signal.aborted).toBe(true);
    const b = await within(next, 10000, 'b to lead');
    expect(b.token).toBeGreaterThan(leadership.token);
    await b.resign();
  });

  it('one Election object takes part once at a time (ALREADY_HELD); after resigning it may lead again; two objects on one client are two candidates', async () => {
    const path = `/elections/${unique('once')}`;
    const e = zk.election(path, { id: 'a' });
    const l = await e.lead();
    expect(isZktx(await rejection(e.lead()), 'ALREADY_HELD')).toBe(true);
    expect((await zk.children(path)).length).toBe(1);
    const same = zk.election(path, { id: 'a2' });
    const queued = same.lead();
    await waitFor(async () => (await zk.children(path)).length === 2, { what: 'the second object to take part' });
    await l.resign();
    const l2 = await queued;
    const again = e.lead();
    await l2.resign();
    await (await again).resign();
    expect(await zk.children(path)).toEqual([]);
  });

  it('events: `leader` gives the current leader, then each new one (null when none); `participants` each change; watch() yields the same and ends on its signal', async () => {
    const path = `/elections/${unique('events')}`;
    const observer = another().election(path);
    const leaders = [];
    const lists = [];
    observer.on('leader', (l) => leaders.push(l));
    observer.on('participants', (ps) => lists.push(ps.map((p) => p.id)));
    await waitFor(() => leaders.length === 1, { what: 'the first leader event' });
    expect(leaders).toEqual([null]);
    const controller = new AbortController();
    const seen = [];
    const iterating = (async () => {
      for await (const state of observer.watch({ signal: controller.signal })) seen.push(state.leader && state.leader.id);
    })();
    const a = await zk.election(path, { id: 'a' }).lead();
    const bWaits = another().election(path, { id: 'b' }).lead();
    await waitFor(() => lists.some((l) => l.length === 2), { what: 'two participants' });
    await a.resign();
    const b = await bWaits;
    await waitFor(() => leaders.length === 3, { what: 'the leader event for b' });
    expect(leaders.map((l) => l && l.id)).toEqual([null, 'a', 'b']);
    expect(leaders[2].node).toBe(b.nodePath.split('/').pop());
    await b.resign();
    await waitFor(() => leaders.length === 4, { what: 'the leader event for nobody' });
    expect(leaders[3]).toBeNull();
    expect(lists[lists.length - 1]).toEqual([]);
    await waitFor(() => seen[seen.length - 1] === null && seen.includes('b'), { what: 'the iterator to see b go' });
    controller.abort();
    await within(iterating, 5000, 'the iterator to end on abort');
    observer.close();
    const count = leaders.length;
    await (await zk.election(path, { id: 'c' }).lead()).resign();
    await new Promise((r) => setTimeout(r, 300));
    expect(leaders.length).toBe(count); // closed: no more events
  });

  it('watch() ends when the client closes', async () => {
    const c = client();
    const it = c.election(`/elections/${unique('watch-close')}`).watch();
    expect(await it.next()).toEqual({ value: { leader: null, participants: [] }, done: false });
    const pending = it.next();
    await c.close();
    expect(await within(pending, 5000, 'the iterator to end')).toEqual({ value: undefined, done: true });
  });

  it('bad input is a ZktxError with a stable code, and nothing reaches the server', async () => {
    const path = `/elections/${unique('input')}`;
    const bad = [
      [() => zk.election('relative'), 'INVALID_ARGUMENT'],
      [() => zk.election('/a/'), 'INVALID_ARGUMENT'],
      [() => zk.election('/zookeeper/x'), 'INVALID_ARGUMENT'],
      [() => zk.election('/zktx/kv/x'), 'INVALID_ARGUMENT'],
      [() => zk.election(42), 'INVALID_ARGUMENT'],
      [() => zk.election(path, { id: 7 }), 'INVALID_ARGUMENT'],
      [() => zk.election(path, { id: '\uD800' }), 'INVALID_ARGUMENT'],
      [() => zk.election(path, { idd: 'x' }), 'INVALID_ARGUMENT'],
      [() => zk.election(path, 'x'), 'INVALID_ARGUMENT'],
      [() => zk.election(path, { id: 'x'.repeat(16 * 1024 + 1) }), 'TOO_LARGE'],
    ];
    for (const [f, code] of bad) {
      let thrown;
      try {
        f();
      } catch (err) {
        thrown = err;
      }
      expect({ code: thrown && thrown.code, zktx: thrown instanceof ZktxError }).toEqual({ code, zktx: true });
    }
    const e = zk.election(path, { id: 'x' });
    for (const opts of [{ timeout: -1 }, { timeout: 'soon' }, { signal: {} }, { wait: 5 }, 'x']) {
      expect(isZktx(await rejection(e.lead(opts)), 'INVALID_ARGUMENT')).toBe(true);
    }
    expect(() => e.watch({ signal: 3 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect((await zk.znodes.exists(path)).stat).toBeNull();
  });

  it('an election path and a lock path refuse each other (LOCK_KIND_MISMATCH), leaving nothing behind', async () => {
    const lockPath = `/elections/${unique('is-a-lock')}`;
    const lock = await zk.lock(lockPath);
    const err = await rejection(another().election(lockPath).lead());
    expect(isZktx(err, 'LOCK_KIND_MISMATCH')).toBe(true);
    expect(err.message).toContain('leader election');
    expect(await zk.children(lockPath)).toEqual([lock.nodePath.split('/').pop()]);
    await lock.release();

    const electionPath = `/elections/${unique('is-an-election')}`;
    const l = await zk.election(electionPath).lead();
    const other = another();
    for (const attempt of [() => other.lock(electionPath), () => other.semaphore(electionPath, 2).acquire(), () => other.readWriteLock(electionPath).readLock()]) {
      expect(isZktx(await rejection(attempt()), 'LOCK_KIND_MISMATCH')).toBe(true);
    }
    expect(await zk.children(electionPath)).toEqual([l.nodePath.split('/').pop()]);
    await l.resign();
  });

  it('exactly one leader at a time among 4 processes taking turns (fenced-history checker)', async () => {
    const path = `/elections/${unique('procs')}`;
    const run = unique('procs');
    const results = await runWorkers(workerPath('elector.js'), 4, {
      env: { ELECTION_PATH: path, RUN: run, SESSION_MS: '4000', HOLD_MS: '40', ROUNDS: '5', WRITE_EVERY_MS: '5' },
            timeoutMs: 90000,
    });
    const holds = [];
    results.forEach((r, i) => {
      expect({ i, code: r.code, stderr: r.stderr }).toEqual({ i, code: 0, stderr: '' });
      const bySeq = new Map();
      for (const l of r.lines) {
        if (typeof l !== 'object') continue;
        if (l.ev === 'acq') bySeq.set(l.seq, { holder: `w${i}#${l.seq}`, token: l.token, enter: l.t, writes: [] });
        const hold = bySeq.get(l.seq);
        if (!hold) continue;
        if (l.ev === 'send') hold.writes.push({ key: l.key, value: l.value, sentAt: l.t, status: 'unknown' });
        if (l.ev === 'write') {
          const w = hold.writes.find((x) => x.key === l.key && x.ackAt === undefined);
          w.ackAt = l.t;
          if (l.ok) Object.assign(w, { status: 'ok', version: l.version });
          else Object.assign(w, { status: l.outcome === 'unknown' ? 'unknown' : 'refused', code: l.code });
        }
        if (l.ev === 'resigning') hold.resigningAt = l.t;
      }
      holds.push(...bySeq.values());
    });
    expect(holds).toHaveLength(20);
    // What each process believed, on the machine's one clock: [acq, resigning] never overlap.
    const byEnter = [...holds].sort((x, y) => x.enter - y.enter);
    let overlaps = 0;
    for (let k = 1; k < byEnter.length; k++) if (byEnter[k].enter < byEnter[k - 1].resigningAt) overlaps += 1;
    expect(overlaps).toBe(0);
    for (let k = 1; k < byEnter.length; k++) expect(byEnter[k].token).toBeGreaterThan(byEnter[k - 1].token);
    // What the server acknowledged: the checker's exclusion, token order and durability.
    const keys = new Set(holds.flatMap((h) => h.writes.map((w) => w.key)));
    const store = new Map();
    for (const k of keys) store.set(k, await zk.get(k));
    const { violations, stats } = checkFencedHistory({ holds, store, orderKey: `${run}-order` });
    expect(violations).toEqual([]);
    expect(stats.ok).toBeGreaterThan(40);
    expect(await zk.children(path)).toEqual([]);
  }, 120000);
});

describe('zk.election on a client never connected', () => {
  it('lead() on a closed client rejects CLIENT_CLOSED', async () => {
    const c = new ZooKeeper({ connect: process.env.ZK_CONNECT });
    const e = c.election(`/elections/${unique('closed')}`);
    await c.close();
    expect(isZktx(await rejection(e.lead()), 'CLIENT_CLOSED')).toBe(true);
    expect(isZktx(await rejection(e.participants()), 'CLIENT_CLOSED')).toBe(true);
  });
});
