'use strict';
// Fault: a network partition between a lock holder and its (standalone) server, longer than the
// session timeout. Injected with a TCP proxy that drops every connection and refuses new ones.
const { clientAt, unique, zkScripts } = require('../helpers/zk');
const { startProxy } = require('../../testing');
const { now, recordStates, inOrder, within, report, codeOf, waitFor } = require('./util');

const TICK = 200; // sessions may last 400..4000 ms
const SESSION = 2000;

describe('faults: partition of a lock holder past its session timeout', () => {
  let server;
  let proxy;
  let clients = [];
  beforeAll(async () => { server = await zkScripts.startStandalone({ tickTime: TICK }); });
  beforeEach(async () => { proxy = await startProxy(server.connect); }); // one per test: a failed test leaves its own cut
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    clients = [];
    await proxy.close();
  });
  afterAll(async () => { if (server) await server.stop(); });

  it('the lock is lost (signal aborts LOCK_LOST), another client takes it, the stale holder cannot write, new work gets a new session', async () => {
    const path = `/faults/${unique('partition')}`;
    const key = unique('partition-key');
    const holder = clientAt(proxy.connect, { timeout: SESSION, debug_level: 0 });
    const other = clientAt(server.connect, { timeout: SESSION, debug_level: 0 });
    clients.push(holder, other);
    const states = recordStates(holder);

    const lock = await holder.lock(path);
    expect(await holder.set(key, 'by holder', { lock })).toBe(0);
    expect(lock.signal.aborted).toBe(false);
    await other.connect();
    // The other client queues behind the holder before the fault: takeover = partition -> grant.
    let granted;
    const waiting = other.lock(path, { timeout: 15000 }).then((l) => {
      granted = now();
      return l;
    });
    await waitFor(async () => (await other.children(path)).length === 2, { what: 'the waiter to queue' });

    const cut = now();
    proxy.partition();

    const lost = await within(lock.lost, 10000, 'lock.lost');
    const detected = now();
    expect(lost).toMatchObject({ name: 'ZktxError', code: 'LOCK_LOST' });
    expect(lock.signal.aborted).toBe(true);
    expect(lock.signal.reason).toBe(lost);

    const newLock = await waiting;
    expect(newLock.token).toBeGreaterThan(lock.token);
    await states.waitFor('EXPIRED', { timeoutMs: 2000 }); // its own callback: may trail lock.lost a little
    expect(inOrder(states.names(), ['CONNECTED', 'SUSPENDED', 'EXPIRED'])).toBe(true);
    const suspendedAt = states.events.find((e) => e.state === 'SUSPENDED').t;
    const expiredAt = states.events.find((e) => e.state === 'EXPIRED').t;
    expect(suspendedAt).toBeLessThan(expiredAt);
    expect(await other.set(key, 'by new holder', { lock: newLock })).toBe(1);

    proxy.heal();
    // The old holder's fenced write, after heal: refused, nothing written.
    const stale = await holder.set(key, 'stale', { lock }).catch((e) => e);
    expect(['LOCK_LOST', 'SESSIONEXPIRED']).toContain(stale.code);
    expect(stale.outcome).toBe('not_applied');
    expect(await other.get(key)).toBe('by new holder');
    expect(await lock.isHeld()).toBe(false);
    expect(await newLock.isHeld()).toBe(true);

    // The old client's new work runs on a new session.
    expect(await holder.get(key)).toBe('by new holder');
    await holder.set(`${key}-after`, 'new session');
    expect(await other.get(`${key}-after`)).toBe('new session');
    await states.waitFor('CONNECTED', { from: states.names().lastIndexOf('EXPIRED') });
    expect(holder.state).toBe('CONNECTED');
    // Its lock on the new session queues like anyone else's.
    expect(await codeOf(holder.lock(path, { timeout: 0 }))).toBe('TIMEOUT');
    await newLock.release();
    const again = await holder.lock(path, { timeout: 5000 });
    expect(again.token).toBeGreaterThan(newLock.token);
    await again.release();
    expect(await other.children(path)).toEqual([]);

    report('partition > session timeout', {
      sessionMs: SESSION,
      suspendedAfterMs: suspendedAt - cut,
      takeoverMs: granted - cut,
      detectionMs: detected - cut,
      expiredEventMs: expiredAt - cut,
      // > 0: the new holder had the lock this long before the old one was told it lost it
      // (the client declares expiry 7/5 session timeouts after its last contact). Fencing covers it.
      beliefOverlapMs: detected - granted,
    });
    expect(detected - cut).toBeLessThan(2 * SESSION + 1000);
    expect(granted - cut).toBeLessThan(SESSION + 2000);
  }, 30000);

  it('a partition shorter than the session timeout loses nothing: SUSPENDED then RECONNECTED, lock kept, fenced write works', async () => {
    const path = `/faults/${unique('short-partition')}`;
    const key = unique('short-key');
    const holder = clientAt(proxy.connect, { timeout: SESSION, debug_level: 0 });
    const other = clientAt(server.connect, { timeout: SESSION, debug_level: 0 });
    clients.push(holder, other);
    const states = recordStates(holder);
    const lock = await holder.lock(path);
    const cut = now();
    proxy.partition();
    await states.waitFor('SUSPENDED', { timeoutMs: SESSION });
    // Heal well within the session timeout (the server keeps the session SESSION ms after its
    // last packet, the client gives up after 7/5 of it).
    const healAt = cut + SESSION / 3;
    await new Promise((r) => setTimeout(r, Math.max(0, healAt - now())));
    proxy.heal();
    const back = await states.waitFor('RECONNECTED', { timeoutMs: SESSION * 2 });
    expect(states.names()).not.toContain('EXPIRED');
    expect(lock.signal.aborted).toBe(false);
    expect(await lock.isHeld()).toBe(true);
    expect(await codeOf(other.lock(path, { timeout: 300 }))).toBe('TIMEOUT');
    expect(await holder.set(key, 'kept', { lock })).toBe(0);
    await lock.release();
    expect(await other.get(key)).toBe('kept');
    report('partition < session timeout', { sessionMs: SESSION, partitionMs: healAt - cut, reconnectedAfterMs: back.t - cut });
  }, 20000);
});
