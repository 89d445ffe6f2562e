'use strict';
// Observability: every event README's "Observability" table lists fires on its
// node:diagnostics_channel channel with the documented fields, from real locks and transactions.
const diagnostics = require('node:diagnostics_channel');
const nzk = require('node-zookeeper-client');
const { client, unique } = require('./helpers/zk');
const { ZktxError } = require('..');

/** Records every message of `names` until `stop()`. */
function record(names) {
  const seen = Object.fromEntries(names.map((n) => [n, []]));
  const handlers = names.map((name) => {
    const fn = (message) => seen[name].push(message);
    diagnostics.subscribe(name, fn);
    return [name, fn];
  });
  return { seen, stop: () => handlers.forEach(([name, fn]) => diagnostics.unsubscribe(name, fn)) };
}

/** Deletes a znode from another session (node-zookeeper-client): a lock lost to someone else. */
function deleteFromOutside(path) {
  return new Promise((resolve, reject) => {
    const c = nzk.createClient(process.env.ZK_CONNECT);
    c.once('connected', () => c.remove(path, -1, (err) => { c.close(); if (err) reject(err); else resolve(); }));
    c.connect();
  });
}

const LOCK_CHANNELS = ['zktx:lock:acquire', 'zktx:lock:acquired', 'zktx:lock:failed', 'zktx:lock:released', 'zktx:lock:lost'];

