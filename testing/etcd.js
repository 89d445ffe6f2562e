'use strict';
// Throwaway real etcd v3 servers: one member or a loopback cluster, optionally with
// user/password authentication and TLS, for the etcd backend's tests and users' own.
//
//   const { startEtcd, startEtcdCluster } = require('zktx/testing');
//   const etcd = await startEtcd();          // etcd.endpoints: ['127.0.0.1:PORT']
//   const cluster = await startEtcdCluster(3);
//   cluster.members[0].kill('SIGKILL'); await cluster.leader(); await cluster.members[0].restart();
//   await Promise.all([etcd.stop(), cluster.stop()]);
//
// The shape follows the ZooKeeper starters (zookeeper.js): a member is one `etcd` process we
// spawned, signalled only by its PID; every member still running when this process exits is
// SIGKILLed and its temp dir removed (processes.js) unless detach()ed. Readiness and leadership
// come from etcd's own HTTP endpoints on the client URL: `GET /health` (answers true once the
// member has a leader and a quorum read went through raft) and the gRPC gateway's
// `POST /v3/maintenance/status` (member and leader ids as decimal strings: no etcdctl process
// per poll, no precision lost on 64-bit ids). Neither needs a user once auth is enabled.
//
// Environment: ETCD_BIN (a directory holding `etcd` and `etcdctl`) overrides PATH;
// ZKTX_ETCD_LOG_LEVEL (default warn) sets the member's log level (log in <dir>/etcd.log);
// ZKTX_KEEP_ZK_DATA=1 keeps data dirs; ZKTX_ZK_QUIET=1 silences the progress messages.
const childProcess = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');

const { HOST, freePorts } = require('./ports');
const { log: logAs, sleep, seconds, keepData, pidAlive, rmDir, tailFile, cmdlineOf, aptInstallAsRoot, disown, ownDir, terminatePid, removeOurTempDir } = require('./processes');
const { ServerProcess, groupLifecycle, discardGroup } = require('./server-process');
const { makeTlsFiles } = require('./tls');

const DIR_PREFIX = 'zktx-etcd-';
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;
const POLL_MS = 50;
// The role every `auth.users` entry gets: read and write on every key.
const READWRITE_ROLE = 'zktx-readwrite';

const log = (msg) => logAs('etcd', msg);

// ---------------------------------------------------------------------------------------------
// finding etcd

let cachedInstall = null;

function onPath(name) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {}
  }
  return null;
}

function locate() {
  const dir = process.env.ETCD_BIN;
  if (dir) {
    const etcd = path.join(dir, 'etcd');
    const etcdctl = path.join(dir, 'etcdctl');
    if (!fs.existsSync(etcd) || !fs.existsSync(etcdctl)) {
      throw new Error(`ETCD_BIN=${dir} does not hold etcd and etcdctl; fix or unset it`);
    }
    return { etcd, etcdctl, source: `ETCD_BIN=${dir}` };
  }
  const etcd = onPath('etcd');
  const etcdctl = onPath('etcdctl');
  return etcd && etcdctl ? { etcd, etcdctl, source: 'PATH' } : null;
}

/**
 * Locate etcd and etcdctl: $ETCD_BIN if set, else PATH (Debian's `etcd-server` and
 * `etcd-client`, installed on the spot when running as root). Returns
 * `{ etcd, etcdctl, version, source }`.
 */
function findEtcd() {
  if (cachedInstall) return cachedInstall;
  let found = locate();
  if (!found && !process.env.ETCD_BIN && aptInstallAsRoot('etcd', 'etcd', ['etcd-server', 'etcd-client'])) found = locate();
  if (!found) {
    throw new Error(
      'etcd not found. Install it with `apt-get install etcd-server etcd-client` (Debian/Ubuntu, ' +
        'etcd 3.4), or put an etcd v3 release (etcd and etcdctl) on PATH or in ETCD_BIN'
    );
  }
  const out = childProcess.execFileSync(found.etcd, ['--version'], { encoding: 'utf8' });
  const m = /etcd Version: (\S+)/.exec(out);
  cachedInstall = { ...found, version: m ? m[1] : out.trim().split('\n')[0] };
  return cachedInstall;
}

// ---------------------------------------------------------------------------------------------
// talking to a member over HTTP (health, status) and through etcdctl

