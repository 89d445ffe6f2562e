'use strict';
// Attacks on leader election (docs/election.md): each test's name is the promise it attacks.
// The ones that fail are breaks (see the report in the commit message of branch break-election);
// the passing ones are kept as coverage. Faults are made with zktx/testing: a TCP proxy in front of
// the shared server (only the proxied client is cut), dedicated servers for anything destructive.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { ZktxError } = require('..');
const { client, clientAt, unique, rejection, zkScripts } = require('./helpers/zk');
const { waitFor, within, sleep, spawnWorker, spawnProcess } = require('./faults/util');
const { startProxy } = require('../testing');

const isZktx = (err, code) => err instanceof ZktxError && err.code === code;
const nodeOf = (l) => l.nodePath.split('/').pop();
const settled = (p) => p.then((value) => ({ ok: true, value }), (error) => ({ ok: false, error }));

describe('election attacks (shared server)', () => {
  let zk;
  let others = [];
  const another = (opts) => {
    const c = client(opts);
    others.push(c);
    return c;
  };
  beforeAll(() => { zk = client(); });
  afterEach(async () => {
    await Promise.all(others.map((c) => c.close().catch(() => {})));
    others = [];
  });
  afterAll(() => zk.close());

  it('events: "the current state first" — a second listener added while events already flow gets the current leader too', async () => {
    const p = `/elections/${unique('late-listener')}`;
    const l = await zk.election(p, { id: 'a' }).lead();
    const observer = another().election(p);
    const first = [];
    observer.on('leader', (x) => first.push(x));
    await waitFor(() => first.length === 1, { what: 'the first listener\'s current state' });
    expect(first[0]).toEqual({ id: 'a', node: nodeOf(l) });
    const second = [];
    observer.on('leader', (x) => second.push(x));
    const secondParticipants = [];
    observer.on('participants', (x) => secondParticipants.push(x));
    // Nothing changes: the promise is "the current state first, then changes".
    await sleep(1500);
    try {
      expect({ leader: second, participants: secondParticipants.length }).toEqual({ leader: [{ id: 'a', node: nodeOf(l) }], participants: 1 });
    } finally {
      observer.close();
      await l.resign();
    }
  });

  it('ALREADY_HELD only "while its leadership is neither resigned nor lost" — lead() again from the lost leadership\'s signal handler is accepted', async () => {
    const p = `/elections/${unique('rejoin-on-abort')}`;
    const e = another().election(p, { id: 'a' });
    const l = await e.lead();
    let again;
    l.signal.addEventListener('abort', () => { again = settled(e.lead({ timeout: 5000 })); });
    await zk.znodes.delete(l.nodePath);
    await within(l.lost, 5000, 'the loss');
    expect(l.signal.aborted).toBe(true);
    const r = await within(again, 8000, 'the new lead()');
    if (r.ok) await r.value.resign();
    expect(r.ok ? 'leads' : r.error.code).toBe('leads');
  });

  it('lead() rejects LOCK_LOST when "its node was deleted while it waited" — even while the leader keeps leading', async () => {
    const p = `/elections/${unique('waiter-deleted')}`;
    const leader = await zk.election(p, { id: 'a' }).lead();
    const waiting = settled(another().election(p, { id: 'b' }).lead());
    await waitFor(async () => (await zk.children(p)).length === 2, { what: 'b to take part' });
    const [, bNode] = (await zk.election(p).participants()).map((x) => x.node);
    await zk.znodes.delete(`${p}/${bNode}`);
    // b no longer takes part (participants() says so), so lead() must not stay pending.
    expect((await zk.election(p).participants()).map((x) => x.id)).toEqual(['a']);
    const r = await Promise.race([waiting, sleep(4000).then(() => 'still pending 4 s after its node was deleted')]);
    await leader.resign();
    const late = await within(waiting, 5000, 'b to settle once the leader resigned');
    expect(typeof r === 'string' ? r : (r.ok ? 'led' : r.error.code)).toBe('LOCK_LOST');
    expect(late.ok).toBe(false);
  });

  it('events: a listener that throws does not silently end the events for every other listener', async () => {
    const p = `/elections/${unique('throwing-listener')}`;
    const observer = another().election(p);
    const seen = [];
    let thrown = 0;
    observer.on('leader', () => {
      thrown += 1;
      if (thrown === 1) throw new Error('a bug in one listener');
    });
    observer.on('leader', (x) => seen.push(x && x.id));
    await waitFor(() => thrown >= 1, { what: 'the first event' });
    const l = await zk.election(p, { id: 'a' }).lead();
    const ok = await waitFor(() => seen.includes('a'), { timeoutMs: 3000, what: 'the event for a' }).then(() => true, () => false);
    observer.close();
    await l.resign();
    expect({ eventsAfterAThrowingListener: ok }).toEqual({ eventsAfterAThrowingListener: true });
  });

  it('abort at the moment of winning: lead() either leads (and resigns cleanly) or rejects ABORTED, never leaving a ghost candidate node', async () => {
    const p = `/elections/${unique('abort-at-win')}`;
    const outcomes = { led: 0, aborted: 0 };
    for (let k = 0; k < 12; k++) {
      const leader = await zk.election(p, { id: 'a' }).lead();
      const controller = new AbortController();
      const b = another().election(p, { id: 'b' });
      const waiting = settled(b.lead({ signal: controller.signal }));
      await waitFor(async () => (await zk.children(p)).length === 2, { what: 'b to take part' });
      const resigning = leader.resign();
      // Abort after 0..11 ms: somewhere around the moment b learns it leads.
      await sleep(k);
      controller.abort(new Error('shutting down'));
      await resigning;
      const r = await within(waiting, 5000, 'b to settle');
      if (r.ok) {
        outcomes.led += 1;
        expect(await r.value.isLeader()).toBe(true);
        await r.value.resign();
      } else {
        outcomes.aborted += 1;
        expect(r.error.code).toBe('ABORTED');
      }
      await waitFor(async () => (await zk.children(p).catch(() => [])).length === 0, { timeoutMs: 3000, what: `no candidate node left (round ${k})` });
      expect(await zk.election(p).leader()).toBeNull();
    }
    expect(outcomes.led + outcomes.aborted).toBe(12);
  });

  it('resign racing with loss (the node deleted by someone else at the same moment): resign() resolves, the object may lead again, nothing is left', async () => {
    const p = `/elections/${unique('resign-vs-loss')}`;
    const e = another().election(p, { id: 'a' });
    for (let k = 0; k < 5; k++) {
      const l = await e.lead({ timeout: 5000 });
      const [del, res] = await Promise.all([settled(zk.znodes.delete(l.nodePath)), settled(l.resign())]);
      expect(res).toEqual({ ok: true, value: undefined });
      expect(del.ok || isZktx(del.error, 'NONODE') || del.error.code === 'NONODE').toBe(true);
      expect(await l.isLeader()).toBe(false);
      await expect(l.resign()).resolves.toBeUndefined(); // idempotent
    }
    expect(await zk.children(p).catch(() => [])).toEqual([]);
  });

  it('the same id twice: two candidates, both listed, leadership passes from one to the other, fenced writes follow the node not the id', async () => {
    const p = `/elections/${unique('same-id')}`;
    const key = unique('same-id-key');
    const first = await zk.election(p, { id: 'twin' }).lead();
    const secondP = another().election(p, { id: 'twin' }).lead();
    await waitFor(async () => (await zk.children(p)).length === 2, { what: 'the twin to take part' });
    const ps = await zk.election(p).participants();
    expect(ps.map((x) => [x.id, x.isLeader])).toEqual([['twin', true], ['twin', false]]);
    await first.resign();
    const second = await within(secondP, 5000, 'the twin to lead');
    expect((await rejection(zk.set(key, 'first', { lock: first }))).code).toBe('LOCK_LOST');
    expect(await zk.set(key, 'second', { lock: second })).toBe(0);
    await second.resign();
  });

  it('odd ids: a 16 KiB id, NUL, astral characters and an empty id round-trip; 1 MB is TOO_LARGE; a foreign node\'s invalid UTF-8 reads as U+FFFD', async () => {
    const p = `/elections/${unique('odd-ids')}`;
    const ids = ['x'.repeat(16 * 1024), 'a\u0000b', '😀\uFFFF', ''];
    const leads = [];
    for (const id of ids) leads.push(another().election(p, { id }).lead());
    await waitFor(async () => (await zk.children(p)).length === ids.length, { what: 'every candidate' });
    expect((await zk.election(p).participants()).map((x) => x.id).sort()).toEqual([...ids].sort());
    expect(() => zk.election(p, { id: 'y'.repeat(1024 * 1024) })).toThrow(expect.objectContaining({ code: 'TOO_LARGE' }));
    expect(() => zk.election(p, { id: '€'.repeat(5462) })).toThrow(expect.objectContaining({ code: 'TOO_LARGE' })); // 16386 bytes of UTF-8
    // A Curator participant whose id bytes are not UTF-8 (Curator takes byte[] ids too).
    const foreign = await zk.znodes.create(`${p}/_c_00000000-0000-0000-0000-000000000000-latch-`, Buffer.from([0xff, 0xfe, 0x41]), { mode: 'ephemeral', sequential: true });
    const ps = await zk.election(p).participants();
    expect(ps.find((x) => x.node === foreign.split('/').pop()).id).toBe('\uFFFD\uFFFDA');
    await zk.znodes.delete(foreign);
    // Resign in the order leadership comes (the queue's order is the creates', not the array's):
    // awaiting them in array order would wait on one queued behind a leader not yet resigned.
    const pending = new Set(leads);
    while (pending.size > 0) {
      const { l, leadership } = await Promise.race([...pending].map((x) => x.then((v) => ({ l: x, leadership: v }))));
      pending.delete(l);
      await leadership.resign();
    }
  });

  it('foreign children (plain sequential nodes, other names) are participants where Curator\'s LeaderLatch puts them (by the text after "latch-", else the whole name): one ahead leads with its data as id and blocks lead() until it goes, one sorting after blocks nobody', async () => {
    const p = `/elections/${unique('foreign')}`;
    await zk.znodes.create(p).catch(() => {});
    const plain = (await zk.znodes.create(`${p}/`, Buffer.from('plain'), { sequential: true })).split('/').pop(); // 0000000000
    await zk.znodes.create(`${p}/config`, Buffer.from('cfg'));
    await zk.znodes.create(`${p}/-early`, Buffer.from('early'));
    const waiting = settled(another().election(p, { id: 'a' }).lead());
    await waitFor(async () => (await zk.children(p)).length === 4, { what: 'a to take part' });
    const ps = await zk.election(p).participants();
    const mine = ps.find((x) => x.id === 'a').node;
    // Curator's order: "-early" ('-' < '0'), "0000000000", a's latch node by its sequence, "config".
    expect(ps.map((x) => [x.id, x.node, x.isLeader])).toEqual([['early', '-early', true], ['plain', plain, false], ['a', mine, false], ['cfg', 'config', false]]);
    expect(await zk.election(p).leader()).toEqual({ id: 'early', node: '-early' });
    expect(await Promise.race([waiting, sleep(500).then(() => 'waits')])).toBe('waits');
    await zk.znodes.delete(`${p}/-early`);
    expect(await Promise.race([waiting, sleep(500).then(() => 'waits')])).toBe('waits'); // behind "0000000000" now
    await zk.znodes.delete(`${p}/${plain}`);
    const r = await within(waiting, 5000, 'a to lead once the foreign children ahead are gone');
    expect(r.ok && nodeOf(r.value)).toBe(mine);
    expect((await zk.election(p).participants()).map((x) => [x.id, x.isLeader])).toEqual([['a', true], ['cfg', false]]); // "config" sorts after: blocks nobody
    await r.value.resign();
    await zk.znodes.delete(`${p}/config`);
  });

  it('a path used by Curator\'s LeaderSelector (`_c_<uuid>-lock-<seq>` nodes) is refused LOCK_KIND_MISMATCH, leaving nothing behind; its lock nodes are not participants', async () => {
    const p = `/elections/${unique('selector')}`;
    await zk.znodes.create(p).catch(() => {});
    const sel = await zk.znodes.create(`${p}/_c_3f2b8c0e-5a1d-4c2e-9b7a-0d1e2f3a4b5c-lock-`, Buffer.from('selector-1'), { mode: 'ephemeral', sequential: true });
    const err = await rejection(another().election(p, { id: 'z' }).lead({ timeout: 3000 }));
    expect(err.code).toBe('LOCK_KIND_MISMATCH');
    expect(await zk.children(p)).toEqual([sel.split('/').pop()]);
    expect(await zk.election(p).leader()).toBeNull();
    await zk.znodes.delete(sel);
  });

  it('watch(): "ends on signal, break" — return() (what break calls) ends the iterator even while a next() is pending', async () => {
    const it = zk.election(`/elections/${unique('return-pending')}`).watch();
    await it.next();
    const pending = settled(it.next());
    const r = await Promise.race([it.return().then(() => 'returned'), sleep(2000).then(() => 'return() still pending after 2 s')]);
    expect(r).toBe('returned');
    expect((await within(pending, 2000, 'the pending next() to settle')).value).toEqual({ value: undefined, done: true });
  });

  it('a leadership garbage-collected without resign() is released: the next candidate leads and the Election object may take part again', async () => {
    const w = spawnProcess(process.execPath, ['--expose-gc', '-e', `
      const { ZooKeeper } = require(${JSON.stringify(path.join(__dirname, '..'))});
      (async () => {
        const zk = new ZooKeeper({ connect: process.env.ZK_CONNECT, timeout: 4000 });
        const other = new ZooKeeper({ connect: process.env.ZK_CONNECT, timeout: 4000 });
        const p = process.env.P;
        const a = zk.election(p, { id: 'a' });
        await (async () => { await a.lead(); })();
        const next = other.election(p, { id: 'b' }).lead();
        for (let i = 0; i < 30; i++) { global.gc(); await new Promise((r) => setTimeout(r, 100)); }
        const b = await Promise.race([next, new Promise((r) => setTimeout(() => r(null), 4000))]);
        const again = await a.lead({ timeout: 200 }).then(() => 'led', (e) => e.code);
        console.log(JSON.stringify({ bLeads: !!b, again }));
        await zk.close(); await other.close();
      })();`], { env: { P: `/elections/${unique('gc')}` } });
    const line = await w.next((l) => 'bLeads' in l, 20000);
    expect({ bLeads: line.bLeads, again: line.again }).toEqual({ bLeads: true, again: 'TIMEOUT' });
    await w.waitExit(10000);
  }, 30000);

  it('election.close() mid-lead does not stop the candidacy: lead() still resolves; close() mid-watch ends the events only', async () => {
    const p = `/elections/${unique('close-mid-lead')}`;
    const leader = await zk.election(p, { id: 'a' }).lead();
    const b = another().election(p, { id: 'b' });
    const events = [];
    b.on('leader', (x) => events.push(x && x.id));
    const waiting = b.lead();
    await waitFor(() => events.length === 1, { what: 'the first event' });
    b.close();
    await leader.resign();
    const lb = await within(waiting, 5000, 'b to lead after close()');
    await sleep(300);
    expect(events).toEqual(['a']);
    await lb.resign();
  });
});

