'use strict';
// Attacks on etcd's multi-key transactions (`etcd.transaction`): each test is named after the
// promise it attacks (index.d.ts `ZooKeeper.transaction` and `Etcd.transaction`, docs/etcd.md
// "Multi-key transactions") and what tries to break it. Real etcd (ETCD_ENDPOINTS, and members
// of its own where a test freezes one), no mocks.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { Etcd } = require('..');
const { startProxy, startEtcdCluster } = require('../testing');
const { unique } = require('./helpers/zk');
const { runWorkers, workerPath } = require('./helpers/procs');
const { etcdctl } = require('./helpers/backends');

jest.setTimeout(120000);

const client = (o = {}) => new Etcd({ endpoints: process.env.ETCD_ENDPOINTS, timeout: 10000, ...o });
const revisionOf = (out) => Number(/"revision":(\d+)/.exec(out)[1]);

/**
 * Serializability of a history on etcd (mod revisions): writers replayed in commit-revision
 * order must each have read the versions current then (-1: absent); a set moves its key to the
 * commit's revision, a delete to -1; a read-only transaction must have seen the state between
 * two writers; the replay must end at what the server holds. A writer whose Txn changed nothing
 * (it only deleted absent keys) does not move etcd's revision: it reports the revision of the
 * writer before it and is ordered after it.
 */
function checkEtcdHistory({ initial, committed, final }) {
  const violations = [];
  const readers = committed.filter((t) => Object.keys(t.writes).length === 0);
  const byRevision = new Map();
  for (const t of committed.filter((c) => Object.keys(c.writes).length > 0)) byRevision.set(t.zxid, [...(byRevision.get(t.zxid) || []), t]);
  const version = { ...initial };
  const value = {};
  const states = [{ ...version }];
  // Writers that share a revision: the one that changed something, then those that changed
  // nothing; any order of them that is consistent will do.
  const permutations = (xs) => (xs.length <= 1 ? [xs] : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p])));
  const consistent = (order) => {
    const v = { ...version };
    for (const t of order) {
      if (Object.entries(t.reads).some(([k, r]) => v[k] !== r)) return false;
      for (const [k, w] of Object.entries(t.writes)) v[k] = w.version;
    }
    return true;
  };
  const writers = [];
  for (const rev of [...byRevision.keys()].sort((a, b) => a - b)) {
    const group = byRevision.get(rev);
    const order = (group.length <= 5 && permutations(group).find(consistent)) || group;
    if (order.filter((t) => Object.values(t.writes).some((w) => w.version !== -1)).length > 1) violations.push(`two writers set keys at revision ${rev}`);
    for (const t of order) {
      writers.push(t);
      for (const [k, v] of Object.entries(t.reads)) if (version[k] !== v) violations.push(`tx at ${t.zxid} read ${k}@${v}, but ${k} was at ${version[k]} in commit order`);
      for (const [k, w] of Object.entries(t.writes)) {
        if (w.version !== -1 && w.version !== t.zxid) violations.push(`tx at ${t.zxid} reports ${k}@${w.version}`);
        version[k] = w.version;
        value[k] = w.value;
      }
      states.push({ ...version });
    }
  }
  for (const t of readers) {
    const fits = states.some((s) => Object.entries(t.reads).every(([k, v]) => s[k] === v));
    if (!fits) violations.push(`read-only tx ${JSON.stringify(t.reads)} saw versions never current together`);
  }
  for (const [k, f] of Object.entries(final)) {
    if (version[k] !== f.version) violations.push(`server has ${k}@${f.version}, the history ends at ${k}@${version[k]}`);
    else if (f.version !== -1 && value[k] !== undefined && JSON.stringify(value[k]) !== JSON.stringify(f.value)) violations.push(`server has ${k}=${JSON.stringify(f.value)}, history says ${JSON.stringify(value[k])}`);
  }
  return { violations, writers: writers.length, readers: readers.length };
}

