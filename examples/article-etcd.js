// The tutorial's code on etcd: the same program as article.js, but the connection (the
// tutorial names "ZooKeeper or etcd" as its coordinator). ETCD_ENDPOINTS, when set, names the
// cluster (as `npm run demo -- --etcd` does); the tutorial's own would be 'localhost:2379'.
const { Etcd, executeTransaction } = require('zktx');

const zk = new Etcd({
  endpoints: process.env.ETCD_ENDPOINTS || 'localhost:2379',
  timeout: 200000,
  debug_level: Etcd.ZOO_LOG_LEVEL_WARN,
});

const key = 'foo';
const value = 1;

// create a distributed lock; then run a transaction on a simple key-value store
executeTransaction('foo', 1)
  .then(() => console.log(`Transaction completed: ${key}=${value}`))
  .catch((err) => console.error(`Transaction failed: ${err}`));