describe('election attacks through a proxy (only the proxied client is cut)', () => {
  let proxy;
  let clients = [];
  const SESSION = 4000;
  const at = (connect, opts = {}) => {
    const c = clientAt(connect, { timeout: SESSION, debug_level: 0, ...opts });
    clients.push(c);
    return c;
  };
  beforeEach(async () => { proxy = await startProxy(process.env.ZK_CONNECT); });
  afterEach(async () => {
    proxy.heal();
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    clients = [];
    await proxy.close();
  });

  // Three shapes of "the connection is down when watch() / the events read": shorter than the
  // request deadline (the request waits), longer than a short requestTimeout (the read times out),
  // and a long cut with the default deadline (the read fails too), all shorter than the session.
  const downs = [
    ['a blip shorter than the request deadline', { timeout: SESSION }, SESSION / 4],
    ['longer than requestTimeout (the read times out)', { timeout: 8000, requestTimeout: 1000 }, 2500],
    ['a 7 s cut under a 9 s session (the default request deadline; the read fails)', { timeout: 9000 }, 7000],
  ];

  for (const [shape, opts, downMs] of downs) {
    it(`watch() "keeps going through connection loss" (requests that timed out are retried) — also when started while the connection is down: ${shape}`, async () => {
      const p = `/elections/${unique('watch-while-down')}`;
      const cut = at(proxy.connect, opts);
      await cut.connect();
      const direct = at(process.env.ZK_CONNECT);
      const l = await direct.election(p, { id: 'a' }).lead();
      proxy.partition();
      await sleep(200);
      const it = cut.election(p).watch();
      const first = settled(it.next());
      await sleep(downMs);
      proxy.heal();
      const r = await within(first, 15000, 'the first state');
      await it.return();
      await l.resign();
      expect(r.ok ? r.value.value.leader : `rejected ${r.error.code}`).toEqual({ id: 'a', node: nodeOf(l) });
    }, 40000);

    it(`events "keep going through connection loss" — a listener added while the connection is down gets the leader once it returns, then later changes: ${shape}`, async () => {
      const p = `/elections/${unique('events-while-down')}`;
      const cut = at(proxy.connect, opts);
      await cut.connect();
      const direct = at(process.env.ZK_CONNECT);
      const l = await direct.election(p, { id: 'a' }).lead();
      const observer = cut.election(p);
      const leaders = [];
      const errors = [];
      proxy.partition();
      await sleep(200);
      observer.on('error', (e) => errors.push(e.code));
      observer.on('leader', (x) => leaders.push(x && x.id));
      await sleep(downMs);
      proxy.heal();
      await waitFor(() => leaders.length >= 1, { timeoutMs: 10000, what: 'the first leader event' }).catch(() => {});
      await l.resign();
      const l2 = await direct.election(p, { id: 'b' }).lead();
      await waitFor(() => leaders.includes('b'), { timeoutMs: 4000, what: 'the event for b' }).catch(() => {});
      observer.close();
      await l2.resign();
      expect({ leaders, errors }).toEqual({ leaders: ['a', 'b'], errors: [] });
    }, 60000);
  }

  it('a short disconnection: a waiter whose predecessor resigned while it was cut off leads once it reconnects (its watch restored)', async () => {
    const p = `/elections/${unique('resign-while-cut')}`;
    const cut = at(proxy.connect);
    const direct = at(process.env.ZK_CONNECT);
    const l = await direct.election(p, { id: 'a' }).lead();
    const waiting = cut.election(p, { id: 'b' }).lead();
    await waitFor(async () => (await direct.children(p)).length === 2, { what: 'b to take part' });
    proxy.partition();
    await sleep(100);
    await l.resign();
    await sleep(SESSION / 4);
    proxy.heal();
    const b = await within(waiting, SESSION * 2, 'b to lead after the blip');
    expect(await direct.election(p).leader()).toEqual({ id: 'b', node: nodeOf(b) });
    await b.resign();
  });

  it('a leader whose node someone deletes while it is cut off (short blip): it learns NODE_DELETED once back, its fenced writes are refused, the waiter leads', async () => {
    const p = `/elections/${unique('deleted-while-cut')}`;
    const key = unique('deleted-while-cut-key');
    const cut = at(proxy.connect);
    const direct = at(process.env.ZK_CONNECT);
    const l = await cut.election(p, { id: 'a' }).lead();
    const waiting = direct.election(p, { id: 'b' }).lead();
    await waitFor(async () => (await direct.children(p)).length === 2, { what: 'b to take part' });
    proxy.partition();
    await sleep(100);
    await direct.znodes.delete(l.nodePath);
    const b = await within(waiting, 5000, 'b to lead');
    proxy.heal();
    const lost = await within(l.lost, SESSION * 2, 'a to learn it lost');
    expect(lost.reason).toBe('NODE_DELETED');
    expect((await rejection(cut.set(key, 'stale', { lock: l }))).code).toBe('LOCK_LOST');
    expect(await direct.get(key)).toBeUndefined();
    await b.resign();
  });

  it('fencing: a leader cut off past lostAfter (session alive) is refused LOCK_LOST, its node is deleted on reconnect, and the waiter leads', async () => {
    const p = `/elections/${unique('lost-after')}`;
    const key = unique('lost-after-key');
    const cut = at(proxy.connect, { lostAfter: 0.3 });
    const direct = at(process.env.ZK_CONNECT);
    const e = cut.election(p, { id: 'a' });
    const l = await e.lead();
    const waiting = direct.election(p, { id: 'b' }).lead();
    await waitFor(async () => (await direct.children(p)).length === 2, { what: 'b to take part' });
    proxy.partition();
    const lost = await within(l.lost, SESSION * 2, 'the loss');
    expect(lost.reason).toBe('DISCONNECTED_TOO_LONG');
    proxy.heal();
    const b = await within(waiting, SESSION * 2, 'b to lead once a\'s node is deleted');
    expect((await rejection(cut.set(key, 'stale', { lock: l }))).code).toBe('LOCK_LOST');
    expect(await direct.set(key, 'b', { lock: b })).toBe(0);
    // The object that lost may take part again.
    const again = e.lead({ timeout: 10000 });
    await b.resign();
    const a2 = await within(again, SESSION * 2, 'a to lead again');
    expect(await direct.election(p).leader()).toEqual({ id: 'a', node: nodeOf(a2) });
    await a2.resign();
  });
});

