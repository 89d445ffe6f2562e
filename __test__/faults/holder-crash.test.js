'use strict';
// Fault: kill -9 of a process holding a lock. Its session (and so its lock node) lives on until
// the server expires it; a waiter in another process gets the lock then, not before.
const { clientAt, unique, zkScripts } = require('../helpers/zk');
const { workerPath } = require('../helpers/procs');
const { now, spawnWorker, within, report, waitFor } = require('./util');

const TICK = 200;
const SESSION = 2000;

describe('faults: kill -9 of the lock holder process', () => {
  let server;
  beforeAll(async () => { server = await zkScripts.startStandalone({ tickTime: TICK }); });
  afterAll(async () => { if (server) await server.stop(); });

  it('a waiter acquires within the session timeout (+ margin) after the holder is killed', async () => {
    const path = `/faults/${unique('crash')}`;
    const holder = spawnWorker(workerPath('fault-holder.js'), [path, String(SESSION)], { env: { ZK_CONNECT: server.connect } });
    const waiter = clientAt(server.connect, { timeout: SESSION, debug_level: 0 });
    try {
      const ready = await holder.next((l) => l.ready);
      await waiter.connect();
      let grantedAt;
      const waiting = waiter.lock(path, { timeout: 15000 }).then((l) => {
        grantedAt = now();
        return l;
      });
      await waitFor(async () => (await waiter.children(path)).length === 2, { what: 'the waiter to queue' });
      expect(await waiter.children(path)).toContain(ready.nodePath.split('/').pop());

      const killedAt = now();
      holder.kill('SIGKILL');
      expect((await holder.waitExit()).signal).toBe('SIGKILL');
      const lock = await within(waiting, SESSION + 5000, 'the waiter to get the lock');
      const takeover = grantedAt - killedAt;
      expect(lock.token).toBeGreaterThan(ready.token);
      // The dead holder's node went with its session, not with its TCP connection.
      expect(takeover).toBeGreaterThan(SESSION / 2);
      expect(takeover).toBeLessThan(SESSION + 1500);
      expect(await waiter.children(path)).toEqual([lock.nodePath.split('/').pop()]);
      await lock.release();
      expect(await waiter.children(path)).toEqual([]);
      report('kill -9 of holder process', { sessionMs: SESSION, takeoverMs: takeover });
    } finally {
      holder.kill('SIGKILL');
      await waiter.close();
    }
  }, 30000);
});
