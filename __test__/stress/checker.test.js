'use strict';
// Unit tests of the stress test's history checker on small synthetic histories: every violation
// class must be flagged, valid histories (including legal anomalies of weaker isolation levels)
// must pass.
const { checkSerial, checkLocks, checkErrors, checkRevisions } = require('./checker');

const K = ['a', 'b', 'c'];
const v = (n) => ({ w: 0, n });
let clock = 0;
/** A transaction committed in [inv, cmp], increasing times by default. */
function tx(label, { reads = {}, writes = [], zxid, status = 'ok', isolation = 'serializable', kind = 'tx', inv, cmp, idGroup } = {}) {
  clock += 10;
  return { label, kind, isolation, status, zxid, reads, writes, inv: inv ?? clock, cmp: status === 'ok' ? cmp ?? clock + 5 : undefined, idGroup };
}
const set = (key, n) => ({ kind: 'set', key, value: v(n) });
const create = (key, n) => ({ kind: 'create', key, value: v(n) });
const del = (key) => ({ kind: 'delete', key });
const et = (label, key, prev, n, opts = {}) => tx(label, { kind: 'et', reads: { [key]: prev === null ? null : v(prev) }, writes: [set(key, n)], ...opts });
const run = (txns, final) => checkSerial({ keys: K, txns, final: Object.fromEntries(Object.entries(final).map(([k, n]) => [k, n === null ? undefined : v(n)])) });

