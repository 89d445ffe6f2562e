// An ES module user (node16 / bundler): the default export is the ZooKeeper class, every export
// is importable by name.
import ZooKeeperDefault, { ZooKeeper, Etcd, executeTransaction, ZktxError, FencingTokenGuard, Lock, MultiLock, Transaction, ZOO_LOG_LEVEL_ERROR, ZOO_LOG_LEVEL_WARN, ZOO_LOG_LEVEL_INFO, ZOO_LOG_LEVEL_DEBUG } from 'zktx';
import * as zktx from 'zktx';

const zk: ZooKeeper = new ZooKeeperDefault({ debug_level: ZOO_LOG_LEVEL_WARN });
const fromNamespace: ZooKeeper = new zktx.default({ debug_level: zktx.ZOO_LOG_LEVEL_INFO });
const levels: number[] = [ZOO_LOG_LEVEL_ERROR, ZOO_LOG_LEVEL_INFO, ZOO_LOG_LEVEL_DEBUG, ZooKeeper.ZOO_LOG_LEVEL_WARN];
const lock: Lock = await zk.lock('/a');
const m: MultiLock = await zk.multiLock(['/b']);
const moved = await zk.transaction(async (tx: Transaction) => { tx.set('a', 1); return true; });
await executeTransaction('foo', 1);
new FencingTokenGuard().check('db', lock.token);
const err: unknown = new ZktxError('TIMEOUT', 'x');
console.log(levels, m.tokens, moved, err, await fromNamespace.close());
void new Etcd({ endpoints: '127.0.0.1:2379' });
