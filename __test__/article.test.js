'use strict';
// The tutorial's script, unchanged but the require, run twice at once on a server of its own
// (so counting sessions is exact).
const { spawn } = require('node:child_process');
const path = require('node:path');
const { zkScripts, clientAt } = require('./helpers/zk');

function runArticle(connect) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'article.js')], {
      env: { ...process.env, ZKTX_CONNECT_OVERRIDE: connect }, // the script says 'localhost:2181'
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (code) => resolve({ code, stdout, stderr, ms: Date.now() - t0 }));
  });
}

describe('the tutorial script', () => {
  let server;
  beforeAll(async () => {
    server = await zkScripts.startStandalone({ tickTime: 500 });
  });
  afterAll(async () => {
    if (server) await server.stop();
  });

  it('runs in two processes at once, prints both lines, exits by itself and leaves no session or node', async () => {
    const runs = await Promise.all([runArticle(server.connect), runArticle(server.connect)]);
    for (const r of runs) {
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('Transaction completed: foo=1\n');
      expect(r.code).toBe(0);
    }
    // Both sessions were closed by the processes themselves: the server tracks none of them.
    // (`mntr` counts live sessions in zk_global_sessions / connections in zk_num_alive_connections.)
    const mntr = await zkScripts.mntr(server.port);
    expect(mntr.zk_ephemerals_count).toBe(0);
    const cons = await zkScripts.fourLetter(server.port, 'cons');
    // The only connection left is the one asking.
    expect(cons.split('\n').filter((l) => l.includes('sid=')).length).toBe(0);
    const zk = clientAt(server.connect);
    try {
      expect(await zk.get('foo')).toBe(1);
      expect(await zk.children('/zktx/locks/kv/foo')).toEqual([]);
    } finally {
      await zk.close();
    }
  });
});

describe('the tutorial script on etcd (only its connection changed: examples/article-etcd.js)', () => {
  const { startEtcd } = require('../testing');
  const { execFileSync } = require('node:child_process');
  let member;
  beforeAll(async () => {
    member = await startEtcd();
  });
  afterAll(async () => {
    if (member) await member.stop();
  });

  it('runs in two processes at once, prints both lines, exits by itself and leaves no lease or key', async () => {
    const endpoints = member.endpoints.join(',');
    const runOnEtcd = () => new Promise((resolve) => {
      const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'article-etcd.js')], { env: { ...process.env, ETCD_ENDPOINTS: endpoints } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => { stdout += d; });
      child.stderr.on('data', (d) => { stderr += d; });
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
    const runs = await Promise.all([runOnEtcd(), runOnEtcd()]);
    for (const r of runs) {
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('Transaction completed: foo=1\n');
      expect(r.code).toBe(0);
    }
    const etcdctl = (...args) => execFileSync('etcdctl', ['--endpoints', endpoints, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' });
    // Both leases were revoked by the processes themselves (their exit hook): none is left.
    expect(etcdctl('lease', 'list').trim()).toBe('found 0 leases');
    expect(etcdctl('get', '--prefix', '--keys-only', '/zktx/locks/').trim()).toBe('');
    expect(JSON.parse(etcdctl('get', '--print-value-only', '/zktx/kv/foo').trim())).toBe(1);
  });
});
