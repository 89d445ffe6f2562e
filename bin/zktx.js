#!/usr/bin/env node
'use strict';
// zktx, the operator's command line: who holds a lock and who waits, the store's keys, the
// coordinators' transactions in doubt, and the store's maintenance (pruning transaction ids,
// compacting tombstones). Read-only except `prune-ids` and `compact`. See README ("The zktx
// command") for the exit codes.
//
// Arguments are parsed by commander: the most used Node CLI parser, no dependencies of its own,
// subcommand help and usage errors for free (it is bundled in the package: see package.json).

const fs = require('node:fs');
const { Command, Option, InvalidArgumentError, CommanderError } = require('commander');
const { ZooKeeper, ZktxError } = require('..');
const pkg = require('../package.json');

/** Exit codes, as README documents them. */
const EXIT = { OK: 0, ERROR: 1, USAGE: 2, NOT_FOUND: 3 };

/** zktx's tree (kv.rs's Layout under the default root; the coordinator's in coordinator.rs). */
const ROOT = '/zktx';
const VALUES = `${ROOT}/kv`;
const COORDINATORS = `${ROOT}/coordinators`;
/** A lock contender's node name (driver.rs): `_c_<id>-<kind>-<10+ digit sequence>`. */
const CONTENDER = /^_c_(.+)-([a-z]+)-(\d{10,})$/;

