#!/usr/bin/env node
'use strict';
// `npm run demo`: the tutorial's script (examples/article.js) in two Node processes at once,
// against a local ZooKeeper started here (or ZK_CONNECT), then the final value of the key.
// The tutorial hardcodes 'localhost:2181': ZKTX_CONNECT_OVERRIDE sends it to that server.
// `npm run demo -- --etcd`: the same on etcd (examples/article-etcd.js, the tutorial with only
// its connection changed), against a local etcd started here (or ETCD_ENDPOINTS).
const { spawn, spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { startStandalone, startEtcd } = require('../testing');

const root = path.join(__dirname, '..');
const onEtcd = process.argv.includes('--etcd');

function run(label, env) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [path.join(root, 'examples', onEtcd ? 'article-etcd.js' : 'article.js')], { env, cwd: root });
    const prefix = (stream, out) => stream.on('data', (d) => {
      for (const line of String(d).split('\n').filter(Boolean)) out.write(`[${label}] ${line}\n`);
    });
    prefix(child.stdout, process.stdout);
    prefix(child.stderr, process.stderr);
    child.on('exit', (code) => {
      console.log(`[${label}] exited with code ${code} after ${Date.now() - t0} ms`);
      resolve(code);
    });
  });
}

(async () => {
  if (!fs.readdirSync(root).some((f) => /^zktx\..+\.node$/.test(f))) {
    console.log('demo: building the native addon (release)...');
    const r = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status || 1);
  }
  if (onEtcd) return demoOnEtcd();
  let server = null;
  let connect = process.env.ZK_CONNECT;
  if (!connect) {
    server = await startStandalone();
    connect = server.connect;
    console.log(`demo: local ZooKeeper at ${connect} (pid ${server.pid})`);
  } else {
    console.log(`demo: using ZK_CONNECT=${connect}`);
  }
  try {
    const env = { ...process.env, ZKTX_CONNECT_OVERRIDE: connect };
    const codes = await Promise.all([run('A', env), run('B', env)]);
    const { ZooKeeper } = require('..');
    const zk = new ZooKeeper({ connect, timeout: 10000 });
    const value = await zk.get('foo');
    const queue = await zk.children('/zktx/locks/kv/foo');
    await zk.close();
    console.log(`demo: final value foo=${JSON.stringify(value)}; lock nodes left behind: ${queue.length}`);
    process.exitCode = codes.every((c) => c === 0) && queue.length === 0 ? 0 : 1;
  } finally {
    if (server) await server.stop();
  }
})().catch((err) => {
  console.error(`demo failed: ${err.stack || err}`);
  process.exit(1);
});

async function demoOnEtcd() {
  let member = null;
  let endpoints = process.env.ETCD_ENDPOINTS;
  if (!endpoints) {
    member = await startEtcd();
    endpoints = member.endpoints.join(',');
    console.log(`demo: local etcd at ${endpoints} (pid ${member.pid})`);
  } else {
    console.log(`demo: using ETCD_ENDPOINTS=${endpoints}`);
  }
  try {
    const codes = await Promise.all([run('A', { ...process.env, ETCD_ENDPOINTS: endpoints }), run('B', { ...process.env, ETCD_ENDPOINTS: endpoints })]);
    const { Etcd } = require('..');
    const etcd = new Etcd({ endpoints, timeout: 10000 });
    const value = await etcd.get('foo');
    await etcd.close();
    const left = execFileSync('etcdctl', ['--endpoints', endpoints, 'get', '--prefix', '--keys-only', '/zktx/locks/kv/foo/'], { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' }).split('\n').filter(Boolean);
    console.log(`demo: final value foo=${JSON.stringify(value)}; lock keys left behind: ${left.length}`);
    process.exitCode = codes.every((c) => c === 0) && left.length === 0 ? 0 : 1;
  } finally {
    if (member) await member.stop();
  }
}