describe('diagnostics_channel events', () => {
  let zk;
  beforeAll(() => { zk = client(); });
  afterAll(() => zk.close());

  it('a lock publishes acquire, acquired (wait time) and released (hold time)', async () => {
    const rec = record(LOCK_CHANNELS);
    const path = `/zktx-test/${unique('dc-lock')}`;
    try {
      const lock = await zk.lock(path);
      await lock.release();
      await lock.release(); // idempotent: one released event
    } finally {
      rec.stop();
    }
    const { seen } = rec;
    expect(seen['zktx:lock:acquire']).toEqual([{ zk, path, kind: 'exclusive', timeout: undefined }]);
    expect(seen['zktx:lock:acquired']).toEqual([{ zk, path, kind: 'exclusive', nodePath: expect.stringMatching(/^\/.*\/_c_.*-lock-\d+$/), token: expect.any(Number), waitMs: expect.any(Number), queuePosition: 0 }]);
    expect(seen['zktx:lock:acquired'][0].waitMs).toBeGreaterThan(0);
    expect(seen['zktx:lock:released']).toEqual([{ zk, path, kind: 'exclusive', nodePath: seen['zktx:lock:acquired'][0].nodePath, token: seen['zktx:lock:acquired'][0].token, holdMs: expect.any(Number) }]);
    expect(seen['zktx:lock:failed']).toEqual([]);
    expect(seen['zktx:lock:lost']).toEqual([]);
  });

  it('a lock that queued reports how many contenders were ahead, and its wait', async () => {
    const path = `/zktx-test/${unique('dc-queue')}`;
    const other = client();
    const held = await other.lock(path);
    const rec = record(['zktx:lock:acquired']);
    try {
      const waiting = zk.lock(path);
      await new Promise((r) => setTimeout(r, 200));
      await held.release();
      await (await waiting).release();
    } finally {
      rec.stop();
      await other.close();
    }
    expect(rec.seen['zktx:lock:acquired']).toEqual([expect.objectContaining({ zk, path, queuePosition: 1 })]);
    expect(rec.seen['zktx:lock:acquired'][0].waitMs).toBeGreaterThanOrEqual(150);
  });

  it('a try-lock that finds the lock held publishes failed with its error', async () => {
    const path = `/zktx-test/${unique('dc-failed')}`;
    const other = client();
    const held = await other.lock(path);
    const rec = record(LOCK_CHANNELS);
    try {
      await expect(zk.readWriteLock(path).writeLock({ timeout: 0 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    } finally {
      rec.stop();
      await held.release();
      await other.close();
    }
    expect(rec.seen['zktx:lock:acquire']).toEqual([{ zk, path, kind: 'write', timeout: 0 }]);
    expect(rec.seen['zktx:lock:failed']).toEqual([{ zk, path, kind: 'write', error: expect.any(ZktxError), waitMs: expect.any(Number) }]);
    expect(rec.seen['zktx:lock:failed'][0].error.code).toBe('TIMEOUT');
  });

  it('a lock released within a second is not watched: no loss watch request for short locks', async () => {
    const rec = record(['zktx:lock:lost']);
    try {
      const lock = await zk.lock(`/zktx-test/${unique('dc-short')}`);
      await lock.release();
      expect(lock._loss).toBe(null);
      expect(lock._lossTimer).toBe(undefined);
    } finally {
      rec.stop();
    }
  });

  it('a lock whose node another client deletes publishes lost (with no need to ask lock.lost)', async () => {
    const rec = record(['zktx:lock:lost']);
    const path = `/zktx-test/${unique('dc-lost')}`;
    try {
      const lock = await zk.lock(path);
      await deleteFromOutside(lock.nodePath);
      // Published once the lock is watched: after it has been held LOSS_WATCH_DELAY_MS (1 s).
      for (let i = 0; i < 150 && rec.seen['zktx:lock:lost'].length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(rec.seen['zktx:lock:lost']).toEqual([{ zk, path, kind: 'exclusive', nodePath: lock.nodePath, token: lock.token, reason: 'NODE_DELETED', error: expect.any(ZktxError), holdMs: expect.any(Number) }]);
      expect(rec.seen['zktx:lock:lost'][0].error.code).toBe('LOCK_LOST');
      await lock.release();
    } finally {
      rec.stop();
    }
  });

  it('a transaction publishes attempt, conflict (with willRetry) and commit (retries, keys)', async () => {
    const a = unique('dc-tx-a');
    const b = unique('dc-tx-b');
    await zk.set(a, 1);
    const rec = record(['zktx:transaction:attempt', 'zktx:transaction:conflict', 'zktx:transaction:commit']);
    let result;
    try {
      let runs = 0;
      result = await zk.transaction(async (tx) => {
        const v = await tx.get(a);
        if (runs++ === 0) await zk.set(a, v + 100); // a write between read and commit: one conflict
        tx.set(b, v);
        return v;
      }, { id: unique('dc-tx-id') });
    } finally {
      rec.stop();
    }
    expect(result).toBe(101);
    const { seen } = rec;
    const id = seen['zktx:transaction:attempt'][0].id;
    expect(seen['zktx:transaction:attempt']).toEqual([{ zk, id, attempt: 0 }, { zk, id, attempt: 1 }]);
    expect(seen['zktx:transaction:conflict']).toEqual([{ zk, id, attempt: 0, keys: [b], error: expect.any(ZktxError), willRetry: true }]);
    expect(seen['zktx:transaction:conflict'][0].error.code).toBe('CONFLICT');
    expect(seen['zktx:transaction:commit']).toEqual([{ zk, id, attempts: 2, retries: 1, keys: [b], zxid: expect.any(Number), alreadyApplied: false, durationMs: expect.any(Number) }]);
  });

  it('executeTransaction publishes start and commit, or error', async () => {
    const key = unique('dc-etx');
    const rec = record(['zktx:executeTransaction:start', 'zktx:executeTransaction:commit', 'zktx:executeTransaction:error']);
    try {
      await zk.executeTransaction(key, (cur) => (cur ?? 0) + 1);
      await expect(zk.executeTransaction(key, () => { throw new Error('no'); })).rejects.toThrow('no');
    } finally {
      rec.stop();
    }
    const { seen } = rec;
    expect(seen['zktx:executeTransaction:start']).toEqual([{ zk, key }, { zk, key }]);
    expect(seen['zktx:executeTransaction:commit']).toEqual([{ zk, key, version: expect.any(Number), token: expect.any(Number), zxid: expect.any(Number), durationMs: expect.any(Number) }]);
    expect(seen['zktx:executeTransaction:error']).toEqual([{ zk, key, error: expect.objectContaining({ message: 'no' }), durationMs: expect.any(Number) }]);
  });

  it('session state changes publish state and connectString', async () => {
    const rec = record(['zktx:session:state']);
    const own = client();
    try {
      await own.connect();
      await own.close();
      for (let i = 0; i < 50 && rec.seen['zktx:session:state'].length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    } finally {
      rec.stop();
    }
    const mine = rec.seen['zktx:session:state'].filter((m) => m.zk === own);
    expect(mine).toEqual([{ zk: own, state: 'CONNECTED', connectString: own.connectString }, { zk: own, state: 'CLOSED', connectString: own.connectString }]);
  });
});