/** Keys and coordinator names are percent-encoded into znode names (kv.rs encode_key). */
const encodeName = (name) => name.replace(/[^A-Za-z0-9_-]/gu, (c) => [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
const decodeName = (name) => {
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
};

function milliseconds(text) {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError(`expected a whole number of milliseconds, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** The ZooKeeper constructor's options from the global flags. */
function clientOptions(opts) {
  const options = { timeout: opts.sessionTimeout, connectTimeout: opts.connectTimeout, debug_level: 0 };
  if (opts.connect !== undefined) options.connect = opts.connect; // else ZK_CONNECT, else localhost:2181
  // ZKTX_CONNECT_OVERRIDE is for code that hardcodes its connect string (the tutorial); an
  // operator's command names its ensemble with --connect or ZK_CONNECT, and a variable left
  // exported in the shell must not send prune-ids or compact to another ensemble.
  delete process.env.ZKTX_CONNECT_OVERRIDE;
  if (opts.auth.length) {
    options.auth = opts.auth.map((a) => {
      const i = a.indexOf(':');
      if (i <= 0) throw new ZktxError('INVALID_ARGUMENT', `--auth must be scheme:credentials (digest:user:password), got ${JSON.stringify(a)}`);
      return { scheme: a.slice(0, i), credentials: a.slice(i + 1) };
    });
  }
  if (opts.sasl !== undefined) {
    const i = opts.sasl.indexOf(':');
    if (i <= 0) throw new ZktxError('INVALID_ARGUMENT', '--sasl must be user:password (DIGEST-MD5)');
    options.sasl = { mechanism: 'DIGEST-MD5', username: opts.sasl.slice(0, i), password: opts.sasl.slice(i + 1) };
  }
  if (opts.tlsCa !== undefined) {
    const read = (file, flag) => {
      try {
        return fs.readFileSync(file, 'utf8');
      } catch (err) {
        throw new ZktxError('INVALID_ARGUMENT', `${flag} ${file}: ${err.message}`, 'not_applied', { cause: err });
      }
    };
    options.tls = { ca: read(opts.tlsCa, '--tls-ca'), rejectUnauthorized: opts.tlsVerifyHostname };
    if (opts.tlsCert !== undefined) options.tls.cert = read(opts.tlsCert, '--tls-cert');
    if (opts.tlsKey !== undefined) options.tls.key = read(opts.tlsKey, '--tls-key');
  } else if (opts.tlsCert !== undefined || opts.tlsKey !== undefined) {
    throw new ZktxError('INVALID_ARGUMENT', '--tls-cert and --tls-key need --tls-ca');
  }
  return options;
}

const iso = (ms) => new Date(ms).toISOString();
function ago(ms) {
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 120) return `${s.toFixed(1)} s ago`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

/** A command's action: connect, run, print, close; errors become exit codes. */
function action(program, run) {
  return async (...args) => {
    const command = args[args.length - 1];
    const opts = command.optsWithGlobals();
    let zk;
    try {
      zk = new ZooKeeper(clientOptions(opts));
      const { result, text, exit = EXIT.OK } = await run(zk, ...args.slice(0, -2), opts);
      process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : text);
      process.exitCode = exit;
    } catch (err) {
      fail(err, opts);
    } finally {
      if (zk) await zk.close().catch(() => {});
    }
  };
}

function fail(err, opts) {
  const code = err && err.code ? err.code : 'INTERNAL';
  const cause = err && err.cause && err.cause.code ? { code: err.cause.code, message: err.cause.message } : undefined;
  if (opts && opts.json) process.stderr.write(`${JSON.stringify({ error: { code, message: err.message, cause } })}\n`);
  else process.stderr.write(`zktx: ${code}: ${err && err.message}${cause ? ` (cause: ${cause.code})` : ''}\n`);
  process.exitCode = code === 'INVALID_ARGUMENT' ? EXIT.USAGE : EXIT.ERROR;
}

/** The queue at a lock path: contenders in order, holders first (the drivers' rules, driver.rs). */
async function lockQueue(zk, path, permits) {
  const names = await zk.children(path);
  const contenders = names.map((name) => CONTENDER.exec(name)).filter(Boolean)
    .map((m) => ({ node: `${path === '/' ? '' : path}/${m[0]}`, kind: m[2], sequence: Number(m[3]) }))
    .sort((a, b) => a.sequence - b.sequence);
  const queue = [];
  let exclusiveAhead = false;
  let leases = 0;
  for (const c of contenders) {
    let holds;
    if (c.kind === 'lease') holds = permits === undefined ? null : leases++ < permits; // unknown without --permits
    else if (c.kind === 'read') holds = !exclusiveAhead;
    else holds = queue.length === 0;
    if (c.kind !== 'read' && c.kind !== 'lease') exclusiveAhead = true;
    const stat = await zk._znode(c.node);
    if (stat === null) continue; // left meanwhile
    queue.push({ ...c, holds, session: stat.ephemeralOwner, since: iso(stat.ctime), sinceMs: stat.ctime });
  }
  return queue;
}

async function locks(zk, path, opts) {
  const queue = await lockQueue(zk, path, opts.permits);
  const holders = queue.filter((c) => c.holds === true);
  const waiters = queue.filter((c) => c.holds === false);
  const undecided = queue.filter((c) => c.holds === null);
  const strip = ({ sinceMs, holds, ...c }) => c;
  const result = { path, free: queue.length === 0, holders: holders.map(strip), waiters: waiters.map((c, i) => ({ position: i + 1, ...strip(c) })) };
  if (undecided.length) result.leases = undecided.map(strip);
  const line = (label, c) => `${label.padEnd(8)} ${c.node}\n         session ${c.session}, ${c.kind}, queued since ${c.since} (${ago(c.sinceMs)})\n`;
  let text = `${path}: `;
  if (queue.length === 0) text += 'free (no holder, no waiter)\n';
  else {
    text += `${holders.length} holder(s), ${waiters.length} waiting${undecided.length ? `, ${undecided.length} semaphore lease(s) (pass --permits to tell holders from waiters)` : ''}\n`;
    for (const c of holders) text += line('HOLDER', c);
    waiters.forEach((c, i) => { text += line(`WAIT ${i + 1}`, c); });
    for (const c of undecided) text += line('LEASE', c);
  }
  return { result, text };
}

async function keys(zk, prefix, opts) {
  const names = (await zk.children(VALUES)).map(decodeName).filter((k) => prefix === undefined || k.startsWith(prefix)).sort();
  const entries = [];
  for (const key of names) {
    const value = await zk.get(key);
    if (value !== undefined) entries.push({ key, value }); // a deleted key's tombstone is no key
  }
  const text = entries.length === 0 ? `no keys${prefix === undefined ? '' : ` starting with ${JSON.stringify(prefix)}`}\n`
    : entries.map((e) => `${e.key}\t${JSON.stringify(e.value)}\n`).join('');
  return { result: opts.values === false ? entries.map((e) => e.key) : entries, text: opts.values === false ? entries.map((e) => `${e.key}\n`).join('') : text };
}

async function get(zk, key) {
  const value = await zk.get(key);
  if (value === undefined) return { result: null, text: `no key ${JSON.stringify(key)}\n`, exit: EXIT.NOT_FOUND };
  return { result: value, text: `${JSON.stringify(value, null, 2)}\n` };
}

async function inDoubt(zk, name, opts) {
  const base = `${COORDINATORS}/${encodeName(name)}`;
  if (await zk._znode(base) === null) {
    return { result: { coordinator: name, exists: false, transactions: [] }, text: `no coordinator ${JSON.stringify(name)} (nothing under ${base})\n`, exit: EXIT.NOT_FOUND };
  }
  const transactions = [];
  const read = async (dir, txid) => {
    const node = await zk._znode(`${base}/${dir}/${txid}`);
    if (node === null) return null;
    let record = null;
    try {
      record = node.data === '' ? null : JSON.parse(node.data);
    } catch {
      record = { unreadable: node.data };
    }
    return { node, record };
  };
  // A saga's begin creates active/<txid> (its runner's liveness) with sagas/<txid> in one multi:
  // listed after active/, sagas/ names every saga among them, listed once below, as a saga.
  const active = await zk.children(`${base}/active`);
  const sagas = await zk.children(`${base}/sagas`);
  const isSaga = new Set(sagas);
  for (const txid of active) {
    if (isSaga.has(txid)) continue;
    const r = await read('active', txid);
    if (r) transactions.push({ txid, state: 'active', decision: null, session: r.node.ephemeralOwner, since: iso(r.node.ctime) });
  }
  for (const txid of await zk.children(`${base}/committing`)) {
    const r = await read('decisions', txid);
    if (r) transactions.push({ txid, state: 'committing', decision: r.record && r.record.decision, branches: r.record && r.record.branches, done: Boolean(r.record && r.record.done), since: iso(r.node.ctime) });
  }
  for (const txid of sagas) {
    const r = await read('sagas', txid);
    if (r && r.record && (r.record.state === 'running' || r.record.state === 'compensating')) {
      transactions.push({ txid, state: `saga ${r.record.state}`, decision: null, saga: r.record.saga, started: r.record.started, since: iso(r.node.ctime) });
    }
  }
  if (opts.all) {
    for (const txid of await zk.children(`${base}/decisions`)) {
      if (transactions.some((t) => t.txid === txid)) continue;
      const r = await read('decisions', txid);
      if (r) transactions.push({ txid, state: 'decided', decision: r.record && r.record.decision, branches: r.record && r.record.branches, done: Boolean(r.record && r.record.done), since: iso(r.node.ctime) });
    }
  }
  let text = transactions.length === 0 ? `coordinator ${name}: nothing in doubt\n` : '';
  for (const t of transactions) {
    const what = t.state === 'active' ? `no decision yet (its coordinator's session ${t.session} is alive)`
      : t.saga !== undefined ? `saga ${t.saga}, ${t.started} step(s) started`
        : `decision ${t.decision}, branches ${(t.branches || []).join(', ') || '(none)'}${t.done ? ', done' : ', branches not all committed yet (recovery finishes them)'}`;
    text += `${t.txid}  ${t.state.padEnd(18)} since ${t.since}  ${what}\n`;
  }
  return { result: { coordinator: name, exists: true, transactions }, text };
}

async function pruneIds(zk, ms) {
  const deleted = await zk.pruneTransactionIds(ms);
  return { result: { deleted }, text: `deleted ${deleted} transaction id marker(s) older than ${ms} ms\n` };
}

async function compact(zk, ms) {
  const r = await zk.compactTombstones(ms);
  let text = `marked ${r.marked}, removed ${r.removed} tombstone(s) (older than ${ms} ms)\n`;
  for (const s of r.skipped || []) text += `skipped ${s.key}: ${s.reason}\n`;
  return { result: r, text };
}

function program() {
  const cli = new Command('zktx')
    .description('Inspect and maintain zktx\'s locks, store and coordinators in ZooKeeper.')
    .version(pkg.version)
    .addOption(new Option('-c, --connect <hosts>', 'connect string, host:port[,...][/chroot] (default: $ZK_CONNECT, else localhost:2181; $ZKTX_CONNECT_OVERRIDE is ignored)'))
    .option('--json', 'print JSON (for scripts) instead of text')
    .addOption(new Option('--connect-timeout <ms>', 'give up connecting after this long').argParser(milliseconds).default(5000))
    .addOption(new Option('--session-timeout <ms>', 'session timeout').argParser(milliseconds).default(10000))
    .option('--auth <scheme:credentials>', 'add credentials (digest:user:password); repeatable', (v, all) => [...all, v], [])
    .option('--sasl <user:password>', 'SASL DIGEST-MD5 credentials')
    .option('--tls-ca <file>', 'connect with TLS, trusting this CA (PEM)')
    .option('--tls-cert <file>', 'client certificate (PEM), with --tls-key')
    .option('--tls-key <file>', 'client private key (PEM)')
    .option('--no-tls-verify-hostname', 'do not check that the server certificate names the host')
    .addHelpText('after', `
Exit codes: 0 success; 1 a ZooKeeper or zktx error (its code is printed, e.g. CONNECTIONLOSS);
2 a usage error or an invalid argument (INVALID_ARGUMENT); 3 not found (get, in-doubt).

Not here: recover. Recovery commits or rolls back prepared branches, which needs the
participants' own code (commit, rollback, inDoubt): run coordinator.recover() in a service
that registers them.`)
    .showHelpAfterError()
    .exitOverride();

  cli.command('locks').argument('<path>', 'the lock\'s znode path, as passed to lock()')
    .description('the holder(s) of the lock at <path> and its waiters, in order')
    .addOption(new Option('--permits <n>', 'for a semaphore: its number of permits').argParser((v) => {
      if (!/^[1-9]\d*$/.test(v)) throw new InvalidArgumentError('expected a positive integer');
      return Number(v);
    }))
    .action(action(cli, locks));
  cli.command('keys').argument('[prefix]', 'only keys starting with it')
    .description('the store\'s keys and their values')
    .option('--no-values', 'list the keys only')
    .action(action(cli, keys));
  cli.command('get').argument('<key>').description('the value of <key> (exit 3 if it has none)').action(action(cli, get));
  cli.command('in-doubt').argument('<coordinator>', 'the coordinator\'s name, as passed to zk.coordinator()')
    .description('its transactions not finished: active (undecided), committing (decided, branches pending), sagas running or compensating')
    .option('--all', 'also every recorded decision')
    .action(action(cli, inDoubt));
  cli.command('prune-ids').argument('<ms>', 'age in milliseconds', milliseconds)
    .description('delete transaction id markers older than <ms> (zk.pruneTransactionIds)')
    .action(action(cli, pruneIds));
  cli.command('compact').argument('<ms>', 'age in milliseconds (at least 600000)', milliseconds)
    .description('compact tombstones of keys deleted more than <ms> ago (zk.compactTombstones)')
    .action(action(cli, compact));
  return cli;
}

async function main(argv) {
  const cli = program();
  try {
    await cli.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end "successfully"; anything else is a usage error.
      process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
      return;
    }
    fail(err, cli.opts());
  }
}

main(process.argv);
