'use strict';
// Baseline: the lock recipe and executeTransaction (recipe.js) on `node-zookeeper-client`, the
// pure-JS ZooKeeper client most Node code uses.

const zookeeper = require('node-zookeeper-client');
const { BaselineRecipes } = require('./recipe');

const MODES = {
  persistent: zookeeper.CreateMode.PERSISTENT,
  ephemeral_sequential: zookeeper.CreateMode.EPHEMERAL_SEQUENTIAL,
};
const CODES = new Map(Object.entries(zookeeper.Exception).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v, k.replace(/_/g, '')]));

/** node-zookeeper-client errors get `code` = ZooKeeper's name without underscores (NONODE, ...). */
function settle(resolve, reject) {
  return (err, result) => {
    if (!err) return resolve(result);
    if (typeof err.getCode === 'function') err.code = CODES.get(err.getCode()) || String(err.getCode());
    reject(err);
  };
}

/** The promise interface recipe.js needs, over one session. */
class Client {
  constructor(client) {
    this.client = client;
  }

  create(path, data, mode) {
    return new Promise((resolve, reject) => this.client.create(path, Buffer.from(data), MODES[mode], settle(resolve, reject)));
  }

  getChildren(path) {
    return new Promise((resolve, reject) => this.client.getChildren(path, settle(resolve, reject)));
  }

  existsWatch(path, onChange) {
    return new Promise((resolve, reject) =>
      this.client.exists(path, () => onChange(), settle((stat) => resolve(Boolean(stat)), reject))
    );
  }

  getData(path) {
    return new Promise((resolve, reject) =>
      this.client.getData(path, (err, data, stat) => {
        if (err && typeof err.getCode === 'function' && err.getCode() === zookeeper.Exception.NO_NODE) return resolve(null);
        settle(() => resolve({ data: data ? data.toString('utf8') : '', version: stat.version }), reject)(err);
      })
    );
  }

  setData(path, data, version) {
    return new Promise((resolve, reject) =>
      this.client.setData(path, Buffer.from(data), version, settle((stat) => resolve(stat.version), reject))
    );
  }

  remove(path) {
    return new Promise((resolve, reject) => this.client.remove(path, -1, settle(resolve, reject)));
  }

  // The raw calls (the bench's znode_* scenarios): the library's own calls, Buffers and Stats as it gives them.
  rawGet(path) {
    return new Promise((resolve, reject) => this.client.getData(path, (err, data, stat) => (err ? settle(resolve, reject)(err) : resolve({ data, stat }))));
  }

  rawSet(path, data) {
    return new Promise((resolve, reject) => this.client.setData(path, data, -1, settle(resolve, reject)));
  }

  rawCreate(path, data) {
    return new Promise((resolve, reject) => this.client.create(path, data, zookeeper.CreateMode.PERSISTENT, settle(resolve, reject)));
  }

  rawRemove(path) {
    return new Promise((resolve, reject) => this.client.remove(path, -1, settle(resolve, reject)));
  }

  close() {
    this.client.close();
  }
}

/** Connects; resolves `BaselineRecipes` bound to a session (call `.client.close()` to end it). */
function open(connect, root, { sessionTimeout = 30000, connectTimeout = 15000 } = {}) {
  const client = zookeeper.createClient(connect, { sessionTimeout, retries: 0 });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.close();
      reject(new Error(`node-zookeeper-client: no session with ${connect} within ${connectTimeout} ms`));
    }, connectTimeout);
    client.once('connected', () => {
      clearTimeout(timer);
      resolve(new BaselineRecipes(new Client(client), root));
    });
    client.connect();
  });
}

module.exports = { name: 'node-zookeeper-client', open };
