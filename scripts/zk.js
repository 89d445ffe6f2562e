#!/usr/bin/env node
// Throwaway real ZooKeeper servers (standalone or a loopback ensemble) for the demo, the jest
// suite and `cargo test`: one implementation, no npm dependencies.
//
//   const zk = require('./scripts/zk');
//   const server = await zk.startStandalone({ tickTime: 200 });
//   // ... use server.connect ('127.0.0.1:PORT') ...
//   await server.stop();
//
//   node scripts/zk.js run [--tick MS] [--ensemble N] -- <cmd> [args...]
//   node scripts/zk.js start [--tick MS] [--ensemble N]     # prints {connect,pids,ports,dataDirs}
//   node scripts/zk.js stop <pid>...
//
// Servers are processes we spawned and we only ever signal them by PID. Every server this
// process started is SIGKILLed when the process exits (unless started by the `start` command,
// whose whole point is to outlive us).
//
// Environment: ZOOKEEPER_HOME (a binary distribution: lib/*.jar + conf/) overrides Debian's
// jars; JAVA_HOME picks the JVM; ZKTX_KEEP_ZK_DATA=1 keeps data dirs for post-mortems;
// ZKTX_ZK_LOG_LEVEL (default WARN) sets the server's log level (log goes to
// <dataDir>/zookeeper.out); ZKTX_ZK_HEAP (default 512m) the JVM heap; ZKTX_ZK_QUIET=1 silences
// the progress messages on stderr.
'use strict';

const childProcess = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const MAIN_CLASS = 'org.apache.zookeeper.server.quorum.QuorumPeerMain';
const HOST = '127.0.0.1';
const DIR_PREFIX = 'zktx-zk-';
const DEBIAN_JAVA_DIR = '/usr/share/java';
const DEBIAN_CONF_DIR = '/etc/zookeeper/conf';
const STANDALONE_TIMEOUT_MS = 60_000;
const ENSEMBLE_TIMEOUT_MS = 90_000;
const STOP_GRACE_MS = 10_000;
const POLL_MS = 100;

// ---------------------------------------------------------------------------------------------
// small helpers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function log(msg) {
  if (!process.env.ZKTX_ZK_QUIET) process.stderr.write(`zk: ${msg}\n`);
}

function seconds(sinceMs) {
  return `${((Date.now() - sinceMs) / 1000).toFixed(1)} s`;
}

function keepData() {
  const v = process.env.ZKTX_KEEP_ZK_DATA;
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
}

/** Is a process with this PID alive? (EPERM: it exists but is not ours to signal.) */
function pidAlive(pid) {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

function signalPid(pid, signal) {
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if (err.code === 'ESRCH') return false;
    throw err;
  }
}

function rmDir(dir) {
  try {
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
  } catch (err) {
    log(`could not remove ${dir}: ${err.message}`);
  }
}

function tailFile(file, maxLines = 40) {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, 16_384);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      return buf.toString('utf8').split('\n').slice(-maxLines).join('\n').trimEnd();
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    return `(no log: ${err.message})`;
  }
}

function javaBinary() {
  if (process.env.JAVA_HOME) {
    const candidate = path.join(process.env.JAVA_HOME, 'bin', 'java');
    if (fs.existsSync(candidate)) return candidate;
  }
  return 'java';
}

// ---------------------------------------------------------------------------------------------
// finding ZooKeeper

let cachedInstall = null;

function fromZooKeeperHome(home) {
  const jars = [];
  for (const dir of [path.join(home, 'lib'), home]) {
    let names = [];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      if (name.endsWith('.jar')) jars.push(path.join(dir, name));
    }
  }
  if (!jars.some((j) => /(^|\/)zookeeper-\d[^/]*\.jar$/.test(j) || /\/zookeeper\.jar$/.test(j))) {
    return null;
  }
  const conf = path.join(home, 'conf');
  const classpath = (fs.existsSync(conf) ? [conf] : []).concat(jars);
  return { classpath: classpath.join(path.delimiter), source: `ZOOKEEPER_HOME=${home}` };
}

function fromDebian() {
  const j = (name) => path.join(DEBIAN_JAVA_DIR, name);
  if (!fs.existsSync(j('zookeeper.jar'))) return null;
  // zookeeper.jar's manifest Class-Path pulls in its runtime deps (slf4j-api, netty, metrics,
  // jetty, jackson, commons-cli, snappy, zookeeper-jute). What it does not pull in is an slf4j
  // binding: without one the server logs nothing at all (SLF4J NOP), so a server that fails to
  // start would leave an empty log. slf4j-log4j12 + log4j 1.2 + /etc/zookeeper/conf's
  // log4j.properties give it a console logger.
  const parts = [j('zookeeper.jar'), j('zookeeper-jute.jar')];
  for (const extra of ['slf4j-log4j12.jar', 'log4j-1.2.jar']) {
    if (fs.existsSync(j(extra))) parts.push(j(extra));
  }
  if (fs.existsSync(path.join(DEBIAN_CONF_DIR, 'log4j.properties'))) parts.push(DEBIAN_CONF_DIR);
  return { classpath: parts.join(path.delimiter), source: 'Debian package zookeeper' };
}

