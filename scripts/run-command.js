'use strict';
// `run -- cmd` of the server CLIs (scripts/zk.js, scripts/etcd.js): start servers, run one
// command with their addresses in its environment, stop them when it exits, exit as it did.
const childProcess = require('node:child_process');
const os = require('node:os');

const { killAllSync } = require('../testing/processes');

/**
 * Runs `cmd` ([file, ...args]) between `start()` and `stop(servers)`. `start` resolves
 * `{ servers, env }` (env: variables to add for the command). A first SIGINT/SIGTERM/SIGHUP goes
 * to the command, which decides when to end; one while the servers start, or a second one,
 * SIGKILLs every server at once and exits. Resolves the exit status to use (128 + signal when
 * the command died of one; 127 when it could not be found).
 */
async function runWithServers(who, cmd, start, stop) {
  const [file, ...args] = cmd;
  let child = null;
  let signalled = null;
  let done = false;

  const onSignal = (sig) => {
    if (signalled || !child) {
      killAllSync();
      process.exit(128 + (os.constants.signals[sig] || 0));
    }
    signalled = sig;
    if (child && !done) {
      try {
        child.kill(sig);
      } catch {}
    }
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => onSignal(sig));

  const { servers, env } = await start();
  const result = await new Promise((resolve) => {
    child = childProcess.spawn(file, args, { stdio: 'inherit', env: { ...process.env, ...env }, shell: false });
    child.on('error', (err) => {
      process.stderr.write(`${who}: could not run ${file}: ${err.message}\n`);
      resolve({ code: err.code === 'ENOENT' ? 127 : 126 });
    });
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  done = true;
  await stop(servers);
  if (result.signal) return 128 + (os.constants.signals[result.signal] || 0);
  return result.code ?? 1;
}

module.exports = { runWithServers };
