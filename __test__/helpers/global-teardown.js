'use strict';
module.exports = async () => {
  if (globalThis.__ZKTX_SERVER__) await globalThis.__ZKTX_SERVER__.stop();
  if (globalThis.__ZKTX_ETCD__) await globalThis.__ZKTX_ETCD__.stop();
  if (globalThis.__ZKTX_SECURE_CLEANUP__) globalThis.__ZKTX_SECURE_CLEANUP__();
};
