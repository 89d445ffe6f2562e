// Imports every export of zktx by name from ESM (as `import { ... } from 'zktx'` does in an app)
// and prints a JSON report: which names are missing, and whether the default export is the
// ZooKeeper class. Run by __test__/esm.test.js in a child process (jest runs CommonJS).
import { createRequire } from 'node:module';
import * as ns from 'zktx';
import ZooKeeperDefault, {
  ZooKeeper, ZktxError, Lock, MultiLock, Transaction, FencingTokenGuard, executeTransaction,
  ZOO_LOG_LEVEL_ERROR, ZOO_LOG_LEVEL_WARN, ZOO_LOG_LEVEL_INFO, ZOO_LOG_LEVEL_DEBUG,
} from 'zktx';

const cjs = createRequire(import.meta.url)('zktx');
const named = { ZooKeeper, ZktxError, Lock, MultiLock, Transaction, FencingTokenGuard, executeTransaction, ZOO_LOG_LEVEL_ERROR, ZOO_LOG_LEVEL_WARN, ZOO_LOG_LEVEL_INFO, ZOO_LOG_LEVEL_DEBUG };
const zk = new (await import('zktx')).default({ connect: '127.0.0.1:1' }); // lazy: never connects
await zk.close();
console.log(JSON.stringify({
  // every name require('zktx') has (but `default`) is a named ESM export with the same value
  missing: Object.keys(cjs).filter((k) => k !== 'default' && ns[k] !== cjs[k]),
  namedDiffer: Object.keys(named).filter((k) => named[k] !== cjs[k]),
  defaultIsZooKeeper: ZooKeeperDefault === cjs.ZooKeeper && zk instanceof cjs.ZooKeeper,
  levels: [ZOO_LOG_LEVEL_ERROR, ZOO_LOG_LEVEL_WARN, ZOO_LOG_LEVEL_INFO, ZOO_LOG_LEVEL_DEBUG],
}));
