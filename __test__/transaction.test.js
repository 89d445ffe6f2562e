'use strict';
// Multi-key optimistic transactions: atomicity, isolation, serializability under concurrency.
// The same suite on both backends (helpers/backends.js).
const { unique } = require('./helpers/zk');
const { runWorkers, workerPath } = require('./helpers/procs');
const { checkSerializable } = require('./helpers/history');
const { BACKENDS } = require('./helpers/backends');

describe.each(BACKENDS)('transaction on $name', (backend) => {
  const client = (o) => backend.client(o);
  let zk;
  beforeAll(() => { zk = client(); });
  afterAll(async () => { await zk.close(); });

  it('commits all writes in one multi and reports versions and round trips', async () => {
    const [a, b] = [unique('a'), unique('b')];
    await zk.set(a, 100);
    await zk.set(b, 0);
    let seen;
    const moved = await zk.transaction(async (tx) => {
      seen = tx;
      const [x, y] = await tx.getMany([a, b]);
      if (x < 10) return false;
      tx.set(a, x - 10);
      tx.set(b, y + 10);
      expect(await tx.get(a)).toBe(90); // reads see the attempt's own writes
      return true;
    });
    expect(moved).toBe(true);
    expect([await zk.get(a), await zk.get(b)]).toEqual([90, 10]);
    expect(typeof seen.committed.zxid).toBe('number');
    expect(seen.committed.roundTrips).toBe(1);
    if (backend.revisions) {
      // etcd: a write's version is the commit's revision; a read's is the revision it saw
      expect(seen.committed.versions).toEqual({ [a]: seen.committed.zxid, [b]: seen.committed.zxid });
      expect(seen.committed.reads[a]).toBeLessThan(seen.committed.zxid);
      expect(seen.committed.reads[b]).toBeGreaterThan(seen.committed.reads[a]);
    } else {
      expect(seen.committed).toMatchObject({ versions: { [a]: 1, [b]: 1 }, reads: { [a]: 0, [b]: 0 } });
    }
  });

  it('a function that throws writes nothing and its error passes through unchanged', async () => {
    const k = unique('throw');
    await zk.set(k, 'before');
    const boom = new Error('boom');
    await expect(zk.transaction(async (tx) => { tx.set(k, 'after'); tx.delete(unique('x')); throw boom; })).rejects.toBe(boom);
    expect(await zk.get(k)).toBe('before');
  });

  it('a read-only transaction writes nothing (no commit at all when reads came in one batch)', async () => {
    const k = unique('ro');
    await zk.set(k, 1);
    let seen;
    expect(await zk.transaction(async (tx) => { seen = tx; return tx.get(k); })).toBe(1);
    expect(seen.committed).toMatchObject({ versions: {}, roundTrips: 0 });
  });

  it('gets issued in the same tick are one round trip; create and delete work', async () => {
    const [k1, k2, k3] = [unique('c1'), unique('c2'), unique('c3')];
    await zk.set(k1, 'one');
    await zk.transaction(async (tx) => {
      const [v1, v2] = await Promise.all([tx.get(k1), tx.get(k2)]);
      expect([v1, v2]).toEqual(['one', undefined]);
      tx.create(k2, 'two');
      tx.delete(k1);
      tx.create(k3, { three: 3 });
    });
    expect([await zk.get(k1), await zk.get(k2), await zk.get(k3)]).toEqual([undefined, 'two', { three: 3 }]);
    const err = await zk.transaction(async (tx) => { tx.create(k2, 'again'); }).catch((e) => e);
    expect(err.code).toBe('NODEEXISTS');
    expect(await zk.get(k2)).toBe('two');
  });

  it('serializable retries on conflict with fresh reads; retries: 0 fails with CONFLICT', async () => {
    const k = unique('conflict');
    await zk.set(k, 0);
    const other = client();
    try {
      let runs = 0;
      await zk.transaction(async (tx) => {
        runs += 1;
        const v = await tx.get(k);
        if (runs === 1) await other.set(k, 100); // a concurrent commit between our read and commit
        tx.set(k, v + 1);
      });
      expect(runs).toBe(2);
      expect(await zk.get(k)).toBe(101);
      const err = await zk.transaction(async (tx) => {
        const v = await tx.get(k);
        await other.set(k, -1);
        tx.set(k, v + 1);
      }, { retries: 0 }).catch((e) => e);
      expect(err.code).toBe('CONFLICT');
      expect(await zk.get(k)).toBe(-1);
    } finally {
      await other.close();
    }
  });

  it('serializable checks keys only read (absent ones too); snapshot does not (write skew)', async () => {
    const [x, y, absent] = [unique('x'), unique('y'), unique('absent')];
    await zk.set(x, 1);
    await zk.set(y, 1);
    const other = client();
    try {
      // Reads x and absent, writes y; meanwhile x changes and absent appears.
      const skew = (isolation, change) => zk.transaction(async (tx) => {
        await tx.getMany([x, absent]);
        await change();
        tx.set(y, isolation);
      }, { isolation, retries: 0 });
      expect((await skew('serializable', () => other.set(x, 2)).catch((e) => e)).code).toBe('CONFLICT');
      expect((await skew('serializable', () => other.set(absent, 'now here')).catch((e) => e)).code).toBe('CONFLICT');
      expect(await zk.get(y)).toBe(1);
      await skew('snapshot', () => other.set(x, 3)); // write skew allowed under snapshot
      expect(await zk.get(y)).toBe('snapshot');
    } finally {
      await other.close();
    }
  });

  it('snapshot reads in two ticks never mix two states (no read skew): a transfer between the ticks makes it retry', async () => {
    const [a, b, total] = [unique('a'), unique('b'), unique('total')];
    await zk.transaction((tx) => { tx.set(a, 50); tx.set(b, 50); });
    const other = client();
    try {
      let runs = 0;
      const sum = await zk.transaction(async (tx) => {
        runs++;
        const x = await tx.get(a);
        if (runs === 1) await other.transaction(async (t) => { const [p, q] = await t.getMany([a, b]); t.set(a, p - 10); t.set(b, q + 10); });
        const y = await tx.get(b);
        tx.set(total, x + y);
        return x + y;
      }, { isolation: 'snapshot' });
      expect(sum).toBe(100); // every state of the store had a + b = 100
      expect(await zk.get(total)).toBe(100);
      // read-only too: its two ticks must fit one state
      runs = 0;
      const seen = await zk.transaction(async (tx) => {
        runs++;
        const x = await tx.get(a);
        if (runs === 1) await other.transaction(async (t) => { const [p, q] = await t.getMany([a, b]); t.set(a, p - 5); t.set(b, q + 5); });
        return x + (await tx.get(b));
      }, { isolation: 'snapshot' });
      expect(seen).toBe(100);
    } finally {
      await other.close();
    }
  });

  it('an id makes a replayed commit apply at most once', async () => {
    const k = unique('idem');
    const id = unique('txid');
    await zk.transaction(async (tx) => { tx.set(k, 'first'); }, { id });
    await zk.set(k, 'changed since');
    let seen;
    await zk.transaction(async (tx) => { seen = tx; tx.set(k, 'replayed'); }, { id });
    expect(seen.committed.alreadyApplied).toBe(true);
    expect(await zk.get(k)).toBe('changed since');
  });

  it('pruneTransactionIds deletes old idempotence markers only', async () => {
    const old = unique('old-id');
    await zk.transaction(async (tx) => { tx.set(unique('p'), 1); }, { id: old });
    // On etcd ages go by the server's clock between calls (docs/etcd.md): this call marks the
    // store's revision, the next one deletes what was committed up to it. On ZooKeeper the
    // marker is 0 ms old here: kept.
    await zk.pruneTransactionIds(200);
    expect(await backend.markers(zk)).toContain(old);
    await new Promise((r) => setTimeout(r, 2300));
    const fresh = unique('fresh-id');
    await zk.transaction(async (tx) => { tx.set(unique('p'), 1); }, { id: fresh });
    expect(await zk.pruneTransactionIds(200)).toBeGreaterThanOrEqual(1);
    const left = await backend.markers(zk);
    expect(left).not.toContain(old);
    expect(left).toContain(fresh);
    expect(await zk.pruneTransactionIds(-1).then(() => 'resolved', (e) => e.code)).toBe('INVALID_ARGUMENT');
  });

  it('a commit fenced on a released lock is refused with LOCK_LOST', async () => {
    const k = unique('fenced');
    const lock = await zk.lock(`/zktx-test/${unique('txlock')}`);
    await zk.transaction(async (tx) => { tx.set(k, 1); }, { lock });
    await lock.release();
    const err = await zk.transaction(async (tx) => { tx.set(k, 2); }, { lock }).catch((e) => e);
    expect(err.code).toBe('LOCK_LOST');
    expect(await zk.get(k)).toBe(1);
  });

  it('bad options and oversized commits are refused before anything is sent', async () => {
    const codes = await Promise.all([
      zk.transaction('nope'),
      zk.transaction(async () => {}, { isolation: 'bogus' }),
      zk.transaction(async () => {}, { retries: -1 }),
      zk.transaction(async () => {}, { unknown: 1 }),
      zk.transaction(async (tx) => { tx.set('', 1); }),
      zk.transaction(async (tx) => { tx.set(unique('f'), () => 1); }),
    ].map((p) => p.then(() => 'resolved', (e) => e.code)));
    expect(codes).toEqual(Array(6).fill('INVALID_ARGUMENT'));
    const [a, b] = [unique('big1'), unique('big2')];
    const c = unique('big3');
    const part = 'x'.repeat(600_000); // 2 parts are over ZooKeeper's 1 MiB, 3 over etcd's 1.5 MiB
    const err = await zk.transaction(async (tx) => { tx.set(a, part); tx.set(b, part); if (backend.revisions) tx.set(c, part); }).catch((e) => e);
    expect(err.code).toBe('TOO_LARGE');
    expect([await zk.get(a), await zk.get(b), await zk.get(c)]).toEqual([undefined, undefined, undefined]);
  });
});

