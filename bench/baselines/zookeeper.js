'use strict';
// Baseline: the lock recipe and executeTransaction (recipe.js) on `zookeeper`, the npm binding of
// ZooKeeper's C client (the package the tutorial used). Its callback API: the promise one only
// wraps it, and reports errors as message text.

const ZooKeeper = require(require('../deps').ensureDep('zookeeper', '7.3.0'));
const { BaselineRecipes } = require('./recipe');

const C = ZooKeeper.constants;
const MODES = { persistent: C.ZOO_PERSISTENT, ephemeral_sequential: C.ZOO_EPHEMERAL_SEQUENTIAL };
const CODES = new Map([
  [C.ZNONODE, 'NONODE'],
  [C.ZNODEEXISTS, 'NODEEXISTS'],
  [C.ZBADVERSION, 'BADVERSION'],
  [C.ZNOTEMPTY, 'NOTEMPTY'],
  [C.ZCONNECTIONLOSS, 'CONNECTIONLOSS'],
  [C.ZSESSIONEXPIRED, 'SESSIONEXPIRED'],
]);

function zkError(rc, message) {
  return Object.assign(new Error(`zookeeper: ${rc} ${message}`), { code: CODES.get(rc) || String(rc), rc });
}

const text = (data) => (data == null ? '' : Buffer.isBuffer(data) ? data.toString('utf8') : String(data));

/** The promise interface recipe.js needs, over one session. */
class Client {
  constructor(zk) {
    this.zk = zk;
  }

  create(path, data, mode) {
    return new Promise((resolve, reject) =>
      this.zk.a_create(path, data, MODES[mode], (rc, error, created) => (rc === 0 ? resolve(created) : reject(zkError(rc, error))))
    );
  }

  getChildren(path) {
    return new Promise((resolve, reject) =>
      this.zk.a_get_children(path, false, (rc, error, children) => (rc === 0 ? resolve(children) : reject(zkError(rc, error))))
    );
  }

  existsWatch(path, onChange) {
    return new Promise((resolve, reject) =>
      this.zk.aw_exists(
        path,
        () => onChange(),
        (rc, error) => {
          if (rc === 0) resolve(true);
          else if (rc === C.ZNONODE) resolve(false);
          else reject(zkError(rc, error));
        }
      )
    );
  }

  getData(path) {
    return new Promise((resolve, reject) =>
      this.zk.a_get(path, false, (rc, error, stat, data) => {
        if (rc === 0) resolve({ data: text(data), version: stat.version });
        else if (rc === C.ZNONODE) resolve(null);
        else reject(zkError(rc, error));
      })
    );
  }

  setData(path, data, version) {
    return new Promise((resolve, reject) =>
      this.zk.a_set(path, data, version, (rc, error, stat) => (rc === 0 ? resolve(stat.version) : reject(zkError(rc, error))))
    );
  }

  remove(path) {
    return new Promise((resolve, reject) =>
      this.zk.a_delete_(path, -1, (rc, error) => (rc === 0 ? resolve() : reject(zkError(rc, error))))
    );
  }

  // The raw calls (the bench's znode_* scenarios): the package's callback calls, Buffers and Stats as it gives them.
  rawGet(path) {
    return new Promise((resolve, reject) => this.zk.a_get(path, false, (rc, error, stat, data) => (rc === 0 ? resolve({ data, stat }) : reject(zkError(rc, error)))));
  }

  rawSet(path, data) {
    return new Promise((resolve, reject) => this.zk.a_set(path, data, -1, (rc, error, stat) => (rc === 0 ? resolve(stat) : reject(zkError(rc, error)))));
  }

  rawCreate(path, data) {
    return new Promise((resolve, reject) => this.zk.a_create(path, data, C.ZOO_PERSISTENT, (rc, error, created) => (rc === 0 ? resolve(created) : reject(zkError(rc, error)))));
  }

  rawRemove(path) {
    return new Promise((resolve, reject) => this.zk.a_delete_(path, -1, (rc, error) => (rc === 0 ? resolve() : reject(zkError(rc, error)))));
  }

  close() {
    this.zk.close();
  }
}

/** Connects; resolves `BaselineRecipes` bound to a session (call `.client.close()` to end it). */
function open(connect, root, { sessionTimeout = 30000, connectTimeout = 15000 } = {}) {
  const zk = new ZooKeeper({
    connect,
    timeout: sessionTimeout,
    debug_level: C.ZOO_LOG_LEVEL_ERROR,
    host_order_deterministic: false,
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      zk.close();
      reject(new Error(`zookeeper: no session with ${connect} within ${connectTimeout} ms`));
    }, connectTimeout);
    zk.once('connect', () => {
      clearTimeout(timer);
      resolve(new BaselineRecipes(new Client(zk), root));
    });
    zk.init({});
  });
}

module.exports = { name: 'zookeeper', open };