/**
 * Locate a ZooKeeper installation: $ZOOKEEPER_HOME if set, else Debian's `zookeeper` package
 * (installed on the spot when running as root). Returns `{ classpath, source }`.
 */
function findZooKeeper() {
  if (cachedInstall) return cachedInstall;
  const home = process.env.ZOOKEEPER_HOME;
  if (home) {
    const found = fromZooKeeperHome(home);
    if (!found) {
      throw new Error(
        `ZOOKEEPER_HOME=${home} does not look like a ZooKeeper binary distribution ` +
          '(expected lib/zookeeper-<version>.jar and conf/); fix or unset it'
      );
    }
    cachedInstall = found;
    return found;
  }
  let found = fromDebian();
  if (!found && typeof process.getuid === 'function' && process.getuid() === 0) {
    log('ZooKeeper not found; running: apt-get update && apt-get install -y zookeeper');
    childProcess.execFileSync('sh', ['-c', 'apt-get update && apt-get install -y zookeeper'], {
      stdio: ['ignore', 2, 2],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    found = fromDebian();
  }
  if (!found) {
    throw new Error(
      'ZooKeeper not found. Install it with `apt-get install zookeeper` (Debian/Ubuntu; plus a ' +
        'Java runtime), or download a ZooKeeper 3.8 binary distribution and set ZOOKEEPER_HOME ' +
        'to it (the directory holding lib/ and conf/)'
    );
  }
  cachedInstall = found;
  return found;
}

// ---------------------------------------------------------------------------------------------
// network helpers

/** Ask the OS for `count` distinct free loopback ports (all held open until all are picked). */
async function freePorts(count) {
  const servers = [];
  try {
    for (let i = 0; i < count; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise((resolve, reject) => {
        srv.once('error', reject);
        srv.listen({ port: 0, host: HOST, exclusive: true }, resolve);
      });
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(() => resolve()))));
  }
}

/** One free loopback port. */
async function freePort() {
  return (await freePorts(1))[0];
}

/** Send a four-letter word (`ruok`, `srvr`, `mntr`, `cons`, ...) and return the answer. */
function fourLetter(port, cmd, host = HOST, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let done = false;
    const finish = (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const timer = setTimeout(
      () => finish(new Error(`four-letter word ${cmd} to ${host}:${port}: no answer in ${timeoutMs} ms`)),
      timeoutMs
    );
    const socket = net.connect({ port, host }, () => socket.end(cmd));
    socket.on('data', (d) => chunks.push(d));
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    socket.on('error', (err) => finish(err));
  });
}

/** `mntr` as an object; numeric values are numbers (e.g. zk_packets_received). */
async function mntr(port, host = HOST) {
  const text = await fourLetter(port, 'mntr', host);
  if (/not (currently serving|executed)/i.test(text)) throw new Error(`mntr: ${text.trim()}`);
  const out = {};
  for (const line of text.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab < 0) continue;
    const key = line.slice(0, tab).trim();
    const raw = line.slice(tab + 1).trim();
    out[key] = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(raw) ? Number(raw) : raw;
  }
  return out;
}