/**
 * One HTTP request to a member's client URL; resolves { status, body }. `tls`: { ca, cert, key }
 * PEM texts for an https member.
 */
function request(url, { method = 'GET', body, tls, timeoutMs = 2000 } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const lib = u.protocol === 'https:' ? https : http;
    const req = lib.request(
      u,
      {
        method,
        timeout: timeoutMs,
        agent: false,
        headers: body !== undefined ? { 'content-type': 'application/json' } : {},
        ...(tls ? { ca: tls.ca, cert: tls.cert, key: tls.key } : {}),
      },
      (res) => {
        const chunks = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      }
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body !== undefined ? JSON.stringify(body) : undefined);
  });
}

/** `GET /health`: true once the member serves (it has a leader and a quorum read succeeded). */
async function probeHealth(clientUrl, tls, timeoutMs = 2000) {
  try {
    const { status, body } = await request(`${clientUrl}/health`, { tls, timeoutMs });
    return status === 200 && JSON.parse(body).health === 'true';
  } catch {
    return false;
  }
}

const hexId = (decimal) => BigInt(decimal).toString(16);

/**
 * The Maintenance.Status of a member (gRPC gateway): ids in hex as etcdctl prints them
 * (`member list`, `endpoint status -w table`), numbers as numbers.
 */
async function memberStatus(clientUrl, tls, timeoutMs = 2000) {
  const { status, body } = await request(`${clientUrl}/v3/maintenance/status`, { method: 'POST', body: {}, tls, timeoutMs });
  if (status !== 200) throw new Error(`status of ${clientUrl}: HTTP ${status} ${body.trim()}`);
  return statusFrom(JSON.parse(body));
}

function statusFrom(s) {
  const memberId = hexId(s.header.member_id);
  const leaderId = s.leader && s.leader !== '0' ? hexId(s.leader) : null;
  return {
    memberId,
    leaderId,
    isLeader: leaderId === memberId,
    raftTerm: Number(s.raftTerm || 0),
    raftIndex: Number(s.raftIndex || 0),
    revision: Number(s.header.revision || 0),
    version: s.version,
    dbSize: Number(s.dbSize || 0),
  };
}

/**
 * Run etcdctl (API v3) against `endpoints` and resolve its stdout; rejects with its stderr.
 * `auth`: { user, password }; `tls`: { paths: { ca, clientCert, clientKey } } (the `tls` of a
 * TLS member or cluster; without clientCert etcdctl shows no certificate); `input`: stdin text.
 */
function etcdctl(endpoints, args, { auth, tls, timeoutMs = 15_000, input } = {}) {
  const list = Array.isArray(endpoints) ? endpoints : String(endpoints).split(',');
  const flags = [`--endpoints=${list.map((e) => (tls ? `https://${e}` : e)).join(',')}`, '--dial-timeout=2s', `--command-timeout=${Math.max(1, Math.floor(timeoutMs / 1000) - 1)}s`];
  if (auth) flags.push(`--user=${auth.user}:${auth.password}`);
  if (tls) flags.push(`--cacert=${tls.paths.ca}`);
  if (tls && tls.paths.clientCert) flags.push(`--cert=${tls.paths.clientCert}`, `--key=${tls.paths.clientKey}`);
  return new Promise((resolve, reject) => {
    const child = childProcess.execFile(
      findEtcd().etcdctl,
      [...flags, ...args],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: timeoutMs, encoding: 'utf8', maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err) {
          const why = err.killed ? `killed after ${timeoutMs} ms` : `exit ${err.code}`;
          const e = new Error(`etcdctl ${args.join(' ')} (${why}): ${String(stderr).trim().split('\n').filter((l) => !/^\{"level":"warn"/.test(l)).join('\n') || err.message}`);
          e.stdout = stdout;
          e.stderr = stderr;
          reject(e);
        } else {
          resolve(stdout);
        }
      }
    );
    if (input !== undefined) child.stdin.end(input);
  });
}

// ---------------------------------------------------------------------------------------------
// member processes

