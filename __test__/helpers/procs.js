'use strict';
// Runs worker scripts in separate Node processes with a synchronized start: every worker
// prints "ready", and only when all are ready does each get "go" on stdin.
const { spawn } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');

/**
 * @param {string} script path of the worker script
 * @param {number} n how many processes
 * @param {object} [opts] { args: (i) => string[], env: object, timeoutMs }
 * @returns {Promise<Array<{ code: number, signal: string|null, lines: any[], stderr: string }>>}
 */
function runWorkers(script, n, opts = {}) {
  const timeoutMs = opts.timeoutMs || 120000;
  return new Promise((resolve, reject) => {
    const results = [];
    let ready = 0;
    let done = 0;
    const children = [];
    const timer = setTimeout(() => {
      for (const c of children) c.kill('SIGKILL');
      reject(new Error(`workers did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    for (let i = 0; i < n; i++) {
      const child = spawn(process.execPath, [script, ...(opts.args ? opts.args(i) : [String(i)])], {
        env: { ...process.env, ...(opts.env || {}), WORKER_INDEX: String(i) },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      children.push(child);
      const result = { code: null, signal: null, lines: [], stderr: '', pid: child.pid };
      results.push(result);
      child.stderr.on('data', (d) => { result.stderr += d; });
      readline.createInterface({ input: child.stdout }).on('line', (line) => {
        if (line === 'ready') {
          ready += 1;
          if (ready === n) for (const c of children) c.stdin.end('go\n');
          return;
        }
        try {
          result.lines.push(JSON.parse(line));
        } catch {
          result.lines.push(line);
        }
      });
      child.on('exit', (code, signal) => {
        result.code = code;
        result.signal = signal;
        done += 1;
        if (done === n) {
          clearTimeout(timer);
          resolve(results);
        }
      });
    }
  });
}

/** In a worker: announce readiness and wait for "go". */
function waitForGo() {
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin });
    rl.on('line', (line) => {
      if (line === 'go') {
        rl.close();
        process.stdin.destroy(); // an open stdin would keep the worker alive after its work
        resolve();
      }
    });
    process.stdout.write('ready\n');
  });
}

const workerPath = (name) => path.join(__dirname, '..', 'workers', name);

/**
 * Runs `code` in a fresh node process, where `zktx` names this checkout; resolves with its exit
 * code, signal and output (stdout and stderr), or fails after 30 s.
 */
function runNode(code) {
  const { spawn } = require('node:child_process');
  const { within } = require('./zk');
  const root = path.join(__dirname, '..', '..');
  const child = spawn(process.execPath, ['-e', `const zktx = ${JSON.stringify(root)};\n${code}`], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  return within(new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, out }))), 30000, 'the child');
}

/** Whether every thread of process `pid` is stopped (SIGSTOP taken: state T). */
function allStopped(pid) {
  const fs = require('node:fs');
  try {
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      const stat = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state !== 'T' && state !== 't') return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** Stops process `pid` (SIGSTOP) and waits, synchronously, up to 2 s for all its threads to stop. */
function stopProcess(pid) {
  process.kill(pid, 'SIGSTOP');
  const until = Date.now() + 2000;
  while (!allStopped(pid) && Date.now() < until);
  return Date.now();
}

/** The next IPC message of `child`, or `{ timeout: true }` after `ms`. */
function nextMessage(child, ms) {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve({ timeout: true }), ms);
    child.once('message', (m) => { clearTimeout(t); resolve(m); });
  });
}

module.exports = { runWorkers, runNode, waitForGo, workerPath, allStopped, stopProcess, nextMessage };
