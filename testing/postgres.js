'use strict';
// Throwaway PostgreSQL clusters: `initdb` into a fresh temp dir, `postgres` on a free loopback
// port with its socket in that dir and `max_prepared_transactions > 0` (PREPARE TRANSACTION
// fails with the default 0), stopped by PID. Two clusters are two independent participants
// for two-phase commit tests.
//
//   const { startPostgres } = require('zktx/testing');
//   const pg = await startPostgres();
//   const client = new (require('pg').Client)(pg.config);   // or pg.connectionString
//   ...
//   await pg.kill();      // SIGKILL every process of the cluster (a crash)
//   await pg.restart();   // same port, same data: crash recovery, prepared transactions survive
//   await pg.stop();      // fast shutdown by PID, temp dir removed
//
// initdb and postgres refuse to run as root. Run as root (CI, containers), they run as the
// `postgres` OS user (Debian's package creates it; ZKTX_PG_USER picks another) through
// spawn's uid/gid, in a temp dir that user owns. Binaries: $PG_BIN, else
// /usr/lib/postgresql/<newest>/bin (Debian; not on PATH), else `initdb` on PATH.
//
// Durability: fsync is off by default (as forceSync=no for ZooKeeper). That loses nothing
// when processes die, kill() included, only on an OS crash, which tests do not simulate;
// `fsync: true` restores it. synchronous_commit stays on, so an acknowledged COMMIT or PREPARE
// survives kill().
const childProcess = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { HOST, freePort } = require('./ports');
const { log: logAs, sleep, seconds, keepData, pidAlive, signalPid, rmDir, tailFile, cmdlineOf, own, disown, ownDir } = require('./processes');
const { ServerProcess } = require('./server-process');

const DIR_PREFIX = 'zktx-pg-';
const DEBIAN_ROOT = '/usr/lib/postgresql';
const START_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 30_000;
const POLL_MS = 50;

const log = (msg) => logAs('pg', msg);

// ---------------------------------------------------------------------------------------------
// finding PostgreSQL

let cachedInstall = null;

function binDirHas(dir) {
  return ['initdb', 'postgres'].every((b) => fs.existsSync(path.join(dir, b)));
}

