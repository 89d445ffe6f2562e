// The tutorial's code, unchanged but for the require: it ran on the `zookeeper` package.
const { ZooKeeper, executeTransaction } = require('zktx');

const zk = new ZooKeeper({
  connect: 'localhost:2181',
  timeout: 200000,
  debug_level: ZooKeeper.ZOO_LOG_LEVEL_WARN,
  host_order_deterministic: false,
});

const key = 'foo';
const value = 1;

// create a distributed lock; then run a transaction on a simple key-value store
executeTransaction('foo', 1)
  .then(() => console.log(`Transaction completed: ${key}=${value}`))
  .catch((err) => console.error(`Transaction failed: ${err}`));