/** One etcd member process: the only member of a one-member cluster, or a member of a cluster. */
class EtcdMember extends ServerProcess {
  constructor(opts) {
    super({
      who: 'etcd',
      logPath: path.join(opts.dir, 'etcd.log'),
      ownedDir: opts.ownsDir ? opts.dir : null,
      stopGraceMs: STOP_GRACE_MS,
      pollMs: POLL_MS,
      exitPollMs: 20,
    });
    this.id = opts.id; // 1-based index in its cluster
    this.name = opts.name;
    this.clientPort = opts.clientPort;
    this.peerPort = opts.peerPort;
    this.port = opts.clientPort;
    this.endpoint = `${HOST}:${opts.clientPort}`;
    this.connect = this.endpoint;
    this.endpoints = [this.endpoint];
    this.clientUrl = `${opts.tls ? 'https' : 'http'}://${this.endpoint}`;
    this.peerUrl = `http://${HOST}:${opts.peerPort}`;
    this.dir = opts.dir; // data/, etcd.log
    this.dataDir = path.join(opts.dir, 'data');
    this.initialCluster = opts.initialCluster;
    this.clusterToken = opts.clusterToken;
    this.heartbeatInterval = opts.heartbeatInterval;
    this.electionTimeout = opts.electionTimeout;
    this.extraFlags = opts.extraFlags || {};
    this.tls = opts.tls; // PEM texts and paths (makeTlsFiles), with clientAuth
    this.auth = undefined; // { user: 'root', password, users } once auth is enabled
  }

  describe() {
    return `etcd ${this.name} ${this.endpoint}`;
  }

  restartLabel() {
    return `${this.name} ${this.endpoint}`;
  }

  _args() {
    const args = [
      `--name=${this.name}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${this.clientUrl}`,
      `--advertise-client-urls=${this.clientUrl}`,
      `--listen-peer-urls=${this.peerUrl}`,
      `--initial-advertise-peer-urls=${this.peerUrl}`,
      `--initial-cluster=${this.initialCluster}`,
      '--initial-cluster-state=new', // ignored once the data dir holds a WAL (a restart)
      `--initial-cluster-token=${this.clusterToken}`,
      `--heartbeat-interval=${this.heartbeatInterval}`,
      `--election-timeout=${this.electionTimeout}`,
      '--logger=zap',
      '--log-outputs=stderr',
      `--log-level=${process.env.ZKTX_ETCD_LOG_LEVEL || 'warn'}`,
    ];
    if (this.tls) {
      args.push(`--cert-file=${this.tls.paths.serverCert}`, `--key-file=${this.tls.paths.serverKey}`, `--trusted-ca-file=${this.tls.paths.ca}`);
      if (this.tls.clientAuth) args.push('--client-cert-auth');
    }
    for (const [k, v] of Object.entries(this.extraFlags)) args.push(`--${k}=${v}`);
    return args;
  }

  _spawn() {
    fs.mkdirSync(this.dir, { recursive: true });
    this._launch(findEtcd().etcd, this._args(), { cwd: this.dir, banner: `etcd ${this.name} ${this.endpoint}` });
  }

  _reaperMatch() {
    return `--data-dir=${this.dataDir}`;
  }

  _spawnError(err) {
    return `could not run ${findEtcd().etcd}: ${err.message}`;
  }

  _readyTimeoutMs() {
    return START_TIMEOUT_MS;
  }

  /** Serving once `GET /health` says true. */
  _probeReady() {
    return this.health({ timeoutMs: 1000 });
  }

  /** PEM texts for the health and status probes of a TLS member. */
  _probeTls() {
    return this.tls ? { ca: this.tls.ca, cert: this.tls.cert, key: this.tls.key } : undefined;
  }

  /** Is the member serving (`GET /health` says true)? A frozen or dead one is not. */
  health({ timeoutMs = 2000 } = {}) {
    return probeHealth(this.clientUrl, this._probeTls(), timeoutMs);
  }

  /**
   * Its Maintenance.Status: `{ memberId, leaderId, isLeader, raftTerm, raftIndex, revision,
   * version, dbSize }` (ids in hex, as etcdctl prints them). Rejects when it does not answer.
   */
  async status({ timeoutMs = 2000 } = {}) {
    if (!this.tls || !this.tls.clientAuth) return memberStatus(this.clientUrl, this._probeTls(), timeoutMs);
    // Under --client-cert-auth the gateway answers 400 to a client certificate with a CommonName
    // (it would not act as that user): ask etcdctl, keeping the 64-bit ids exact as text.
    const out = await etcdctl(this.endpoints, ['endpoint', 'status', '-w', 'json'], { tls: this.tls, timeoutMs: Math.max(timeoutMs, 2000) });
    const [entry] = JSON.parse(out.replace(/"(cluster_id|member_id|leader)":(\d+)/g, '"$1":"$2"'));
    return statusFrom(entry.Status);
  }