describe('election attacks: Curator LeaderLatch on the same path (dedicated server)', () => {
  const TICK = 200;
  const SESSION = 2000;
  const JARS = ['curator-recipes', 'curator-framework', 'curator-client', 'zookeeper', 'zookeeper-jute', 'guava', 'slf4j-api', 'slf4j-nop']
    .map((j) => path.join(process.env.CURATOR_JARS || '/usr/share/java', `${j}.jar`));
  let server;
  let classDir;
  let procs = [];
  let clients = [];
  beforeAll(async () => {
    classDir = fs.mkdtempSync(path.join(os.tmpdir(), 'zktx-curator-attack-'));
    execFileSync('javac', ['-d', classDir, '-cp', JARS.join(':'), path.join(__dirname, 'curator', 'LatchMember.java')], { stdio: 'pipe' });
    server = await zkScripts.startStandalone({ tickTime: TICK });
  }, 60000);
  afterEach(async () => {
    for (const p of procs) p.kill('SIGKILL');
    procs = [];
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    clients = [];
  });
  afterAll(async () => {
    if (server) await server.stop();
    if (classDir) fs.rmSync(classDir, { recursive: true, force: true });
  });
  const curator = (latchPath, id) => {
    const p = spawnProcess('java', ['-cp', [classDir, ...JARS].join(':'), 'LatchMember', server.connect, latchPath, id, String(SESSION)]);
    procs.push(p);
    return p;
  };
  const isLine = (prefix) => (l) => typeof l.text === 'string' && l.text.startsWith(prefix);
  async function curatorSaysLeader(p) {
    const from = p.lines.length;
    p.send('leader');
    await waitFor(() => p.lines.slice(from).some(isLine('LEADER_IS')), { what: 'the Java side to answer' });
    return p.lines.slice(from).find(isLine('LEADER_IS')).text.slice('LEADER_IS '.length);
  }
  const zkc = () => {
    const c = clientAt(server.connect, { timeout: SESSION, debug_level: 0 });
    clients.push(c);
    return c;
  };

  it('Curator interop "both name the same leader" — with a plain sequential child on the path (made before the latch nodes): both name it (Curator 5.4 sorts it first), neither candidate leads past it, and once it goes Curator leads', async () => {
    const latchPath = `/interop/${unique('plain-seq-first')}`;
    const c = zkc();
    await c.znodes.create('/interop').catch(() => {});
    await c.znodes.create(latchPath);
    await c.znodes.create(`${latchPath}/`, Buffer.from('not-a-candidate'), { sequential: true }); // "0000000000"
    const java = curator(latchPath, 'java-1');
    await java.next(isLine('STARTED'), 30000);
    const election = c.election(latchPath, { id: 'zktx-1' });
    await waitFor(async () => (await election.participants()).length === 2, { timeoutMs: 20000, what: 'Curator to take part' });
    const zktxSays = (await election.leader()).id;
    const javaLeads = await java.next(isLine('LEADER '), 5000).then(() => true, () => false);
    const curatorSays = await curatorSaysLeader(java);
    // A zktx candidate behind them: does it lead past the foreign child, or past java-1?
    const z = await settled(election.lead({ timeout: 3000 }));
    if (z.ok) await z.value.resign();
    expect({ zktxSays, curatorSays, javaLeads, zktxCandidate: z.ok ? 'leads past them' : z.error.code })
      .toEqual({ zktxSays: 'not-a-candidate', curatorSays: 'not-a-candidate', javaLeads: false, zktxCandidate: 'TIMEOUT' });
    // Once the foreign child goes, Curator leads, and both say so.
    await c.znodes.delete(`${latchPath}/0000000000`);
    await java.next(isLine('LEADER '), 10000);
    expect({ zktxSays: (await election.leader()).id, curatorSays: await curatorSaysLeader(java) }).toEqual({ zktxSays: 'java-1', curatorSays: 'java-1' });
  }, 60000);

  it('Curator interop "when zktx resigns, the next participant leads" — also after someone made a plain sequential child on the path while zktx led: both name that child (Curator 5.4 waits on it), and Curator leads once it goes', async () => {
    const latchPath = `/interop/${unique('plain-seq-between')}`;
    const c = zkc();
    const election = c.election(latchPath, { id: 'zktx-1' });
    const leadership = await election.lead();
    const plain = await c.znodes.create(`${latchPath}/`, Buffer.from('not-a-candidate'), { sequential: true });
    const java = curator(latchPath, 'java-1');
    await java.next(isLine('STARTED'), 30000);
    await waitFor(async () => (await election.participants()).length === 3, { timeoutMs: 20000, what: 'Curator to take part' });
    await leadership.resign();
    const javaLeads = await java.next(isLine('LEADER '), 6000).then(() => true, () => false);
    const zktxSays = (await election.leader()).id;
    const curatorSays = await curatorSaysLeader(java);
    expect({ zktxSays, curatorSays, javaLeads }).toEqual({ zktxSays: 'not-a-candidate', curatorSays: 'not-a-candidate', javaLeads: false });
    await c.znodes.delete(plain);
    await java.next(isLine('LEADER '), 10000);
    expect({ zktxSays: (await election.leader()).id, curatorSays: await curatorSaysLeader(java) }).toEqual({ zktxSays: 'java-1', curatorSays: 'java-1' });
  }, 60000);

  it('Curator interop: a Curator candidate and zktx candidates never both lead, and agree, through a Curator connection blip (Curator gives up at SUSPENDED, zktx keeps its place)', async () => {
    const latchPath = `/interop/${unique('curator-blip')}`;
    const proxy = await startProxy(server.connect);
    try {
      const p = spawnProcess('java', ['-cp', [classDir, ...JARS].join(':'), 'LatchMember', proxy.connect, latchPath, 'java-1', String(SESSION)]);
      procs.push(p);
      await p.next(isLine('LEADER '), 30000);
      const c = zkc();
      const e = c.election(latchPath, { id: 'zktx-1' });
      let zLeads = false;
      const leading = e.lead().then((l) => { zLeads = true; return l; });
      await waitFor(async () => (await e.participants()).length === 2, { what: 'zktx to take part' });
      proxy.partition();
      await p.next(isLine('NOT_LEADER'), 10000);
      expect(zLeads).toBe(false); // Curator's node is still there: nobody leads while it is in doubt
      proxy.heal();
      await sleep(SESSION * 2);
      const last = [...p.lines].reverse().find((x) => isLine('LEADER ')(x) || isLine('NOT_LEADER')(x));
      const javaLeadsNow = isLine('LEADER ')(last);
      const zktxSays = (await e.leader()).id;
      const curatorSays = await curatorSaysLeader(p);
      expect({ both: javaLeadsNow && zLeads, agree: zktxSays === curatorSays, leaderIsTheOneThatLeads: zktxSays === (javaLeadsNow ? 'java-1' : 'zktx-1') })
        .toEqual({ both: false, agree: true, leaderIsTheOneThatLeads: true });
      if (zLeads) await (await leading).resign();
      else {
        p.send('close');
        await (await within(leading, 10000, 'zktx to lead after the latch closes')).resign();
      }
    } finally {
      proxy.heal();
      await proxy.close();
    }
  }, 60000);
});

