'use strict';
// A lock written the way the `zookeeper` package's users write it (the ZooKeeper lock recipe on
// create ZOO_EPHEMERAL|ZOO_SEQUENCE, get_children, exists with a watcher, delete_), with only the
// require changed. Increments a counter znode `rounds` times under the lock, by an unversioned
// read-modify-write: any two holders at once lose an increment.
// Usage: node lock-worker.js <connect> <lockDir> <counterPath> <rounds>
const ZooKeeper = require('zktx/zookeeper');

const [connect, lockDir, counterPath, rounds] = process.argv.slice(2);

async function lock(client) {
  const me = await client.create(`${lockDir}/lock-`, '', ZooKeeper.ZOO_EPHEMERAL | ZooKeeper.ZOO_SEQUENCE);
  const myName = me.slice(lockDir.length + 1);
  for (;;) {
    const children = (await client.get_children(lockDir, false)).sort();
    const i = children.indexOf(myName);
    if (i === 0) return me;
    const previous = `${lockDir}/${children[i - 1]}`;
    let wake;
    const changed = new Promise((resolve) => { wake = resolve; });
    try {
      await client.w_exists(previous, () => wake());
    } catch (error) {
      continue; // the previous node went away between get_children and exists
    }
    await changed;
  }
}

async function unlock(client, node) {
  await client.delete_(node, -1);
}

function main() {
  const config = { connect, timeout: 5000, debug_level: ZooKeeper.ZOO_LOG_LEVEL_WARN, host_order_deterministic: false };
  // secure mode (npm run test:secure): TLS and the run's identity, as the test's own clients
  const client = new ZooKeeper(require('../helpers/secure').compatConfig(config));
  client.on('connect', async () => {
    try {
      for (let n = 0; n < Number(rounds); n++) {
        const node = await lock(client);
        const [, data] = await client.get(counterPath, false);
        await client.set(counterPath, String(Number(data.toString()) + 1), -1);
        await unlock(client, node);
      }
      await client.close();
      process.stdout.write('done\n');
    } catch (error) {
      process.stderr.write(`worker failed: ${error.message}\n`);
      process.exit(1);
    }
  });
  client.init(config);
}

main();