/** Mode of a healthy server ('standalone' | 'leader' | 'follower' | 'observer'), else null. */
async function probeMode(port) {
  try {
    const ok = await fourLetter(port, 'ruok', HOST, 2000);
    if (ok.trim() !== 'imok') return null;
    const srvr = await fourLetter(port, 'srvr', HOST, 2000);
    const m = /^Mode: (\S+)/m.exec(srvr);
    return m ? m[1] : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// server processes

/** A Set that tells the watchdog about every change. */
class WatchedSet extends Set {
  add(v) {
    super.add(v);
    syncWatchdog();
    return this;
  }
  delete(v) {
    const had = super.delete(v);
    syncWatchdog();
    return had;
  }
  clear() {
    super.clear();
    syncWatchdog();
  }
}

/** Every server this process started and has not stopped; SIGKILLed on exit. */
const running = new WatchedSet();
/** Ensemble root dirs we created and have not removed yet. */
const ownedRoots = new WatchedSet();

// The 'exit' handler below does not run when this process is SIGKILLed, crashes hard, or runs
// inside a jest sandbox (whose `process` is a copy that never emits 'exit'). So while we own
// servers, a tiny detached `sh` polls our PID once a second; when we are gone it SIGKILLs the
// PIDs listed in a file we keep current (only if they still are QuorumPeerMain processes) and
// removes the listed temp dirs.
const WATCHDOG_SCRIPT = `
parent=$1; file=$2; tab=$(printf '\\t')
alive() { kill -0 "$parent" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$parent/status" 2>/dev/null; }
while alive; do sleep 1; done
[ -f "$file" ] || exit 0
while IFS="$tab" read -r pid dir; do
  if [ "$pid" != 0 ] && tr '\\000' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q ${MAIN_CLASS}; then
    kill -9 "$pid" 2>/dev/null
  fi
done < "$file"
sleep 1
while IFS="$tab" read -r pid dir; do
  [ "$dir" = - ] || rm -rf -- "$dir"
done < "$file"
rm -f -- "$file"
`;
let watchdog = null; // { pid, file }

function syncWatchdog() {
  const lines = [];
  for (const server of running) {
    if (server.leaveRunning || !server.pid) continue;
    lines.push(`${server.pid}\t${server._ownsDataDir && !keepData() ? server.dataDir : '-'}`);
  }
  if (!keepData()) for (const root of ownedRoots) lines.push(`0\t${root}`);
  try {
    if (lines.length === 0) {
      stopWatchdog();
      return;
    }
    if (!watchdog) {
      // random part: jest loads this module afresh for every test file in the same process
      const file = path.join(os.tmpdir(), `${DIR_PREFIX}${process.pid}-${crypto.randomBytes(4).toString('hex')}-watchdog.txt`);
      fs.writeFileSync(file, '');
      const child = childProcess.spawn('sh', ['-c', WATCHDOG_SCRIPT, 'zktx-zk-watchdog', String(process.pid), file], {
        detached: true,
        stdio: 'ignore',
      });
      child.on('error', () => {}); // no sh: live without the watchdog
      child.unref();
      watchdog = { pid: child.pid, file };
    }
    const tmp = `${watchdog.file}.tmp`;
    fs.writeFileSync(tmp, lines.join('\n') + '\n');
    fs.renameSync(tmp, watchdog.file);
  } catch (err) {
    log(`watchdog: ${err.message}`);
  }
}

function stopWatchdog() {
  if (!watchdog) return;
  try {
    if (watchdog.pid) signalPid(watchdog.pid, 'SIGKILL');
    fs.rmSync(watchdog.file, { force: true });
  } catch {}
  watchdog = null;
}

/** Synchronous last-resort cleanup: SIGKILL our servers, remove their temp data. */
function killAllSync() {
  for (const server of running) {
    if (server.leaveRunning) continue;
    if (server.pid && pidAlive(server.pid)) {
      try {
        process.kill(server.pid, 'SIGKILL');
      } catch {}
    }
    if (server._ownsDataDir && !keepData()) rmDir(server.dataDir);
  }
  for (const root of ownedRoots) if (!keepData()) rmDir(root);
  running.clear();
  ownedRoots.clear();
  stopWatchdog();
}
process.on('exit', killAllSync);

// Ctrl-C / kill of a process that has no signal handlers of its own would skip 'exit'. Install
// handlers only while servers run and only if nobody else handles the signal; after cleanup,
// re-raise it so the process dies the way it would have.
let signalHandlersInstalled = false;
function installSignalHandlers() {
  if (signalHandlersInstalled) return;
  signalHandlersInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    if (process.listenerCount(sig) > 0) continue;
    const handler = () => {
      process.removeListener(sig, handler);
      killAllSync();
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}

function configText(server) {
  const lines = [
    `tickTime=${server.tickTime}`,
    `dataDir=${server.dataDir}`,
    `clientPort=${server.port}`,
    `clientPortAddress=${HOST}`,
    'admin.enableServer=false',
    '4lw.commands.whitelist=*',
    // a throwaway server's data never matters more than its speed
    'autopurge.purgeInterval=0',
  ];
  if (!server.forceSync) lines.push('forceSync=no');
  if (server.minSessionTimeout) lines.push(`minSessionTimeout=${server.minSessionTimeout}`);
  if (server.maxSessionTimeout) lines.push(`maxSessionTimeout=${server.maxSessionTimeout}`);
  if (server.peers) {
    lines.push('initLimit=5', 'syncLimit=2');
    for (const p of server.peers) lines.push(`server.${p.id}=${HOST}:${p.peerPort}:${p.electionPort}`);
  }
  for (const [k, v] of Object.entries(server.extraConfig || {})) lines.push(`${k}=${v}`);
  return lines.join('\n') + '\n';
}

/** One ZooKeeper server process (standalone, or a node of an ensemble). */
class ZkServer {
  constructor(opts) {
    this.id = opts.id; // ensemble myid, undefined for standalone
    this.tickTime = opts.tickTime;
    this.forceSync = opts.forceSync;
    this.minSessionTimeout = opts.minSessionTimeout;
    this.maxSessionTimeout = opts.maxSessionTimeout;
    this.extraConfig = opts.extraConfig;
    this.jvmFlags = opts.jvmFlags || []; // -D system properties (auth providers, ...)
    this.extraClasspath = opts.extraClasspath || []; // jars beyond ZooKeeper's own (Netty for TLS)
    this.peers = opts.peers; // [{id, peerPort, electionPort}] for ensembles
    this.port = opts.port;
    this.connect = `${HOST}:${opts.port}`;
    this.dataDir = opts.dataDir;
    this._ownsDataDir = opts.ownsDataDir;
    this.logDir = opts.logDir || opts.dataDir;
    this.cfgPath = path.join(this.dataDir, 'zoo.cfg');
    this.logPath = path.join(this.dataDir, 'zookeeper.out');
    this.pid = undefined;
    this.leaveRunning = false;
    this._child = null;
    this._exit = null; // {code, signal} of the current child once it exited
    this._stopping = null;
  }

  _writeConfig() {
    fs.mkdirSync(this.dataDir, { recursive: true });
    if (this.logDir !== this.dataDir) fs.mkdirSync(this.logDir, { recursive: true });
    if (this.id !== undefined) fs.writeFileSync(path.join(this.dataDir, 'myid'), `${this.id}\n`);
    fs.writeFileSync(this.cfgPath, configText(this));
  }

  _spawn() {
    const classpath = [findZooKeeper().classpath, ...this.extraClasspath].join(path.delimiter);
    this._writeConfig();
    const level = process.env.ZKTX_ZK_LOG_LEVEL || 'WARN';
    const args = [
      `-Xmx${process.env.ZKTX_ZK_HEAP || '512m'}`,
      '-XX:+ExitOnOutOfMemoryError',
      '-XX:-UsePerfData',
      '-Djava.awt.headless=true',
      `-Dzookeeper.log.dir=${this.logDir}`,
      '-Dzookeeper.log.file=zookeeper.log',
      `-Dzookeeper.root.logger=${level},CONSOLE`, // log4j (Debian)
      `-Dzookeeper.console.threshold=${level}`, // logback (ZooKeeper 3.8 distribution)
      '-Dzookeeper.admin.enableServer=false',
      '-Dzookeeper.jmx.log4j.disable=true',
      ...this.jvmFlags,
      '-cp',
      classpath,
      MAIN_CLASS,
      this.cfgPath,
    ];
    const fd = fs.openSync(this.logPath, 'a');
    let child;
    try {
      fs.writeSync(fd, `\n==== zktx: starting ${MAIN_CLASS} ${this.cfgPath} at ${new Date().toISOString()}\n`);
      child = childProcess.spawn(javaBinary(), args, {
        cwd: this.dataDir,
        detached: true, // own process group: a Ctrl-C aimed at a test run does not hit it
        stdio: ['ignore', fd, fd],
      });
    } finally {
      fs.closeSync(fd);
    }
    child.unref();
    this._child = child;
    this._exit = null;
    this.pid = child.pid;
    child.on('error', (err) => {
      if (this._child !== child) return;
      this._exit = { error: err };
    });
    child.on('exit', (code, signal) => {
      if (this._child !== child) return;
      this._exit = { code, signal };
    });
    running.add(this);
    installSignalHandlers();
  }

  _exitDescription() {
    const e = this._exit;
    if (!e) return 'running';
    if (e.error) {
      return e.error.code === 'ENOENT'
        ? `could not run ${javaBinary()}: not found (install a Java runtime, e.g. apt-get install default-jre-headless, or set JAVA_HOME)`
        : `could not start java: ${e.error.message}`;
    }
    return e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
  }

  /** Wait until `ruok` says imok and `srvr` reports a Mode (serving requests). */
  async waitReady({ timeoutMs = this.peers ? ENSEMBLE_TIMEOUT_MS : STANDALONE_TIMEOUT_MS } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this._exit) {
        throw new Error(`ZooKeeper ${this.connect} ${this._exitDescription()}; log ${this.logPath}:\n${tailFile(this.logPath)}`);
      }
      const mode = await probeMode(this.port);
      if (mode) return mode;
      if (Date.now() > deadline) {
        throw new Error(`ZooKeeper ${this.connect} (pid ${this.pid}) not ready after ${timeoutMs / 1000} s; log ${this.logPath}:\n${tailFile(this.logPath)}`);
      }
      await sleep(POLL_MS);
    }
  }

  /** Is the server process alive (a SIGSTOPped one counts as alive)? */
  isRunning() {
    if (this._child && this._exit) return false;
    return pidAlive(this.pid);
  }

  /** Send a signal ('SIGKILL', 'SIGSTOP', 'SIGCONT', ...) to the server's PID. */
  kill(signal = 'SIGTERM') {
    if (!this.pid) return false;
    return signalPid(this.pid, signal);
  }

  async _waitExit(ms) {
    const deadline = Date.now() + ms;
    while (this.isRunning()) {
      if (Date.now() > deadline) return false;
      await sleep(50);
    }
    return true;
  }

  /**
   * SIGTERM, up to 10 s grace, then SIGKILL. Removes the data dir if we created it (unless
   * `keepData` or env ZKTX_KEEP_ZK_DATA). Idempotent.
   */
  stop({ keepData: keep = false } = {}) {
    if (!this._stopping) {
      this._stopping = (async () => {
        if (this.isRunning()) {
          this.kill('SIGTERM');
          this.kill('SIGCONT'); // a SIGSTOPped JVM cannot act on SIGTERM
          if (!(await this._waitExit(STOP_GRACE_MS))) {
            this.kill('SIGKILL');
            await this._waitExit(5000);
          }
        }
        running.delete(this);
        if (this._ownsDataDir && !keep && !keepData()) rmDir(this.dataDir);
      })();
    }
    return this._stopping;
  }

  /**
   * Start the server again on the same port and data dir (after kill('SIGKILL') or stop()),
   * and wait until it serves (`wait: false` to return right after spawning).
   */
  async restart({ wait = true, timeoutMs } = {}) {
    if (this._stopping) await this._stopping;
    if (!(await this._waitExit(STOP_GRACE_MS))) {
      throw new Error(`ZooKeeper ${this.connect} pid ${this.pid} is still running; kill or stop it before restart()`);
    }
    this._stopping = null;
    const t0 = Date.now();
    this._spawn();
    if (wait) {
      await this.waitReady(timeoutMs ? { timeoutMs } : undefined);
      log(`restarted ${this.id !== undefined ? `node ${this.id} ` : ''}${this.connect} pid ${this.pid} in ${seconds(t0)}`);
    }
    return this;
  }

  /** Current Mode from `srvr` (null when not serving). */
  mode() {
    return probeMode(this.port);
  }

  fourLetter(cmd) {
    return fourLetter(this.port, cmd);
  }

  mntr() {
    return mntr(this.port);
  }

  logTail(lines = 40) {
    return tailFile(this.logPath, lines);
  }
}

function isBindFailure(server) {
  return /BindException|Address already in use/.test(tailFile(server.logPath, 200));
}

// ---------------------------------------------------------------------------------------------
// secured servers

/**
 * The value of `-Dzookeeper.DigestAuthenticationProvider.superDigest` for "user:password":
 * `user:base64(sha1("user:password"))`. A session that authenticates with that digest pair is
 * ZooKeeper's super user (every ACL check passes).
 */
function superDigest(userPassword) {
  const user = userPassword.split(':')[0];
  return `${user}:${crypto.createHash('sha1').update(userPassword).digest('base64')}`;
}

/**
 * JVM flags for the `auth` option of the starters:
 * - digestSuperUser: "super:pw", a digest identity that passes every ACL check (for cleanup);
 * - enforce: ['digest', ...], ZooKeeper 3.7+'s enforce.auth: a session that has not
 *   authenticated with one of these schemes gets AUTHFAILED on its first request;
 * - saslUsers: { alice: 'pw' }, SASL DIGEST-MD5 users (a JAAS file in `dir`, the SASL provider).
 */
function authJvmFlags(auth, dir) {
  if (!auth) return [];
  const flags = [];
  if (auth.saslUsers) {
    const users = Object.entries(auth.saslUsers).map(([u, pw]) => `  user_${u}=${JSON.stringify(pw)}`).join('\n');
    const jaas = path.join(dir, 'jaas.conf');
    fs.writeFileSync(jaas, `Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n${users};\n};\n`, { mode: 0o600 });
    flags.push(`-Djava.security.auth.login.config=${jaas}`, '-Dzookeeper.authProvider.sasl=org.apache.zookeeper.server.auth.SASLAuthenticationProvider');
  }
  if (auth.digestSuperUser) flags.push(`-Dzookeeper.DigestAuthenticationProvider.superDigest=${superDigest(auth.digestSuperUser)}`);
  if (auth.enforce && auth.enforce.length) flags.push('-Dzookeeper.enforce.auth.enabled=true', `-Dzookeeper.enforce.auth.schemes=${auth.enforce.join(',')}`);
  return flags;
}

/**
 * TLS material for a test server, made in `dir` with openssl and keytool: a CA, a server
 * certificate for 127.0.0.1 only (so "localhost" is a hostname mismatch), a client certificate,
 * and a second, untrusted CA. Returns PEM texts and the server's keystore settings.
 */
function makeTlsFiles(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const f = (name) => path.join(dir, name);
  const run = (cmd, args) => childProcess.execFileSync(cmd, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const subj = (cn) => ['-subj', `/CN=${cn}`];
  run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', ...subj('zktx test CA')]);
  run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('other-ca.key'), '-out', f('other-ca.pem'), '-days', '2', ...subj('untrusted CA')]);
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n');
  for (const who of ['server', 'client']) {
    run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), ...subj(who === 'server' ? '127.0.0.1' : 'zktx client')]);
    run('openssl', ['x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${who}.pem`), '-days', '2', '-extfile', f('ext.cnf')]);
  }
  const password = crypto.randomBytes(12).toString('hex');
  run('openssl', ['pkcs12', '-export', '-in', f('server.pem'), '-inkey', f('server.key'), '-out', f('keystore.p12'), '-passout', `pass:${password}`, '-name', 'server']);
  // The truststore must hold the CA as a trusted entry (see shared/ZOOKEEPER.md).
  run('keytool', ['-importcert', '-noprompt', '-alias', 'ca', '-file', f('ca.pem'), '-keystore', f('truststore.p12'), '-storetype', 'PKCS12', '-storepass', password]);
  const pem = (name) => fs.readFileSync(f(name), 'utf8');
  return {
    ca: pem('ca.pem'),
    cert: pem('client.pem'),
    key: pem('client.key'),
    otherCa: pem('other-ca.pem'),
    config: {
      'ssl.keyStore.location': f('keystore.p12'),
      'ssl.keyStore.password': password,
      'ssl.keyStore.type': 'PKCS12',
      'ssl.trustStore.location': f('truststore.p12'),
      'ssl.trustStore.password': password,
      'ssl.trustStore.type': 'PKCS12',
    },
  };
}

