'use strict';
// Throwaway real ZooKeeper servers: standalone or a loopback ensemble, optionally secured (auth
// providers, TLS), for the demo, the jest suite, `cargo test` and users' own tests.
//
//   const { startStandalone } = require('zktx/testing');
//   const server = await startStandalone({ tickTime: 200 });
//   // ... use server.connect ('127.0.0.1:PORT') ...
//   await server.stop();
//
// Servers are processes we spawned and we only ever signal them by PID; every server still
// running when this process exits is SIGKILLed (processes.js) unless detach()ed.
//
// Environment: ZOOKEEPER_HOME (a binary distribution: lib/*.jar + conf/) overrides Debian's
// jars; JAVA_HOME picks the JVM; ZKTX_KEEP_ZK_DATA=1 keeps data dirs for post-mortems;
// ZKTX_ZK_LOG_LEVEL (default WARN) sets the server's log level (log goes to
// <dataDir>/zookeeper.out); ZKTX_ZK_HEAP (default 512m) the JVM heap; ZKTX_ZK_QUIET=1 silences
// the progress messages on stderr.
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const tlsSocket = require('node:tls');
const os = require('node:os');
const path = require('node:path');

const { HOST, freePort, freePorts } = require('./ports');
const { log: logAs, sleep, seconds, keepData, rmDir, tailFile, cmdlineOf, aptInstallAsRoot, ownDir, terminatePid, removeOurTempDir } = require('./processes');
const { ServerProcess, groupLifecycle, discardGroup } = require('./server-process');
const { makeTlsFiles } = require('./tls');

const MAIN_CLASS = 'org.apache.zookeeper.server.quorum.QuorumPeerMain';
const DIR_PREFIX = 'zktx-zk-';
const DEBIAN_JAVA_DIR = '/usr/share/java';
const DEBIAN_CONF_DIR = '/etc/zookeeper/conf';
const STANDALONE_TIMEOUT_MS = 60_000;
const ENSEMBLE_TIMEOUT_MS = 90_000;
const STOP_GRACE_MS = 10_000;
const POLL_MS = 100;

const log = (msg) => logAs('zk', msg);

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
  if (!found && aptInstallAsRoot('zk', 'ZooKeeper', ['zookeeper'])) found = fromDebian();
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

/**
 * Send a four-letter word (`ruok`, `srvr`, `mntr`, `cons`, ...) and return the answer. With
 * `tls` ({ ca, cert, key } PEM texts) it goes over TLS: the only way into a TLS-only server.
 */
function fourLetter(port, cmd, host = HOST, timeoutMs = 3000, tls = undefined) {
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
    // The word is written, not end()ed: the server closes once it has answered. Over TLS a
    // close_notify right behind it can make the server close before answering; in plaintext a
    // FIN makes startProxy's proxy (which does not forward half-closes) drop the connection,
    // often before the answer is back.
    const socket = tls
      ? tlsSocket.connect({ port, host, ca: tls.ca, cert: tls.cert, key: tls.key }, () => socket.write(cmd))
      : net.connect({ port, host }, () => socket.write(cmd));
    socket.on('data', (d) => chunks.push(d));
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    // A TLS peer that closes without close_notify is an ECONNRESET after a complete answer.
    socket.on('error', (err) => finish(tls && chunks.length > 0 ? null : err));
  });
}

