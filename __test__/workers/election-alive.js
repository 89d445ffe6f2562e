'use strict';
// Does an election observer keep the process alive, and does closing let it exit?
// MODE: 'events' (a `leader` listener), 'watch' (a pending watch() iterator), 'expired-watch'
// (a watch() on a client whose session expires without reconnectAfterExpiry).
// CLOSE: 'election' (election.close() after CLOSE_AFTER ms), 'zk' (zk.close()), 'none'.
// The close runs on an unref'ed timer: it cannot itself keep the process alive.
// Prints JSON lines: {ev:'first'} on the first state, {ev:'closing'}, {ev:'exit'} from the exit hook.
const { ZooKeeper } = require('../..');
const { clientOptions } = require('../helpers/secure');

const { MODE: mode, CLOSE: close = 'none', ELECTION_PATH: path } = process.env;
const closeAfter = Number(process.env.CLOSE_AFTER || 1500);
const emit = (ev) => process.stdout.write(`${JSON.stringify({ ...ev, t: Date.now() })}\n`);
process.on('exit', () => emit({ ev: 'exit' }));

(async () => {
  const zk = new ZooKeeper({ timeout: Number(process.env.SESSION_MS || 4000), debug_level: 0, ...clientOptions() });
  await zk.connect();
  const election = zk.election(path);
  const closeLater = () => setTimeout(() => {
    emit({ ev: 'closing' });
    if (close === 'election') election.close();
    if (close === 'zk') zk.close();
  }, closeAfter).unref();
  if (mode === 'events') {
    election.once('leader', () => {
      emit({ ev: 'first' });
      closeLater();
    });
    election.on('leader', (l) => emit({ ev: 'leader', id: l && l.id }));
    election.on('error', (e) => emit({ ev: 'error', code: e.code }));
  } else {
    const it = election.watch();
    await it.next();
    emit({ ev: 'first' });
    closeLater();
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        emit({ ev: 'state', leader: r.value.leader && r.value.leader.id });
      }
      emit({ ev: 'ended' });
    } catch (err) {
      emit({ ev: 'threw', code: err.code });
    }
  }
})().catch((err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
