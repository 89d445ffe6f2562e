'use strict';
// A service stopped by SIGTERM or Ctrl-C (SIGINT) frees its locks at once when it asks for it
// (zk.closeOnSignals(), or README's recipe), instead of keeping them until its session expires.
// zktx installs no signal handler by itself.
const { spawn } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');
const { ZooKeeper } = require('..');
const { client, unique } = require('./helpers/zk');

const worker = path.join(__dirname, 'workers', 'signal-holder.js');

/** Starts a holder of `lockPath`; resolves once it holds the lock. */
function startHolder(lockPath, mode) {
  const child = spawn(process.execPath, [worker, lockPath, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { lines: [], stderr: '' };
  child.stderr.on('data', (d) => { out.stderr += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, ...out })));
  return new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      out.lines.push(line);
      if (line === 'ready') resolve({ child, exited });
    });
    exited.then((r) => reject(new Error(`holder exited before holding the lock: ${JSON.stringify(r)}`)));
  });
}

/** Sends `signal` to a holder while this client waits for its lock; the ms until it got it. */
async function takeoverAfter(zk, lockPath, mode, signal, waitMs = 5000) {
  const { child, exited } = await startHolder(lockPath, mode);
  const waiting = zk.lock(lockPath, { timeout: waitMs }); // queued behind the holder
  while ((await zk.children(lockPath)).length < 2) await new Promise((r) => setTimeout(r, 10));
  const t0 = Date.now();
  child.kill(signal);
  try {
    const lock = await waiting;
    const ms = Date.now() - t0;
    await lock.release();
    return { ms, exit: await exited };
  } catch (err) {
    child.kill('SIGKILL');
    return { ms: null, error: err.code, exit: await exited };
  }
}

describe('shutdown on SIGTERM / SIGINT', () => {
  let zk;
  beforeAll(() => { zk = client(); });
  afterAll(() => zk.close());

  it('zktx installs no signal handler by itself', () => {
    const before = ['SIGTERM', 'SIGINT'].map((s) => process.listenerCount(s));
    const other = new ZooKeeper({ connect: '127.0.0.1:1' });
    expect(['SIGTERM', 'SIGINT'].map((s) => process.listenerCount(s))).toEqual(before);
    other.close();
  });

  for (const signal of ['SIGTERM', 'SIGINT']) {
    it(`with zk.closeOnSignals(), ${signal} frees the lock for another process within 1 s, and the process still dies of ${signal}`, async () => {
      const r = await takeoverAfter(zk, `/${unique('signal')}`, 'closeOnSignals', signal);
      console.log(`[shutdown] closeOnSignals ${signal}: lock taken over ${r.ms} ms after the signal`);
      expect(r.ms).not.toBeNull();
      expect(r.ms).toBeLessThan(1000);
      expect(r.exit).toEqual(expect.objectContaining({ code: null, signal, stderr: '' }));
    });
  }

  it('the service\'s own SIGTERM handler still decides how the process ends', async () => {
    const r = await takeoverAfter(zk, `/${unique('signal-own')}`, 'own-handler', 'SIGTERM');
    expect(r.ms).toBeLessThan(1000);
    expect(r.exit).toEqual(expect.objectContaining({ code: 7, signal: null, lines: ['ready', 'own handler ran'] }));
  });

  it('README\'s process.once recipe frees the lock within 1 s too', async () => {
    const r = await takeoverAfter(zk, `/${unique('signal-recipe')}`, 'recipe', 'SIGTERM');
    expect(r.ms).toBeLessThan(1000);
    expect(r.exit).toEqual(expect.objectContaining({ code: 0, signal: null }));
  });

  it('without either, the lock outlives the killed process until its session expires', async () => {
    const r = await takeoverAfter(zk, `/${unique('signal-none')}`, 'none', 'SIGTERM', 1500);
    expect(r.error).toBe('TIMEOUT');
    expect(r.exit.signal).toBe('SIGTERM');
  });

  it('closeOnSignals returns a function that removes its handlers', () => {
    const other = new ZooKeeper({ connect: '127.0.0.1:1' });
    const before = process.listenerCount('SIGTERM');
    const undo = other.closeOnSignals(['SIGTERM']);
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    undo();
    expect(process.listenerCount('SIGTERM')).toBe(before);
    expect(() => other.closeOnSignals(['SIGNOPE'])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    other.close();
  });
});