describe('election attacks: the process and its observers', () => {
  const alive = (env) => spawnWorker(path.join(__dirname, 'workers', 'election-alive.js'), [], { env: { ELECTION_PATH: `/elections/${unique('alive')}`, ...env } });
  let workers = [];
  afterEach(() => {
    for (const w of workers) w.kill('SIGKILL');
    workers = [];
  });

  for (const [mode, close, expected] of [
    ['events', 'none', 'alive'],
    ['events', 'election', 'exits'],
    ['events', 'zk', 'exits'],
    ['watch', 'none', 'alive'],
    ['watch', 'election', 'exits'],
    ['watch', 'zk', 'exits'],
  ]) {
    it(`"while someone listens, the process stays alive until election.close() or zk.close()": ${mode === 'events' ? 'a `leader` listener' : 'a watch() iterator'}, ${close === 'none' ? 'nothing closed: stays alive' : `${close}.close(): the process ${expected === 'exits' ? 'exits' : 'stays'}`}`, async () => {
      const w = alive({ MODE: mode, CLOSE: close, CLOSE_AFTER: '1000' });
      workers.push(w);
      await w.next((l) => l.ev === 'first', 15000);
      await w.next((l) => l.ev === 'closing', 5000);
      const exited = await w.waitExit(3000).then(() => 'exits', () => 'alive');
      expect({ stderr: w.stderr, outcome: exited }).toEqual({ stderr: '', outcome: expected });
    }, 30000);
  }
});

