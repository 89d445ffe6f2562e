'use strict';
// Fault: kill -9 of the leader of a 3-node ensemble while a client holds a lock. The session is
// the ensemble's, not a server's: the client reconnects to a survivor and keeps its lock.
const { clientAt, unique, zkScripts } = require('../helpers/zk');
const { now, recordStates, report, codeOf, waitFor } = require('./util');

const TICK = 300; // sessions may last 600..6000 ms
const SESSION = 6000; // room for an election on a busy 2-core machine

describe('faults: leader failover in a 3-node ensemble', () => {
  let ensemble;
  beforeAll(async () => { ensemble = await zkScripts.startEnsemble({ size: 3, tickTime: TICK }); }, 90000);
  afterAll(async () => { if (ensemble) await ensemble.stop(); }, 60000);

  it('the holder keeps its session and lock: not EXPIRED, signal not aborted, still exclusive, fenced write succeeds', async () => {
    const path = `/faults/${unique('failover')}`;
    const key = unique('failover-key');
    const holder = clientAt(ensemble.connect, { timeout: SESSION, debug_level: 0 });
    const contender = clientAt(ensemble.connect, { timeout: SESSION, debug_level: 0 });
    try {
      const states = recordStates(holder);
      const lock = await holder.lock(path);
      expect(await holder.set(key, 'before', { lock })).toBe(0);
      await contender.connect();

      const leader = await ensemble.leader();
      const killedAt = now();
      leader.kill('SIGKILL');
      const survivors = ensemble.servers.filter((s) => s !== leader);
      const newLeader = await ensemble.leader({ timeoutMs: 30000 });
      const electedAt = now();
      expect(survivors).toContain(newLeader);

      // The fenced write goes through once the holder is connected to the new quorum (it waits
      // for the reconnect by itself, bounded by the request deadline).
      expect(await holder.set(key, 'after failover', { lock })).toBe(1);
      const writtenAt = now();
      expect(await lock.isHeld()).toBe(true);
      expect(lock.signal.aborted).toBe(false);
      expect(await codeOf(contender.lock(path, { timeout: 1000 }))).toBe('TIMEOUT');
      expect(await contender.get(key)).toBe('after failover');
      expect(await contender.children(path)).toEqual([lock.nodePath.split('/').pop()]);

      // The killed node comes back and rejoins as a follower; nothing changes for the holder.
      await leader.restart();
      await ensemble.waitForQuorum({ timeoutMs: 60000, all: true });
      expect(await leader.mode()).toBe('follower');
      expect(await lock.isHeld()).toBe(true);
      expect(await holder.set(key, 'after rejoin', { lock })).toBe(2);

      const names = states.names();
      expect(names).not.toContain('EXPIRED');
      expect(names[0]).toBe('CONNECTED');
      // Either it was on the killed leader or its follower dropped clients while electing.
      const suspended = states.events.find((e) => e.state === 'SUSPENDED');
      if (suspended) await states.waitFor('RECONNECTED', { from: names.indexOf('SUSPENDED') });
      expect(holder.state).not.toBe('EXPIRED');
      expect(lock.signal.aborted).toBe(false);
      await lock.release();
      const next = await contender.lock(path, { timeout: 5000 });
      expect(next.token).toBeGreaterThan(lock.token);
      await next.release();

      const reconnected = states.events.find((e) => e.state === 'RECONNECTED');
      report('leader kill -9 (3 nodes)', {
        sessionMs: SESSION,
        electionMs: electedAt - killedAt,
        suspendedAfterMs: suspended ? suspended.t - killedAt : 'never',
        reconnectedAfterMs: reconnected ? reconnected.t - killedAt : 'never',
        fencedWriteDoneMs: writtenAt - killedAt,
        states: states.names().join('>'),
      });
      await waitFor(async () => (await contender.children(path)).length === 0, { what: 'the queue to empty' });
    } finally {
      await Promise.all([holder.close(), contender.close()]);
    }
  }, 120000);
});
