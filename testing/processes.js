'use strict';
// The server processes and temp dirs this Node process owns, and how they die with it.
//
// Servers (ZooKeeper JVMs, PostgreSQL postmasters) are processes we spawned; we only ever
// signal them by PID (a PostgreSQL cluster: its postmaster's PID and its children's). Whatever
// is still registered here when the process exits is SIGKILLed and its temp dir removed:
// - synchronously from process 'exit' (and from SIGINT/SIGTERM/SIGHUP when nobody else
//   handles them);
// - by a detached watchdog `sh` when the process dies in a way that skips 'exit' (SIGKILL, a
//   hard crash, or a jest sandbox, whose `process` is a copy that never emits 'exit').
//
// A resource registers itself with `own(resource)`; it must have `reaperEntry()` returning
// `{ pid, quit, match, dir }` (pid 0: a dir only; quit: SIGQUIT first, up to 5 s before SIGKILL,
// for a PostgreSQL postmaster, which then kills its children; match: a string the PID's /proc
// cmdline must contain, so a recycled PID is never hit; dir: removed afterwards, or null) and
// `killSync()`.
const childProcess = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Progress messages on stderr, prefixed by who speaks ('zk', 'pg'); ZKTX_ZK_QUIET=1 silences them. */
function log(who, msg) {
  if (!process.env.ZKTX_ZK_QUIET) process.stderr.write(`${who}: ${msg}\n`);
}

function seconds(sinceMs) {
  return `${((Date.now() - sinceMs) / 1000).toFixed(1)} s`;
}

/** ZKTX_KEEP_ZK_DATA=1 keeps data dirs (ZooKeeper's and PostgreSQL's) for post-mortems. */
function keepData() {
  const v = process.env.ZKTX_KEEP_ZK_DATA;
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
}

/**
 * Is a process with this PID alive? (EPERM: it exists but is not ours to signal.) A zombie is
 * not: it waits only for a parent (not us, for a server started by another process) to reap it.
 */
