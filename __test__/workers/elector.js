'use strict';
// An election candidate for the election tests. Takes part in ELECTION_PATH; once leader, writes
// fenced on its leadership (the shared order key, then a key of its own) every WRITE_EVERY_MS,
// and resigns after HOLD_MS (0: holds until it loses leadership or reads "stop"), then takes part
// again, ROUNDS times (0: until "stop"). Every step is one JSON line on stdout, written before
// the next step starts (a pipe write is synchronous on Linux: a kill -9 loses nothing printed).
// Times are Date.now(), the one clock every process of the machine reads alike.
//
// A leader told it lost (leadership.signal aborted) keeps writing a few times without checking:
// the fence, not its manners, must stop it. Then it takes part anew.
//
// env: ZK_CONNECT, ELECTION_PATH, RUN, WORKER (else WORKER_INDEX), SESSION_MS, HOLD_MS, ROUNDS,
// WRITE_EVERY_MS, ZKTX_FAULT_UNFENCED=1 (writes without the fence: the checker must then object).
const readline = require('node:readline');
const { ZooKeeper } = require('../..');
const { clientOptions } = require('../helpers/secure');

const { ELECTION_PATH: path, RUN: run } = process.env;
const worker = process.env.WORKER ?? process.env.WORKER_INDEX;
const session = Number(process.env.SESSION_MS || 2000);
const holdMs = Number(process.env.HOLD_MS || 0);
const rounds = Number(process.env.ROUNDS || 0);
const every = Number(process.env.WRITE_EVERY_MS || 20);
// A harness self-check: writes without { lock }, so the checker must find the stale leader's.
const unfenced = process.env.ZKTX_FAULT_UNFENCED === '1';
const emit = (ev) => process.stdout.write(`${JSON.stringify({ ...ev, t: Date.now() })}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let stopping = false;
const input = readline.createInterface({ input: process.stdin });
input.on('line', (line) => {
  if (line === 'stop') stopping = true;
});

async function fencedWrite(zk, leadership, seq, key, value) {
  emit({ ev: 'send', seq, key, value });
  try {
    const version = await zk.set(key, value, unfenced ? undefined : { lock: leadership });
    emit({ ev: 'write', seq, key, ok: true, version });
  } catch (err) {
    emit({ ev: 'write', seq, key, ok: false, code: err.code, outcome: err.outcome });
  }
}

(async () => {
  const zk = new ZooKeeper({ timeout: session, debug_level: 0, ...clientOptions() });
  zk.on('state', (s) => emit({ ev: 'state', s }));
  await zk.connect();
  const election = zk.election(path, { id: `w${worker}` });
  emit({ ev: 'ready', pid: process.pid });
  const kept = []; // leaderships stay reachable: garbage collection must not release them
  for (let seq = 0; !stopping && (rounds === 0 || seq < rounds); seq++) {
    let leadership;
    try {
      emit({ ev: 'candidate', seq });
      leadership = await election.lead();
    } catch (err) {
      emit({ ev: 'leaderr', seq, code: err.code, message: err.message });
      await sleep(50);
      continue;
    }
    kept.push(leadership);
    const node = leadership.nodePath.split('/').pop();
    emit({ ev: 'acq', seq, token: leadership.token, node });
    leadership.lost.then((err) => emit({ ev: 'lost', seq, reason: err.reason, node }));
    const since = Date.now();
    let after = 0; // writes since the loss was signalled
    for (let n = 0; !stopping && after < 3; n++) {
      const value = { by: `w${worker}`, seq, n, token: leadership.token };
      await fencedWrite(zk, leadership, seq, `${run}-order`, value);
      await fencedWrite(zk, leadership, seq, `${run}-w${worker}-${seq}-${n}`, value);
      if (leadership.signal.aborted) after += 1;
      if (holdMs > 0 && Date.now() - since >= holdMs && !leadership.signal.aborted) break;
      await sleep(every);
    }
    if (leadership.signal.aborted) {
      emit({ ev: 'abandon', seq, node });
      continue;
    }
    emit({ ev: 'resigning', seq, node });
    try {
      await leadership.resign();
      emit({ ev: 'resigned', seq, node });
    } catch (err) {
      emit({ ev: 'resignerr', seq, code: err.code });
    }
  }
  await zk.close();
  emit({ ev: 'done' });
  input.close();
  process.stdin.destroy(); // an open stdin would keep the worker alive
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