  /**
   * Is the process alive (a SIGSTOPped one counts as alive)? Until Node has reaped it: etcd is
   * multi-threaded, and /proc shows its main thread a zombie while the other threads still
   * hold its sockets (a port killed that way still accepted a connection).
   */
  isRunning() {
    if (this._child) return !this._exit;
    return pidAlive(this.pid);
  }

  // kill(), stop({ keepData, graceMs }) (SIGTERM and SIGCONT, 10 s grace, then SIGKILL; graceMs 0
  // is a plain SIGKILL; removes a lone member's dir, a cluster removes its members' in its
  // stop()), restart() (it rejoins its cluster from its WAL), detach() (leave it running for
  // `node scripts/etcd.js stop <pid>`) and logTail(): ServerProcess.

  /** etcdctl against this member only (root's credentials and the client certificate when set). */
  etcdctl(...args) {
    return etcdctl(this.endpoints, args, { auth: this.auth, tls: this.tls });
  }
}

function isBindFailure(member) {
  return /address already in use/i.test(tailFile(member.logPath, 200));
}

// ---------------------------------------------------------------------------------------------
// auth and TLS

/**
 * Turn on user/password authentication through `run` (etcdctl against a serving member): a
 * root user (etcd's superuser: auth enable needs it), then each of `users` with read and write
 * on every key, then `auth enable`. Returns { user: 'root', password, users }.
 */
async function enableAuth(run, auth) {
  const password = auth.rootPassword || crypto.randomBytes(12).toString('hex');
  const users = auth.users || {};
  await run(['user', 'add', 'root', `--new-user-password=${password}`]);
  if (Object.keys(users).length > 0) {
    await run(['role', 'add', READWRITE_ROLE]);
    await run(['role', 'grant-permission', READWRITE_ROLE, 'readwrite', '--from-key', '']);
    for (const [user, pw] of Object.entries(users)) {
      await run(['user', 'add', user, `--new-user-password=${pw}`]);
      await run(['user', 'grant-role', user, READWRITE_ROLE]);
    }
  }
  await run(['auth', 'enable']);
  return { user: 'root', password, users: { ...users } };
}

/** The `tls` option → certificates and paths (made in `dir` unless `tls.files`), clientAuth. */
function tlsMaterial(tls, dir) {
  if (!tls) return undefined;
  const files = tls.files || makeTlsFiles(dir, { keystores: false });
  if (!files.paths) throw new Error('tls.files: needs the result of makeTlsFiles (with its paths)');
  return { ca: files.ca, cert: files.cert, key: files.key, otherCa: files.otherCa, paths: files.paths, clientAuth: tls.clientAuth !== false };
}

/**
 * A fresh temp root for a member or a cluster, and the TLS material (in its tls/) for the `tls`
 * option; `own`: removed at exit unless disowned (a cluster's; a lone member owns its dir).
 * The root is removed again when the TLS material cannot be made.
 */