describe('stress checker: serializability over values', () => {
  it('a valid history passes (transactions, executeTransaction without zxid, read-only, unknown, refused)', () => {
    const h = [
      tx('T0', { writes: [set('a', 1), set('b', 2)], zxid: 10 }),
      tx('R1', { reads: { a: v(1), b: v(2) } }),
      et('E1', 'a', 1, 3), // no zxid: placed by search
      tx('T2', { reads: { a: v(3) }, writes: [set('a', 4), del('b')], zxid: 20 }),
      tx('U1', { writes: [set('c', 5)], status: 'unknown' }), // never observed: may not have applied
      tx('X1', { writes: [set('b', 6)], status: 'refused' }),
      tx('T3', { reads: { b: null }, writes: [create('b', 7)], zxid: 30 }),
      tx('U2', { writes: [set('c', 8)], status: 'unknown' }), // observed in the final state: applied
      tx('R2', { reads: { a: v(4), b: v(7) } }),
    ];
    const r = run(h, { a: 4, b: 7, c: 8 });
    expect(r.violations).toEqual([]);
    expect(r.stats.unknownApplied).toBe(1);
    expect(r.order).toEqual(['T0', 'E1', 'T2', 'T3', 'U2']);
  });

  it('flags the ABA lost update: T1 reads k=1, T2 deletes k, T3 creates k=100, T1 commits k=11', () => {
    const h = [
      tx('T0', { writes: [set('a', 1)], zxid: 1 }),
      tx('T2', { writes: [del('a')], zxid: 2 }),
      tx('T3', { reads: { a: null }, writes: [create('a', 100)], zxid: 3 }),
      tx('T1', { reads: { a: v(1) }, writes: [set('a', 11)], zxid: 4 }),
    ];
    const r = run(h, { a: 11 });
    expect(r.violations.some((x) => /lost update.*T1.*read a=.*T3 had created it/.test(x))).toBe(true);
    expect(r.violations.some((x) => /^no serial order/.test(x))).toBe(true);
  });

  it('flags the ABA lost update when the delete and the re-create carry no zxid (search)', () => {
    const h = [
      tx('T0', { writes: [set('a', 1)], zxid: 1 }),
      tx('T2', { writes: [del('a')] }),
      tx('T3', { reads: { a: null }, writes: [create('a', 100)] }),
      tx('T1', { reads: { a: v(1) }, writes: [set('a', 11)], zxid: 4 }),
    ];
    expect(run(h, { a: 11 }).violations.some((x) => /^no serial order/.test(x))).toBe(true);
  });

  it('names the lost update when the value read has no zxid but was overwritten by a later writer', () => {
    const h = [
      et('E', 'a', null, 1, { inv: 0, cmp: 5 }), // created a=1 (no zxid)
      tx('T2', { writes: [set('a', 2)], zxid: 2, inv: 10, cmp: 15 }),
      tx('T3', { writes: [del('a')], zxid: 3, inv: 20, cmp: 25 }),
      et('E2', 'a', null, 4, { inv: 30, cmp: 35 }), // re-created a (no zxid)
      tx('T1', { reads: { a: v(1) }, writes: [del('a')], zxid: 5, inv: 1, cmp: 40 }),
    ];
    expect(run(h, { a: null }).violations.some((x) => /lost update.*T1.*written by E, acknowledged at 5.*T3, begun at 20, had deleted/.test(x))).toBe(true);
  });

  it('flags a lost update of two executeTransactions that read the same value', () => {
    const h = [tx('T0', { writes: [set('a', 1)], zxid: 1 }), et('E1', 'a', 1, 2, { zxid: 5 }), et('E2', 'a', 1, 3, { zxid: 6 })];
    expect(run(h, { a: 3 }).violations.some((x) => /lost update.*E2/.test(x))).toBe(true);
    const noZxid = [tx('T0', { writes: [set('a', 1)], zxid: 1 }), et('E1', 'a', 1, 2), et('E2', 'a', 1, 3)];
    expect(run(noZxid, { a: 3 }).violations.some((x) => /^no serial order/.test(x))).toBe(true);
  });

  it('flags a serializable write skew but allows it under snapshot isolation', () => {
    const skew = (isolation) => [
      tx('T0', { writes: [set('a', 1), set('b', 2)], zxid: 1 }),
      tx('T1', { reads: { a: v(1), b: v(2) }, writes: [set('a', 3)], zxid: 2, isolation }),
      tx('T2', { reads: { a: v(1), b: v(2) }, writes: [set('b', 4)], zxid: 3, isolation }),
    ];
    expect(run(skew('serializable'), { a: 3, b: 4 }).violations).not.toEqual([]);
    expect(run(skew('snapshot'), { a: 3, b: 4 }).violations).toEqual([]);
  });

  it('flags a lost update under snapshot isolation, allows it under read-committed', () => {
    const lost = (isolation) => [
      tx('T0', { writes: [set('a', 1)], zxid: 1 }),
      tx('T1', { reads: { a: v(1) }, writes: [set('a', 2)], zxid: 2, isolation }),
      tx('T2', { reads: { a: v(1) }, writes: [set('a', 3)], zxid: 3, isolation }),
    ];
    expect(run(lost('snapshot'), { a: 3 }).violations).not.toEqual([]);
    expect(run(lost('read-committed'), { a: 3 }).violations).toEqual([]);
  });

  it('flags a refused write that is visible (read or in the final state)', () => {
    const h = [tx('T0', { writes: [set('a', 1)], zxid: 1 }), tx('X', { writes: [set('a', 2)], status: 'refused' })];
    expect(run(h, { a: 2 }).violations.some((x) => /refused write visible.*X/.test(x))).toBe(true);
    const read = [...h, tx('R', { reads: { a: v(2) } })];
    expect(run(read, { a: 1 }).violations.some((x) => /refused write visible: R saw/.test(x))).toBe(true);
  });

  it('flags an acknowledged write missing from the final state (durability)', () => {
    const h = [tx('T0', { writes: [set('a', 1)], zxid: 1 }), tx('T1', { writes: [set('a', 2)], zxid: 2 })];
    const r = run(h, { a: 1 });
    expect(r.violations.some((x) => /no serial order.*a would be .*"n":2.* but the server has .*"n":1/.test(x))).toBe(true);
  });

  it('a read-committed delete of a key it did not read may find it absent first (no-op); a checked one may not', () => {
    // T2's commit read b as absent just before T1 re-created it: its delete changed nothing
    const h = (isolation) => [
      tx('T0', { writes: [set('a', 1)], zxid: 1 }),
      tx('T1', { writes: [set('b', 2)], zxid: 2 }),
      tx('T2', { writes: [del('b'), set('a', 3)], zxid: 3, isolation }),
      tx('R', { reads: { b: v(2) }, writes: [set('c', 4)], zxid: 4 }),
    ];
    expect(run(h('read-committed'), { a: 3, b: 2, c: 4 }).violations).toEqual([]);
    expect(run(h('read-committed'), { a: 3, b: 2, c: 4 }).order).toEqual(['T0', 'T1', 'T2(no delete of b)', 'R']);
    expect(run(h('snapshot'), { a: 3, b: 2, c: 4 }).violations).not.toEqual([]);
    // read as absent: the delete is a no-op; read as present: it deletes
    const seen = [tx('T1', { writes: [set('b', 2)], zxid: 2 }), tx('T2', { reads: { b: v(2) }, writes: [del('b')], zxid: 3, isolation: 'read-committed' })];
    expect(run(seen, { b: 2 }).violations).not.toEqual([]);
  });

  it('flags a committed create of a key that existed', () => {
    const h = [tx('T0', { writes: [set('a', 1)], zxid: 1 }), tx('T1', { writes: [create('a', 2)], zxid: 2, isolation: 'read-committed' })];
    expect(run(h, { a: 2 }).violations.some((x) => /created a, which existed/.test(x))).toBe(true);
  });

  it('flags a read-only transaction whose reads were never current together', () => {
    const h = [
      tx('T0', { writes: [set('a', 1), set('b', 1)], zxid: 1 }),
      tx('T1', { writes: [set('a', 2), set('b', 2)], zxid: 2 }),
      tx('R', { reads: { a: v(1), b: v(2) } }),
    ];
    expect(run(h, { a: 2, b: 2 }).violations.some((x) => /read-only R/.test(x))).toBe(true);
  });

  it('a read-only transaction may need another placement of a transaction without a zxid', () => {
    const h = [
      tx('T0', { writes: [set('a', 1), set('b', 1)], zxid: 1 }),
      et('E1', 'a', 1, 2, { inv: 0, cmp: 1e9 }),
      tx('T2', { writes: [set('b', 3)], zxid: 3 }),
      tx('R', { reads: { a: v(2), b: v(1) } }), // only if E1 came before T2
    ];
    const r = run(h, { a: 2, b: 3 });
    expect(r.violations).toEqual([]);
    expect(r.stats.readerSearch === undefined || r.stats.readerSearch === 'fits').toBe(true);
    const never = [...h.slice(0, 3), tx('R', { reads: { a: v(2), b: null } })];
    expect(run(never, { a: 2, b: 3 }).violations.some((x) => /read-only R .*in any serial order/.test(x))).toBe(true);
  });

  it('flags a value no operation wrote (phantom), and a reader that saw the future', () => {
    expect(run([tx('R', { reads: { a: v(9) } })], { a: null }).violations.some((x) => /phantom/.test(x))).toBe(true);
    const future = [tx('T1', { reads: { a: v(2) }, writes: [set('b', 1)], zxid: 1 }), tx('T2', { writes: [set('a', 2)], zxid: 2 })];
    expect(run(future, { a: 2, b: 1 }).violations.some((x) => /written later by T2/.test(x))).toBe(true);
  });

  it('flags a commit outside its real-time window (acknowledged before a write it must follow)', () => {
    const h = [
      tx('T0', { writes: [set('a', 1)], zxid: 1, inv: 0, cmp: 5 }),
      tx('T1', { writes: [set('a', 2)], zxid: 2, inv: 100, cmp: 110 }),
      et('E', 'a', 2, 3, { inv: 10, cmp: 20 }), // read T1's value but ended before T1 started
    ];
    expect(run(h, { a: 3 }).violations).not.toEqual([]);
  });

  it('places an unknown-outcome write early when its other write must precede a blind overwrite', () => {
    const h = [
      tx('T0', { writes: [set('a', 1)], zxid: 1, inv: 0, cmp: 5 }),
      tx('U', { writes: [set('b', 9), del('a')], status: 'unknown', inv: 6 }), // its delete is needed
      tx('T1', { writes: [set('b', 2)], zxid: 2, inv: 10, cmp: 15 }),
      tx('E', { reads: { a: null }, writes: [set('a', 3)], zxid: 3, inv: 20, cmp: 25 }),
      tx('R', { reads: { b: v(2) }, writes: [set('c', 4)], zxid: 4, inv: 30, cmp: 35 }),
    ];
    const r = run(h, { a: 3, b: 2, c: 4 });
    expect(r.violations).toEqual([]);
    expect(r.order).toEqual(['T0', 'U', 'T1', 'E', 'R']);
    // but not after its time horizon
    const late = h.map((t) => (t.label === 'U' ? { ...t, until: 8 } : t));
    expect(run(late, { a: 3, b: 2, c: 4 }).violations).toEqual([]);
    const tooLate = h.map((t) => (t.label === 'U' ? { ...t, inv: 16, until: 17 } : t)); // after T1 only
    expect(run(tooLate, { a: 3, b: 2, c: 4 }).violations).not.toEqual([]);
  });

  it('an unknown write read only by an unknown write that was observed applied too', () => {
    const h = [
      tx('T0', { writes: [set('a', 1)], zxid: 1 }),
      et('U1', 'a', null, 2, { status: 'unknown' }), // value form: no read known
      et('U2', 'a', 2, 3, { status: 'unknown' }), // read U1's value
      et('E', 'a', 3, 4, { zxid: 9 }), // read U2's value
    ];
    h[1].reads = {};
    expect(run(h, { a: 4 }).violations).toEqual([]);
  });

  it('at most one attempt of a { id } transaction applies', () => {
    const h = [
      tx('A0', { writes: [set('a', 1)], status: 'unknown', idGroup: 'g' }),
      tx('A1', { writes: [set('b', 2)], status: 'unknown', idGroup: 'g' }),
    ];
    expect(run(h, { a: 1, b: null }).violations).toEqual([]);
    expect(run(h, { a: 1, b: 2 }).violations).not.toEqual([]);
  });
});

