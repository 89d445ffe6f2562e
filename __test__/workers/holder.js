'use strict';
// Holds a lock, says "ready", waits for "go", then tries a write fenced on that lock and
// reports the outcome as one JSON line.
const readline = require('node:readline');
const { ZooKeeper } = require('../..');
const { clientOptions } = require('../helpers/secure'); // TLS + identity in secure mode

const [path, key, timeout] = [process.argv[2], process.argv[3], Number(process.argv[4] || 1000)];
(async () => {
  const zk = new ZooKeeper({ timeout, debug_level: 0, ...clientOptions() });
  const lock = await zk.lock(path);
  process.stdout.write(`${JSON.stringify({ ready: true, token: lock.token })}\n`);
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) if (line === 'go') break;
  rl.close();
  process.stdin.destroy();
  try {
    const version = await zk.set(key, 'stale', { lock });
    process.stdout.write(`${JSON.stringify({ written: true, version })}\n`);
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ written: false, code: err.code, message: err.message })}\n`);
  }
  await zk.close();
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
