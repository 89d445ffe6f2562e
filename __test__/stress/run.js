'use strict';
// One generative stress run: WORKERS worker processes (__test__/workers/stress-worker.js), each
// behind its own TCP proxy, run their seeded operation streams against a dedicated ZooKeeper
// while the parent injects seeded faults; then the history is checked (./checker.js).
//
//   const { runStress } = require('./run');
//   const r = await runStress({ seed: 1, durationMs: 15000, server });   // server: a zktx/testing ZkServer
//   r.violations, r.summary
//
// Faults: partition (reset) and blackhole of a worker's proxy, lost answers (requests reach the
// server, answers are dropped), SIGSTOP/SIGCONT of the server, kill -9 + restart of the server on
// the same data dir, kill -9 of a worker (restarted at its next operation). Workers also close
// their client in the middle of operations and process.exit() with operations pending (op kinds
// close / exit), and are restarted.
//
// On etcd (`backend: 'etcd'`, server: a zktx/testing EtcdMember from startEtcd()) the same
// operation streams and fault kinds run through `new Etcd({ endpoints, timeout })`: the proxies
// stand before the member, serverStop freezes it (SIGSTOP: its lease clock stops with it),
// serverRestart is kill -9 and a restart on its data dir (etcd keeps its leases, and extends them
// on becoming leader again). Lock entries are keys `<lock path>/<name>` (and executeTransaction's
// under `/zktx/locks/kv/<key>/`) on the session's lease, listed with `etcdctl get --prefix
// --keys-only`; the session timeout is the lease TTL. The history gets etcd's own checks too
// (checker.js checkRevisions): every version is a mod revision of one global counter.
const path = require('node:path');
const { execFile } = require('node:child_process');
const { ZooKeeper, Etcd } = require(process.env.ZKTX_STRESS_LIB || '../..');
const { startProxy } = require('../../testing');
const { spawnWorker, sleep, waitFor } = require('../faults/util');
const { faultSchedule, GROUPS, groupKeys, lockPaths } = require('./generator');
const { checkSerial, checkLocks, checkErrors, checkRevisions, revisionEvents, appliedRelativeTo } = require('./checker');

const WORKER = path.join(__dirname, '..', 'workers', 'stress-worker.js');
const LANES = 2;

function clientAt(connect, options) {
  const saved = process.env.ZK_CONNECT;
  process.env.ZK_CONNECT = connect;
  try {
    return new ZooKeeper({ connect, ...options });
  } finally {
    if (saved === undefined) delete process.env.ZK_CONNECT;
    else process.env.ZK_CONNECT = saved;
  }
}

/** `etcdctl` (API v3) on `endpoint`, asynchronously (a frozen member must not block the run); its stdout. */
function etcdctlAsync(endpoint, ...args) {
  return new Promise((resolve, reject) => {
    execFile('etcdctl', ['--endpoints', endpoint, '--command-timeout=4s', ...args], { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8', timeout: 8000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`etcdctl ${args.join(' ')}: ${String(stderr || err.message).trim().slice(0, 300)}`));
      else resolve(stdout);
    });
  });
}

/**
 * The backend's seams: the worker's environment, the checking client, the listing of lock
 * entries, and how long a session outlives its client (ZooKeeper's session timeout; etcd's lease
 * TTL: `timeout` rounded up to whole seconds, at least 2 s, plus the election timeout a restarted
 * member adds when it leads again and its 500 ms expiry check).
 */
function backendOf(backend, server, run, sessionMs) {
  const paths = lockPaths(run);
  const dirs = [...paths.ex, paths.rw, paths.sem];
  if (backend === 'etcd') {
    const ttl = Math.max(2000, Math.ceil(sessionMs / 1000) * 1000);
    const electionMs = server.electionTimeout || 1000;
    return {
      env: (proxy) => ({ BACKEND: 'etcd', ETCD_ENDPOINTS: proxy.connect, ETCD_DIRECT: server.connect }),
      client: () => new Etcd({ endpoints: server.connect, timeout: sessionMs, debug_level: 0 }),
      // the run's lock keys, and executeTransaction's lock keys of the run's keys
      listNodes: async () => {
        const out = [];
        for (const p of [...dirs.map((d) => `${d}/`), `/zktx/locks/kv/${run}-`]) out.push(...(await etcdctlAsync(server.connect, 'get', '--prefix', '--keys-only', p)).split('\n').filter(Boolean));
        return out;
      },
      outlivesMs: ttl + electionMs + 1000,
      revisions: true,
    };
  }
  return {
    env: (proxy) => ({ ZK_CONNECT: proxy.connect }),
    client: () => clientAt(server.connect, { timeout: sessionMs, debug_level: 0 }),
    listNodes: async (check) => {
      const out = [];
      for (const d of dirs) for (const c of await check.children(d)) out.push(`${d}/${c}`);
      return out;
    },
    outlivesMs: 1.5 * sessionMs + 500,
    revisions: false,
  };
}

