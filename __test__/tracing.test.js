'use strict';
// Spans: zktx's operations on node:diagnostics_channel TracingChannels (tracing:zktx:*), with
// Node's start / end / asyncStart / asyncEnd / error events around one context object, and the
// OpenTelemetry example (examples/opentelemetry.js) turning them into spans.
const diagnostics = require('node:diagnostics_channel');
const { AsyncLocalStorage } = require('node:async_hooks');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { client, unique } = require('./helpers/zk');
const { ZktxError } = require('..');

const EVENTS = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'];

/** Records every event of TracingChannel `name` (with a copy of the context's fields at that moment). */
function record(name) {
  const tc = diagnostics.tracingChannel(name);
  const seen = [];
  const handlers = Object.fromEntries(EVENTS.map((e) => [e, (ctx) => seen.push({ event: e, ctx, fields: { ...ctx } })]));
  tc.subscribe(handlers);
  return { seen, events: () => seen.map((s) => s.event), stop: () => tc.unsubscribe(handlers) };
}

describe('TracingChannels tracing:zktx:*', () => {
  let zk;
  beforeAll(() => { zk = client(); });
  afterAll(() => zk.close());

  it('a lock acquire publishes start, end, asyncStart, asyncEnd on tracing:zktx:lock with its path, kind and the Lock as result', async () => {
    const rec = record('zktx:lock');
    const p = `/zktx-test/${unique('trace-lock')}`;
    try {
      const lock = await zk.lock(p);
      await lock.release();
      expect(rec.events()).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
      const ctx = rec.seen[0].ctx;
      expect(rec.seen.every((s) => s.ctx === ctx)).toBe(true); // one context object throughout
      expect(rec.seen[0].fields).toMatchObject({ zk, path: p, kind: 'exclusive' });
      expect(ctx.result).toBe(lock);
      // Read-write locks, semaphores and multiLock publish there too.
      rec.seen.length = 0;
      await (await zk.readWriteLock(p).readLock()).release();
      await (await zk.semaphore(`${p}-sem`, 2).acquire()).release();
      await (await zk.multiLock([`${p}-a`, `${p}-b`])).release();
      expect(rec.seen.filter((s) => s.event === 'start').map((s) => s.fields.kind)).toEqual(['read', 'lease', 'multi']);
    } finally {
      rec.stop();
    }
  });

  it('a failed acquire publishes error with the ZktxError, then asyncStart and asyncEnd', async () => {
    const p = `/zktx-test/${unique('trace-timeout')}`;
    const other = client();
    const held = await other.lock(p);
    const rec = record('zktx:lock');
    try {
      const err = await zk.lock(p, { timeout: 0 }).catch((e) => e);
      expect(err).toBeInstanceOf(ZktxError);
      expect(rec.events()).toEqual(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
      expect(rec.seen[2].ctx.error).toBe(err);
      // Refused input too: the error event carries the INVALID_ARGUMENT.
      rec.seen.length = 0;
      await zk.lock('relative').catch(() => {});
      expect(rec.seen.find((s) => s.event === 'error').ctx.error.code).toBe('INVALID_ARGUMENT');
    } finally {
      rec.stop();
      await held.release();
      await other.close();
    }
  });

  it('transaction, executeTransaction and coordinator.run each publish on their own channel', async () => {
    const names = ['zktx:transaction', 'zktx:executeTransaction', 'zktx:coordinator.run'];
    const recs = Object.fromEntries(names.map((n) => [n, record(n)]));
    const key = unique('trace-key');
    const coordinator = zk.coordinator(unique('trace-coord').slice(0, 60), { recoveryIntervalMs: 0 });
    try {
      await zk.transaction(async (tx) => { tx.set(key, 1); }, { id: `${key}-tx` });
      await zk.executeTransaction(key, (n) => n + 1);
      const txid = await coordinator.run(async (tx) => { tx.store.set(`${key}-c`, 1); return tx.id; });
      const failed = await zk.transaction(async () => { throw new Error('boom'); }).catch((e) => e);
      expect(recs['zktx:transaction'].events()).toEqual(['start', 'end', 'asyncStart', 'asyncEnd', 'start', 'end', 'error', 'asyncStart', 'asyncEnd']);
      expect(recs['zktx:transaction'].seen[0].fields).toMatchObject({ zk, id: `${key}-tx` });
      expect(recs['zktx:transaction'].seen[6].ctx.error).toBe(failed);
      expect(recs['zktx:executeTransaction'].seen[0].fields).toMatchObject({ zk, key });
      expect(recs['zktx:executeTransaction'].seen[0].ctx.result).toMatchObject({ key, value: 2 });
      const run = recs['zktx:coordinator.run'].seen;
      expect(run.map((s) => s.event)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
      expect(run[0].fields).toMatchObject({ coordinator, name: coordinator.name });
      expect(run[3].ctx).toMatchObject({ txid, result: txid });
    } finally {
      for (const r of Object.values(recs)) r.stop();
      coordinator.close();
    }
  });

  it('a store bound to start is the context of everything the operation runs (what makes parent spans)', async () => {
    const storage = new AsyncLocalStorage();
    const tc = diagnostics.tracingChannel('zktx:coordinator.run');
    tc.start.bindStore(storage, (ctx) => `span of ${ctx.name}`);
    const inner = record('zktx:lock');
    const coordinator = zk.coordinator(unique('trace-store').slice(0, 60), { recoveryIntervalMs: 0 });
    let seenInside;
    try {
      await coordinator.run(async () => {
        seenInside = storage.getStore();
        await (await zk.lock(`/zktx-test/${unique('trace-inner')}`)).release();
      });
      expect(seenInside).toBe(`span of ${coordinator.name}`);
      expect(storage.getStore()).toBeUndefined(); // and not outside it
    } finally {
      tc.start.unbindStore(storage);
      inner.stop();
      coordinator.close();
    }
  });

  it('with nobody subscribed, no context is built (the check is hasSubscribers)', async () => {
    const { tracing, traceAsync } = require('../tracing');
    for (const tc of Object.values(tracing)) {
      expect(EVENTS.some((e) => tc[e].hasSubscribers)).toBe(false);
    }
    let built = 0;
    const r = await traceAsync(tracing.lock, () => { built++; return {}; }, (ctx) => Promise.resolve(ctx));
    expect(r).toBeUndefined();
    expect(built).toBe(0);
  });
});

describe('examples/opentelemetry.js', () => {
  it('makes OpenTelemetry spans: names, attributes, parent and child, error status', () => {
    const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'examples', 'opentelemetry.js')], {
      encoding: 'utf8', timeout: 60000, env: { ...process.env, ZKTX_ZK_QUIET: '1' },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const spans = JSON.parse(r.stdout);
    const byName = (name) => spans.filter((s) => s.name === name);
    const [checkout] = byName('checkout');
    const [run] = byName('zktx.coordinator.run');
    const locks = byName('zktx.lock');
    const [exec] = byName('zktx.executeTransaction');
    const [tx] = byName('zktx.transaction');
    expect(checkout.parent).toBeUndefined();
    expect(locks).toHaveLength(2);
    // withLock's lock and executeTransaction run in the checkout span; the order's lock inside the run.
    expect(locks[0]).toMatchObject({ parent: checkout.id, status: 'ok', attributes: { 'zktx.lock.kind': 'exclusive' } });
    expect(locks[0].attributes['zktx.lock.path']).toMatch(/^\/otel-example\//);
    expect(exec).toMatchObject({ parent: checkout.id, status: 'ok' });
    expect(exec.attributes['zktx.key']).toMatch(/^otel-example\/stock-/);
    expect(run).toMatchObject({ parent: checkout.id, status: 'ok', attributes: { 'zktx.coordinator': 'otel-example' } });
    expect(run.attributes['zktx.txid']).toMatch(/^[0-9a-f]{32}$/);
    expect(locks[1].parent).toBe(run.id);
    expect(tx).toMatchObject({ parent: checkout.id, status: 'error', message: 'out of stock' });
  });
});
