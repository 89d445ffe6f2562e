'use strict';
// Helpers for suites that attack zktx on etcd: clients on the shared etcd (ETCD_ENDPOINTS), clients
// whose only way there is a proxy of ours, `etcdctl`, and one cleanup for all of them.
const { execFileSync, spawn } = require('node:child_process');
const { Etcd } = require('../..');
const { startProxy } = require('../../testing');

/** `etcdctl` (API v3) on `endpoints`; its stdout. */
function etcdctlAt(endpoints, ...args) {
  return execFileSync('etcdctl', ['--endpoints', endpoints, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' });
}

/**
 * A kit for one test file: `etcd(options)` a client (timeout 4 s), `proxied(options)` a client
 * behind a proxy, `children` for processes to kill; everything is closed in the file's afterAll.
 */
function etcdKit() {
  const ENDPOINTS = process.env.ETCD_ENDPOINTS;
  const clients = [];
  const proxies = [];
  const children = [];
  const etcd = (options = {}) => {
    const c = new Etcd({ endpoints: ENDPOINTS, timeout: 4000, ...options });
    clients.push(c);
    return c;
  };
  /** A client whose only way to etcd is a proxy of ours. */
  const proxied = async (options = {}) => {
    const proxy = await startProxy(ENDPOINTS.split(',')[0]);
    proxies.push(proxy);
    return { proxy, client: etcd({ endpoints: [proxy.connect], ...options }) };
  };
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const p of proxies) p.heal();
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await Promise.all(proxies.map((p) => p.close()));
  });
  return { ENDPOINTS, etcd, proxied, clients, proxies, children, etcdctl: (...args) => etcdctlAt(ENDPOINTS, ...args) };
}

/** Polls `cond` every 25 ms until it returns something truthy (returned), or fails naming `what`. */
async function waitFor(cond, ms, what) {
  const until = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > until) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Spawns `node args...` with ETCD_ENDPOINTS set to `endpoints`, tracked in `children` (killed by
 * the kit): its stdout's JSON lines fill `lines`; `line(pred, ms, what)` waits for one.
 */
function jsonWorker(children, args, endpoints) {
  const child = spawn(process.execPath, args, { env: { ...process.env, ETCD_ENDPOINTS: endpoints }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines = [];
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop();
    for (const l of parts) if (l) lines.push(JSON.parse(l));
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  return { child, lines, stderr: () => stderr, line: (pred, ms, what) => waitFor(() => lines.find(pred), ms, what) };
}

module.exports = { etcdKit, etcdctlAt, waitFor, jsonWorker };