function makeRoot(tlsOption, { own }) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX));
  const rootResource = own ? ownDir(root) : null;
  try {
    return { root, rootResource, tls: tlsMaterial(tlsOption, path.join(root, 'tls')) };
  } catch (err) {
    rmDir(root);
    if (rootResource) disown(rootResource);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// public starters

function memberOptions(o) {
  return {
    heartbeatInterval: o.heartbeatInterval || 100,
    electionTimeout: o.electionTimeout || 1000,
    extraFlags: o.extraFlags,
  };
}

/**
 * Start a one-member etcd on free loopback ports in a fresh temp dir; resolves once
 * `GET /health` says it serves. Returns the EtcdMember (`endpoints`, `connect`, `stop()`, ...).
 * Options: heartbeatInterval (100 ms), electionTimeout (1000 ms), extraFlags ({ 'auto-compaction-retention': '1' }:
 * more `--flag=value`s), auth ({ rootPassword, users: { alice: 'pw' } }: root plus these users
 * with read/write on every key, then `auth enable`; the member gets `auth` { user, password,
 * users }), tls ({ clientAuth: true, files }: https client URL with a server certificate for
 * 127.0.0.1; clientAuth false accepts clients without a certificate; files: makeTlsFiles(dir)
 * to share one CA; the member gets `tls` { ca, cert, key, otherCa, paths }).
 */
async function startEtcd(options = {}) {
  const install = findEtcd();
  const t0 = Date.now();
  const { root, tls } = makeRoot(options.tls, { own: false });
  for (let attempt = 1; ; attempt++) {
    const [clientPort, peerPort] = await freePorts(2);
    const name = 'm1';
    const member = new EtcdMember({
      id: 1,
      name,
      clientPort,
      peerPort,
      dir: root,
      ownsDir: true,
      initialCluster: `${name}=http://${HOST}:${peerPort}`,
      clusterToken: `zktx-${crypto.randomBytes(6).toString('hex')}`,
      tls,
      ...memberOptions(options),
    });
    member._spawn();
    try {
      await member.waitReady();
      if (options.auth) member.auth = await enableAuth((args) => etcdctl(member.endpoints, args, { tls }), options.auth);
      log(`started ${member.endpoint}${tls ? ' (TLS)' : ''}${member.auth ? ' (auth)' : ''} pid ${member.pid} (etcd ${install.version}) in ${seconds(t0)}`);
      return member;
    } catch (err) {
      const retry = attempt < 3 && isBindFailure(member);
      await member._discard();
      if (!retry) {
        if (!keepData()) rmDir(root);
        throw err;
      }
      rmDir(member.dataDir);
      log(`port ${clientPort} or ${peerPort} taken, retrying on others`);
    }
  }
}

/**
 * Start a cluster of `size` members (default 3) on loopback; resolves once every member serves
 * and one leads. `startEtcdCluster(3)`, `startEtcdCluster({ size: 3, ... })` or
 * `startEtcdCluster(3, { ... })`; options as for startEtcd (TLS on the client URLs; peers talk
 * plain HTTP). Returns { endpoints, connect, members, stop(), leader(), waitForQuorum(), ... }.
 */
async function startEtcdCluster(sizeOrOptions = 3, maybeOptions = {}) {
  const options = typeof sizeOrOptions === 'object' && sizeOrOptions !== null ? sizeOrOptions : { ...maybeOptions, size: sizeOrOptions };
  const size = options.size === undefined ? 3 : options.size;
  if (!Number.isInteger(size) || size < 1) throw new Error(`cluster size must be a positive integer, got ${size}`);
  const install = findEtcd();
  const t0 = Date.now();
  const { root, rootResource, tls } = makeRoot(options.tls, { own: true });
  for (let attempt = 1; ; attempt++) {
    const ports = await freePorts(2 * size);
    const token = `zktx-${crypto.randomBytes(6).toString('hex')}`;
    const names = Array.from({ length: size }, (_, i) => `m${i + 1}`);
    const initialCluster = names.map((n, i) => `${n}=http://${HOST}:${ports[2 * i + 1]}`).join(',');
    const members = names.map(
      (name, i) =>
        new EtcdMember({
          id: i + 1,
          name,
          clientPort: ports[2 * i],
          peerPort: ports[2 * i + 1],
          dir: path.join(root, name),
          ownsDir: false, // the cluster owns the root; a member's stop() keeps its data
          initialCluster,
          clusterToken: token,
          tls,
          ...memberOptions(options),
        })
    );
    const cluster = makeCluster(root, members, rootResource, tls);
    for (const m of members) m._spawn();
    try {
      await cluster.waitForQuorum({ all: true });
      const leader = await cluster.leader();
      if (options.auth) {
        cluster.auth = await enableAuth((args) => etcdctl(cluster.endpoints, args, { tls }), options.auth);
        for (const m of members) m.auth = cluster.auth;
      }
      log(`started cluster ${cluster.connect}${tls ? ' (TLS)' : ''}${cluster.auth ? ' (auth)' : ''} pids ${members.map((m) => m.pid).join(',')} leader ${leader.name} (etcd ${install.version}) in ${seconds(t0)}`);
      return cluster;
    } catch (err) {
      if (!(await discardGroup({ members, attempt, isBindFailure, memberDir: (m) => m.dir, root, rootResource }))) throw err;
      log('a cluster port was taken, retrying on other ones');
    }
  }
}

function makeCluster(root, members, rootResource, tls) {
  const cluster = {
    endpoints: members.map((m) => m.endpoint),
    connect: members.map((m) => m.endpoint).join(','),
    members,
    dataDir: root,
    tls,
    auth: undefined,
    // stop(): SIGKILL every member, then remove the data (unless ZKTX_KEEP_ZK_DATA); idempotent.
    // Not SIGTERM: a leader told to stop first hands its leadership over, and with every member
    // stopping at once it waits for a successor that never comes (about 7 s). detach(): leave
    // every member running when this process exits (the CLI's `start`).
    ...groupLifecycle(() => cluster, members, root, rootResource, (m) => m.stop({ graceMs: 0 })),
    /**
     * The member that says it leads (Maintenance.Status), waiting up to timeoutMs (default
     * 30 s) for an election. Among several claims (a deposed leader that has not heard of the
     * new term yet) the highest term wins.
     */
    async leader({ timeoutMs = 30_000 } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const statuses = await Promise.all(members.map((m) => (m.isRunning() ? m.status({ timeoutMs: 1000 }).catch(() => null) : null)));
        const claims = members.map((m, i) => ({ m, s: statuses[i] })).filter((c) => c.s && c.s.isLeader);
        if (claims.length > 0) return claims.sort((a, b) => b.s.raftTerm - a.s.raftTerm)[0].m;
        if (Date.now() > deadline) {
          throw new Error(`no leader in ${cluster.connect} after ${timeoutMs / 1000} s (statuses: ${JSON.stringify(statuses)})`);
        }
        await sleep(POLL_MS);
      }
    },
    /** Wait until every running member (every member with all: true) serves and one leads. */
    async waitForQuorum({ timeoutMs = START_TIMEOUT_MS, all = false } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (all) {
          const dead = members.find((m) => m._exit);
          if (dead) throw new Error(`etcd ${dead.name} ${dead.endpoint} ${dead._exitDescription()}; log ${dead.logPath}:\n${dead.logTail()}`);
        }
        const live = all ? members : members.filter((m) => m.isRunning());
        const healthy = await Promise.all(live.map((m) => m.health({ timeoutMs: 1000 })));
        if (live.length > 0 && healthy.every(Boolean)) return;
        if (Date.now() > deadline) {
          const tails = live.map((m) => `--- ${m.name} (${m.logPath}):\n${m.logTail(15)}`).join('\n');
          throw new Error(`cluster ${cluster.connect} not ready after ${timeoutMs / 1000} s (healthy: ${healthy.join(',')})\n${tails}`);
        }
        await sleep(POLL_MS);
      }
    },
    /** etcdctl against every member (root's credentials and the client certificate when set). */
    etcdctl(...args) {
      return etcdctl(cluster.endpoints, args, { auth: cluster.auth, tls });
    },
  };
  return cluster;
}