function versionOf(binDir) {
  const out = childProcess.execFileSync(path.join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' });
  const m = /(\d+)(?:\.(\d+))?/.exec(out);
  return { text: out.trim(), major: m ? Number(m[1]) : NaN };
}

/**
 * Locate PostgreSQL's server programs: $PG_BIN, else Debian's /usr/lib/postgresql/<newest
 * major>/bin, else the directory of `initdb` on PATH. Returns `{ binDir, version, major }`.
 */
function findPostgres() {
  if (cachedInstall) return cachedInstall;
  let binDir = null;
  if (process.env.PG_BIN) {
    binDir = path.resolve(process.env.PG_BIN);
    if (!binDirHas(binDir)) throw new Error(`PG_BIN=${process.env.PG_BIN} holds no initdb and postgres; fix or unset it`);
  }
  if (!binDir) {
    let majors = [];
    try {
      majors = fs.readdirSync(DEBIAN_ROOT).filter((n) => /^\d+$/.test(n)).sort((a, b) => Number(b) - Number(a));
    } catch {}
    binDir = majors.map((m) => path.join(DEBIAN_ROOT, m, 'bin')).find(binDirHas) || null;
  }
  if (!binDir) {
    for (const dir of (process.env.PATH || '').split(path.delimiter)) {
      if (dir && binDirHas(dir)) {
        binDir = path.dirname(fs.realpathSync(path.join(dir, 'initdb')));
        break;
      }
    }
  }
  if (!binDir) {
    throw new Error(
      'PostgreSQL not found. Install it with `apt-get install postgresql` (Debian/Ubuntu: programs in ' +
        '/usr/lib/postgresql/<version>/bin), or set PG_BIN to the directory holding initdb and postgres'
    );
  }
  const v = versionOf(binDir);
  cachedInstall = { binDir, version: v.text, major: v.major };
  return cachedInstall;
}

/** The OS user the server runs as: ourselves, or (as root) `postgres` / $ZKTX_PG_USER. */
let cachedUser = null;
function serverUser() {
  if (cachedUser) return cachedUser;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    cachedUser = { name: os.userInfo().username, uid: undefined, gid: undefined };
    return cachedUser;
  }
  const name = process.env.ZKTX_PG_USER || 'postgres';
  let uid;
  let gid;
  try {
    uid = Number(childProcess.execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    gid = Number(childProcess.execFileSync('id', ['-g', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    throw new Error(
      `running as root, and there is no OS user ${name} to run PostgreSQL as (initdb and postgres refuse root): ` +
        "install Debian's postgresql package (it creates the user), create one, or set ZKTX_PG_USER"
    );
  }
  if (uid === 0) throw new Error(`ZKTX_PG_USER=${name} is root; PostgreSQL refuses to run as root`);
  cachedUser = { name, uid, gid };
  return cachedUser;
}

/** Options for spawn/execFile that run a program as the server's user. */
function asServerUser(extra = {}) {
  const user = serverUser();
  const env = {
    PATH: process.env.PATH || '/usr/bin:/bin',
    LANG: 'C',
    LC_ALL: 'C',
    TZ: process.env.TZ || 'UTC',
  };
  if (user.uid !== undefined) {
    env.USER = env.LOGNAME = user.name;
    return { uid: user.uid, gid: user.gid, env, ...extra };
  }
  return { env: { ...process.env, LANG: 'C', LC_ALL: 'C' }, ...extra };
}

function chownToServerUser(target) {
  const user = serverUser();
  if (user.uid !== undefined) fs.chownSync(target, user.uid, user.gid);
}

function run(file, args, opts) {
  return new Promise((resolve, reject) => {
    childProcess.execFile(file, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts }, (err, stdout, stderr) => {
      if (err) {
        err.message = `${path.basename(file)} ${args.join(' ')}: ${err.message.trim()}${stderr ? `\n${stderr.trim()}` : ''}`;
        err.stdout = stdout;
        err.stderr = stderr;
        reject(err);
      } else {
        resolve(stdout);
      }
    });
  });
}

/**
 * Live processes of a cluster, from /proc: the postmaster (its argv holds `-D <dataDir>`, as a
 * child's does right after fork) and its children, whose process titles start with
 * `postgres: <cluster_name>: ` (checkpointer, backends, ...). Not by parent PID: the children
 * of a killed postmaster are reparented, and each calls setsid(), so no process-group signal
 * reaches them either. They exit by themselves once the postmaster is gone, but a crash test
 * wants them gone at once, and a restart needs them gone (they hold the shared memory).
 */
function clusterProcesses(dataDir, clusterName) {
  const found = [];
  let entries;
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return found; // not Linux
  }
  const title = `postgres: ${clusterName}: `;
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const argv = cmdlineOf(pid);
    if (!argv) continue;
    const line = argv.join(' ');
    if ((line.startsWith(title) || line.includes(` -D ${dataDir} `)) && pidAlive(pid)) found.push(pid);
  }
  return found;
}

/** Wait until none of `pids` is alive (zombies count as gone); false on timeout. */
async function waitAllGone(pids, ms) {
  const deadline = Date.now() + ms;
  while (pids.some(pidAlive)) {
    if (Date.now() > deadline) return false;
    await sleep(POLL_MS);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// initdb once per process

// initdb costs ~2.5 s (mostly bootstrapping the catalog); a copy of its result ~0.5 s. The
// first cluster of a process runs initdb into a template dir and every cluster gets a copy,
// so two clusters started at once pay for one initdb. The template is named after the process,
// so the next jest test file in the same worker (a fresh copy of this module) reuses it; the
// module instance that made it removes it at exit.
let template = null; // Promise<dataDir>

function initdb(bin, dataDir, cwd) {
  // -N: no fsync of the new files (throwaway); C locale: same result whatever the caller's env
  return run(path.join(bin.binDir, 'initdb'), ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-locale', '-N', '--no-instructions'], asServerUser({ cwd }));
}

function templateDataDir(bin) {
  if (!template) {
    template = (async () => {
      const shared = path.join(os.tmpdir(), `${DIR_PREFIX}template-${bin.major}-${process.pid}`);
      let dir = shared;
      try {
        fs.mkdirSync(shared, { mode: 0o700 });
      } catch (err) {
        if (err.code !== 'EEXIST') throw err;
        if (fs.existsSync(path.join(shared, 'ready'))) return path.join(shared, 'data');
        dir = fs.mkdtempSync(path.join(os.tmpdir(), `${DIR_PREFIX}template-`)); // being made: make our own
      }
      ownDir(dir);
      chownToServerUser(dir);
      fs.chmodSync(dir, 0o700);
      try {
        await initdb(bin, path.join(dir, 'data'), dir);
      } catch (err) {
        template = null;
        if (!keepData()) rmDir(dir);
        throw new Error(`initdb failed: ${err.message}`);
      }
      fs.writeFileSync(path.join(dir, 'ready'), '');
      return path.join(dir, 'data');
    })();
  }
  return template;
}

// ---------------------------------------------------------------------------------------------
// a cluster

/** One throwaway PostgreSQL cluster (a postmaster and its backends) and its temp dir. */
class PgServer extends ServerProcess {
  constructor(opts) {
    super({
      who: 'pg',
      logPath: path.join(opts.dir, 'postgres.log'),
      ownedDir: opts.ownsDir ? opts.dir : null,
      stopGraceMs: STOP_GRACE_MS,
      pollMs: POLL_MS,
      exitPollMs: POLL_MS,
    });
    this.host = HOST;
    this.port = opts.port;
    this.user = 'postgres'; // the database superuser (initdb -U), not the OS user
    this.database = 'postgres';
    this.dir = opts.dir; // temp dir: data/, the socket, the log
    this.dataDir = path.join(opts.dir, 'data');
    this.socketDir = opts.dir;
    this.settings = opts.settings;
    this.clusterName = path.basename(opts.dir); // in every process title: see clusterProcesses
    this.connectionString = `postgresql://${this.user}@${HOST}:${this.port}/${this.database}`;
    /** For the `pg` package: `new pg.Client(server.config)`, `new pg.Pool({ ...server.config, max: 4 })`. */
    this.config = { host: HOST, port: this.port, user: this.user, database: this.database };
    this._bin = opts.bin;
  }

  describe() {
    return `PostgreSQL on port ${this.port}`;
  }

  restartLabel() {
    return `${this.host}:${this.port}`;
  }

  _spawn() {
    const args = ['-D', this.dataDir, '-c', `cluster_name=${this.clusterName}`];
    for (const [k, v] of Object.entries(this.settings)) args.push('-c', `${k}=${v}`);
    // detached (ServerProcess): own session and process group, so a Ctrl-C aimed at a test run
    // does not hit the postmaster (it would take it as a fast shutdown request)
    this._launch(path.join(this._bin.binDir, 'postgres'), args, { cwd: this.dir, banner: `postgres on port ${this.port}` });
  }

  /** postgres refuses to run as root: as root, it runs as the server's OS user. */
  _spawnOptions(options) {
    return asServerUser(options);
  }

  _reaperMatch() {
    return this.dataDir;
  }

  /** SIGQUIT first (immediate shutdown: the postmaster SIGQUITs its children), then SIGKILL. */
  _reaperQuit() {
    return true;
  }

  /**
   * Last-resort cleanup at exit: SIGKILL the postmaster and its children (then ServerProcess
   * removes the temp dir). The watchdog, a shell script, SIGQUITs the postmaster instead: it
   * then kills its children.
   */
  _killSync() {
    if (this.pid) signalPid(this.pid, 'SIGSTOP'); // no new children while we look
    for (const p of this.processes()) signalPid(p, 'SIGKILL');
  }

  _spawnError(err) {
    return `could not start postgres: ${err.message}`;
  }

  _readyTimeoutMs() {
    return START_TIMEOUT_MS;
  }

  /** Ready once the postmaster says it accepts connections (postmaster.pid status `ready`). */
  _probeReady() {
    try {
      // what pg_ctl -w reads: line 1 the postmaster's PID (a stale file after a crash names
      // the old one), line 8 its status
      const lines = fs.readFileSync(path.join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n');
      return Number(lines[0]) === this.pid && (lines[7] || '').trim() === 'ready';
    } catch {
      return false;
    }
  }

  /** PIDs of the cluster's live processes: the postmaster and its children (Linux only). */
  processes() {
    return clusterProcesses(this.dataDir, this.clusterName);
  }

  /**
   * Signal every process of the cluster: 'SIGKILL' (default) is a crash (the postmaster is
   * frozen first so it forks nothing meanwhile) and resolves once all are gone; 'SIGSTOP' /
   * 'SIGCONT' freeze and thaw it. The data stays: restart() runs crash recovery on it.
   * Resolves false if there was no process to signal.
   */
  async kill(signal = 'SIGKILL') {
    if (signal === 'SIGKILL' && this.pid) signalPid(this.pid, 'SIGSTOP');
    const pids = this.processes();
    for (const p of pids) signalPid(p, signal);
    if (signal === 'SIGKILL') await waitAllGone(pids, 10_000);
    return pids.length > 0;
  }

  /**
   * stop() (ServerProcess) shuts down fast: SIGINT to the postmaster (sessions are
   * disconnected, prepared transactions stay), up to 30 s, then immediate (SIGQUIT), then
   * SIGKILL. So does restart() first, for a running cluster: after kill() a restart is crash
   * recovery (prepared transactions come back in pg_prepared_xacts).
   */
  async _shutdown() {
    if (!this.pid) return;
    if (this.isRunning()) {
      for (const p of this.processes()) signalPid(p, 'SIGCONT'); // a frozen cluster cannot shut down
      signalPid(this.pid, 'SIGINT');
      if (!(await this._waitExit(this._stopGraceMs))) {
        signalPid(this.pid, 'SIGQUIT');
        if (!(await this._waitExit(5000))) await this.kill('SIGKILL');
      }
    }
    // children of a postmaster that died (not by kill()) exit once they notice; a restart
    // needs them gone
    if (!(await waitAllGone(this.processes(), 10_000))) await this.kill('SIGKILL');
  }

  async _readyToRestart() {
    await this._shutdown();
    // The old postmaster counts as gone once a zombie (pidAlive), but until Node has reaped it
    // its PID still answers kill(pid, 0), and a new postmaster that finds that PID in the stale
    // postmaster.pid refuses to start ("lock file already exists"): seen once under load.
    const deadline = Date.now() + 5000;
    while (this._child && !this._exit && Date.now() < deadline) await sleep(this._exitPollMs);
  }

  /**
   * Run SQL with psql (no npm dependency) as the database superuser; resolves psql's output:
   * unaligned, tuples only, `|` between columns, one row a line, trimmed. Rejects on the first
   * error (ON_ERROR_STOP).
   */
  async psql(sql, { database = this.database } = {}) {
    const psql = path.join(this._bin.binDir, 'psql');
    const file = fs.existsSync(psql) ? psql : 'psql';
    const out = await run(file, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', HOST, '-p', String(this.port), '-U', this.user, '-d', database, '-c', sql], {
      env: { ...process.env, PGCONNECT_TIMEOUT: '10' },
    });
    return out.trim();
  }

  /**
   * Run one query with the `pg` package (an optional peer dependency) on a fresh connection;
   * resolves pg's result (`rows`, `rowCount`, ...).
   */
  async query(sql, params, { database = this.database } = {}) {
    let pg;
    try {
      pg = require('pg');
    } catch {
      throw new Error('query() needs the `pg` package (npm install pg); psql() works without it');
    }
    const client = new pg.Client({ ...this.config, database });
    await client.connect();
    try {
      return await client.query(sql, params);
    } finally {
      await client.end();
    }
  }

  /** The cluster's prepared transactions (pg_prepared_xacts): [{ gid, database, owner, prepared }]. */
  async preparedTransactions() {
    const out = await this.psql(
      "SELECT json_agg(json_build_object('gid', gid, 'database', database, 'owner', owner, 'prepared', prepared) ORDER BY gid) FROM pg_prepared_xacts"
    );
    return out ? JSON.parse(out) : [];
  }
}

function isBindFailure(server) {
  return /could not bind|Address already in use|could not create any TCP\/IP sockets/.test(tailFile(server.logPath, 50));
}

/**
 * Start a throwaway cluster on a free loopback port; resolves once it accepts connections.
 * Options: maxPreparedTransactions (20), port (a free one), fsync (false), settings ({ name:
 * value } server settings, e.g. { max_connections: 50 }). Superuser `postgres`, trust
 * authentication on loopback only, database `postgres`.
 */
async function startPostgres({ maxPreparedTransactions = 20, port, fsync = false, settings = {} } = {}) {
  if (!Number.isInteger(maxPreparedTransactions) || maxPreparedTransactions < 0) {
    throw new Error(`maxPreparedTransactions must be a non-negative integer, got ${maxPreparedTransactions}`);
  }
  const bin = findPostgres();
  serverUser();
  const t0 = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX));
  // until the server object owns it: removed at exit if initdb fails or we die meanwhile
  const pending = { reaperEntry: () => ({ pid: 0, quit: false, match: '-', dir }), killSync: () => keepData() || rmDir(dir) };
  own(pending);
  let server;
  try {
    chownToServerUser(dir);
    fs.chmodSync(dir, 0o700);
    // cp as the server's user: the copy is the server's, mode 0700 kept (postgres checks both)
    await run('cp', ['-a', await templateDataDir(bin), path.join(dir, 'data')], asServerUser({ cwd: dir }));
    const tInit = Date.now();
    for (let attempt = 1; ; attempt++) {
      const p = port || (await freePort());
      server = new PgServer({
        port: p,
        dir,
        ownsDir: true,
        bin,
        settings: {
          port: p,
          listen_addresses: HOST,
          unix_socket_directories: dir, // -c values are taken literally: no quotes
          max_prepared_transactions: maxPreparedTransactions,
          fsync: fsync ? 'on' : 'off',
          ...settings,
        },
      });
      server._spawn();
      try {
        await server.waitReady();
        break;
      } catch (err) {
        const retry = !port && attempt < 3 && isBindFailure(server);
        await server._discard();
        if (!retry) throw err;
        log(`port ${p} taken, retrying on another one`);
      }
    }
    log(`started ${HOST}:${server.port} pid ${server.pid} in ${seconds(t0)} (initdb or copy ${((tInit - t0) / 1000).toFixed(1)} s)`);
    return server;
  } catch (err) {
    if (!keepData()) rmDir(dir);
    throw err;
  } finally {
    disown(pending);
  }
}

// ---------------------------------------------------------------------------------------------
// stopping clusters we did not start in this process (CLI `stop`)

/** The data dir of a postmaster PID we could have started (`postgres -D <tmpdir>/zktx-pg-XXXXXX/data`), else null. */
function ourDataDirOfPid(pid) {
  const argv = cmdlineOf(pid);
  if (!argv || path.basename(argv[0]) !== 'postgres') return null;
  const i = argv.indexOf('-D');
  if (i < 0 || !argv[i + 1]) return null;
  const dataDir = path.resolve(argv[i + 1]);
  const dir = path.dirname(dataDir);
  const tmp = fs.realpathSync(os.tmpdir());
  return path.basename(dataDir) === 'data' && path.dirname(dir) === tmp && path.basename(dir).startsWith(DIR_PREFIX) ? dataDir : null;
}

/** Is `pid` a postmaster of a throwaway cluster (one startPostgres made)? */
function isOurPostmaster(pid) {
  return ourDataDirOfPid(pid) !== null;
}

/**
 * Stop a throwaway cluster this process did not start (the CLI's `stop`): fast shutdown of
 * the postmaster, then its temp dir is removed. Refuses any other PID.
 */
async function stopPostgresPid(pid) {
  const dataDir = ourDataDirOfPid(pid);
  if (!dataDir) throw new Error(`pid ${pid} is not a postmaster of a zktx throwaway cluster; not touching it`);
  const clusterName = path.basename(path.dirname(dataDir));
  for (const p of clusterProcesses(dataDir, clusterName)) signalPid(p, 'SIGCONT');
  signalPid(pid, 'SIGINT');
  if (!(await waitAllGone([pid], STOP_GRACE_MS))) {
    signalPid(pid, 'SIGSTOP');
    const all = clusterProcesses(dataDir, clusterName);
    for (const p of all) signalPid(p, 'SIGKILL');
    await waitAllGone(all, 10_000);
  }
  await waitAllGone(clusterProcesses(dataDir, clusterName), 10_000);
  if (!keepData()) rmDir(path.dirname(dataDir));
}

module.exports = { startPostgres, findPostgres, PgServer, isOurPostmaster, stopPostgresPid };
