'use strict';
// close() closes: pending calls reject CLIENT_CLOSED, the session ends on the server (its queue
// nodes go at once), and closing never waits behind pending calls.
const net = require('node:net');
const { spawn } = require('node:child_process');
const path = require('node:path');
const { client, clientAt, unique, zkScripts } = require('./helpers/zk');

const codeOf = (p) => p.then(() => 'resolved', (e) => e.code);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function queue(zk, p) {
  return (await zk.children(p)).filter((c) => c.startsWith('_c_'));
}

async function waitQueue(zk, p, n, timeoutMs = 10000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if ((await queue(zk, p)).length === n) return;
    await sleep(25);
  }
  throw new Error(`queue of ${p} never reached ${n}: ${await queue(zk, p)}`);
}

/**
 * A port where no ZooKeeper answers: it accepts connections and never speaks. (A port nobody
 * listens on refuses at once: connects there fail with ECONNREFUSED before any timeout.)
 */
const holes = [];
async function deadPort() {
  const sockets = [];
  const srv = net.createServer((socket) => sockets.push(socket));
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  holes.push({ srv, sockets });
  return srv.address().port;
}
afterAll(() => {
  for (const { srv, sockets } of holes) {
    for (const s of sockets) s.destroy();
    srv.close();
  }
});