/** Netty's jars, which Debian's zookeeper.jar does not pull in but the TLS server needs. */
function nettyJars() {
  if (process.env.ZOOKEEPER_HOME) return []; // a distribution's lib/ has them
  return fs.readdirSync(DEBIAN_JAVA_DIR).filter((n) => /^netty-.*\d\.Final\.jar$/.test(n)).map((n) => path.join(DEBIAN_JAVA_DIR, n));
}

// ---------------------------------------------------------------------------------------------
// public starters

/**
 * Start a standalone server on a free loopback port; resolves once it serves requests.
 * Options: tickTime (2000), dataDir (fresh temp dir, removed by stop()), port (free one),
 * forceSync (false: forceSync=no), logDir (dataDir), minSessionTimeout/maxSessionTimeout
 * (server defaults 2×/20× tick), extraConfig ({key: value} for zoo.cfg), auth ({ digestSuperUser:
 * 'super:pw', enforce: ['digest'], saslUsers: { alice: 'pw' } }, see authJvmFlags), tls ({ clientAuth:
 * 'need' | 'want' | 'none' }: a secureClientPort with certificates from makeTlsFiles; the server
 * gets `secureConnect` ('127.0.0.1:PORT') and `tls` { ca, cert, key, otherCa } PEM texts).
 */
