'use strict';
// The lifecycle every throwaway server we spawn shares (ZkServer, EtcdMember, PgServer): spawn
// it detached with its output appended to a log, track its PID and exit, register it with
// processes.js so it dies with us, signal it by PID, stop it (grace, then SIGKILL), wait for it
// to exit, start it again on the same ports and data, leave it running (detach), and remove
// the temp dir we made for it.
//
// A subclass sets, in its constructor, through super(opts):
//   who        the progress-message prefix ('zk', 'etcd', 'pg');
//   logPath    where the server's stdout and stderr go;
//   ownedDir   the dir to remove on stop() and at exit (we created it), or null;
//   stopGraceMs  how long stop() waits after the polite signal (10 s);
//   pollMs     how often waitReady() probes; exitPollMs how often _waitExit() looks (50 ms);
// and defines:
//   describe()      'ZooKeeper 127.0.0.1:PORT': the subject of error messages;
//   restartLabel()  what a restart's progress message names;
//   _probeReady()   resolves truthy once the server serves (waitReady resolves it, true as undefined);
//   _readyTimeoutMs()  waitReady's default timeout;
//   _reaperMatch()  a string in the server's /proc cmdline (processes.js never kills a recycled PID);
//   _spawnError(err)  how a failed spawn is told;
//   _spawn()        builds the command and calls _launch(file, args, { cwd, banner }).
// A server that dies in a way of its own (PostgreSQL: a postmaster and its children) overrides
// kill(), _shutdown(), _killSync() and _readyToRestart().
const childProcess = require('node:child_process');
const fs = require('node:fs');

const { log, sleep, seconds, keepData, pidAlive, signalPid, rmDir, tailFile, own, disown, refresh } = require('./processes');

const STOP_GRACE_MS = 10_000;

class ServerProcess {
  constructor({ who, logPath, ownedDir = null, stopGraceMs = STOP_GRACE_MS, pollMs = 50, exitPollMs = 50 }) {
    this._who = who;
    this.logPath = logPath;
    this._ownedDir = ownedDir;
    this._stopGraceMs = stopGraceMs;
    this._pollMs = pollMs;
    this._exitPollMs = exitPollMs;
    this.pid = undefined;
    this.leaveRunning = false;
    this._child = null;
    this._exit = null; // {code, signal} or {error} of the current child once it exited
    this._stopping = null;
  }

  _log(msg) {
    log(this._who, msg);
  }

  /** Options for spawn (a subclass may run the server as another user). */
  _spawnOptions(options) {
    return options;
  }

  /**
   * Spawn `file args` in its own process group (a Ctrl-C aimed at a test run does not hit it),
   * stdout and stderr appended to logPath after a `==== zktx: starting <banner>` line; track
   * its PID and exit; own it (processes.js) unless it is to be left running.
   */
  _launch(file, args, { cwd, banner }) {
    const fd = fs.openSync(this.logPath, 'a');
    let child;
    try {
      fs.writeSync(fd, `\n==== zktx: starting ${banner} at ${new Date().toISOString()}\n`);
      child = childProcess.spawn(file, args, this._spawnOptions({ cwd, detached: true, stdio: ['ignore', fd, fd] }));
    } finally {
      fs.closeSync(fd);
    }
    child.unref();
    this._child = child;
    this._exit = null;
    this.pid = child.pid;
    child.on('error', (err) => {
      if (this._child === child) this._exit = { error: err };
    });
    child.on('exit', (code, signal) => {
      if (this._child === child) this._exit = { code, signal };
    });
    if (!this.leaveRunning) own(this);
    refresh(); // the PID changed on a restart
  }

  /** What processes.js kills and removes if this process dies without stopping the server. */
  reaperEntry() {
    if (this.leaveRunning || !this.pid) return null;
    return { pid: this.pid, quit: this._reaperQuit(), match: this._reaperMatch(), dir: this._ownedDir };
  }

  /** SIGQUIT before SIGKILL in the watchdog (a PostgreSQL postmaster then kills its children). */
  _reaperQuit() {
    return false;
  }

  /** Last-resort cleanup at exit: SIGKILL, remove the dir if we created it. */
  killSync() {
    if (this.leaveRunning) return;
    this._killSync();
    if (this._ownedDir && !keepData()) rmDir(this._ownedDir);
  }

  _killSync() {
    if (this.pid && pidAlive(this.pid)) signalPid(this.pid, 'SIGKILL');
  }

  /** Leave the server running when this process exits (the CLIs' `start`). */
  detach() {
    this.leaveRunning = true;
    disown(this);
    return this;
  }

  _exitDescription() {
    const e = this._exit;
    if (!e) return 'running';
    if (e.error) return this._spawnError(e.error);
    return e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
  }

