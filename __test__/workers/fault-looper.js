'use strict';
// The randomized fault test's worker. Loops until it reads "stop" on stdin: acquire the lock,
// write fenced on it (the shared order key, then a key of its own), release. Every step is one
// JSON line on stdout, written before the next step starts (stdout to a pipe is synchronous on
// Linux, so a kill -9 loses nothing already printed). Times are Date.now(): the one clock every
// process of the machine reads alike (the checker compares times across processes).
//
// env: ZK_CONNECT (the worker's own proxy), LOCK_PATH, RUN, WORKER, INC (incarnation), SESSION_MS;
// LOST_AFTER (the lostAfter option, if set); ZKTX_FAULT_UNFENCED=1 writes without { lock } (a
// harness self-check: the checker must then find violations).
//
// A holder told it lost the lock (lock.signal aborted) leaves it without release(), as code that
// trusts the loss signal does: the library must not leave its node behind.
// The Lock is kept reachable, so its release-on-garbage-collection cannot hide a ghost.
const readline = require('node:readline');
const { ZooKeeper } = require('../..');
const { clientOptions } = require('../helpers/secure'); // TLS + identity in secure mode

const { LOCK_PATH: path, RUN: run, WORKER: worker, INC: inc } = process.env;
const session = Number(process.env.SESSION_MS || 2000);
const lostAfter = process.env.LOST_AFTER ? Number(process.env.LOST_AFTER) : undefined;
const abandoned = [];
const unfenced = process.env.ZKTX_FAULT_UNFENCED === '1';
const emit = (ev) => process.stdout.write(`${JSON.stringify({ ...ev, t: Date.now() })}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let stopping = false;
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'stop') stopping = true;
});

async function fencedWrite(zk, lock, seq, key, value) {
  emit({ ev: 'send', seq, key, value });
  try {
    const version = await zk.set(key, value, unfenced ? undefined : { lock });
    emit({ ev: 'write', seq, key, ok: true, version });
    return true;
  } catch (err) {
    emit({ ev: 'write', seq, key, ok: false, code: err.code, outcome: err.outcome, message: err.message });
    return false;
  }
}

(async () => {
  const zk = new ZooKeeper({ timeout: session, lostAfter, debug_level: 0, ...clientOptions() });
  zk.on('state', (s) => emit({ ev: 'state', s }));
  for (;;) {
    try {
      await zk.connect();
      break;
    } catch (err) {
      emit({ ev: 'connerr', code: err.code });
    }
  }
  emit({ ev: 'ready', pid: process.pid });
  for (let seq = 0; !stopping; seq++) {
    let lock;
    try {
      lock = await zk.lock(path, { timeout: 3000 });
    } catch (err) {
      emit({ ev: 'acqerr', seq, code: err.code, message: err.message });
      await sleep(20);
      continue;
    }
    emit({ ev: 'acq', seq, token: lock.token, node: lock.nodePath.split('/').pop() });
    const node = lock.nodePath.split('/').pop();
    lock.lost.then((err) => emit({ ev: 'lost', seq, reason: err.reason, node }));
    const id = `${worker}_${inc}_${seq}`;
    const value = { id, token: lock.token };
    // No check of lock.signal before writing: a holder that was frozen or cut off must be
    // stopped by the fence, not by its own good manners.
    await fencedWrite(zk, lock, seq, `${run}-order`, value);
    await sleep(Math.random() * 15);
    await fencedWrite(zk, lock, seq, `${run}-log-${id}`, value);
    await sleep(Math.random() * 5);
    if (lock.signal.aborted) {
      abandoned.push(lock);
      emit({ ev: 'abandon', seq, node });
      continue;
    }
    try {
      await lock.release();
      emit({ ev: 'rel', seq, lost: lock.signal.aborted });
    } catch (err) {
      emit({ ev: 'rel', seq, lost: lock.signal.aborted, code: err.code });
    }
    await sleep(Math.random() * 5);
  }
  await zk.close();
  emit({ ev: 'done' });
  process.exit(0);
})().catch((err) => {
  emit({ ev: 'fatal', code: err.code, message: err.message });
  process.exit(1);
});