async function startStandalone({
  tickTime = 2000,
  dataDir,
  port,
  forceSync = false,
  logDir,
  minSessionTimeout,
  maxSessionTimeout,
  extraConfig,
  auth,
  tls,
} = {}) {
  findZooKeeper();
  const ownsDataDir = !dataDir;
  const dir = dataDir ? path.resolve(dataDir) : fs.mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX));
  const t0 = Date.now();
  const tlsFiles = tls ? makeTlsFiles(path.join(dir, 'tls')) : null;
  const securePort = tls ? await freePort() : undefined;
  const tlsConfig = tls ? { secureClientPort: securePort, secureClientPortAddress: HOST, 'ssl.clientAuth': tls.clientAuth || 'need', ...tlsFiles.config } : {};
  for (let attempt = 1; ; attempt++) {
    const server = new ZkServer({
      tickTime,
      forceSync,
      minSessionTimeout,
      maxSessionTimeout,
      extraConfig: { ...tlsConfig, ...extraConfig },
      jvmFlags: [...authJvmFlags(auth, dir), ...(tls ? ['-Dzookeeper.serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory'] : [])],
      extraClasspath: tls ? nettyJars() : [],
      port: port || (await freePort()),
      dataDir: dir,
      ownsDataDir,
      logDir,
    });
    server._spawn();
    try {
      await server.waitReady({ timeoutMs: STANDALONE_TIMEOUT_MS });
      if (tls) {
        server.secureConnect = `${HOST}:${securePort}`;
        server.tls = { ca: tlsFiles.ca, cert: tlsFiles.cert, key: tlsFiles.key, otherCa: tlsFiles.otherCa };
      }
      log(`started standalone ${server.connect}${tls ? ` (TLS ${server.secureConnect})` : ''} pid ${server.pid} in ${seconds(t0)}`);
      return server;
    } catch (err) {
      // Another process may have grabbed the port between our probe and the JVM's bind.
      const retry = !port && attempt < 3 && isBindFailure(server);
      server.kill('SIGKILL');
      await server._waitExit(5000);
      running.delete(server);
      if (!retry) {
        if (ownsDataDir && !keepData()) rmDir(dir);
        throw err;
      }
      log(`port ${server.port} taken, retrying on another one`);
    }
  }
}