describe('close()', () => {
  let zk;
  beforeAll(() => { zk = client(); });
  afterAll(() => zk.close());

  it('rejects a waiting lock() with CLIENT_CLOSED, ends the session (state CLOSED, node gone) and never hands it the lock', async () => {
    const p = `/zktx-test/${unique('close-waiting')}`;
    const held = await zk.lock(p);
    const waiter = client();
    let ran = false;
    const waiting = codeOf(waiter.withLock(p, () => { ran = true; }));
    await waitQueue(zk, p, 2);
    await waiter.close();
    expect(waiter.state).toBe('CLOSED');
    expect(await waiting).toBe('CLIENT_CLOSED');
    expect(await queue(zk, p)).toHaveLength(1);
    await held.release();
    await sleep(300);
    expect(ran).toBe(false);
    expect(await queue(zk, p)).toHaveLength(0);
  });

  it('process.exit() while queued removes the queue node at once, not at session expiry', async () => {
    const p = `/zktx-test/${unique('exit-queued')}`;
    const held = await zk.lock(p);
    const child = spawn(process.execPath, [path.join(__dirname, 'workers', 'exit-queued.js'), p], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const code = await new Promise((r) => child.on('exit', r));
    expect({ code, out: out.trim(), err }).toEqual({ code: 0, out: 'queued', err: '' });
    // The session timeout is 10 s: the node must be gone long before.
    expect(await queue(zk, p)).toHaveLength(1);
    await held.release();
  });

  it('with 5 calls pending against a dead server, resolves at once and they reject CLIENT_CLOSED', async () => {
    const dead = clientAt(`127.0.0.1:${await deadPort()}`, { connectTimeout: 2000 });
    const started = Date.now();
    const calls = Array.from({ length: 5 }, (_, i) => codeOf(dead.lock(`/zktx-test/${unique('dead')}-${i}`)));
    await sleep(200);
    const t0 = Date.now();
    await dead.close();
    const took = Date.now() - t0;
    expect(await Promise.all(calls)).toEqual(Array(5).fill('CLIENT_CLOSED'));
    expect(took).toBeLessThan(1500);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(dead.state).toBe('CLOSED');
  });

  it('concurrent calls against a dead server share one connect attempt', async () => {
    const dead = clientAt(`127.0.0.1:${await deadPort()}`, { connectTimeout: 2000 });
    const t0 = Date.now();
    const settled = await Promise.all(Array.from({ length: 5 }, () => dead.get('k').then(() => 'resolved', (e) => ({ code: e.code, at: Date.now() - t0 }))));
    for (const s of settled) {
      expect(s.code).toBe('TIMEOUT');
      expect(s.at).toBeLessThan(5000); // one 2 s attempt, not five in a row (10 s)
    }
    await dead.close();
  });
});

describe('leaving the process with many clients', () => {
  const worker = path.join(__dirname, 'workers', 'exit-frozen.js');
  let server;
  beforeAll(async () => { server = await zkScripts.startStandalone({ tickTime: 500 }); });
  afterAll(async () => {
    if (!server) return;
    server.kill('SIGCONT');
    await server.stop();
  });

  /** Runs `n` holders in one process; `freeze` SIGSTOPs the server before the process leaves by `mode`. */
  async function leave(n, mode, { freeze, slow }) {
    const prefix = `/zktx-test/${unique(`leave-${mode}-${n}`)}`;
    const child = spawn(process.execPath, [worker, String(n), prefix, mode, ...(slow ? [slow] : [])], { env: { ...process.env, ZK_CONNECT: server.connect }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
    await new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('ready')) resolve();
      });
      exited.then((r) => reject(new Error(`worker ended before holding its locks: ${JSON.stringify(r)}`)));
    });
    if (freeze) server.kill('SIGSTOP');
    let ms;
    let exit;
    try {
      const t0 = Date.now();
      child.stdin.write('go\n');
      exit = await exited;
      ms = Date.now() - t0;
    } finally {
      if (freeze) server.kill('SIGCONT');
    }
    // Every client's CloseSession was sent before the process ended: the server drops each
    // session (and its lock) as soon as it reads it, not at expiry 10 s later.
    const observer = clientAt(server.connect);
    const t1 = Date.now();
    try {
      for (let i = 0; i < n; i++) {
        while ((await queue(observer, `${prefix}-${i}`)).length > 0) {
          if (Date.now() - t1 > 5000) throw new Error(`the lock of client ${i} of ${n} outlived its process (${mode}, frozen: ${freeze})`);
          await sleep(25);
        }
      }
    } finally {
      await observer.close();
    }
    return { ms, exit, freedMs: Date.now() - t1 };
  }

  it('process.exit() with 10 clients and a frozen server (SIGSTOP) takes one close bound, not ten in a row', async () => {
    const one = await leave(1, 'exit', { freeze: true });
    const ten = await leave(10, 'exit', { freeze: true });
    console.log(`[close] process.exit() with the server frozen: 1 client ${one.ms} ms, 10 clients ${ten.ms} ms; locks gone ${ten.freedMs} ms after SIGCONT`);
    expect(one.exit).toEqual({ code: 0, signal: null, stderr: '' });
    expect(ten.exit).toEqual({ code: 0, signal: null, stderr: '' });
    // Closing one after another costs 10x the one-client time; in parallel about 1x.
    expect(ten.ms / one.ms).toBeLessThan(3);
  }, 90000);

  it('SIGTERM with closeOnSignals() on 10 clients frees every lock at once, also the slowest client\'s, and the process dies of SIGTERM', async () => {
    const { startProxy } = require('../testing');
    const proxy = await startProxy(server.connect);
    try {
      // Client 0's packets take 300 ms each way: the others' closes finish first, and a process
      // ended by the first of them never sent client 0's CloseSession through the proxy. (This
      // proxy drops delayed bytes when the server closes its end, so client 0 never sees the
      // answer either and its close runs to the 5 s bound: that time is the proxy's.)
      proxy.delay(300);
      const ten = await leave(10, 'signal', { freeze: false, slow: proxy.connect });
      console.log(`[close] SIGTERM, 10 clients with closeOnSignals (one slow): ended ${ten.ms} ms after the signal, locks gone ${ten.freedMs} ms after the process ended`);
      expect(ten.exit).toEqual({ code: null, signal: 'SIGTERM', stderr: '' });
      expect(ten.freedMs).toBeLessThan(1000);
    } finally {
      await proxy.close();
    }
  }, 60000);
});
