'use strict';
// Fault: kill -9 of the leader of a 3-node ensemble under a persistent recursive watch and a tree
// cache, with a writer that keeps writing through the election. Every server drops its clients
// when the leader goes (followers stop serving until a new quorum forms), so the watcher's
// session moves: zktx sets the persistent watch again (zookeeper-client does not), says `resync`,
// and the cache re-reads and converges to what the new quorum holds.
const { clientAt, unique, zkScripts } = require('../helpers/zk');
const { converges, write } = require('../helpers/tree');
const { now, recordStates, report, waitFor, within } = require('./util');

const TICK = 300;
const SESSION = 6000; // room for an election on a busy 2-core machine

describe('faults: watches and the tree cache across a leader failover (3 nodes)', () => {
  let ensemble;
  beforeAll(async () => { ensemble = await zkScripts.startEnsemble({ size: 3, tickTime: TICK }); }, 90000);
  afterAll(async () => { if (ensemble) await ensemble.stop(); }, 60000);

  it('a persistent recursive watch resyncs and keeps firing; the tree cache converges to what the new quorum holds', async () => {
    const top = `/${unique('failover-watch')}`;
    const watcher = clientAt(ensemble.connect, { timeout: SESSION, debug_level: 0 });
    const writer = clientAt(ensemble.connect, { timeout: SESSION, debug_level: 0 });
    try {
      const states = recordStates(watcher);
      await writer.znodes.create(top, 'top');
      const cache = await watcher.znodes.treeCache(top);
      const watch = await watcher.znodes.addWatch(top, { recursive: true });
      const events = [];
      watch.on('event', (ev) => events.push(ev));
      const resynced = new Promise((resolve) => watch.once('resync', resolve));
      const cacheResynced = new Promise((resolve) => cache.once('resync', resolve));
      await write(writer, top, 500, 11);
      await converges(cache, writer, top, 'before the failover');

      const leader = await ensemble.leader();
      const killedAt = now();
      leader.kill('SIGKILL');
      // writes through the election: refused or cut while there is no quorum, applied after
      const during = await write(writer, top, 3000, 12, ['CONNECTIONLOSS', 'TIMEOUT', 'SESSIONMOVED']);
      const newLeader = await ensemble.leader({ timeoutMs: 30000 });
      expect(newLeader).not.toBe(leader);

      expect(await within(resynced, 30000, 'the watch\'s resync')).toEqual({ type: 'resync', reason: 'reconnected', path: top });
      expect(await within(cacheResynced, 30000, 'the cache\'s resync')).toBe('reconnected');
      await write(writer, top, 500, 13);
      await writer.znodes.sync(top);
      await converges(cache, writer, top, 'after the failover', 20000);

      // the watch is set on the new quorum: a change made now arrives
      const seen = events.length;
      await writer.znodes.setData(top, 'after failover');
      await waitFor(() => events.slice(seen).some((ev) => ev.type === 'changed' && ev.path === top), { timeoutMs: 10000, what: 'a change after the failover' });
      expect(watch.ended).toBe(false);
      expect(states.names()).not.toContain('EXPIRED');

      report('leader kill -9 under a recursive watch and a tree cache (3 nodes)', {
        sessionMs: SESSION,
        writesDuringElection: during,
        resyncs: events.filter((e) => e.type === 'resync').length,
        cachedNodes: cache.paths().length,
        sinceKillMs: now() - killedAt,
        states: states.names().join('>'),
      });
      watch.close();
      cache.close();
    } finally {
      await Promise.all([watcher.close(), writer.close()]);
    }
  }, 180000);
});