/** `mntr` as an object; numeric values are numbers (e.g. zk_packets_received). */
async function mntr(port, host = HOST, tls = undefined) {
  const text = await fourLetter(port, 'mntr', host, 3000, tls);
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
async function probeMode(port, tls) {
  try {
    const ok = await fourLetter(port, 'ruok', HOST, 2000, tls);
    if (ok.trim() !== 'imok') return null;
    const srvr = await fourLetter(port, 'srvr', HOST, 2000, tls);
    const m = /^Mode: (\S+)/m.exec(srvr);
    return m ? m[1] : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// server processes

function configText(server) {
  const lines = [
    `tickTime=${server.tickTime}`,
    `dataDir=${server.dataDir}`,
    // A TLS-only server has no plaintext port at all (ZooKeeper refuses clientPortAddress
    // without clientPort).
    ...(server.tlsOnly ? [`secureClientPort=${server.port}`, `secureClientPortAddress=${HOST}`] : [`clientPort=${server.port}`, `clientPortAddress=${HOST}`]),
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
class ZkServer extends ServerProcess {
  constructor(opts) {
    super({
      who: 'zk',
      logPath: path.join(opts.dataDir, 'zookeeper.out'),
      ownedDir: opts.ownsDataDir ? opts.dataDir : null,
      stopGraceMs: STOP_GRACE_MS,
      pollMs: POLL_MS,
    });
    this.id = opts.id; // ensemble myid, undefined for standalone
    this.tickTime = opts.tickTime;
    this.forceSync = opts.forceSync;
    this.minSessionTimeout = opts.minSessionTimeout;
    this.maxSessionTimeout = opts.maxSessionTimeout;
    this.extraConfig = opts.extraConfig;
    this.jvmFlags = opts.jvmFlags || []; // -D system properties (auth providers, ...)
    this.extraClasspath = opts.extraClasspath || []; // jars beyond ZooKeeper's own (Netty for TLS)
    // { ca, cert, key }: `port` is a secureClientPort and there is no plaintext one; the health
    // probes (four-letter words) go over TLS with this client certificate.
    this.tlsOnly = opts.tlsOnly;
    this.peers = opts.peers; // [{id, peerPort, electionPort}] for ensembles
    this.port = opts.port;
    this.connect = `${HOST}:${opts.port}`;
    this.dataDir = opts.dataDir;
    this.logDir = opts.logDir || opts.dataDir;
    this.cfgPath = path.join(this.dataDir, 'zoo.cfg');
  }

  describe() {
    return `ZooKeeper ${this.connect}`;
  }

  restartLabel() {
    return `${this.id !== undefined ? `node ${this.id} ` : ''}${this.connect}`;
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
    this._launch(javaBinary(), args, { cwd: this.dataDir, banner: `${MAIN_CLASS} ${this.cfgPath}` });
  }

  _reaperMatch() {
    return this.cfgPath;
  }

  _spawnError(err) {
    return err.code === 'ENOENT'
      ? `could not run ${javaBinary()}: not found (install a Java runtime, e.g. apt-get install default-jre-headless, or set JAVA_HOME)`
      : `could not start java: ${err.message}`;
  }

  _readyTimeoutMs() {
    return this.peers ? ENSEMBLE_TIMEOUT_MS : STANDALONE_TIMEOUT_MS;
  }

  /** Serving once `ruok` says imok and `srvr` reports a Mode: that Mode. */
  _probeReady() {
    return probeMode(this.port, this.tlsOnly);
  }

  // waitReady(), isRunning(), kill(), stop() (SIGTERM, 10 s grace, SIGKILL; removes the data dir
  // if we created it), restart(), detach() (leave it running for `node scripts/zk.js stop
  // <pid>`) and logTail(): ServerProcess.

  /** Current Mode from `srvr` (null when not serving). */
  mode() {
    return probeMode(this.port, this.tlsOnly);
  }

  fourLetter(cmd) {
    return fourLetter(this.port, cmd, HOST, 3000, this.tlsOnly);
  }

  mntr() {
    return mntr(this.port, HOST, this.tlsOnly);
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

/** zoo.cfg lines of a TLS server (without its ports): who must show a certificate, the stores. */
function tlsServerConfig(tls, files) {
  return { 'ssl.clientAuth': tls.clientAuth || 'need', ...files.config };
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
 * tls.only: true leaves out the plaintext port: `connect`/`port` are the TLS port then. tls.files:
 * the result of makeTlsFiles(dir) to use instead of fresh certificates (one CA for many servers).
 * containerCheckIntervalMs: how often the server deletes empty container nodes and expired TTL
 * nodes (`-Dznode.container.checkIntervalMs`, a JVM property, not a zoo.cfg key; the server's
 * default is 60 s, so a TTL node outlives a test without it). TTL nodes also need
 * `extraConfig: { extendedTypesEnabled: true }` (else creating one is UNIMPLEMENTED).
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
  containerCheckIntervalMs,
} = {}) {
  findZooKeeper();
  const ownsDataDir = !dataDir;
  const dir = dataDir ? path.resolve(dataDir) : fs.mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX));
  const t0 = Date.now();
  const tlsFiles = tls ? tls.files || makeTlsFiles(path.join(dir, 'tls')) : null;
  const tlsOnly = tls && tls.only ? { ca: tlsFiles.ca, cert: tlsFiles.cert, key: tlsFiles.key } : undefined;
  const securePort = tls && !tlsOnly ? await freePort() : undefined;
  const tlsConfig = tls ? { ...(tlsOnly ? {} : { secureClientPort: securePort, secureClientPortAddress: HOST }), ...tlsServerConfig(tls, tlsFiles) } : {};
  for (let attempt = 1; ; attempt++) {
    const server = new ZkServer({
      tickTime,
      forceSync,
      minSessionTimeout,
      maxSessionTimeout,
      extraConfig: { ...tlsConfig, ...extraConfig },
      jvmFlags: [
        ...authJvmFlags(auth, dir),
        ...(tls ? ['-Dzookeeper.serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory'] : []),
        ...(containerCheckIntervalMs ? [`-Dznode.container.checkIntervalMs=${Number(containerCheckIntervalMs)}`] : []),
      ],
      extraClasspath: tls ? nettyJars() : [],
      tlsOnly,
      port: port || (await freePort()),
      dataDir: dir,
      ownsDataDir,
      logDir,
    });
    server._spawn();
    try {
      await server.waitReady({ timeoutMs: STANDALONE_TIMEOUT_MS });
      if (tls) {
        server.secureConnect = tlsOnly ? server.connect : `${HOST}:${securePort}`;
        server.tls = { ca: tlsFiles.ca, cert: tlsFiles.cert, key: tlsFiles.key, otherCa: tlsFiles.otherCa, paths: tlsFiles.paths };
      }
      log(`started standalone ${server.connect}${tls ? ` (TLS ${server.secureConnect})` : ''} pid ${server.pid} in ${seconds(t0)}`);
      return server;
    } catch (err) {
      // Another process may have grabbed the port between our probe and the JVM's bind.
      const retry = !port && attempt < 3 && isBindFailure(server);
      await server._discard();
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
 * one is leader. Returns { connect, servers, stop(), leader(), waitForQuorum() }. auth and tls
 * as for startStandalone, except that tls requires only: true (every node's client port is a
 * TLS one; the ensemble gets `tls` { ca, cert, key, otherCa }); quorum traffic stays plaintext.
 */
async function startEnsemble({ size = 3, tickTime = 2000, forceSync = false, minSessionTimeout, maxSessionTimeout, extraConfig, auth, tls } = {}) {
  if (!Number.isInteger(size) || size < 1) throw new Error(`ensemble size must be a positive integer, got ${size}`);
  if (tls && !tls.only) throw new Error('startEnsemble: tls needs only: true (TLS-only client ports)');
  findZooKeeper();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX));
  const rootResource = ownDir(root);
  const t0 = Date.now();
  const tlsFiles = tls ? tls.files || makeTlsFiles(path.join(root, 'tls')) : null;
  const secured = {
    extraConfig: { ...(tls ? tlsServerConfig(tls, tlsFiles) : {}), ...extraConfig },
    jvmFlags: [...authJvmFlags(auth, root), ...(tls ? ['-Dzookeeper.serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory'] : [])],
    extraClasspath: tls ? nettyJars() : [],
    tlsOnly: tls ? { ca: tlsFiles.ca, cert: tlsFiles.cert, key: tlsFiles.key } : undefined,
  };
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
          ...secured,
          peers,
          port: p.clientPort,
          dataDir: path.join(root, `node${p.id}`),
          ownsDataDir: false, // the ensemble owns the root; a node's stop() keeps its data
        })
    );
    const ensemble = makeEnsemble(root, servers, rootResource);
    if (tlsFiles) ensemble.tls = { ca: tlsFiles.ca, cert: tlsFiles.cert, key: tlsFiles.key, otherCa: tlsFiles.otherCa };
    for (const s of servers) s._spawn();
    try {
      await ensemble.waitForQuorum({ timeoutMs: ENSEMBLE_TIMEOUT_MS, all: true });
      const leader = await ensemble.leader();
      log(`started ensemble ${ensemble.connect} pids ${servers.map((s) => s.pid).join(',')} leader node ${leader.id} in ${seconds(t0)}`);
      return ensemble;
    } catch (err) {
      if (!(await discardGroup({ members: servers, attempt, isBindFailure, memberDir: (s) => s.dataDir, root, rootResource }))) throw err;
      log('an ensemble port was taken, retrying on other ones');
    }
  }
}

// A one-server "ensemble" runs in standalone mode (standaloneEnabled defaults to true).
const isLeaderMode = (mode) => mode === 'leader' || mode === 'standalone';

function makeEnsemble(root, servers, rootResource) {
  const ensemble = {
    connect: servers.map((s) => s.connect).join(','),
    servers,
    dataDir: root,
    // stop(): stop every node (SIGTERM, 10 s grace), then remove the data (unless
    // ZKTX_KEEP_ZK_DATA); idempotent. detach(): leave every node running when this process
    // exits (the CLI's `start`).
    ...groupLifecycle(() => ensemble, servers, root, rootResource, (s) => s.stop()),
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
  const argv = cmdlineOf(pid);
  if (!argv) return { isZk: undefined }; // no /proc (not Linux) or process gone
  if (!argv.includes(MAIN_CLASS)) return { isZk: false };
  return { isZk: true, cfgPath: argv[argv.length - 1] };
}

/**
 * Stop a ZooKeeper server this process did not start (the CLI's `stop`): SIGTERM, 10 s grace,
 * SIGKILL; refuses a PID that is not a ZooKeeper server. Then removes its data dir if it is one
 * of ours (a zktx-zk-* temp dir). Resolves once the process is gone.
 */
async function stopZooKeeperPid(pid) {
  const info = await stopPid(pid);
  cleanupDataDirOf(info.cfgPath);
}

async function stopPid(pid) {
  const info = zooKeeperCfgOfPid(pid);
  if (info.isZk === false) throw new Error(`pid ${pid} is not a ZooKeeper server; not touching it`);
  await terminatePid(pid, STOP_GRACE_MS);
  return info;
}

/** Remove data dirs we created (under tmpdir, named zktx-zk-*) for a stopped server. */
function cleanupDataDirOf(cfgPath) {
  if (!cfgPath || keepData()) return;
  // a standalone's <tmp>/zktx-zk-X, or an ensemble node's <tmp>/zktx-zk-X/nodeN (the root
  // goes with its last node)
  removeOurTempDir(path.dirname(path.resolve(cfgPath)), DIR_PREFIX, /^node\d+$/);
}

module.exports = {
  findZooKeeper,
  startStandalone,
  startEnsemble,
  fourLetter,
  makeTlsFiles,
  mntr,
  superDigest,
  ZkServer,
  stopZooKeeperPid,
  MAIN_CLASS,
};