// ---------------------------------------------------------------------------------------------
// stopping members we did not start in this process (CLI `stop`)

/** The --data-dir of an etcd PID, { isEtcd: undefined } without /proc or when it is gone. */
function etcdDataDirOfPid(pid) {
  const argv = cmdlineOf(pid);
  if (!argv) return { isEtcd: undefined };
  if (path.basename(argv[0] || '') !== 'etcd') return { isEtcd: false };
  const flag = argv.find((a) => a.startsWith('--data-dir='));
  return { isEtcd: true, dataDir: flag ? flag.slice('--data-dir='.length) : undefined };
}

/**
 * Stop an etcd member this process did not start (the CLI's `stop`): SIGTERM, 10 s grace,
 * SIGKILL; refuses a PID that is not etcd. Then removes its dir if it is one of ours (under a
 * zktx-etcd-* temp dir), and the cluster's root once its last member's dir is gone.
 */
async function stopEtcdPid(pid) {
  const info = etcdDataDirOfPid(pid);
  if (info.isEtcd === false) throw new Error(`pid ${pid} is not an etcd member; not touching it`);
  await terminatePid(pid, STOP_GRACE_MS);
  if (!info.dataDir || keepData()) return;
  // <root>/data or <root>/mN/data; a cluster's root keeps its certificates until the last member goes
  removeOurTempDir(path.dirname(path.resolve(info.dataDir)), DIR_PREFIX, /^m\d+$/, ['tls']);
}

module.exports = {
  findEtcd,
  startEtcd,
  startEtcdCluster,
  etcdctl,
  EtcdMember,
  stopEtcdPid,
};