/**
 * Start an ensemble of `size` nodes on loopback; resolves once every node serves and exactly
 * one is leader. Returns { connect, servers, stop(), leader(), waitForQuorum() }.
 */
async function startEnsemble({ size = 3, tickTime = 2000, forceSync = false, minSessionTimeout, maxSessionTimeout, extraConfig } = {}) {
  if (!Number.isInteger(size) || size < 1) throw new Error(`ensemble size must be a positive integer, got ${size}`);
  findZooKeeper();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX));
  ownedRoots.add(root);
  const t0 = Date.now();
  for (let attempt = 1; ; attempt++) {
    const ports = await freePorts(3 * size);
    const peers = [];
    for (let i = 0; i < size; i++) {
      peers.push({ id: i + 1, clientPort: ports[3 * i], peerPort: ports[3 * i + 1], electionPort: ports[3 * i + 2] });
    }
    const servers = peers.map(
      (p) =>
        new ZkServer({
          id: p.id,
          tickTime,
          forceSync,
          minSessionTimeout,
          maxSessionTimeout,
          extraConfig,
          peers,
          port: p.clientPort,
          dataDir: path.join(root, `node${p.id}`),
          ownsDataDir: false, // the ensemble owns the root; a node's stop() keeps its data
        })
    );
    const ensemble = makeEnsemble(root, servers);
    for (const s of servers) s._spawn();
    try {
      await ensemble.waitForQuorum({ timeoutMs: ENSEMBLE_TIMEOUT_MS, all: true });
      const leader = await ensemble.leader();
      log(`started ensemble ${ensemble.connect} pids ${servers.map((s) => s.pid).join(',')} leader node ${leader.id} in ${seconds(t0)}`);
      return ensemble;
    } catch (err) {
      const retry = attempt < 3 && servers.some(isBindFailure);
      for (const s of servers) s.kill('SIGKILL');
      for (const s of servers) {
        await s._waitExit(5000);
        running.delete(s);
      }
      if (!retry) {
        if (!keepData()) rmDir(root);
        ownedRoots.delete(root);
        throw err;
      }
      for (const s of servers) rmDir(s.dataDir);
      log('an ensemble port was taken, retrying on other ones');
    }
  }
}

