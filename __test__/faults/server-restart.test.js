'use strict';
// Fault: the standalone server is killed (-9) and restarted on the same data dir while several
// clients contend for one lock. Sessions are persisted by the server, so a restart within the
// session timeout loses none: no lock may be lost or doubled, no contender may leave a ghost
// node, and every call must end (lock acquired, or a typed error).
const { ZktxError } = require('../..');
const { clientAt, unique, zkScripts } = require('../helpers/zk');
const { checkFencedHistory } = require('../helpers/checker');
const { now, sleep, recordStates, report, waitFor, within } = require('./util');

const TICK = 500; // sessions may last 1..10 s
const SESSION = 8000; // longer than a restart takes, so sessions survive it
const CLIENTS = 5;
const EXPECTED_CODES = ['TIMEOUT', 'CONNECTIONLOSS', 'SESSIONEXPIRED', 'LOCK_LOST'];

describe('faults: standalone server killed and restarted while clients contend for a lock', () => {
  let server;
  beforeAll(async () => { server = await zkScripts.startStandalone({ tickTime: TICK }); });
  afterAll(async () => { if (server) await server.stop(); });

  it('never two holders, no ghost lock node, every acquire ends with the lock or a typed error', async () => {
    const path = `/faults/${unique('restart')}`;
    const run = unique('restart');
    const clients = Array.from({ length: CLIENTS }, () => clientAt(server.connect, { timeout: SESSION, debug_level: 0 }));
    const states = clients.map(recordStates);
    let holders = 0;
    let maxHolders = 0;
    let stop = false;
    const holds = [];
    const errors = []; // { op, code, outcome, typed }
    let acquired = 0;
    const acquireTimes = [];
    const inLockCall = new Set();

    async function loop(i) {
      const zk = clients[i];
      for (let n = 0; !stop; n++) {
        let lock;
        inLockCall.add(i);
        try {
          lock = await zk.lock(path, { timeout: 4000 });
        } catch (err) {
          errors.push({ op: 'lock', code: err.code, outcome: err.outcome, typed: err instanceof ZktxError });
          continue;
        } finally {
          inLockCall.delete(i);
        }
        acquired += 1;
        acquireTimes.push(now());
        const hold = { holder: `c${i}#${n}`, token: lock.token, enter: now(), writes: [] };
        holds.push(hold);
        let counted = true;
        holders += 1;
        maxHolders = Math.max(maxHolders, holders);
        const uncount = () => {
          if (counted) holders -= 1;
          counted = false;
        };
        lock.lost.then(uncount); // told it lost the lock: no longer a holder
        const value = { run, holder: hold.holder, token: lock.token };
        const write = { key: `${run}-${i}-${n}`, value, sentAt: now(), status: 'unknown' };
        hold.writes.push(write);
        try {
          await zk.set(write.key, value, { lock });
          write.status = 'ok';
        } catch (err) {
          write.status = err.outcome === 'unknown' ? 'unknown' : 'refused';
          write.code = err.code;
          errors.push({ op: 'set', code: err.code, outcome: err.outcome, typed: err instanceof ZktxError });
        }
        write.ackAt = now();
        await sleep(Math.random() * 5);
        uncount();
        try {
          await lock.release();
        } catch (err) {
          errors.push({ op: 'release', code: err.code, outcome: err.outcome, typed: err instanceof ZktxError });
        }
      }
    }

    try {
      await Promise.all(clients.map((c) => c.connect()));
      const loops = clients.map((_, i) => loop(i));
      await waitFor(() => acquired >= 20, { what: '20 acquisitions before the fault' });

      // Kill while acquires are in flight, twice: once right away, once after a pause.
      const cycles = [];
      for (const downMs of [0, 1500]) {
        await waitFor(() => inLockCall.size >= CLIENTS - 1, { what: 'contenders inside lock()' });
        const before = acquired;
        const killedAt = now();
        server.kill('SIGKILL');
        await waitFor(() => !server.isRunning(), { what: 'the server to die' });
        if (downMs) await sleep(downMs);
        await server.restart();
        const servingAt = now();
        await waitFor(() => acquired >= before + 20, { timeoutMs: 20000, what: '20 acquisitions after the restart' });
        cycles.push({ downMs: servingAt - killedAt, firstAcquireMs: acquireTimes.find((t) => t > servingAt) - killedAt });
      }

      stop = true;
      await within(Promise.all(loops), 20000, 'every client loop to end');
      expect(holders).toBe(0);
      expect(maxHolders).toBe(1);
      expect(errors.filter((e) => !e.typed)).toEqual([]);
      expect(errors.filter((e) => !EXPECTED_CODES.includes(e.code))).toEqual([]);

      // No ghost: every contender released or cleaned up its node while its session is still open.
      expect(await clients[0].children(path)).toEqual([]);
      const store = new Map();
      for (const h of holds) for (const w of h.writes) store.set(w.key, await clients[0].get(w.key));
      const { violations, stats } = checkFencedHistory({ holds, store });
      expect(violations).toEqual([]);

      const expired = states.filter((s) => s.names().includes('EXPIRED')).length;
      const codes = {};
      for (const e of errors) codes[`${e.op}:${e.code}`] = (codes[`${e.op}:${e.code}`] || 0) + 1;
      report('standalone kill -9 + restart', {
        sessionMs: SESSION,
        outagesMs: cycles.map((c) => Math.round(c.downMs)).join('/'),
        killToNextAcquireMs: cycles.map((c) => Math.round(c.firstAcquireMs)).join('/'),
        acquisitions: acquired,
        ackedWrites: stats.ok,
        unknownWrites: stats.unknown,
        refusedWrites: stats.refused,
        errors: JSON.stringify(codes),
        sessionsExpired: expired,
      });
    } finally {
      stop = true;
      await Promise.all(clients.map((c) => c.close().catch(() => {})));
    }
    const check = clientAt(server.connect, { timeout: SESSION, debug_level: 0 });
    try {
      expect(await check.children(path)).toEqual([]);
    } finally {
      await check.close();
    }
  }, 90000);
});