describe('stress checker: locks', () => {
  const hold = (label, lockKind, path, token, enter, writes) => ({
    label, lockKind, paths: [path], tokens: [token], enter,
    writes: writes.map(([key, sentAt, status = 'ok']) => ({ key, value: { key }, sentAt, status })),
  });
  const store = (...keys) => Object.fromEntries(keys.map((k) => [k, { key: k }]));

  it('passes disjoint exclusive holders, overlapping readers, semaphore within permits', () => {
    const holds = [
      hold('H1', 'lockExclusive', '/x', 1, 0, [['m1', 10]]),
      hold('H2', 'lockExclusive', '/x', 2, 11, [['m2', 20]]),
      hold('R1', 'lockRead', '/rw', 3, 0, [['r1', 30]]),
      hold('R2', 'lockRead', '/rw', 4, 5, [['r2', 30]]),
      hold('W1', 'lockWrite', '/rw', 5, 31, [['w1', 40]]),
      hold('S1', 'lease', '/s', 6, 0, [['s1', 30]]),
      hold('S2', 'lease', '/s', 7, 5, [['s2', 30]]),
      hold('S3', 'lease', '/s', 8, 31, [['s3', 40]]),
    ];
    const r = checkLocks({ holds, store: store('m1', 'm2', 'r1', 'r2', 'w1', 's1', 's2', 's3'), permits: { '/s': 2 } });
    expect(r.violations).toEqual([]);
  });

  it('flags overlapping exclusive holders, a reader overlapping a writer, too many leases', () => {
    const ex = checkLocks({ holds: [hold('H1', 'lockExclusive', '/x', 1, 0, [['m1', 10]]), hold('H2', 'multiLock', '/x', 2, 5, [['m2', 20]])], store: store('m1', 'm2') });
    expect(ex.violations.some((x) => /exclusion on \/x/.test(x))).toBe(true);
    const rw = checkLocks({ holds: [hold('R', 'lockRead', '/rw', 1, 0, [['m1', 10]]), hold('W', 'lockWrite', '/rw', 2, 5, [['m2', 20]])], store: store('m1', 'm2') });
    expect(rw.violations.some((x) => /exclusion on \/rw/.test(x))).toBe(true);
    const sem = checkLocks({
      holds: [hold('S1', 'lease', '/s', 1, 0, [['a', 30]]), hold('S2', 'lease', '/s', 2, 1, [['b', 30]]), hold('S3', 'lease', '/s', 3, 2, [['c', 30]])],
      store: store('a', 'b', 'c'),
      permits: { '/s': 2 },
    });
    expect(sem.violations.some((x) => /semaphore \/s: 3 leases/.test(x))).toBe(true);
  });

  it('flags lock kinds mixed on one path: a reader beside an exclusive lock, a lease beside any lock', () => {
    const rx = checkLocks({ holds: [hold('X', 'lockExclusive', '/p', 1, 0, [['m1', 10]]), hold('R', 'lockRead', '/p', 2, 5, [['m2', 20]])], store: store('m1', 'm2') });
    expect(rx.violations.some((x) => /exclusion on \/p/.test(x))).toBe(true);
    const sx = checkLocks({ holds: [hold('X', 'lockExclusive', '/p', 1, 0, [['m1', 10]]), hold('S', 'lease', '/p', 2, 5, [['m2', 20]])], store: store('m1', 'm2'), permits: { '/p': 2 } });
    expect(sx.violations.some((x) => /mixed kinds on \/p/.test(x))).toBe(true);
    const sr = checkLocks({ holds: [hold('S', 'lease', '/p', 1, 0, [['m1', 10]]), hold('R', 'lockRead', '/p', 2, 5, [['m2', 20]])], store: store('m1', 'm2'), permits: { '/p': 2 } });
    expect(sr.violations.some((x) => /mixed kinds on \/p/.test(x))).toBe(true);
  });

  it('an unknown fenced write found in the store proves holding; one not found does not', () => {
    const holds = [hold('H1', 'lockExclusive', '/x', 1, 0, [['m1', 10]]), hold('H2', 'lockExclusive', '/x', 2, 5, [['m2', 20, 'unknown']])];
    expect(checkLocks({ holds, store: store('m1', 'm2') }).violations.some((x) => /exclusion/.test(x))).toBe(true);
    expect(checkLocks({ holds, store: store('m1') }).violations).toEqual([]);
  });

  it('flags older tokens after newer ones, refused writes stored, acknowledged writes missing', () => {
    const tokens = checkLocks({ holds: [hold('H1', 'lockExclusive', '/x', 5, 0, [['m1', 10]]), hold('H2', 'lockExclusive', '/x', 3, 11, [['m2', 20]])], store: store('m1', 'm2') });
    expect(tokens.violations.some((x) => /tokens on \/x/.test(x))).toBe(true);
    const refused = checkLocks({ holds: [hold('H1', 'lockExclusive', '/x', 1, 0, [['m1', 10, 'refused']])], store: store('m1') });
    expect(refused.violations.some((x) => /refusal/.test(x))).toBe(true);
    const missing = checkLocks({ holds: [hold('H1', 'lockExclusive', '/x', 1, 0, [['m1', 10]])], store: {} });
    expect(missing.violations.some((x) => /durability/.test(x))).toBe(true);
  });
});