// A one-server "ensemble" runs in standalone mode (standaloneEnabled defaults to true).
const isLeaderMode = (mode) => mode === 'leader' || mode === 'standalone';

function makeEnsemble(root, servers) {
  let stopping = null;
  const ensemble = {
    connect: servers.map((s) => s.connect).join(','),
    servers,
    dataDir: root,
    /** Stop every node, then remove the data (unless ZKTX_KEEP_ZK_DATA). Idempotent. */
    stop() {
      if (!stopping) {
        stopping = (async () => {
          await Promise.all(servers.map((s) => s.stop()));
          if (!keepData()) rmDir(root);
          ownedRoots.delete(root);
        })();
      }
      return stopping;
    },
    /**
     * The node whose `srvr` says `Mode: leader`, waiting up to timeoutMs (default 30 s) for an
     * election to finish.
     */
    async leader({ timeoutMs = 30_000 } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const modes = await Promise.all(servers.map((s) => (s.isRunning() ? s.mode() : null)));
        const leaders = servers.filter((_, i) => isLeaderMode(modes[i]));
        if (leaders.length === 1) return leaders[0];
        if (Date.now() > deadline) {
          throw new Error(`no single leader in ${ensemble.connect} after ${timeoutMs / 1000} s (modes: ${modes.join(',')})`);
        }
        await sleep(POLL_MS);
      }
    },
    /**
     * Wait until every running node (every node with all: true) serves and exactly one leads.
     */
    async waitForQuorum({ timeoutMs = ENSEMBLE_TIMEOUT_MS, all = false } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        for (const s of servers) {
          if (all && s._exit) {
            throw new Error(`ZooKeeper node ${s.id} ${s.connect} ${s._exitDescription()}; log ${s.logPath}:\n${s.logTail()}`);
          }
        }
        const live = all ? servers : servers.filter((s) => s.isRunning());
        const modes = await Promise.all(live.map((s) => s.mode()));
        if (live.length > 0 && modes.every(Boolean) && modes.filter(isLeaderMode).length === 1) return;
        if (Date.now() > deadline) {
          const tails = live.map((s) => `--- node ${s.id} (${s.logPath}):\n${s.logTail(15)}`).join('\n');
          throw new Error(`ensemble ${ensemble.connect} not ready after ${timeoutMs / 1000} s (modes: ${modes.join(',')})\n${tails}`);
        }
        await sleep(POLL_MS);
      }
    },
  };
  return ensemble;
}

// ---------------------------------------------------------------------------------------------
// stopping servers we did not start in this process (CLI `stop`)

function zooKeeperCfgOfPid(pid) {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    if (!argv.includes(MAIN_CLASS)) return { isZk: false };
    return { isZk: true, cfgPath: argv[argv.length - 1] };
  } catch {
    return { isZk: undefined }; // no /proc (not Linux) or process gone
  }
}

async function stopPid(pid) {
  const info = zooKeeperCfgOfPid(pid);
  if (info.isZk === false) throw new Error(`pid ${pid} is not a ZooKeeper server; not touching it`);
  if (!pidAlive(pid)) return info;
  signalPid(pid, 'SIGTERM');
  signalPid(pid, 'SIGCONT');
  const deadline = Date.now() + STOP_GRACE_MS;
  while (pidAlive(pid) && Date.now() < deadline) await sleep(50);
  if (pidAlive(pid)) {
    signalPid(pid, 'SIGKILL');
    while (pidAlive(pid)) await sleep(50);
  }
  return info;
}

/** Remove data dirs we created (under tmpdir, named zktx-zk-*) for a stopped server. */
function cleanupDataDirOf(cfgPath) {
  if (!cfgPath || keepData()) return;
  const tmp = fs.realpathSync(os.tmpdir());
  const dataDir = path.dirname(path.resolve(cfgPath));
  const parent = path.dirname(dataDir);
  if (parent === tmp && path.basename(dataDir).startsWith(DIR_PREFIX)) {
    rmDir(dataDir);
  } else if (path.dirname(parent) === tmp && path.basename(parent).startsWith(DIR_PREFIX) && /^node\d+$/.test(path.basename(dataDir))) {
    rmDir(dataDir);
    try {
      if (fs.readdirSync(parent).length === 0) fs.rmdirSync(parent);
    } catch {}
  }
}

// ---------------------------------------------------------------------------------------------
// CLI

function usage() {
  return [
    'usage:',
    '  node scripts/zk.js run [--tick MS] [--ensemble N] -- <cmd> [args...]',
    '  node scripts/zk.js start [--tick MS] [--ensemble N]',
    '  node scripts/zk.js stop <pid>...',
  ].join('\n');
}