describe('election attacks: session expiry of an observer and of a leader (proxy to a dedicated server)', () => {
  const TICK = 200;
  const SESSION = 2000;
  let server;
  let proxy;
  let clients = [];
  const at = (connect, opts = {}) => {
    const c = clientAt(connect, { timeout: SESSION, debug_level: 0, ...opts });
    clients.push(c);
    return c;
  };
  beforeAll(async () => { server = await zkScripts.startStandalone({ tickTime: TICK }); }, 60000);
  beforeEach(async () => { proxy = await startProxy(server.connect); });
  afterEach(async () => {
    proxy.heal();
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    clients = [];
    await proxy.close();
  });
  afterAll(async () => { if (server) await server.stop(); });

  it('reconnectAfterExpiry: false — after expiry a pending watch() rejects SESSIONEXPIRED (not a never-ending iterator), the events say `error`, a waiting lead() rejects SESSIONEXPIRED', async () => {
    const p = `/elections/${unique('expiry-no-reconnect')}`;
    const direct = at(server.connect);
    const cut = at(proxy.connect, { reconnectAfterExpiry: false });
    const l = await direct.election(p, { id: 'a' }).lead();
    const e = cut.election(p, { id: 'b' });
    const waiting = settled(e.lead());
    await waitFor(async () => (await direct.election(p).participants()).length === 2, { what: 'b to take part' });
    const it = e.watch();
    await it.next();
    const pending = settled(it.next());
    const errors = [];
    e.on('error', (err) => errors.push(err.code));
    e.on('leader', () => {});
    await sleep(300);
    proxy.partition();
    await sleep(SESSION * 2);
    proxy.heal();
    const w = await within(pending, SESSION * 5, 'the watch() iterator to settle');
    const lw = await within(waiting, SESSION * 5, 'the waiting lead() to settle');
    await waitFor(() => errors.length > 0, { timeoutMs: SESSION * 5, what: 'an error event' }).catch(() => {});
    e.close();
    await l.resign();
    expect({ watch: w.ok ? w.value : w.error.code, lead: lw.ok ? 'led' : lw.error.code, errors }).toEqual({ watch: 'SESSIONEXPIRED', lead: 'SESSIONEXPIRED', errors: ['SESSIONEXPIRED'] });
  }, 40000);

  it('leader and events converge after the leader\'s session expires: its leadership is lost (SESSION_ENDED), the successor leads, and its own `leader` events (new session) name the successor', async () => {
    const p = `/elections/${unique('expiry-leader')}`;
    const key = unique('expiry-leader-key');
    const direct = at(server.connect);
    const cut = at(proxy.connect);
    const e = cut.election(p, { id: 'a' });
    const l = await e.lead();
    const leaders = [];
    e.on('leader', (x) => leaders.push(x && x.id));
    const next = direct.election(p, { id: 'b' }).lead();
    await waitFor(() => leaders.length === 1, { what: 'the first event' });
    proxy.partition({ mode: 'blackhole' });
    const b = await within(next, SESSION * 5, 'b to lead');
    proxy.heal();
    const lost = await within(l.lost, SESSION * 5, 'a to learn it lost');
    expect(['SESSION_ENDED', 'DISCONNECTED_TOO_LONG', 'NODE_DELETED']).toContain(lost.reason);
    expect((await rejection(cut.set(key, 'stale', { lock: l }))).code).toMatch(/LOCK_LOST|SESSIONEXPIRED/);
    await waitFor(() => leaders[leaders.length - 1] === 'b', { timeoutMs: SESSION * 5, what: 'a `leader` event naming b' });
    expect(await e.leader()).toEqual({ id: 'b', node: nodeOf(b) });
    // And the object takes part again on the new session.
    const again = settled(e.lead({ timeout: SESSION * 3 }));
    await b.resign();
    const r = await again;
    expect(r.ok).toBe(true);
    await waitFor(() => leaders[leaders.length - 1] === 'a', { timeoutMs: SESSION * 5, what: 'a `leader` event naming a again' });
    e.close();
    await r.value.resign();
  }, 40000);

  it('"Session expiry ends leadership (SESSION_ENDED) ... Call lead() again": lead() called from the client\'s EXPIRED state event is not refused ALREADY_HELD', async () => {
    const p = `/elections/${unique('rejoin-on-expired')}`;
    const cut = at(proxy.connect);
    const e = cut.election(p, { id: 'a' });
    const l = await e.lead();
    let again;
    let lostBefore;
    cut.on('state', (s) => {
      if (s === 'EXPIRED' && !again) {
        lostBefore = l.signal.aborted;
        again = settled(e.lead({ timeout: SESSION * 3 }));
      }
    });
    proxy.partition();
    await sleep(SESSION * 2);
    proxy.heal();
    await waitFor(() => again, { timeoutMs: SESSION * 5, what: 'the EXPIRED state event' });
    const r = await within(again, SESSION * 5, 'the new lead()');
    if (r.ok) await r.value.resign();
    expect({ signalAbortedAtExpiredEvent: lostBefore, rejoin: r.ok ? 'leads' : r.error.code }).toEqual({ signalAbortedAtExpiredEvent: lostBefore, rejoin: 'leads' });
  }, 40000);

  it('silent network (blackhole) with lostAfter 0.5: "the old leader learns it lost before a successor can lead"', async () => {
    const p = `/elections/${unique('blackhole-lost-after')}`;
    const direct = at(server.connect);
    const cut = at(proxy.connect, { lostAfter: 0.5 });
    const l = await cut.election(p, { id: 'a' }).lead();
    let grantedAt;
    const next = direct.election(p, { id: 'b' }).lead().then((x) => { grantedAt = performance.now(); return x; });
    await waitFor(async () => (await direct.election(p).participants()).length === 2, { what: 'b to take part' });
    let lostAt;
    l.lost.then(() => { lostAt = performance.now(); });
    const cutAt = performance.now();
    proxy.partition({ mode: 'blackhole' });
    const b = await within(next, SESSION * 5, 'b to lead');
    await within(l.lost, SESSION * 5, 'a to learn it lost');
    proxy.heal();
    await b.resign();
    expect({ lostMs: Math.round(lostAt - cutAt), successorMs: Math.round(grantedAt - cutAt), lostFirst: lostAt < grantedAt }).toMatchObject({ lostFirst: true });
  }, 40000);
});