describe('stress checker: read-committed deletes, ZooKeeper and etcd', () => {
  // Seen on etcd (seed 7): T2 read a absent, T1 set a, T2's commit deleted a (a DeleteRange in
  // the commit), E read a absent. ZooKeeper skips the delete of a key read absent; etcd does not.
  const h = () => [
    tx('T1', { writes: [set('a', 1)], zxid: 556, isolation: 'read-committed' }),
    tx('T2', { reads: { a: null }, writes: [del('a')], zxid: 558, isolation: 'read-committed' }),
    et('E', 'a', null, 2, { zxid: 562 }),
  ];
  it('etcd (deleteAtCommit): the delete applies at commit', () => {
    const r = checkSerial({ keys: K, txns: h(), final: { a: v(2) }, deleteAtCommit: true });
    expect(r.violations).toEqual([]);
  });
  it('ZooKeeper: the same history is a violation (the delete of a key read absent is skipped)', () => {
    expect(run(h(), { a: 2 }).violations.some((x) => /read a absent but T1 had set it/.test(x))).toBe(true);
  });
});

describe('stress checker: etcd revisions', () => {
  // An etcd history as run.js builds it: commits carry their revision as zxid, executeTransaction
  // its lock key's create revision (token) and version (= zxid), holds their tokens (create
  // revisions) and the mod revisions of their acknowledged fenced writes.
  const etx = (label, { zxid, inv, cmp, reads = {}, readRevs, writes = [set('a', 1)], kind = 'tx', token, version, status = 'ok' }) => ({
    label, kind, status, zxid, inv, cmp, reads, writes, ...(readRevs ? { readRevs } : {}), ...(token !== undefined ? { token, version } : {}),
  });
  const h = (label, lockKind, path, token, inv, enter, writes) => ({
    label, lockKind, paths: [path], tokens: [token], inv, enter,
    writes: writes.map(([key, version, sentAt, ackAt]) => ({ key, value: { key }, sentAt, ackAt, status: 'ok', version })),
  });
  const valid = () => ({
    txns: [
      etx('T1', { zxid: 10, inv: 0, cmp: 5, writes: [set('a', 1)] }),
      etx('E1', { kind: 'et', token: 11, version: 12, zxid: 12, inv: 6, cmp: 9, reads: { a: v(1) }, writes: [set('a', 2)] }),
      etx('T2', { zxid: 15, inv: 10, cmp: 20, reads: { a: v(2), b: null }, readRevs: { a: 12, b: -1 }, writes: [set('b', 3)] }),
    ],
    holds: [
      h('H1', 'lockExclusive', '/x', 13, 10, 11, [['m1', 14, 12, 13]]),
      h('H2', 'lockExclusive', '/x', 16, 12, 21, [['m2', 17, 22, 23], ['m3', 18, 24, 25]]),
      h('R1', 'lockRead', '/rw', 19, 26, 27, [['r1', 21, 28, 40], ['r1b', 23, 28, 40]]),
      h('R2', 'lockRead', '/rw', 20, 26, 27, [['r2', 22, 28, 40]]), // readers share: interleaved revisions are fine
    ],
  });

  it('passes a valid history', () => {
    const r = checkRevisions(valid());
    expect(r.violations).toEqual([]);
    expect(r.stats.revisions).toBe(14);
    expect(r.stats.readRevisionsChecked).toBe(2);
    expect(r.stats.holdPairsOrdered).toBe(1);
  });

  it('flags two writes at one revision, and revisions against real time', () => {
    const dup = valid();
    dup.holds[1].writes[0].version = 15; // T2's commit revision
    expect(checkRevisions(dup).violations.some((x) => /T2's commit and H2's fenced write m2 both at revision 15/.test(x))).toBe(true);
    const late = valid();
    late.txns[0].zxid = 100; // T1 was acknowledged at 5, before anything else was sent, yet has the largest revision
    expect(checkRevisions(late).violations.some((x) => /^real time: T1's commit was acknowledged \(5\)/.test(x))).toBe(true);
  });

  it('flags a fenced write before its lock key, and executeTransaction reporting other revisions', () => {
    const early = valid();
    early.holds[0].writes[0].version = 12.5; // not a revision
    expect(checkRevisions(early).violations.some((x) => /fenced write m1 reported 12.5/.test(x))).toBe(true);
    const before = valid();
    before.holds[0].tokens = [14];
    before.holds[0].writes[0].version = 13;
    expect(checkRevisions(before).violations.some((x) => /^fence: H1's fenced write m1 applied at revision 13, not after its lock key was created \(token 14\)/.test(x))).toBe(true);
    const et = valid();
    et.txns[1].version = 11;
    expect(checkRevisions(et).violations.some((x) => /E1 \(executeTransaction\) reported version 11 but zxid 12/.test(x))).toBe(true);
    const tok = valid();
    tok.txns[1].token = 13; // = H1's token too
    const found = checkRevisions(tok).violations;
    expect(found.some((x) => /E1 \(executeTransaction\) committed at revision 12, not after its lock key was created \(token 13\)/.test(x))).toBe(true);
    expect(found.some((x) => /both at revision 13/.test(x))).toBe(true);
  });

  it('flags a commit that reports revisions other than its values were written at', () => {
    const wrong = valid();
    wrong.txns[2].readRevs = { a: 10, b: -1 }; // a=2 was written by E1 at 12
    expect(checkRevisions(wrong).violations.some((x) => /T2 read a=\{"n":2,"w":0\}, written at revision 12, but reports mod revision 10/.test(x))).toBe(true);
    const absent = valid();
    absent.txns[2].readRevs = { a: 12, b: 7 };
    expect(checkRevisions(absent).violations.some((x) => /T2 read b absent but reports it read at mod revision 7/.test(x))).toBe(true);
  });

  it('flags exclusive holders whose fenced writes interleave in revisions, whatever the clocks said', () => {
    const inter = valid();
    // H1 (token 13, queued first) writes again at revision 33, after H2 (token 16) wrote at 17 and 18
    inter.holds[0].writes.push({ key: 'm9', value: { key: 'm9' }, sentAt: 41, ackAt: 42, status: 'ok', version: 33 });
    const found = checkRevisions(inter).violations;
    expect(found.filter((x) => !/^exclusion/.test(x))).toEqual([]); // nothing else: the clocks agree
    expect(found.some((x) => /^exclusion by revisions on \/x: H2 .*token 16.* wrote at revisions 17..18, H1 .*token 13.* at 14..33/.test(x))).toBe(true);
    // a reader and a writer on one path are ordered too; two readers are not
    const rw = valid();
    rw.holds[3].lockKind = 'lockWrite';
    expect(checkRevisions(rw).violations.some((x) => /^exclusion by revisions on \/rw: R2 \(lockWrite/.test(x))).toBe(true);
  });
});

describe('stress checker: errors', () => {
  it('flags errors that are not ZktxErrors, undocumented codes, impossible codes, bad outcomes', () => {
    const ok = { label: 'x', what: 'tx', code: 'CONFLICT', outcome: 'not_applied', typed: true };
    expect(checkErrors([ok, { ...ok, code: 'CONNECTIONLOSS', outcome: 'unknown' }]).violations).toEqual([]);
    expect(checkErrors([{ ...ok, typed: false, name: 'TypeError' }]).violations).toHaveLength(1);
    expect(checkErrors([{ ...ok, code: 'ALREADY_APPLIED' }]).violations[0]).toMatch(/undocumented code ALREADY_APPLIED/);
    expect(checkErrors([{ ...ok, code: 'INVALID_ARGUMENT' }]).violations[0]).toMatch(/impossible/);
    expect(checkErrors([{ ...ok, code: 'INTERNAL' }]).violations[0]).toMatch(/impossible/);
    expect(checkErrors([{ ...ok, outcome: undefined }]).violations[0]).toMatch(/outcome/);
  });
});