/**
 * @param {object} o
 * @param {number} o.seed
 * @param {number} [o.durationMs] how long faults are injected
 * @param {object} o.server a ZkServer of zktx/testing, or an EtcdMember with backend 'etcd'
 *   (killed, stopped and restarted here)
 * @param {'zookeeper'|'etcd'} [o.backend]
 * @param {number} [o.workers]
 * @param {number} [o.sessionMs]
 * @param {(line: string) => void} [o.log]
 */
async function runStress({ seed, durationMs = 15000, server, backend = 'zookeeper', workers = 3, sessionMs = 2000, faultWeights, log = () => {} }) {
  const t0 = Date.now();
  const run = `s${seed}-${process.pid}-${Date.now().toString(36)}`;
  const be = backendOf(backend, server, run, sessionMs);
  const proxies = [];
  for (let w = 0; w < workers; w++) proxies.push(await startProxy(server.connect));
  const incs = []; // every incarnation: { slot, n, worker, killed }
  const current = [];
  let stopping = false;
  const violations = [];
  const crashes = [];

  const nextStart = (slot) => {
    const start = Array(LANES).fill(0);
    for (const inc of incs.filter((x) => x.slot === slot)) {
      for (const l of inc.worker.lines) if (l.ev === 'inv') start[l.lane] = Math.max(start[l.lane], l.i + 1);
    }
    return start;
  };
  const spawnSlot = (slot) => {
    const n = incs.filter((x) => x.slot === slot).length;
    const worker = spawnWorker(WORKER, [], {
      env: { ...be.env(proxies[slot]), RUN: run, SEED: String(seed), WORKER: String(slot), INC: String(n), START: JSON.stringify(nextStart(slot)), SESSION_MS: String(sessionMs) },
    });
    const inc = { slot, n, worker, killed: false };
    incs.push(inc);
    current[slot] = inc;
    worker.child.on('exit', (code, signal) => {
      inc.exitedAt = Date.now();
      const clean = code === 0 || inc.killed;
      if (!clean) crashes.push(`worker w${slot}.${n} died (${signal || code}): ${worker.stderr.slice(-500)}`);
      // exit ops and kills end a worker; a new incarnation resumes its operation streams
      if (!stopping && current[slot] === inc) setTimeout(() => { if (!stopping && current[slot] === inc) spawnSlot(slot); }, 20);
    });
    return inc;
  };
  for (let w = 0; w < workers; w++) spawnSlot(w);

  // Faults.
  const faults = {};
  const schedule = faultSchedule(seed, { workers, sessionMs, weights: faultWeights });
  const faultLog = [];
  const faultSpans = []; // { worker (undefined: all), from, to }: close() is only judged outside them
  let serverStopped = false;
  await sleep(schedule.firstDelay);
  while (Date.now() - t0 < durationMs) {
    const f = schedule.next();
    const at = Date.now() - t0;
    faults[f.kind] = (faults[f.kind] || 0) + 1;
    faultLog.push(`${at} ${f.kind}${f.ms ? ` ${f.ms}ms` : ''}${['partition', 'blackhole', 'lostAnswers', 'killWorker'].includes(f.kind) ? ` w${f.worker}` : ''}`);
    const from = Date.now();
    if (f.kind === 'partition' || f.kind === 'blackhole' || f.kind === 'lostAnswers') {
      proxies[f.worker].partition({ mode: { partition: 'reset', blackhole: 'blackhole', lostAnswers: 'responses' }[f.kind] });
      await sleep(f.ms);
      proxies[f.worker].heal();
      faultSpans.push({ worker: f.worker, from, to: Date.now() });
    } else if (f.kind === 'serverStop') {
      serverStopped = true;
      server.kill('SIGSTOP');
      await sleep(f.ms);
      server.kill('SIGCONT');
      serverStopped = false;
      faultSpans.push({ from, to: Date.now() });
    } else if (f.kind === 'serverRestart') {
      server.kill('SIGKILL');
      await waitFor(() => !server.isRunning(), { what: 'the server to die' });
      await server.restart();
      faultSpans.push({ from, to: Date.now() });
    } else if (f.kind === 'killWorker') {
      const inc = current[f.worker];
      inc.killed = true;
      inc.worker.kill('SIGKILL');
      await inc.worker.waitExit().catch(() => {});
    }
    await sleep(f.gapMs);
  }
  if (serverStopped) server.kill('SIGCONT');
  for (const p of proxies) p.heal();

  // Let every live worker finish an operation after the last fault, then stop them all.
  const okCount = () => incs.reduce((n, x) => n + x.worker.lines.filter((l) => l.ev === 'ok').length, 0);
  const before = okCount();
  await waitFor(() => okCount() > before + workers, { timeoutMs: 15000, what: 'progress after the last fault' }).catch((e) => violations.push(`liveness: ${e.message}`));
  stopping = true;
  const stopT = Date.now();
  for (const inc of current) inc.worker.send('stop');
  const hung = [];
  await Promise.all(current.map(async (inc) => {
    try {
      await inc.worker.next((l) => l.ev === 'idle', 20000);
    } catch {
      if (!inc.worker.exited) hung.push(inc);
    }
  }));
  for (const inc of hung) {
    const open = openOps(inc);
    violations.push(`hang: worker w${inc.slot}.${inc.n} did not finish its operations within 20 s of "stop"; pending: ${open.map((o) => `l${o.lane} #${o.i} ${o.inner ? `${o.kind}(${o.inner})` : o.kind} for ${((Date.now() - o.t) / 1000).toFixed(1)} s`).join('; ') || 'none'}`);
  }

  // Every worker is idle (no operation, no lock held) and every dead incarnation's session has
  // expired: a lock node now is a ghost, e.g. of a release that failed while the session lived.
  const paths = lockPaths(run);
  const check = be.client();
  const listNodes = () => be.listNodes(check);
  // Sessions that may still be live on the server: those of dead incarnations, those a client
  // gave up (it declares a session expired 7/5 of a timeout after losing the connection; the
  // server, if it was stopped meanwhile, expires it later), and all of them after a server
  // restart (which gives every restored session a fresh timeout; etcd: every lease).
  const lastDeath = Math.max(0, ...incs.filter((x) => !current.includes(x) || x.worker.exited).map((x) => x.exitedAt || 0));
  const lastGivenUp = Math.max(0, ...incs.flatMap((x) => x.worker.lines.filter((l) => l.ev === 'state' && l.s === 'EXPIRED').map((l) => l.t)));
  const lastServerFault = Math.max(0, ...faultSpans.filter((f) => f.worker === undefined).map((f) => f.to));
  await sleep(Math.max(0, Math.max(lastDeath, lastGivenUp, lastServerFault) + be.outlivesMs - Date.now()));
  try {
    const ghosts = await listNodes();
    if (ghosts.length && hung.length === 0) {
      const lines = incs.flatMap((x) => x.worker.lines.map((l) => ({ ...l, who: `w${x.slot}.${x.n}` })));
      for (const g of ghosts) {
        const acq = lines.find((l) => l.ev === 'acq' && (l.nodes || []).includes(g));
        const rel = acq && lines.find((l) => l.ev === 'rel' && l.who === acq.who && l.lane === acq.lane && l.i === acq.i);
        violations.push(
          `lock node left: ${g} exists while every worker is idle (no operation in progress, no lock held) and every dead worker's session has expired` +
            (acq ? `; acquired by ${acq.who}/l${acq.lane}#${acq.i} (${acq.lockKind})${rel ? `, release ${rel.ok ? 'succeeded' : `failed with ${rel.code}: ${rel.message}`}` : ', never released'}` : '; never reported acquired (a contender\'s node)')
        );
      }
    }
  } catch (err) {
    violations.push(`harness: could not list lock nodes: ${err.message}`);
  }
  for (const inc of current) inc.worker.send('close');
  await Promise.all(current.map(async (inc) => {
    try {
      await inc.worker.waitExit(10000);
    } catch {
      violations.push(`hang: worker w${inc.slot}.${inc.n} did not exit within 10 s of "close" (zk.close() hung?)`);
      inc.killed = true;
      inc.worker.kill('SIGKILL');
      await inc.worker.waitExit().catch(() => {});
    }
  }));
  // Any incarnation still starting (spawned by an exit just before the stop) is ended too.
  for (const inc of incs) if (!inc.worker.exited) { inc.killed = true; inc.worker.kill('SIGKILL'); await inc.worker.waitExit().catch(() => {}); }
  violations.push(...crashes);
  await Promise.all(proxies.map((p) => p.close()));

  // History.
  const h = buildHistory(incs, run, sessionMs, backend);
  h.backend = backend;
  h.closeChecks = checkCloses(incs, faultSpans, sessionMs, violations, be.revisions ? revisionEvents(h) : null);
  for (const inc of incs) {
    for (const l of inc.worker.lines) {
      if (l.ev === 'ghost' && l.present && l.present.length) {
        const rel = inc.worker.lines.find((x) => x.ev === 'rel' && x.lane === l.lane && x.i === l.i);
        // not judged when the session may have been given up by the client while the server lived on
        const from = (rel ? rel.t : l.t) - sessionMs;
        if (faultSpans.some((f) => (f.worker === undefined || f.worker === inc.slot) && f.from <= l.t && f.to >= from)) continue;
        if (inc.worker.lines.some((x) => x.ev === 'state' && x.s === 'EXPIRED' && x.t >= from && x.t <= l.t)) continue;
        violations.push(`lock node left: w${inc.slot}.${inc.n}/l${l.lane}#${l.i}'s release failed (${rel && rel.code}: ${rel && rel.message}) and ${l.afterMs} ms later its node ${l.present.join(', ')} still exists: a live session holds the lock for nobody`);
      }
    }
  }
  const histories = [];
  const serialStats = [];
  const finals = {};
  const store = {};
  let lockStats;
  try {
    for (let g = 0; g < GROUPS.length; g++) {
      const keys = groupKeys(run, g);
      const final = {};
      for (const k of keys) final[k] = await check.get(k);
      finals[g] = final;
      const r = checkSerial({ keys, txns: h.txns.filter((t) => t.group === g), final, deleteAtCommit: backend === 'etcd' });
      histories.push(`group ${g}`);
      serialStats.push(r.stats);
      for (const v of r.violations) violations.push(`group ${g}: ${v}`);
      if (r.stats.undetermined) log(`group ${g}: search budget exhausted after ${r.stats.searchSteps} steps: serial order undetermined`);
    }
    for (const hold of h.holds) for (const w of hold.writes) store[w.key] = await check.get(w.key);
    const lr = checkLocks({ holds: h.holds, store, permits: semaphorePermits(paths) });
    histories.push('locks');
    lockStats = lr.stats;
    violations.push(...lr.violations);
    if (be.revisions) {
      const rr = checkRevisions({ txns: h.txns, holds: h.holds });
      violations.push(...rr.violations);
      h.revisionStats = rr.stats;
    }
    const er = checkErrors(h.errors);
    violations.push(...er.violations);
    h.errorCodes = er.byCode;
    // Every process closed its client: no lock node may be left.
    try {
      await waitFor(async () => (await listNodes()).length === 0, { timeoutMs: sessionMs + 2000, everyMs: 200, what: 'lock nodes to go' });
    } catch {
      for (const n of await listNodes()) violations.push(`lock node left: ${n} still exists ${(sessionMs + 2000) / 1000} s after every worker closed its client and exited`);
    }
  } finally {
    await check.close().catch(() => {});
  }

  const opsByKind = {};
  for (const inc of incs) for (const l of inc.worker.lines) if (l.ev === 'inv') opsByKind[l.inner ? `${l.kind}(${l.inner})` : l.kind] = (opsByKind[l.inner ? `${l.kind}(${l.inner})` : l.kind] || 0) + 1;
  const sum = (k) => serialStats.reduce((n, s) => n + (s[k] || 0), 0);
  const summary = {
    seed,
    wallMs: Date.now() - t0,
    ops: Object.values(opsByKind).reduce((a, b) => a + b, 0),
    opsByKind,
    outcomes: h.outcomes,
    errors: h.errorCodes,
    faults,
    incarnations: incs.length,
    histories: histories.length,
    serial: {
      committedWriters: sum('committedWriters'),
      orderedByZxid: sum('anchored'),
      placedBySearch: sum('unanchoredCommitted'),
      unknown: sum('unknown'),
      unknownApplied: sum('unknownApplied'),
      refused: sum('refused'),
      readOnly: sum('readOnly'),
      searchSteps: sum('searchSteps'),
      undetermined: serialStats.filter((s) => s.undetermined).length,
    },
    backend,
    locks: lockStats,
    ...(h.revisionStats ? { revisions: h.revisionStats } : {}),
    closes: h.closeChecks,
    violations: violations.length,
  };
  return { seed, run, backend, violations, summary, faultLog, finals, store, lines: incs.map((x) => ({ slot: x.slot, n: x.n, killed: x.killed, lines: x.worker.lines })) };
}

/**
 * close() must close: once it resolved, no operation of that client may succeed (acquire a lock,
 * apply a fenced write, commit), and the client's lock nodes must be gone. Judged only for
 * closes with no fault on the worker's line (a server that cannot hear the close is another story).
 *
 * On etcd (`events`: revisionEvents of the history) a commit or fenced write sent before the
 * close is a request of its own beside the lease revoke, and its answer may be delivered after
 * close() resolved although it applied before: what counts is when it applied, told by
 * revisions (appliedRelativeTo). Applied after: a violation; before, or not decidable from the
 * history: counted (lateAnswers), not judged. On ZooKeeper answers come in session order.
 */
function checkCloses(incs, spans, sessionMs, violations, events = null) {
  const stats = { closes: 0, judged: 0, ...(events ? { lateAnswers: 0, lateAnswersAppliedBefore: 0 } : {}) };
  for (const inc of incs) {
    const lines = inc.worker.lines;
    const gens = new Map(); // lane/i -> client generation of the op
    const closeOps = new Set(lines.filter((l) => l.ev === 'inv' && l.kind === 'close').map((l) => `${l.lane}/${l.i}`));
    for (const l of lines) if (l.ev === 'ok' && closeOps.has(`${l.lane}/${l.i}`)) l.closeOp = true;
    lines.forEach((l, idx) => {
      if (l.ev === 'inv') gens.set(`${l.lane}/${l.i}`, l.gen);
      if (l.ev !== 'closed') return;
      stats.closes += 1;
      const closing = lines.find((x) => x.ev === 'closing' && x.lane === l.lane && x.i === l.i);
      const from = (closing ? closing.t : l.t) - sessionMs;
      const faulty = spans.some((s) => (s.worker === undefined || s.worker === inc.slot) && s.from <= l.t + 200 && s.to >= from);
      if (faulty) return;
      stats.judged += 1;
      const who = `w${inc.slot}.${inc.n}`;
      for (const x of lines.slice(idx + 1)) {
        if (gens.get(`${x.lane}/${x.i}`) !== l.gen) continue;
        // (the 'ok' of a close op itself follows its close() by construction: its 'innerok' counts)
        const commit = (x.ev === 'ok' && !x.closeOp) || x.ev === 'innerok';
        let what = x.ev === 'acq' ? `acquired ${x.paths.join(',')}` : x.ev === 'wrote' && x.ok ? `applied fenced write ${x.key}` : commit && x.zxid !== undefined ? `committed at zxid ${x.zxid}` : null;
        const rev = x.ev === 'wrote' && x.ok ? x.version : commit ? x.zxid : undefined;
        if (what && events && Number.isInteger(rev)) {
          const when = appliedRelativeTo(events, rev, l.t);
          if (when !== 'after') {
            stats.lateAnswers += 1;
            if (when === 'before') stats.lateAnswersAppliedBefore += 1;
            what = null;
          } else {
            what += ` (revision ${rev}: after a write sent after the close resolved)`;
          }
        }
        const earlier = lines.slice(0, idx).filter((y) => y.ev === 'closing' && gens.get(`${y.lane}/${y.i}`) === l.gen && !(y.lane === l.lane && y.i === l.i));
        const note = earlier.length ? `; another close() of that client began ${l.t - earlier[0].t} ms before it` : '';
        if (what) violations.push(`close: ${who}/l${x.lane}#${x.i} ${what} ${x.t - l.t} ms after close() of its client resolved (${who}/l${l.lane}#${l.i}, no fault at the time${note})`);
      }
      const after = lines.find((x) => x.ev === 'afterclose' && x.lane === l.lane && x.i === l.i);
      if (after && after.left && after.left.length) violations.push(`close: lock node(s) ${after.left.join(', ')} of ${who}'s client still exist after its close() resolved (${who}/l${l.lane}#${l.i}, no fault at the time)`);
    });
  }
  return stats;
}

/** Operations of an incarnation that started and never ended. */
function openOps(inc) {
  const open = new Map();
  for (const l of inc.worker.lines) {
    if (l.ev === 'inv') open.set(`${l.lane}/${l.i}`, l);
    if (l.ev === 'ok' || l.ev === 'err') open.delete(`${l.lane}/${l.i}`);
  }
  return [...open.values()];
}

/**
 * Turns the workers' lines into the checkers' inputs.
 *
 * On etcd a commit that only deletes (no ticket) may change nothing (its keys absent): etcd then
 * makes no revision for it, and the zxid zktx reports is the store's revision at the time, which
 * is another write's. Such a commit is not anchored at that revision (on ZooKeeper it has no
 * zxid at all): its report is kept as `seenRev` and it is placed by search, as on ZooKeeper.
 */
function buildHistory(incs, run, sessionMs = 2000, backend = 'zookeeper') {
  // An unknown outcome applies while its request can still reach the server: before its session
  // ends or the connection it went out on is replaced; generously, 3 session timeouts after the
  // error (or the process's last line).
  const horizon = 3 * sessionMs;
  const txns = [];
  const holds = [];
  const errors = [];
  const outcomes = {};
  for (const inc of incs) {
    const ops = new Map();
    const opOf = (l) => ops.get(`${l.lane}/${l.i}`);
    for (const l of inc.worker.lines) {
      if (l.ev === 'inv') ops.set(`${l.lane}/${l.i}`, { inv: l, atts: [], sends: [], wrotes: [], label: `w${inc.slot}.${inc.n}/l${l.lane}#${l.i}` });
      const op = l.lane !== undefined && l.i !== undefined ? opOf(l) : null;
      if (!op) continue;
      if (l.ev === 'att') op.atts.push(l);
      if (l.ev === 'upd') op.upd = l;
      if (l.ev === 'etv') op.etv = l;
      if (l.ev === 'acq') op.acq = l;
      if (l.ev === 'send') op.sends.push(l);
      if (l.ev === 'wrote') op.wrotes.push(l);
      if (l.ev === 'rel') op.rel = l;
      if (l.ev === 'ok' || l.ev === 'err') op.end = l;
      if (l.ev === 'closed' && !l.ok) errors.push({ label: op.label, what: 'close', ...l });
    }
    const died = inc.killed ? 'killed' : 'exited';
    const lastSeen = inc.worker.lines.length ? inc.worker.lines[inc.worker.lines.length - 1].t : 0;
    for (const op of ops.values()) {
      const kind = op.inv.inner || op.inv.kind;
      const end = op.end;
      const outcome = end ? (end.ev === 'ok' ? 'ok' : end.code) : `(${died})`;
      outcomes[`${kind}:${outcome}`] = (outcomes[`${kind}:${outcome}`] || 0) + 1;
      if (end && end.ev === 'err') errors.push({ label: op.label, what: kind, ...end });
      for (const w of op.wrotes) if (!w.ok) errors.push({ label: op.label, what: `${kind} fenced set`, ...w });
      if (op.rel && !op.rel.ok) errors.push({ label: op.label, what: `${kind} release`, ...op.rel });
      const inv = op.inv.t;
      const cmp = end ? end.t : undefined;
      const until = (end ? end.t : lastSeen) + horizon;
      if (kind === 'tx') {
        const attempts = op.atts;
        if (attempts.length === 0) continue;
        const group = op.inv.group;
        const idTx = op.inv.withId === true;
        const isolation = op.inv.isolation;
        const last = attempts[attempts.length - 1];
        const finalApplied = end && end.ev === 'ok' && !end.alreadyApplied;
        for (const a of attempts) {
          let status;
          let zxid;
          // Without an id only a CONFLICT is retried: an earlier attempt was refused. With one, an
          // earlier attempt may be the one that applied (its commit's outcome unknown), unless the
          // last attempt applied (its marker was new).
          if (a !== last) status = idTx && !finalApplied ? 'unknown' : 'refused';
          else if (!end) status = 'unknown';
          else if (end.ev === 'ok') {
            status = end.alreadyApplied ? 'refused' : 'ok';
            zxid = end.zxid ?? undefined;
          } else if (end.a !== undefined && (end.a !== a.a || end.fnDone === false)) status = idTx ? 'unknown' : 'refused'; // failed in a later attempt's function
          else status = end.outcome === 'unknown' ? 'unknown' : 'refused';
          txns.push({
            label: `${op.label}.a${a.a}`, kind: 'tx', group, isolation,
            status, zxid, inv, cmp: status === 'ok' ? cmp : undefined, until, reads: a.reads, writes: a.writes, idGroup: idTx ? op.label : undefined,
            // the versions the commit read (etcd: mod revisions), for checkRevisions
            ...(status === 'ok' && end.readRevs ? { readRevs: end.readRevs } : {}),
            ticket: a.ticket,
          });
          const t = txns[txns.length - 1];
          if (backend === 'etcd' && t.zxid !== undefined && !t.ticket && t.writes.every((w) => w.kind === 'delete')) {
            t.seenRev = t.zxid;
            t.zxid = undefined;
          }
        }
      } else if (kind === 'etValue' || kind === 'etUpdater') {
        if (!op.etv) continue;
        const { key, value } = op.etv;
        let status;
        let reads = {};
        let zxid;
        let token;
        let version;
        if (end && end.ev === 'ok') {
          status = 'ok';
          reads = { [key]: end.previous };
          zxid = typeof end.zxid === 'number' ? end.zxid : undefined;
          ({ token, version } = end);
        } else {
          status = end && end.outcome !== 'unknown' ? 'refused' : 'unknown';
          if (op.upd) reads = { [key]: op.upd.cur };
        }
        const group = Number(/-g(\d+)-k\d+$/.exec(key)[1]);
        txns.push({ label: op.label, kind: 'et', group, status, zxid, token, version, inv, cmp: status === 'ok' ? cmp : undefined, until, reads, writes: [{ kind: 'set', key, value }] });
      } else if (op.acq) {
        holds.push({
          label: op.label, lockKind: op.acq.lockKind, paths: op.acq.paths, tokens: op.acq.tokens, inv, enter: op.acq.t,
          writes: op.sends.map((s) => {
            const w = op.wrotes.find((x) => x.j === s.j);
            return {
              key: s.key, value: s.value, sentAt: s.t, status: !w ? 'unknown' : w.ok ? 'ok' : w.outcome === 'unknown' ? 'unknown' : 'refused', code: w && w.code,
              ...(w && w.ok ? { version: w.version, ackAt: w.t } : {}), // etcd: the write's mod revision
            };
          }),
        });
      }
    }
  }
  return { txns, holds, errors, outcomes, run };
}

/** Checks a dumped run again (npm run stress -- --dump FILE writes one) with the current checker. */
function recheck(dump) {
  const incs = dump.lines.map((x) => ({ slot: x.slot, n: x.n, killed: x.killed, worker: { lines: x.lines } }));
  const h = buildHistory(incs, dump.run, 2000, dump.backend);
  const violations = [];
  const stats = [];
  for (let g = 0; g < GROUPS.length; g++) {
    const r = checkSerial({ keys: groupKeys(dump.run, g), txns: h.txns.filter((t) => t.group === g), final: dump.finals[g], deleteAtCommit: dump.backend === 'etcd' });
    stats.push(r.stats);
    for (const v of r.violations) violations.push(`group ${g}: ${v}`);
  }
  const paths = lockPaths(dump.run);
  violations.push(...checkLocks({ holds: h.holds, store: dump.store, permits: semaphorePermits(paths) }).violations);
  violations.push(...checkErrors(h.errors).violations);
  if (dump.backend === 'etcd') violations.push(...checkRevisions({ txns: h.txns, holds: h.holds }).violations);
  return { violations, stats, history: h };
}

/**
 * Permits per path for the checker. Every semaphore op passes `paths.permits`, on its own path or,
 * when the generator mixed kinds (`op.on`), on another kind's path: two leases on `rw` are legal.
 */
function semaphorePermits(paths) {
  return Object.fromEntries([paths.sem, paths.rw, ...paths.ex].map((p) => [p, paths.permits]));
}

module.exports = { runStress, buildHistory, recheck, checkCloses };