function parseCli(argv) {
  const dashdash = argv.indexOf('--');
  const own = dashdash >= 0 ? argv.slice(0, dashdash) : argv;
  const { values, positionals } = parseArgs({
    args: own,
    allowPositionals: true,
    strict: true,
    options: {
      tick: { type: 'string' },
      ensemble: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  const tick = values.tick !== undefined ? Number(values.tick) : 2000;
  const ensemble = values.ensemble !== undefined ? Number(values.ensemble) : 0;
  if (!Number.isInteger(tick) || tick <= 0) throw new Error(`--tick must be a positive integer (ms), got ${values.tick}`);
  if (!Number.isInteger(ensemble) || ensemble < 0) throw new Error(`--ensemble must be a positive integer, got ${values.ensemble}`);
  const cmd = dashdash >= 0 ? rest.concat(argv.slice(dashdash + 1)) : rest;
  return { help: values.help, command, tick, ensemble, rest, cmd };
}

async function startFromCli({ tick, ensemble }) {
  if (ensemble > 0) {
    const e = await startEnsemble({ size: ensemble, tickTime: tick });
    return {
      connect: e.connect,
      servers: e.servers,
      stop: () => e.stop(),
      detach() {
        ownedRoots.delete(e.dataDir);
      },
    };
  }
  const s = await startStandalone({ tickTime: tick });
  return { connect: s.connect, servers: [s], stop: () => s.stop(), detach() {} };
}

async function cliRun(opts) {
  if (opts.cmd.length === 0) throw new Error(`run: no command given\n${usage()}`);
  const [file, ...args] = opts.cmd;

  let zk = null;
  let child = null;
  let signalled = null;
  let done = false;

  const onSignal = (sig) => {
    if (signalled || !child) {
      // second signal, or still starting the server: give up right away
      for (const s of running) if (s.pid) signalPid(s.pid, 'SIGKILL');
      process.exit(128 + (os.constants.signals[sig] || 0)); // 'exit' handler removes data dirs
    }
    signalled = sig;
    if (child && !done) {
      try {
        child.kill(sig);
      } catch {}
    }
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => onSignal(sig));

  const env = { ...process.env };
  if (!process.env.ZK_CONNECT) {
    zk = await startFromCli(opts);
    env.ZK_CONNECT = zk.connect;
    env.ZKTX_ZK_PIDS = zk.servers.map((s) => s.pid).join(',');
    env.ZKTX_ZK_PORTS = zk.servers.map((s) => s.port).join(',');
  }

  const result = await new Promise((resolve) => {
    child = childProcess.spawn(file, args, { stdio: 'inherit', env, shell: false });
    child.on('error', (err) => {
      process.stderr.write(`zk: could not run ${file}: ${err.message}\n`);
      resolve({ code: err.code === 'ENOENT' ? 127 : 126 });
    });
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  done = true;
  if (zk) {
    const t0 = Date.now();
    await zk.stop();
    log(`stopped ${zk.connect} in ${seconds(t0)}`);
  }
  if (result.signal) return 128 + (os.constants.signals[result.signal] || 0);
  return result.code ?? 1;
}

async function cliStart(opts) {
  const zk = await startFromCli(opts);
  for (const s of zk.servers) {
    s.leaveRunning = true;
    running.delete(s);
  }
  zk.detach();
  process.stdout.write(
    JSON.stringify({
      connect: zk.connect,
      pids: zk.servers.map((s) => s.pid),
      ports: zk.servers.map((s) => s.port),
      dataDirs: zk.servers.map((s) => s.dataDir),
    }) + '\n'
  );
  return 0;
}

async function cliStop(opts) {
  if (opts.rest.length === 0) throw new Error(`stop: no pid given\n${usage()}`);
  const pids = opts.rest.map((p) => {
    const n = Number(p);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`stop: not a pid: ${p}`);
    return n;
  });
  let status = 0;
  const results = await Promise.allSettled(pids.map((pid) => stopPid(pid)));
  results.forEach((r, i) => {
    if (r.status === 'rejected') {
      process.stderr.write(`zk: ${r.reason.message}\n`);
      status = 1;
    } else {
      log(`stopped pid ${pids[i]}`);
      cleanupDataDirOf(r.value.cfgPath);
    }
  });
  return status;
}

async function main(argv) {
  let opts;
  try {
    opts = parseCli(argv);
  } catch (err) {
    process.stderr.write(`zk: ${err.message}\n${usage()}\n`);
    return 2;
  }
  if (opts.help || !opts.command) {
    process.stderr.write(usage() + '\n');
    return opts.help ? 0 : 2;
  }
  switch (opts.command) {
    case 'run':
      return cliRun(opts);
    case 'start':
      return cliStart(opts);
    case 'stop':
      return cliStop(opts);
    default:
      process.stderr.write(`zk: unknown command ${opts.command}\n${usage()}\n`);
      return 2;
  }
}

module.exports = {
  findZooKeeper,
  startStandalone,
  startEnsemble,
  fourLetter,
  freePort,
  freePorts,
  mntr,
  superDigest,
  ZkServer,
};

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`zk: ${process.env.ZKTX_DEBUG ? err.stack : err.message}\n`);
      process.exit(1);
    }
  );
}
