'use strict';
// A rejection's stack names the code that made the call. The addon's errors carry no frame of
// the caller, so without this a forgotten `await` crashed with no file or line.
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { ZktxError } = require('..');
const { client, unique, rejection } = require('./helpers/zk');

const here = path.basename(__filename);

/** The rejection of `p`, which must reject. */

describe('stack traces', () => {
  let zk;
  let other;
  beforeAll(() => {
    zk = client();
    other = client();
  });
  afterAll(async () => {
    await zk.close();
    await other.close();
  });

  it('a rejection from the server side names the calling file and line', async () => {
    const p = `/${unique('stack')}`;
    const held = await other.lock(p);
    const line = new Error().stack.split('\n')[1].match(/:(\d+):\d+\)?$/)[1] - 0 + 1;
    const err = await rejection(zk.lock(p, { timeout: 0 }));
    expect(err).toBeInstanceOf(ZktxError);
    expect(err.code).toBe('TIMEOUT');
    expect(err.stack).toMatch(new RegExp(`^ZktxError \\[TIMEOUT\\]: .*\\n\\s+at .*${here}:${line}:`));
    await held.release();
  });

  it('every kind of call carries its caller, also when not awaited at once', async () => {
    const closed = client();
    await closed.close();
    const p = (name) => `/${unique(`stack-${name}`)}`;
    const paths = { lock: p('lock'), multiLock: p('multi'), readLock: p('read'), writeLock: p('write'), withLock: p('with') };
    const rw = new Set([paths.readLock, paths.writeLock]); // held by a writer of the read-write lock
    const held = await Promise.all(Object.values(paths).map((q) => (rw.has(q) ? other.readWriteLock(q).writeLock() : other.lock(q))));
    const calls = Object.entries({
      get: closed.get('k'),
      set: closed.set('k', 1),
      children: closed.children('/'),
      executeTransaction: closed.executeTransaction('k', 1),
      updater: closed.executeTransaction('k', (v) => v),
      transaction: closed.transaction(async (tx) => tx.get('k')),
      getMany: closed.transaction(async (tx) => tx.getMany(['k'])),
      prune: closed.pruneTransactionIds(1000),
      compact: closed.compactTombstones(600000),
      lock: zk.lock(paths.lock, { timeout: 0 }),
      multiLock: zk.multiLock([paths.multiLock], { timeout: 0 }),
      readLock: zk.readWriteLock(paths.readLock).readLock({ timeout: 0 }),
      writeLock: zk.readWriteLock(paths.writeLock).writeLock({ timeout: 0 }),
      withLock: zk.withLock(paths.withLock, () => {}, { timeout: 0 }),
      invalid: zk.get(''),
    }).map(([name, promise]) => [name, rejection(promise)]); // handled at once, awaited later
    for (const [name, promise] of calls) {
      const err = await promise;
      expect([name, err instanceof ZktxError]).toEqual([name, true]);
      expect([name, err.stack]).toEqual([name, expect.stringContaining(here)]);
      expect([name, err.stack.split('\n')[0]]).toEqual([name, `ZktxError [${err.code}]: ${err.message}`]);
    }
    await Promise.all(held.map((l) => l.release()));
  });

  it('semaphore acquires name their caller, contended or on a closed client', async () => {
    const c = client();
    const p = `/${unique('stack-sem')}`;
    const sem = c.semaphore(p, 1);
    const lease = await sem.acquire();
    const err = await rejection(sem.acquire({ timeout: 0 }));
    expect(err.stack).toContain(here);
    await lease.release();
    await c.close();
    const closedErr = await rejection(c.semaphore(p, 1).acquire());
    expect(closedErr.code).toBe('CLIENT_CLOSED');
    expect(closedErr.stack).toContain(here);
  });

  it('errors of the caller\'s own function pass through with their own stack', async () => {
    const mine = new Error('mine');
    const stack = mine.stack;
    const err = await rejection(zk.executeTransaction(unique('k'), () => { throw mine; }));
    expect(err).toBe(mine);
    expect(err.stack).toBe(stack);
  });

  it('a zktx call that fails inside withLock keeps the inner call\'s site', async () => {
    const closed = client();
    await closed.close();
    const err = await rejection(zk.withLock(`/${unique('inner')}`, () => closed.get('k')));
    expect(err.code).toBe('CLIENT_CLOSED');
    expect(err.stack.split('\n')[1]).toContain(here);
  });

  it('a forgotten await crashes with the file and line of the call', () => {
    const worker = path.join(__dirname, 'workers', 'forgotten-await.js');
    const r = spawnSync(process.execPath, [worker], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('CLIENT_CLOSED');
    const line = require('node:fs').readFileSync(worker, 'utf8').split('\n').findIndex((l) => l.includes('FORGOTTEN-AWAIT')) + 1;
    expect(r.stderr).toMatch(new RegExp(`at handleRequest \\(.*forgotten-await\\.js:${line}:`));
  });
});