/** A fresh read of `keys` in one transaction: { key: { version, value } } (version -1: absent). */
async function snapshot(etcd, keys) {
  let seen;
  const values = await etcd.transaction(async (tx) => { seen = tx; return tx.getMany(keys); });
  return Object.fromEntries(keys.map((k, i) => [k, { version: seen.committed.reads[k], value: values[i] }]));
}

describe('etcd transactions under attack', () => {
  let etcd;
  let other;
  beforeAll(() => { etcd = client(); other = client(); });
  afterAll(async () => { await etcd.close(); await other.close(); });

  describe('serializability', () => {
    /** Runs the generative workers and checks their history; resolves what the check found. */
    async function generate({ seed, processes, ops, isolation }) {
      const prefix = unique('gen');
      const nKeys = 6;
      const keys = Array.from({ length: nKeys }, (_, i) => `${prefix}-${i}`);
      let created;
      await etcd.transaction(async (tx) => { created = tx; keys.slice(0, 3).forEach((k) => tx.create(k, 'init')); });
      const initial = Object.fromEntries(keys.map((k, i) => [k, i < 3 ? created.committed.zxid : -1]));
      const results = await runWorkers(workerPath('etcd-txn-gen.js'), processes, { args: (i) => [prefix, String(nKeys), String(ops), String(seed * 10 + i), isolation] });
      const lines = results.flatMap((r) => r.lines);
      const committed = lines.filter((l) => !l.summary);
      const final = await snapshot(etcd, keys);
      const checked = checkEtcdHistory({ initial, committed, final });
      if (checked.violations.length > 0) {
        const file = path.join(os.tmpdir(), `etcd-txn-history-${seed}-${process.pid}.json`);
        fs.writeFileSync(file, JSON.stringify({ seed, initial, committed, final, violations: checked.violations }));
        checked.violations.push(`history in ${file}`);
      }
      return { results, summaries: lines.filter((l) => l.summary), ...checked };
    }

    it('[serializable: committed transactions are equivalent to a serial order] 3 processes of seeded random reads in several ticks, sets, creates, deletes and create+delete', async () => {
      const seed = Number(process.env.ZKTX_SEED || Date.now() % 1_000_000);
      const failure = (what) => `seed ${seed} (rerun with ZKTX_SEED=${seed}): ${what}`;
      const { results, summaries, violations, writers, readers } = await generate({ seed, processes: 3, ops: 2000, isolation: 'serializable' });
      for (const r of results) expect(failure(JSON.stringify({ code: r.code, stderr: r.stderr }))).toBe(failure(JSON.stringify({ code: 0, stderr: '' })));
      expect(failure(JSON.stringify(violations))).toBe(failure('[]'));
      expect(writers).toBeGreaterThan(1000);
      expect(readers).toBeGreaterThan(300);
      console.log(`generative (seed ${seed}): ${writers} writers, ${readers} read-only; ${JSON.stringify(summaries)}`);
    });

    it('the history checker finds the anomalies of read-committed in the same generator', async () => {
      const seed = 12345;
      const { violations } = await generate({ seed, processes: 3, ops: 150, isolation: 'read-committed' });
      expect(violations.length).toBeGreaterThan(0);
    });

    it('[read sets too large for one request are read in several, and the transaction commits] a read-only serializable transaction of 200 keys (two read batches) while transfers run', async () => {
      const prefix = unique('wide');
      const keys = Array.from({ length: 200 }, (_, i) => `${prefix}-${i}`);
      for (let i = 0; i < keys.length; i += 100) await etcd.transaction((tx) => { keys.slice(i, i + 100).forEach((k) => tx.set(k, 10)); });
      let stop = false;
      let transfers = 0;
      const writer = (async () => {
        let i = 0;
        while (!stop) {
          const [a, b] = [keys[(i * 7) % 200], keys[(i * 13 + 1) % 200]];
          i++;
          if (a === b) continue;
          await other.transaction(async (tx) => { const [x, y] = await tx.getMany([a, b]); tx.set(a, x - 1); tx.set(b, y + 1); }, { retries: 100 });
          transfers++;
        }
      })();
      try {
        for (let round = 0; round < 6; round++) {
          // One getMany of 200 keys (two Txns of Ranges), then the same read in two ticks.
          const all = await etcd.transaction((tx) => tx.getMany(keys));
          expect(all.reduce((s, v) => s + v, 0)).toBe(2000);
          const split = await etcd.transaction(async (tx) => [...await tx.getMany(keys.slice(0, 100)), ...await tx.getMany(keys.slice(100))]);
          expect(split.reduce((s, v) => s + v, 0)).toBe(2000);
          const withId = await etcd.transaction((tx) => tx.getMany(keys), { idempotent: true });
          expect(withId.reduce((s, v) => s + v, 0)).toBe(2000);
        }
      } finally {
        stop = true;
        await writer;
      }
      expect(transfers).toBeGreaterThan(0);
    });

    // [snapshot isolation: only write skew] reads in two ticks never mix two states: in
    // transaction.test.js, on both backends.

    it('[snapshot allows write skew, serializable does not] two transactions each read a and b and write one of them', async () => {
      for (const isolation of ['snapshot', 'serializable']) {
        const [a, b] = [unique('on-call-a'), unique('on-call-b')];
        await etcd.transaction((tx) => { tx.set(a, true); tx.set(b, true); });
        // Each takes one doctor off call if the other is still on call.
        let gate;
        const bothRead = new Promise((resolve) => { let n = 0; gate = () => { if (++n === 2) resolve(); return bothRead; }; });
        const offCall = (c, me, them) => c.transaction(async (tx) => {
          const [mine, theirs] = await tx.getMany([me, them]);
          if (tx.attempt === 0) await gate();
          if (mine && theirs) tx.set(me, false);
        }, { isolation });
        await Promise.all([offCall(etcd, a, b), offCall(other, b, a)]);
        const onCall = [await etcd.get(a), await etcd.get(b)].filter(Boolean).length;
        if (isolation === 'snapshot') expect(onCall).toBe(0); // the documented anomaly
        else expect(onCall).toBe(1);
      }
    });

    it('[serializable: absent keys are checked too] a key read as absent and created concurrently before the commit is a conflict, and the retry sees it', async () => {
      const [k, out] = [unique('absent'), unique('out')];
      const seen = [];
      await etcd.transaction(async (tx) => {
        const v = await tx.get(k);
        seen.push(v);
        if (seen.length === 1) await other.transaction((t) => t.create(k, 'theirs'));
        tx.set(out, v === undefined ? 'was absent' : `was ${v}`);
      });
      expect(seen).toEqual([undefined, 'theirs']);
      expect(await etcd.get(out)).toBe('was theirs');
    });

    it('[a key deleted and re-created between a read and the commit is a conflict, not a lost update] delete + re-create of the same value', async () => {
      const k = unique('recreated');
      await etcd.set(k, 1);
      let runs = 0;
      await etcd.transaction(async (tx) => {
        runs++;
        const v = await tx.get(k);
        if (runs === 1) {
          await other.transaction((t) => t.delete(k));
          await other.transaction((t) => t.create(k, 1));
        }
        tx.set(k, v + 1);
      });
      expect(runs).toBe(2);
      expect(await etcd.get(k)).toBe(2);
    });

    it('[a key read twice returns the first read; reads see own writes] the same key read, written, read again, deleted and created in one transaction', async () => {
      const k = unique('same');
      await etcd.set(k, 1);
      let runs = 0;
      const seen = await etcd.transaction(async (tx) => {
        runs++;
        const first = await tx.get(k);
        if (runs === 1) await other.set(k, 99);
        const second = await tx.get(k);
        tx.set(k, first + 1);
        const own = await tx.get(k);
        tx.delete(k);
        const deleted = await tx.get(k);
        tx.create(k, own + 1);
        return [first, second, own, deleted, await tx.get(k)];
      });
      expect(runs).toBe(2); // the first run's read of 1 was stale at its commit
      expect(seen).toEqual([99, 99, 100, undefined, 101]);
      expect(await etcd.get(k)).toBe(101);
    });

    it('[serializable checks every key read] compaction of the store between the read and the commit does not hide a concurrent write', async () => {
      const [k, out] = [unique('compact'), unique('out')];
      await etcd.set(k, 1);
      let runs = 0;
      await etcd.transaction(async (tx) => {
        runs++;
        const v = await tx.get(k);
        if (runs === 1) {
          await other.set(k, 2);
          const rev = revisionOf(etcdctl('get', k, '-w', 'json'));
          etcdctl('compact', String(rev));
        }
        tx.set(out, v);
      });
      expect(runs).toBe(2);
      expect(await etcd.get(out)).toBe(2);
    });

    it('[reads of an attempt are one state] compaction between two read ticks of one attempt is a conflict that is retried, not an error', async () => {
      const [a, b] = [unique('c-a'), unique('c-b')];
      await etcd.transaction((tx) => { tx.set(a, 1); tx.set(b, 1); });
      let runs = 0;
      const got = await etcd.transaction(async (tx) => {
        runs++;
        const x = await tx.get(a);
        if (runs === 1) {
          await other.set(a, 5);
          await other.set(b, 5);
          etcdctl('compact', String(revisionOf(etcdctl('get', b, '-w', 'json'))));
        }
        return [x, await tx.get(b)];
      });
      expect(got).toEqual([5, 5]);
    });
  });

  describe('large values and limits', () => {
    const big = 'x'.repeat(900_000);

    it('[tx.getMany reads several keys in one round trip] five keys of 900 kB each', async () => {
      const keys = Array.from({ length: 5 }, (_, i) => unique(`big${i}`));
      for (const k of keys) await etcd.set(k, big);
      const values = await etcd.transaction((tx) => tx.getMany(keys));
      expect(values.map((v) => v.length)).toEqual(keys.map(() => big.length));
    });

    it('[CONFLICT is retried with fresh reads] a conflict on a transaction that read keys holding large values', async () => {
      const keys = Array.from({ length: 5 }, (_, i) => unique(`bigc${i}`));
      const out = unique('out');
      for (const k of keys) await etcd.set(k, big);
      let runs = 0;
      await etcd.transaction(async (tx) => {
        runs++;
        for (const k of keys) await tx.get(k); // five ticks: five reads of under 1 MB each
        if (runs === 1) await other.set(keys[0], `${big}!`);
        tx.set(out, runs);
      });
      expect(runs).toBe(2);
      expect(await etcd.get(out)).toBe(2);
    });

    it('[TOO_LARGE before anything is sent] 129 writes, or two values of 900 kB, are refused with nothing applied; 128 writes commit', async () => {
      const prefix = unique('many');
      await expect(etcd.transaction((tx) => { for (let i = 0; i < 129; i++) tx.set(`${prefix}-${i}`, i); })).rejects.toMatchObject({ code: 'TOO_LARGE', outcome: 'not_applied' });
      await expect(etcd.transaction((tx) => { tx.set(`${prefix}-x`, big); tx.set(`${prefix}-y`, big); })).rejects.toMatchObject({ code: 'TOO_LARGE' });
      expect(await etcd.get(`${prefix}-0`)).toBeUndefined();
      expect(await etcd.get(`${prefix}-x`)).toBeUndefined();
      await etcd.transaction((tx) => { for (let i = 0; i < 128; i++) tx.set(`${prefix}-${i}`, i); });
      expect(await etcd.get(`${prefix}-127`)).toBe(127);
    });
  });

  describe('values and keys', () => {
    it('[tx.get rejects data another client wrote; tx.set replaces it; a create is NODEEXISTS] values written by etcdctl put that are not JSON', async () => {
      const k = unique('foreign');
      etcdctl('put', `/zktx/kv/${k}`, 'not json {');
      await expect(etcd.transaction((tx) => tx.get(k))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(etcd.transaction((tx) => tx.create(k, 1))).rejects.toMatchObject({ code: 'NODEEXISTS' });
      // Read (rejected), then replaced: the replacement is checked against what was read.
      let runs = 0;
      await etcd.transaction(async (tx) => {
        runs++;
        await tx.get(k).catch((err) => expect(err.code).toBe('INVALID_ARGUMENT'));
        if (runs === 1) etcdctl('put', `/zktx/kv/${k}`, 'other junk');
        tx.set(k, { fixed: runs });
      });
      expect(runs).toBe(2);
      expect(await etcd.get(k)).toEqual({ fixed: 2 });
    });

    it('[keys are any non-empty string] unicode, percent signs, slashes and 1024-byte keys are distinct and round-trip', async () => {
      const base = unique('keys');
      const keys = [`${base}/a/b`, `${base}%2Fa%2Fb`, `${base}é`, `${base}e\u0301`, `${base}%41`, `${base}A`, `${base}🙂`, `${base}${'k'.repeat(1024 - Buffer.byteLength(base))}`];
      await etcd.transaction((tx) => { keys.forEach((k, i) => tx.create(k, i)); });
      expect(await etcd.transaction((tx) => tx.getMany(keys))).toEqual(keys.map((_, i) => i));
      for (const [i, k] of keys.entries()) expect(await other.get(k)).toBe(i);
      await etcd.transaction((tx) => { keys.forEach((k) => tx.delete(k)); });
      expect(await etcd.transaction((tx) => tx.getMany(keys))).toEqual(keys.map(() => undefined));
    });
  });

  describe('ids', () => {
    it('[with an id, a commit whose answer was lost is retried and applies at most once, resolving the recorded result] every answer dropped right after the commit is sent', async () => {
      const proxy = await startProxy(process.env.ETCD_ENDPOINTS.split(',')[0]);
      const viaProxy = new Etcd({ endpoints: proxy.connect, timeout: 3000 });
      try {
        const [a, b] = [unique('lost-a'), unique('lost-b')];
        await etcd.transaction((tx) => { tx.set(a, 100); tx.set(b, 0); });
        const attempts = [];
        const result = await viaProxy.transaction(async (tx) => {
          attempts.push(tx.attempt);
          if (tx.attempt > 0) proxy.heal();
          const [x, y] = await tx.getMany([a, b]);
          if (x < 60) throw new Error(`insufficient funds: ${x}`); // the replay sees the applied transfer
          tx.set(a, x - 60);
          tx.set(b, y + 60);
          if (tx.attempt === 0) proxy.partition({ mode: 'responses' }); // the commit goes out, its answer is lost
          return { moved: 60, attempt: tx.attempt };
        }, { id: unique('transfer') });
        expect(result).toEqual({ moved: 60, attempt: 0 });
        expect(attempts.length).toBeGreaterThan(1);
        expect([await etcd.get(a), await etcd.get(b)]).toEqual([40, 60]);
      } finally {
        proxy.heal();
        await viaProxy.close();
        await proxy.close();
      }
    });

    it('[with an id, a commit whose answer was lost applies at most once] the member the client talks to is frozen (SIGSTOP) right after the commit is sent, in a 3-member cluster', async () => {
      const cluster = await startEtcdCluster(3);
      const admin = new Etcd({ endpoints: cluster.endpoints.join(','), timeout: 10000 });
      const frozen = cluster.members[0];
      const c = new Etcd({ endpoints: frozen.endpoints.join ? frozen.endpoints.join(',') : frozen.endpoints, timeout: 3000 });
      try {
        const k = unique('counter');
        await admin.set(k, 0);
        // When the SIGSTOP lands relative to the request varies: before it arrives, while the
        // member proposes it, after it applied. Whatever happened, exactly one increment.
        const delays = [() => setImmediate(() => frozen.kill('SIGSTOP')), () => setTimeout(() => frozen.kill('SIGSTOP'), 2), () => process.nextTick(() => frozen.kill('SIGSTOP'))];
        for (const [i, freeze] of delays.entries()) {
          const id = unique('inc');
          let last;
          const run = () => c.transaction(async (tx) => {
            last = tx;
            if (tx.attempt === 1) frozen.kill('SIGCONT');
            const v = await tx.get(k);
            tx.set(k, v + 1);
            if (tx.attempt === 0) freeze();
            return v + 1;
          }, { id, retries: 20 });
          // outcome 'unknown' (the member came back too slowly to settle it): as documented,
          // call again with the same id, which applies at most once.
          let result;
          let calls = 0;
          for (;;) {
            calls++;
            try {
              result = await run();
              break;
            } catch (err) {
              frozen.kill('SIGCONT');
              expect({ code: err.code, outcome: err.outcome }).toEqual({ code: err.code, outcome: 'unknown' });
              if (calls >= 5) throw err;
            }
          }
          frozen.kill('SIGCONT');
          expect(await admin.get(k)).toBe(i + 1);
          expect(result).toBe(i + 1);
          console.log(`freeze ${i}: ${calls} calls, ${last.attempt + 1} attempts in the last, alreadyApplied ${last.committed && last.committed.alreadyApplied}`);
        }
      } finally {
        frozen.kill('SIGCONT');
        await c.close().catch(() => {});
        await admin.close();
        await cluster.stop();
      }
    });

    it('[with an id, a transaction applies at most once] six clients run the same id at the same time', async () => {
      const [k, id] = [unique('same-id'), unique('id')];
      await etcd.set(k, 0);
      const clients = Array.from({ length: 6 }, () => client());
      try {
        const results = await Promise.all(clients.map((c, i) => c.transaction(async (tx) => {
          const v = await tx.get(k);
          tx.set(k, v + 1);
          return { by: i, saw: v };
        }, { id, retries: 50 })));
        expect(await etcd.get(k)).toBe(1);
        expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
        expect(results[0].saw).toBe(0);
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
    });

    it('[with an id, the recorded result wins when a replay throws] a second call with the same id whose function throws on the state the first left', async () => {
      const [k, id] = [unique('once'), unique('id')];
      await etcd.set(k, 1);
      const run = (c) => c.transaction(async (tx) => {
        const v = await tx.get(k);
        if (v !== 1) throw new Error(`already moved: ${v}`);
        tx.set(k, 2);
        return 'first';
      }, { id });
      expect(await run(etcd)).toBe('first');
      expect(await run(other)).toBe('first');
      // A replay that writes nothing, and one that writes something else: nothing applies.
      expect(await other.transaction(() => 'no writes', { id })).toBe('first');
      expect(await other.transaction((tx) => { tx.set(k, 3); return 'other'; }, { id })).toBe('first');
      expect(await etcd.get(k)).toBe(2);
    });

    it('[a read-only transaction with an id writes its marker] a replay of a read-only transaction resolves the first result', async () => {
      const [k, id] = [unique('ro'), unique('id')];
      await etcd.set(k, 'before');
      expect(await etcd.transaction((tx) => tx.get(k), { id })).toBe('before');
      await etcd.set(k, 'after');
      expect(await other.transaction((tx) => tx.get(k), { id })).toBe('before');
    });
  });

  describe('fences', () => {
    it('[a commit fenced on a lock is LOCK_LOST once the lock is not held] a lock of another client, then released by it', async () => {
      const [path, k] = [`/${unique('fence')}`, unique('fenced')];
      const lock = await other.lock(path);
      await etcd.transaction((tx) => tx.set(k, 1), { lock });
      expect(await etcd.get(k)).toBe(1);
      await lock.release();
      await expect(etcd.transaction((tx) => tx.set(k, 2), { lock })).rejects.toMatchObject({ code: 'LOCK_LOST' });
      // Re-acquired by the same client (same lease, same lock key): the old handle stays lost.
      const again = await other.lock(path);
      try {
        await expect(etcd.transaction((tx) => tx.set(k, 3), { lock })).rejects.toMatchObject({ code: 'LOCK_LOST' });
        await etcd.transaction((tx) => tx.set(k, 4), { lock: again });
      } finally {
        await again.release();
      }
      expect(await etcd.get(k)).toBe(4);
    });

    it('[a commit fenced on a lock is LOCK_LOST once the lock is not held] the holder process is frozen between read and commit past its lease TTL while another takes the lock and writes', async () => {
      const [path, k] = [`/${unique('frozen')}`, unique('frozen-key')];
      await etcd.set(k, 0);
      const child = spawn(process.execPath, ['-e', `
        const { Etcd } = require(${JSON.stringify(require.resolve('..'))});
        (async () => {
          const etcd = new Etcd({ endpoints: process.env.ETCD_ENDPOINTS, timeout: 2000 });
          const lock = await etcd.lock(${JSON.stringify(path)});
          try {
            await etcd.transaction(async (tx) => {
              const v = await tx.get(${JSON.stringify(k)});
              console.log(JSON.stringify({ read: v }));
              await new Promise((r) => setTimeout(r, 300));
              tx.set(${JSON.stringify(k)}, v + 1);
            }, { lock, retries: 0 });
            console.log(JSON.stringify({ committed: true }));
          } catch (err) { console.log(JSON.stringify({ code: err.code })); }
          await etcd.close();
        })();`], { env: process.env, stdio: ['ignore', 'pipe', 'inherit'] });
      const lines = [];
      const exited = new Promise((resolve) => child.on('exit', resolve));
      await new Promise((resolve) => readline.createInterface({ input: child.stdout }).on('line', (l) => { lines.push(JSON.parse(l)); if (lines.length === 1) { child.kill('SIGSTOP'); resolve(); } }));
      try {
        const lock = await other.lock(path, { timeout: 15000 }); // the frozen holder's lease expires
        await other.transaction((tx) => tx.set(k, 100), { lock });
        child.kill('SIGCONT');
        await exited;
        await lock.release();
      } finally {
        child.kill('SIGCONT');
      }
      // The lock was lost with its lease: LOCK_LOST, or SESSIONEXPIRED (the holder's own session ended).
      expect(lines[0]).toEqual({ read: 0 });
      expect(['LOCK_LOST', 'SESSIONEXPIRED']).toContain(lines[1].code);
      expect(await etcd.get(k)).toBe(100);
    });
  });

  describe('cancellation', () => {
    it('[close() settles an in-flight commit with its outcome] close() right after the commit is sent: resolved means applied, not_applied means not applied', async () => {
      for (let i = 0; i < 5; i++) {
        const c = client();
        const k = unique('closing');
        await c.connect();
        const p = c.transaction((tx) => { tx.set(k, i); setImmediate(() => { c.close(); }); });
        const outcome = await p.then(() => 'resolved', (err) => err.outcome || err.code);
        const stored = await etcd.get(k);
        if (outcome === 'resolved') expect(stored).toBe(i);
        if (outcome === 'not_applied') expect(stored).toBeUndefined();
        await c.close();
      }
    });

    it('[an aborted transaction rejects with ABORTED and applies nothing] AbortSignal fired while the transaction is retrying conflicts', async () => {
      const [k, out] = [unique('abort'), unique('abort-out')];
      await etcd.set(k, 0);
      const ac = new AbortController();
      let runs = 0;
      const p = etcd.transaction(async (tx) => {
        runs++;
        const v = await tx.get(k);
        await other.set(k, v + 1); // always a conflict
        if (runs === 3) ac.abort();
        tx.set(out, runs);
      }, { signal: ac.signal, retries: 50 });
      await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
      expect(runs).toBe(3);
      expect(await etcd.get(out)).toBeUndefined();
    });
  });
});

