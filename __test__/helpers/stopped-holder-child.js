'use strict';
// A waiter in its own process: 2 s session via argv[2], queues on argv[3], keeps a one-shot
// exists watch on argv[4]. On message 'busy' its JS thread spins for `cpuMs` of CPU time (so a
// SIGSTOP does not shorten the spin): the acquisition decided on the I/O thread meanwhile waits
// for the JS thread.
const { ZooKeeper } = require('../..');
const reportLock = require('./lock-reporter');
const [connect, path, watched] = process.argv.slice(2);
const zk = new ZooKeeper({ connect, timeout: 2000 });
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
process.on('message', (m) => {
  if (m.busy) {
    const start = cpu();
    while (cpu() - start < m.busy);
  }
});
(async () => {
  await zk.znodes.exists(watched, { watch: true });
  process.send({ ready: true });
  await reportLock(zk, path);
})();
