'use strict';
// Shared bits of the fault-injection tests: polling with deadlines, a recorder of session
// states, worker processes that talk JSON lines, and timing reports.
const { spawn } = require('node:child_process');
const readline = require('node:readline');

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `cond` (may be async) every `everyMs` until it returns truthy; throws after timeoutMs. */
async function waitFor(cond, { timeoutMs = 10000, everyMs = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Resolves `promise`, or rejects after timeoutMs saying what we were waiting for. */
function within(promise, timeoutMs, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Records every 'state' event of a client with its time. */
function recordStates(zk) {
  const events = [];
  zk.on('state', (state) => events.push({ state, t: now() }));
  return {
    events,
    names: () => events.map((e) => e.state),
    /** Waits for `state` seen after index `from` (default: any time); resolves its event. */
    waitFor(state, { from = 0, timeoutMs = 10000 } = {}) {
      return waitFor(() => events.slice(from).find((e) => e.state === state), { timeoutMs, what: `state ${state} (seen: ${events.map((e) => e.state).join(',') || 'none'})` });
    },
  };
}

/** Whether `names` contains `seq` as a subsequence (in order, gaps allowed). */
function inOrder(names, seq) {
  let i = 0;
  for (const n of names) if (n === seq[i]) i += 1;
  return i === seq.length;
}

/**
 * A Node worker process speaking JSON lines on stdout. `next(pred)` resolves the next line
 * matching `pred` (lines are kept, none is lost between calls).
 */
function spawnWorker(script, args, options) {
  return spawnProcess(process.execPath, [script, ...args], options);
}

/** Any program as a worker (`spawnWorker`): a line that is not JSON arrives as `{ text }`. */
function spawnProcess(command, args, { env = {} } = {}) {
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines = [];
  const waiters = [];
  let stderr = '';
  let exited = null;
  const exitWaiters = [];
  child.stderr.on('data', (d) => { stderr += d; });
  child.stdin.on('error', () => {});
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      msg = { text: line };
    }
    msg.receivedAt = msg.receivedAt ?? now();
    lines.push(msg);
    for (const w of [...waiters]) {
      if (w.pred(msg)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(msg);
      }
    }
  });
  child.on('exit', (code, signal) => {
    exited = { code, signal };
    for (const w of exitWaiters.splice(0)) w(exited);
    for (const w of waiters.splice(0)) w.reject(new Error(`worker ${child.pid} exited (${signal || code}) before the expected line; stderr: ${stderr}`));
  });
  return {
    child,
    pid: child.pid,
    lines,
    get stderr() { return stderr; },
    get exited() { return exited; },
    next(pred = () => true, timeoutMs = 15000) {
      const seen = lines.find(pred);
      if (seen) return Promise.resolve(seen);
      if (exited) return Promise.reject(new Error(`worker ${child.pid} already exited (${exited.signal || exited.code}); stderr: ${stderr}`));
      return within(new Promise((resolve, reject) => waiters.push({ pred, resolve, reject })), timeoutMs, `a line from worker ${child.pid}`);
    },
    send(line) {
      if (!child.stdin.destroyed) child.stdin.write(`${line}\n`);
    },
    kill(signal = 'SIGKILL') {
      if (exited) return false;
      try {
        return process.kill(child.pid, signal);
      } catch {
        return false;
      }
    },
    waitExit(timeoutMs = 10000) {
      if (exited) return Promise.resolve(exited);
      return within(new Promise((resolve) => exitWaiters.push(resolve)), timeoutMs, `worker ${child.pid} to exit`);
    },
  };
}

/** Prints one measurement line (jest shows console output under the test file). */
function report(what, fields) {
  const text = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'number' ? Math.round(v) : v}`).join(' ');
  process.stdout.write(`[faults] ${what}: ${text}\n`);
}

const codeOf = (p) => p.then(() => 'resolved', (e) => e.code || e.message);

module.exports = { now, sleep, waitFor, within, recordStates, inOrder, spawnWorker, spawnProcess, report, codeOf };
