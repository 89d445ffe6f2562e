// The ES module entry of zktx (package.json "exports" → "import"). It re-exports index.js, so
// ESM and CommonJS users share one module instance (one ZktxError class, one exit hook). The
// names are listed here because Node's CommonJS export detection cannot see every export of
// index.js, and the default export is the ZooKeeper class, as index.d.mts declares (importing
// index.js directly would make it module.exports).
import zktx from './index.js';

export const {
  ZooKeeper,
  Etcd,
  ZktxError,
  Lock,
  MultiLock,
  Election,
  Leadership,
  Transaction,
  FencingTokenGuard,
  Znodes,
  executeTransaction,
  Coordinator,
  PostgresParticipant,
  createBarrierTable,
  barrier,
  ZOO_LOG_LEVEL_ERROR,
  ZOO_LOG_LEVEL_WARN,
  ZOO_LOG_LEVEL_INFO,
  ZOO_LOG_LEVEL_DEBUG,
} = zktx;

export default zktx.ZooKeeper;