function pidAlive(pid) {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return err.code === 'EPERM';
  }
  try {
    return !/^State:\s*Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/** Signal a PID (negative: a process group); false if it is gone. */
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
    log('testing', `could not remove ${dir}: ${err.message}`);
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

/**
 * Install missing server packages with apt-get (Debian/Ubuntu), its output on stderr, when
 * running as root; false (nothing done) otherwise. `what` names the missing server.
 */
function aptInstallAsRoot(who, what, packages) {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return false;
  const cmd = `apt-get update && apt-get install -y ${packages.join(' ')}`;
  log(who, `${what} not found; running: ${cmd}`);
  childProcess.execFileSync('sh', ['-c', cmd], {
    stdio: ['ignore', 2, 2],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return true;
}

/** The argv of a PID from /proc, or null (gone, or no /proc). */
function cmdlineOf(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return null;
  }
}

/**
 * Stop a server PID we did not spawn (the CLIs' `stop`): SIGTERM (and SIGCONT, for a frozen
 * one), up to `graceMs`, then SIGKILL; resolves once it is gone.
 */
async function terminatePid(pid, graceMs) {
  if (!pidAlive(pid)) return;
  signalPid(pid, 'SIGTERM');
  signalPid(pid, 'SIGCONT');
  const deadline = Date.now() + graceMs;
  while (pidAlive(pid) && Date.now() < deadline) await sleep(50);
  if (pidAlive(pid)) {
    signalPid(pid, 'SIGKILL');
    while (pidAlive(pid)) await sleep(50);
  }
}

/**
 * Remove a stopped server's dir if it is one the starters made: `<tmpdir>/<prefix>XXXXXX`
 * (a lone server's), or `<tmpdir>/<prefix>XXXXXX/<member>` with a name matching `memberName`
 * (a member of an ensemble or cluster); then that root too once nothing but `leftovers` (names
 * the root itself holds, like its certificates) is left in it. Anything else stays.
 */
function removeOurTempDir(dir, prefix, memberName, leftovers = []) {
  const tmp = fs.realpathSync(os.tmpdir());
  const parent = path.dirname(dir);
  if (parent === tmp && path.basename(dir).startsWith(prefix)) {
    rmDir(dir);
  } else if (path.dirname(parent) === tmp && path.basename(parent).startsWith(prefix) && memberName.test(path.basename(dir))) {
    rmDir(dir);
    try {
      if (fs.readdirSync(parent).every((n) => leftovers.includes(n))) rmDir(parent);
    } catch {}
  }
}

// ---------------------------------------------------------------------------------------------
// the registry

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

/** Everything this process started and has not stopped. */
const owned = new WatchedSet();

/** Register a resource (see the top of this file); idempotent. */
function own(resource) {
  if (!owned.has(resource)) owned.add(resource);
  installSignalHandlers();
}

/** Forget a resource: stopped, or handed over to outlive us. */
function disown(resource) {
  owned.delete(resource);
}

/** A temp dir (ensemble root, ...) to remove at exit unless disowned first. */
function ownDir(dir) {
  const resource = {
    dir,
    reaperEntry: () => ({ pid: 0, quit: false, match: '-', dir }),
    killSync() {
      if (!keepData()) rmDir(dir);
    },
  };
  own(resource);
  return resource;
}

/** Re-read a resource's entry (its PID changed after a restart). */
function refresh() {
  syncWatchdog();
}

const WATCHDOG_SCRIPT = `
parent=$1; file=$2; tab=$(printf '\\t')
alive() { kill -0 "$parent" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$parent/status" 2>/dev/null; }
while alive; do sleep 1; done
[ -f "$file" ] || exit 0
ours() { tr '\\000' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"; }
while IFS="$tab" read -r pid quit match dir; do
  [ "$pid" != 0 ] && ours "$pid" "$match" || continue
  if [ "$quit" = 1 ]; then
    kill -QUIT "$pid" 2>/dev/null
    n=0; while [ $n -lt 50 ] && ours "$pid" "$match"; do sleep 0.1; n=$((n + 1)); done
  fi
  kill -9 "$pid" 2>/dev/null
done < "$file"
sleep 1
while IFS="$tab" read -r pid quit match dir; do
  [ "$dir" = - ] || rm -rf -- "$dir"
done < "$file"
rm -f -- "$file"
`;
let watchdog = null; // { pid, file }

function syncWatchdog() {
  const lines = [];
  for (const resource of owned) {
    const e = resource.reaperEntry();
    if (!e) continue;
    const dir = e.dir && !keepData() ? e.dir : '-';
    if (!e.pid && dir === '-') continue;
    lines.push([e.pid || 0, e.quit ? 1 : 0, e.match || '-', dir].join('\t'));
  }
  try {
    if (lines.length === 0) {
      stopWatchdog();
      return;
    }
    if (!watchdog) {
      // random part: jest loads this module afresh for every test file in the same process
      const file = path.join(os.tmpdir(), `zktx-testing-${process.pid}-${crypto.randomBytes(4).toString('hex')}-watchdog.txt`);
      fs.writeFileSync(file, '');
      const child = childProcess.spawn('sh', ['-c', WATCHDOG_SCRIPT, 'zktx-testing-watchdog', String(process.pid), file], {
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
    log('testing', `watchdog: ${err.message}`);
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

/** Synchronous last-resort cleanup: SIGKILL every owned server, remove owned temp data. */
function killAllSync() {
  // servers first, dirs (ensemble roots) after: a dir may hold a server's data
  const all = [...owned].sort((a, b) => Number(Boolean(b.reaperEntry().pid)) - Number(Boolean(a.reaperEntry().pid)));
  for (const resource of all) {
    try {
      resource.killSync();
    } catch {}
  }
  owned.clear();
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

module.exports = {
  sleep,
  log,
  seconds,
  keepData,
  pidAlive,
  signalPid,
  rmDir,
  tailFile,
  cmdlineOf,
  aptInstallAsRoot,
  terminatePid,
  removeOurTempDir,
  own,
  disown,
  ownDir,
  refresh,
  killAllSync,
};