describe('election attacks: a 3-node ensemble loses its leader server while a zktx leader holds', () => {
  const TICK = 200;
  const SESSION = 4000;
  let ensemble;
  beforeAll(async () => { ensemble = await zkScripts.startEnsemble({ size: 3, tickTime: TICK }); }, 120000);
  afterAll(async () => { if (ensemble) await ensemble.stop(); }, 60000);

  it('the zktx leader keeps leading through the failover (signal not aborted, fenced write ok), the waiter does not lead, leader()/events agree; then hand-over works on the new quorum', async () => {
    const p = `/elections/${unique('ensemble')}`;
    const key = unique('ensemble-key');
    const a = clientAt(ensemble.connect, { timeout: SESSION, debug_level: 0 });
    const bc = clientAt(ensemble.connect, { timeout: SESSION, debug_level: 0 });
    const obs = clientAt(ensemble.connect, { timeout: SESSION, debug_level: 0 });
    try {
      const l = await a.election(p, { id: 'a' }).lead();
      let bLeads = false;
      const next = bc.election(p, { id: 'b' }).lead().then((x) => { bLeads = true; return x; });
      const observer = obs.election(p);
      const leaders = [];
      observer.on('leader', (x) => leaders.push(x && x.id));
      await waitFor(async () => (await obs.election(p).participants()).length === 2, { what: 'b to take part' });
      expect(await a.set(key, 'before', { lock: l })).toBe(0);
      const zkLeader = await ensemble.leader();
      zkLeader.kill('SIGKILL');
      await ensemble.leader({ timeoutMs: 30000 });
      expect(await a.set(key, 'after', { lock: l })).toBe(1);
      expect(l.signal.aborted).toBe(false);
      expect(await l.isLeader()).toBe(true);
      expect(bLeads).toBe(false);
      expect(await obs.election(p).leader()).toEqual({ id: 'a', node: nodeOf(l) });
      await l.resign();
      const b = await within(next, SESSION * 3, 'b to lead');
      expect((await rejection(a.set(key, 'stale', { lock: l }))).code).toBe('LOCK_LOST');
      await waitFor(() => leaders[leaders.length - 1] === 'b', { timeoutMs: SESSION * 3, what: 'the event for b' });
      expect(leaders.filter((x) => x === 'a').length).toBe(1);
      observer.close();
      await b.resign();
    } finally {
      await Promise.all([a, bc, obs].map((c) => c.close().catch(() => {})));
    }
  }, 90000);
});