describe.each(BACKENDS)('bank on $name: 8 accounts, 4 processes of random transfers', (backend) => {
  it('conserves the total, never goes negative, and its history is serializable', async () => {
    const prefix = unique('acct');
    const accounts = 8;
    const zk = backend.client();
    try {
      let created;
      await zk.transaction(async (tx) => {
        created = tx;
        for (let i = 0; i < accounts; i++) tx.create(`${prefix}-${i}`, 100);
      });
      const results = await runWorkers(workerPath('bank.js'), 4, { args: () => [prefix, String(accounts), '60', backend.name] });
      for (const r of results) expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      const lines = results.flatMap((r) => r.lines);
      const summaries = lines.filter((l) => l.summary);
      const committed = lines.filter((l) => !l.summary);
      const keys = Array.from({ length: accounts }, (_, i) => `${prefix}-${i}`);
      const finalValues = await zk.transaction((tx) => tx.getMany(keys));
      let versions;
      await zk.transaction(async (tx) => { await tx.getMany(keys); versions = tx; });
      const final = Object.fromEntries(keys.map((k, i) => [k, { value: finalValues[i], version: versions.committed.reads[k] }]));
      const initial = Object.fromEntries(keys.map((k) => [k, { value: 100, version: backend.revisions ? created.committed.zxid : 0 }]));
      const { violations, writers, readers } = checkSerializable({
        revisions: backend.revisions,
        initial,
        committed,
        final,
        invariant: (state) => {
          const values = Object.values(state);
          if (values.some((v) => v < 0)) return `negative balance ${JSON.stringify(state)}`;
          const total = values.reduce((a, b) => a + b, 0);
          return total === 100 * accounts ? null : `total ${total}`;
        },
      });
      expect(violations).toEqual([]);
      expect(finalValues.reduce((a, b) => a + b, 0)).toBe(800);
      for (const l of committed.filter((c) => c.audit !== undefined)) expect(l.audit).toBe(800);
      const retries = summaries.reduce((a, s) => a + s.retries, 0);
      const failed = summaries.reduce((a, s) => a + s.failed, 0);
      expect(failed).toBe(0);
      expect(writers).toBeGreaterThan(50);
      expect(readers).toBeGreaterThan(0);
      // Reported, not asserted: how contended the run was.
      console.log(`bank: ${committed.length} committed (${writers} transfers, ${readers} read-only), ${retries} conflict retries`);
    } finally {
      await zk.close();
    }
  });

  it('the history checker catches a lost update and a stale read', () => {
    const initial = { a: { version: 0, value: 0 } };
    const lost = checkSerializable({
      initial,
      committed: [
        { zxid: 10, reads: { a: 0 }, writes: { a: { version: 1, value: 1 } } },
        { zxid: 11, reads: { a: 0 }, writes: { a: { version: 2, value: 1 } } },
      ],
      final: { a: { version: 2, value: 1 } },
    });
    expect(lost.violations.length).toBeGreaterThan(0);
    const unaccounted = checkSerializable({ initial, committed: [], final: { a: { version: 1, value: 5 } } });
    expect(unaccounted.violations.length).toBe(1);
    // etcd's versions are revisions: the same lost update, and a write not at its commit's revision
    const rev = { a: { version: 5, value: 0 } };
    const lostRev = checkSerializable({
      revisions: true,
      initial: rev,
      committed: [
        { zxid: 10, reads: { a: 5 }, writes: { a: { version: 10, value: 1 } } },
        { zxid: 11, reads: { a: 5 }, writes: { a: { version: 11, value: 1 } } },
      ],
      final: { a: { version: 11, value: 1 } },
    });
    expect(lostRev.violations).toEqual(['tx at zxid 11 read a@5 but a was at 10 in commit order']);
    const misplaced = checkSerializable({ revisions: true, initial: rev, committed: [{ zxid: 10, reads: { a: 5 }, writes: { a: { version: 9, value: 1 } } }], final: { a: { version: 9, value: 1 } } });
    expect(misplaced.violations).toEqual(['tx at zxid 10 wrote a@9 over a@5']);
  });
});