  /** Wait until _probeReady() says the server serves; resolves what it said (unless just true). */
  async waitReady({ timeoutMs = this._readyTimeoutMs() } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this._exit) throw new Error(`${this.describe()} ${this._exitDescription()}; log ${this.logPath}:\n${tailFile(this.logPath)}`);
      const ready = await this._probeReady();
      if (ready) return ready === true ? undefined : ready; // ZooKeeper's Mode; nothing for a plain true
      if (Date.now() > deadline) {
        throw new Error(`${this.describe()} (pid ${this.pid}) not ready after ${timeoutMs / 1000} s; log ${this.logPath}:\n${tailFile(this.logPath)}`);
      }
      await sleep(this._pollMs);
    }
  }

  /** Is the server process alive (a SIGSTOPped one counts as alive)? */
  isRunning() {
    if (this._child && this._exit) return false;
    return pidAlive(this.pid);
  }

  /** Send a signal ('SIGKILL', 'SIGSTOP', 'SIGCONT', ...) to the server's PID; false if it is gone. */
  kill(signal = 'SIGTERM') {
    if (!this.pid) return false;
    return signalPid(this.pid, signal);
  }

  /** Wait until the process is gone; false after `ms`. */
  async _waitExit(ms) {
    const deadline = Date.now() + ms;
    while (this.isRunning()) {
      if (Date.now() > deadline) return false;
      await sleep(this._exitPollMs);
    }
    return true;
  }

  /** After a failed start: SIGKILL, wait until gone, forget it (the caller removes its data). */
  async _discard() {
    await this.kill('SIGKILL');
    await this._waitExit(5000);
    disown(this);
  }

  /**
   * Stop the server (_shutdown), forget it, and remove the dir if we created it unless
   * `keepData` or env ZKTX_KEEP_ZK_DATA. Idempotent.
   */
  stop(options = {}) {
    if (!this._stopping) {
      this._stopping = (async () => {
        await this._shutdown(options);
        disown(this);
        if (this._ownedDir && !options.keepData && !keepData()) rmDir(this._ownedDir);
      })();
    }
    return this._stopping;
  }

  /**
   * SIGTERM (and SIGCONT: a frozen process cannot act on it), up to `graceMs`, then SIGKILL;
   * graceMs 0 is a plain SIGKILL.
   */
  async _shutdown({ graceMs = this._stopGraceMs } = {}) {
    if (!this.isRunning()) return;
    this.kill(graceMs > 0 ? 'SIGTERM' : 'SIGKILL');
    this.kill('SIGCONT');
    if (!(await this._waitExit(graceMs))) {
      this.kill('SIGKILL');
      await this._waitExit(5000);
    }
  }

  /** Before a restart: the old process must be gone (it may still be dying of a kill()). */
  async _readyToRestart() {
    if (!(await this._waitExit(this._stopGraceMs))) {
      throw new Error(`${this.describe()} pid ${this.pid} is still running; kill or stop it before restart()`);
    }
  }

  /**
   * Start the server again on the same ports and data (after kill('SIGKILL') or stop()), and
   * wait until it serves (`wait: false` to return right after spawning).
   */
  async restart({ wait = true, timeoutMs } = {}) {
    if (this._stopping) await this._stopping;
    await this._readyToRestart();
    this._stopping = null;
    const t0 = Date.now();
    this._spawn();
    if (wait) {
      await this.waitReady(timeoutMs ? { timeoutMs } : undefined);
      this._log(`restarted ${this.restartLabel()} pid ${this.pid} in ${seconds(t0)}`);
    }
    return this;
  }

  logTail(lines = 40) {
    return tailFile(this.logPath, lines);
  }
}

/**
 * stop() and detach() of a group of servers (a ZooKeeper ensemble, an etcd cluster) whose data
 * lives under `root`, a temp dir owned through `rootResource` (processes.js ownDir). stop():
 * every member's stopMember(m), then root removed (unless ZKTX_KEEP_ZK_DATA); idempotent.
 * detach(): every member left running when this process exits, root too; returns group().
 */
function groupLifecycle(group, members, root, rootResource, stopMember) {
  let stopping = null;
  return {
    stop() {
      if (!stopping) {
        stopping = (async () => {
          await Promise.all(members.map(stopMember));
          if (!keepData()) rmDir(root);
          disown(rootResource);
        })();
      }
      return stopping;
    },
    detach() {
      for (const m of members) m.detach();
      disown(rootResource);
      return group();
    },
  };
}

/**
 * After a group failed to start: discard every member. Resolves true when another try on other
 * ports is worth it (attempt < 3 and a member's log says it could not bind: another process
 * took a port between our probe and its bind), the members' dirs (memberDir(m)) then removed
 * for the retry; else false, root removed (unless ZKTX_KEEP_ZK_DATA) and forgotten.
 */
async function discardGroup({ members, attempt, isBindFailure, memberDir, root, rootResource }) {
  const retry = attempt < 3 && members.some(isBindFailure);
  await Promise.all(members.map((m) => m._discard()));
  if (!retry) {
    if (!keepData()) rmDir(root);
    disown(rootResource);
    return false;
  }
  for (const m of members) rmDir(memberDir(m));
  return true;
}

module.exports = { ServerProcess, groupLifecycle, discardGroup, STOP_GRACE_MS };
