'use strict';
// Faults under leader election: kill -9 of the leader process, the leader frozen (SIGSTOP) past
// its session timeout, and a partition between the leader and the server (TCP proxy). Each on a
// dedicated server with a small tickTime, so sessions expire in seconds.
const { clientAt, unique, zkScripts, rejection } = require('../helpers/zk');
const { workerPath } = require('../helpers/procs');
const { checkFencedHistory } = require('../helpers/checker');
const { startProxy } = require('../../testing');
const { now, sleep, spawnWorker, within, report, waitFor } = require('./util');

const TICK = 200; // sessions may last 400..4000 ms
const SESSION = 2000;

/** The checker's holds from an elector worker's lines (see workers/elector.js). */
function holdsOf(name, worker) {
  const bySeq = new Map();
  for (const l of worker.lines) {
    if (l.ev === 'acq') bySeq.set(l.seq, { holder: `${name}#${l.seq}`, token: l.token, enter: l.t, writes: [], lostAt: undefined });
    const hold = bySeq.get(l.seq);
    if (!hold) continue;
    if (l.ev === 'send') hold.writes.push({ key: l.key, value: l.value, sentAt: l.t, status: 'unknown' });
    if (l.ev === 'write') {
      const w = hold.writes.find((x) => x.key === l.key && x.ackAt === undefined);
      w.ackAt = l.t;
      if (l.ok) Object.assign(w, { status: 'ok', version: l.version });
      else Object.assign(w, { status: l.outcome === 'unknown' ? 'unknown' : 'refused', code: l.code });
    }
    if (l.ev === 'lost') hold.lostAt = l.t;
  }
  return [...bySeq.values()];
}

function elector(server, path, run, name, env = {}) {
  return spawnWorker(workerPath('elector.js'), [], {
    env: { ZK_CONNECT: server.connect, ELECTION_PATH: path, RUN: run, WORKER: name, SESSION_MS: String(SESSION), HOLD_MS: '0', WRITE_EVERY_MS: '20', ...env },
  });
}

