'use strict';
// Helpers for suites that attack zktx on etcd: clients on the shared etcd (ETCD_ENDPOINTS), clients
// whose only way there is a proxy of ours, `etcdctl`, and one cleanup for all of them.
const { execFileSync } = require('node:child_process');
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

module.exports = { etcdKit, etcdctlAt, waitFor };
