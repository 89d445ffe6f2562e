'use strict';
// err.cause: an abort keeps the signal's reason; a failure zktx wraps keeps the original.
const { ZktxError } = require('..');
const { client, unique, rejection } = require('./helpers/zk');


describe('err.cause', () => {
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

  it('an AbortSignal.timeout() firing while waiting for a lock: ABORTED, caused by its TimeoutError', async () => {
    const p = `/${unique('cause-timeout')}`;
    const held = await other.lock(p);
    const signal = AbortSignal.timeout(100);
    const err = await rejection(zk.lock(p, { signal }));
    expect(err).toBeInstanceOf(ZktxError);
    expect(err.code).toBe('ABORTED');
    expect(err.cause).toBe(signal.reason);
    expect(err.cause.name).toBe('TimeoutError');
    expect(await zk.children(p)).toHaveLength(1); // only the holder's node
    await held.release();
  });

  it('an abort with a reason of the caller\'s, before or during the call, keeps that reason', async () => {
    const p = `/${unique('cause-reason')}`;
    const key = unique('cause-key');
    const held = await other.lock(p);
    let open;
    const gate = new Promise((resolve) => { open = resolve; });
    const holding = other.executeTransaction(key, async () => { await gate; return 1; }); // holds the key's lock
    while ((await other.children(`/zktx/locks/kv/${key}`)).length === 0) await new Promise((r) => setTimeout(r, 10));
    const reason = new Error('shutting down');
    const before = new AbortController();
    before.abort(reason);
    const during = new AbortController();
    const waiting = [
      rejection(zk.executeTransaction(key, 2, { signal: during.signal })),
      rejection(zk.executeTransaction(key, () => 2, { signal: during.signal })),
      rejection(zk.multiLock([p], { signal: during.signal })),
      rejection(zk.semaphore(`${p}-sem`, 1).acquire({ signal: before.signal })),
      rejection(zk.lock(p, { signal: before.signal })),
      rejection(zk.readWriteLock(p).readLock({ signal: before.signal })),
      rejection(zk.transaction(async () => 1, { signal: before.signal })),
    ];
    setTimeout(() => during.abort(reason), 100);
    for (const err of await Promise.all(waiting)) expect([err.code, err.cause]).toEqual(['ABORTED', reason]);
    open();
    await holding;
    await held.release();
  });

  it('a plain abort() keeps the AbortError DOMException the signal made', async () => {
    const p = `/${unique('cause-plain')}`;
    const held = await other.lock(p);
    const c = new AbortController();
    const waiting = rejection(zk.lock(p, { signal: c.signal }));
    setTimeout(() => c.abort(), 50);
    const err = await waiting;
    expect(err.code).toBe('ABORTED');
    expect(err.cause).toBe(c.signal.reason);
    expect(err.cause.name).toBe('AbortError');
    await held.release();
  });

  it('an argument that throws when read, or that JSON cannot encode, keeps the original error', async () => {
    const boom = new Error('getter boom');
    const hostile = { get timeout() { throw boom; } };
    const read = await rejection(zk.lock(`/${unique('cause-opt')}`, hostile));
    expect([read.code, read.cause]).toEqual(['INVALID_ARGUMENT', boom]);

    const big = await rejection(zk.set(unique('k'), { n: 1n }));
    expect(big.code).toBe('INVALID_ARGUMENT');
    expect(big.cause).toBeInstanceOf(TypeError);
    const cyclic = {};
    cyclic.self = cyclic;
    const cyc = await rejection(zk.executeTransaction(unique('k'), cyclic));
    expect(cyc.code).toBe('INVALID_ARGUMENT');
    expect(cyc.cause).toBeInstanceOf(TypeError);
    const toJSON = new Error('toJSON boom');
    const fromTx = await rejection(zk.transaction(async (tx) => tx.set(unique('k'), { toJSON() { throw toJSON; } })));
    expect([fromTx.code, fromTx.cause]).toEqual(['INVALID_ARGUMENT', toJSON]);
  });

  it('ZktxError accepts { cause } like Error', () => {
    const cause = new Error('low');
    const err = new ZktxError('TIMEOUT', 'high', 'not_applied', { cause });
    expect(err.cause).toBe(cause);
  });
});