describe('faults: leader election', () => {
  let server;
  let workers = [];
  let clients = [];
  beforeAll(async () => { server = await zkScripts.startStandalone({ tickTime: TICK }); });
  afterEach(async () => {
    for (const w of workers) {
      w.kill('SIGCONT');
      w.kill('SIGKILL');
    }
    workers = [];
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    clients = [];
  });
  afterAll(async () => { if (server) await server.stop(); });

  /** Final store values of every key the holds wrote, and the checker's verdict. */
  async function check(holds, run) {
    const c = clientAt(server.connect, { timeout: SESSION, debug_level: 0 });
    clients.push(c);
    const keys = new Set(holds.flatMap((h) => h.writes.map((w) => w.key)));
    const store = new Map();
    for (const k of keys) store.set(k, await c.get(k));
    return checkFencedHistory({ holds, store, orderKey: `${run}-order` });
  }

  it('kill -9 of the leader process: the next candidate leads once the dead session expires, not before', async () => {
    const path = `/faults/${unique('election-kill')}`;
    const run = unique('election-kill');
    const a = elector(server, path, run, 'a');
    workers.push(a);
    const aLeads = await a.next((l) => l.ev === 'acq');
    const b = elector(server, path, run, 'b');
    workers.push(b);
    await b.next((l) => l.ev === 'candidate');
    const observer = clientAt(server.connect, { timeout: SESSION, debug_level: 0 });
    clients.push(observer);
    await waitFor(async () => (await observer.election(path).participants()).length === 2, { what: 'b to take part' });
    expect(b.lines.some((l) => l.ev === 'acq')).toBe(false);

    const killedAt = Date.now();
    a.kill('SIGKILL');
    expect((await a.waitExit()).signal).toBe('SIGKILL');
    const bLeads = await b.next((l) => l.ev === 'acq', SESSION + 8000);
    const takeover = bLeads.t - killedAt;
    expect(bLeads.token).toBeGreaterThan(aLeads.token);
    // The dead leader's node went with its session, not with its TCP connection.
    expect(takeover).toBeGreaterThan(SESSION / 2);
    await b.next((l) => l.ev === 'write' && l.ok);
    expect(await observer.election(path).leader()).toEqual({ id: 'wb', node: bLeads.node });
    b.send('stop');
    await b.waitExit(10000);
    const { violations } = await check([...holdsOf('a', a), ...holdsOf('b', b)], run);
    expect(violations).toEqual([]);
    report('election: kill -9 of the leader', { sessionMs: SESSION, takeoverMs: takeover });
  }, 40000);

  /**
   * Leader a writes (fenced, unless `unfenced`) until frozen by SIGSTOP past its session; b leads
   * meanwhile; a is thawed and keeps writing until it learns it lost. Returns what happened.
   */
  async function frozenLeader({ unfenced = false } = {}) {
    const path = `/faults/${unique('election-stop')}`;
    const run = unique('election-stop');
    const a = elector(server, path, run, 'a', unfenced ? { ZKTX_FAULT_UNFENCED: '1' } : {});
    workers.push(a);
    const aLeads = await a.next((l) => l.ev === 'acq');
    await a.next((l) => l.ev === 'write' && l.ok);
    const b = elector(server, path, run, 'b');
    workers.push(b);
    await b.next((l) => l.ev === 'candidate');
    const observer = clientAt(server.connect, { timeout: SESSION, debug_level: 0 });
    clients.push(observer);
    await waitFor(async () => (await observer.election(path).participants()).length === 2, { what: 'b to take part' });

    const stoppedAt = Date.now();
    a.kill('SIGSTOP');
    const bLeads = await b.next((l) => l.ev === 'acq', SESSION + 8000);
    await b.next((l) => l.ev === 'write' && l.ok && l.seq === bLeads.seq);
    await sleep(200); // b writes a while as the one leader
    const contAt = Date.now();
    a.kill('SIGCONT');
    const lost = await a.next((l) => l.ev === 'lost' && l.seq === aLeads.seq, 15000);
    await a.next((l) => l.ev === 'abandon' && l.seq === aLeads.seq, 15000);
    b.send('stop');
    a.send('stop');
    await Promise.all([a.waitExit(15000), b.waitExit(15000)]);
    const [aHold] = holdsOf('a', a).filter((h) => h.token === aLeads.token);
    const { violations, stats } = await check([...holdsOf('a', a), ...holdsOf('b', b)], run);
    return { aLeads, bLeads, aHold, lost, stoppedAt, contAt, violations, stats };
  }

  it('the leader frozen (SIGSTOP) past its session timeout: a successor leads, and once thawed the old leader\'s writes are refused and its signal aborts', async () => {
    const { aLeads, bLeads, aHold, lost, stoppedAt, contAt, violations, stats } = await frozenLeader();
    expect(bLeads.token).toBeGreaterThan(aLeads.token);
    // Once b led, nothing a sent was acknowledged: refused by the fence (LOCK_LOST once a knew,
    // or the server's NONODE / SESSIONEXPIRED), or lost with its connection.
    const lateOk = aHold.writes.filter((w) => w.sentAt >= bLeads.t && w.status === 'ok');
    expect(lateOk).toEqual([]);
    const afterThaw = aHold.writes.filter((w) => w.sentAt >= contAt);
    expect(afterThaw.length).toBeGreaterThan(0);
    expect(afterThaw.every((w) => w.status !== 'ok')).toBe(true);
    // Which one a thawed leader reads first depends on what waited in its socket: the server's
    // NodeDeleted for its own node (sent as the expired session's ephemerals go) or the expiry.
    expect(['NODE_DELETED', 'SESSION_ENDED', 'DISCONNECTED_TOO_LONG']).toContain(lost.reason);
    expect(violations).toEqual([]);
    report('election: leader frozen past its session', {
      sessionMs: SESSION,
      frozenMs: contAt - stoppedAt,
      takeoverMs: bLeads.t - stoppedAt,
      lossSignalAfterThawMs: lost.t - contAt,
      refusedAfterThaw: afterThaw.length,
      ackedWrites: stats.ok,
      lossReason: lost.reason,
    });
  }, 60000);

  it('harness self-check: the same freeze with the old leader writing unfenced is caught by the checker', async () => {
    const { bLeads, aHold, violations } = await frozenLeader({ unfenced: true });
    expect(aHold.writes.filter((w) => w.sentAt >= bLeads.t && w.status === 'ok').length).toBeGreaterThan(0);
    expect(violations.length).toBeGreaterThan(0);
  }, 60000);

  it('a partition longer than the session: with lostAfter 0.5 the leader learns it lost before the successor leads; its fenced writes are refused', async () => {
    const proxy = await startProxy(server.connect);
    try {
      const path = `/faults/${unique('election-partition')}`;
      const key = unique('election-partition-key');
      const leaderClient = clientAt(proxy.connect, { timeout: SESSION, lostAfter: 0.5, debug_level: 0 });
      const other = clientAt(server.connect, { timeout: SESSION, debug_level: 0 });
      clients.push(leaderClient, other);
      const leadership = await leaderClient.election(path, { id: 'behind-proxy' }).lead();
      expect(await leaderClient.set(key, 'leader 1', { lock: leadership })).toBe(0);
      let grantedAt;
      const next = other.election(path, { id: 'direct' }).lead().then((l) => {
        grantedAt = now();
        return l;
      });
      await waitFor(async () => (await other.election(path).participants()).length === 2, { what: 'the second candidate' });

      const cut = now();
      proxy.partition();
      const lost = await within(leadership.lost, SESSION * 3, 'leadership.lost');
      const lostAt = now();
      expect(lost).toMatchObject({ code: 'LOCK_LOST', reason: 'DISCONNECTED_TOO_LONG' });
      expect(leadership.signal.aborted).toBe(true);
      const successor = await within(next, SESSION * 4, 'the successor to lead');
      expect(successor.token).toBeGreaterThan(leadership.token);
      expect(lostAt).toBeLessThan(grantedAt);
      const refused = await leaderClient.set(key, 'stale leader', { lock: leadership }).then(() => 'written', (e) => e.code);
      expect(refused).toBe('LOCK_LOST');
      expect(await other.set(key, 'leader 2', { lock: successor })).toBe(1);
      proxy.heal();
      expect(await other.get(key)).toBe('leader 2');
      expect(await other.election(path).leader()).toEqual({ id: 'direct', node: successor.nodePath.split('/').pop() });
      report('election: partition of the leader', { sessionMs: SESSION, lostAfter: '0.5', lossSignalMs: lostAt - cut, successorLeadsMs: grantedAt - cut });
      await successor.resign();
    } finally {
      proxy.heal();
      await proxy.close();
    }
  }, 40000);

  it('session expiry (a cut past the session): a waiting lead() rejects SESSIONEXPIRED and its node is gone; watch() goes on over the new session', async () => {
    const proxy = await startProxy(server.connect);
    try {
      const path = `/faults/${unique('election-expiry')}`;
      const other = clientAt(server.connect, { timeout: SESSION, debug_level: 0 });
      const cut = clientAt(proxy.connect, { timeout: SESSION, debug_level: 0 });
      clients.push(other, cut);
      const leader = await other.election(path, { id: 'a' }).lead();
      const waiting = rejection(cut.election(path, { id: 'b' }).lead());
      await waitFor(async () => (await other.election(path).participants()).length === 2, { what: 'b to take part' });
      const states = cut.election(path).watch();
      expect((await states.next()).value.participants.map((p) => p.id)).toEqual(['a', 'b']);
      const change = states.next();
      proxy.partition();
      await sleep(SESSION * 1.5); // the server expires the cut session
      expect((await other.election(path).participants()).map((p) => p.id)).toEqual(['a']);
      proxy.heal();
      const err = await within(waiting, SESSION * 4, 'the waiting lead() to reject');
      expect(err).toMatchObject({ name: 'ZktxError', code: 'SESSIONEXPIRED' });
      const seen = await within(change, SESSION * 4, 'watch() to see the change');
      expect(seen.value.participants.map((p) => p.id)).toEqual(['a']);
      await leader.resign();
      expect((await within(states.next(), SESSION * 4, 'watch() to see a resign')).value).toEqual({ leader: null, participants: [] });
      // Taking part again works on the new session.
      const again = await cut.election(path, { id: 'b' }).lead({ timeout: 5000 });
      expect(await other.election(path).leader()).toEqual({ id: 'b', node: again.nodePath.split('/').pop() });
      await again.resign();
      await states.return();
    } finally {
      proxy.heal();
      await proxy.close();
    }
  }, 40000);

  it('a short disconnection (shorter than lostAfter): a waiting candidate keeps its place and the leader keeps leading', async () => {
    const proxy = await startProxy(server.connect);
    try {
      const path = `/faults/${unique('election-blip')}`;
      const leaderClient = clientAt(proxy.connect, { timeout: SESSION, debug_level: 0 });
      const waiterClient = clientAt(proxy.connect, { timeout: SESSION, debug_level: 0 });
      const other = clientAt(server.connect, { timeout: SESSION, debug_level: 0 });
      clients.push(leaderClient, waiterClient, other);
      const leadership = await leaderClient.election(path, { id: 'a' }).lead();
      const waiting = waiterClient.election(path, { id: 'b' }).lead();
      await waitFor(async () => (await other.election(path).participants()).length === 2, { what: 'b to take part' });
      const before = await other.election(path).participants();
      proxy.partition();
      await sleep(SESSION / 4);
      proxy.heal();
      await waitFor(() => leaderClient.state === 'RECONNECTED' || leaderClient.state === 'CONNECTED', { what: 'the leader to reconnect' });
      expect(await leadership.isLeader()).toBe(true);
      expect(leadership.signal.aborted).toBe(false);
      expect(await other.election(path).participants()).toEqual(before);
      await leadership.resign();
      const b = await within(waiting, 10000, 'b to lead after the blip');
      expect(b.nodePath.split('/').pop()).toBe(before[1].node);
      await b.resign();
    } finally {
      proxy.heal();
      await proxy.close();
    }
  }, 30000);
});
