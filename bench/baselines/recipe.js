'use strict';
// The lock and the tutorial's executeTransaction as a Node team writes them by hand on a plain
// ZooKeeper client: ZooKeeper's herd-free ephemeral-sequential lock recipe
// (https://zookeeper.apache.org/doc/r3.8.0/recipes.html#sc_recipes_Locks), one request after
// the other, nothing pipelined. Written once, over a small promise interface that each client's
// adapter (node-zookeeper-client.js, zookeeper.js) provides:
//
//   create(path, data, mode)        -> created path ('persistent' | 'ephemeral_sequential')
//   getChildren(path)               -> names
//   existsWatch(path, onChange)     -> boolean; onChange() once when the node changes or goes
//   getData(path)                   -> { data: string, version } | null when absent
//   setData(path, data, version)    -> new version (version -1: any)
//   remove(path)
//   close()
//
// and, for the znode_* scenarios (a client's raw calls, no recipe), with data as Buffers:
//
//   rawGet(path) -> { data, stat }   rawSet(path, data) -> stat   rawCreate(path, data) -> path
//   rawRemove(path)
//
// Errors carry `code` 'NONODE' | 'NODEEXISTS' | 'BADVERSION' | ... (the client's own mapped).
//
// Round trips, uncontended: lock = create + getChildren, unlock = delete (3);
// executeTransaction = create + getChildren + getData + setData + delete (5);
// transfer (2 keys) = 2 locks + 2 getData + 2 setData + 2 deletes (10).

const PREFIX = 'lock-';
const READ = 'read-';
const WRITE = 'write-';
/** Sequence suffix of a sequential node name (10 digits): queue order across prefixes. */
const sequence = (name) => name.slice(-10);

class BaselineLock {
  constructor(client, nodePath) {
    this.client = client;
    this.nodePath = nodePath;
    this.released = false;
  }

  async release() {
    if (this.released) return;
    this.released = true;
    await this.client.remove(this.nodePath);
  }
}

class BaselineRecipes {
  /** `root`: where keys and key locks live, e.g. /bench-baseline (never zktx's /zktx). */
  constructor(client, root) {
    this.client = client;
    this.root = root;
  }

  /** Creates `path` and its missing parents (persistent, empty). */
  async mkdirp(path) {
    let at = '';
    for (const seg of path.split('/').slice(1)) {
      at += `/${seg}`;
      try {
        await this.client.create(at, '', 'persistent');
      } catch (err) {
        if (err.code !== 'NODEEXISTS') throw err;
      }
    }
  }

  /** Creates a node, and its parents if they are missing. */
  async createWithParents(path, data, mode) {
    try {
      return await this.client.create(path, data, mode);
    } catch (err) {
      if (err.code !== 'NONODE') throw err;
      await this.mkdirp(path.slice(0, path.lastIndexOf('/')));
      return this.client.create(path, data, mode);
    }
  }

  /** Exclusive lock on the znode directory `path`: lowest sequence holds, others watch their predecessor. */
  async lock(path) {
    const nodePath = await this.createWithParents(`${path}/${PREFIX}`, '', 'ephemeral_sequential');
    const name = nodePath.slice(path.length + 1);
    for (;;) {
      // Same prefix and zero-padded sequence numbers: lexical order is queue order.
      const queue = (await this.client.getChildren(path)).filter((n) => n.startsWith(PREFIX)).sort();
      const at = queue.indexOf(name);
      if (at === 0) return new BaselineLock(this.client, nodePath);
      if (at < 0) throw Object.assign(new Error(`lock node ${nodePath} vanished`), { code: 'LOCK_LOST' });
      await this.waitForGone(`${path}/${queue[at - 1]}`);
    }
  }

  /** Resolves when `node` is deleted (at once if it is already gone). */
  waitForGone(node) {
    return new Promise((resolve, reject) => {
      this.client.existsWatch(node, resolve).then((exists) => {
        if (!exists) resolve(); // gone between the listing and the watch: look again
      }, reject);
    });
  }

  /**
   * ZooKeeper's shared-lock recipe: a reader waits for the last writer queued before it, a
   * writer for whoever is just before it.
   */
  async sharedLock(path, kind) {
    const nodePath = await this.createWithParents(`${path}/${kind === 'read' ? READ : WRITE}`, '', 'ephemeral_sequential');
    const name = nodePath.slice(path.length + 1);
    for (;;) {
      const queue = (await this.client.getChildren(path))
        .filter((n) => n.startsWith(READ) || n.startsWith(WRITE))
        .sort((a, b) => (sequence(a) < sequence(b) ? -1 : 1));
      const at = queue.indexOf(name);
      if (at < 0) throw Object.assign(new Error(`lock node ${nodePath} vanished`), { code: 'LOCK_LOST' });
      const ahead = kind === 'read' ? queue.slice(0, at).filter((n) => n.startsWith(WRITE)) : queue.slice(0, at);
      if (ahead.length === 0) return new BaselineLock(this.client, nodePath);
      await this.waitForGone(`${path}/${ahead[ahead.length - 1]}`);
    }
  }

  keyPath(key) {
    return `${this.root}/kv/${encodeURIComponent(key)}`;
  }

  keyLock(key) {
    return this.lock(`${this.root}/locks/${encodeURIComponent(key)}`);
  }

  /** The tutorial's executeTransaction: lock the key, read it, write it, unlock. */
  async executeTransaction(key, valueOrUpdater) {
    const lock = await this.keyLock(key);
    try {
      const path = this.keyPath(key);
      const current = await this.client.getData(path);
      const previous = current ? JSON.parse(current.data) : undefined;
      const value = typeof valueOrUpdater === 'function' ? await valueOrUpdater(previous) : valueOrUpdater;
      const json = JSON.stringify(value);
      if (current) await this.client.setData(path, json, current.version);
      else await this.createWithParents(path, json, 'persistent');
      return { key, value, previous };
    } finally {
      await lock.release();
    }
  }

  /**
   * Moves `amount` from one numeric key to another under both keys' locks, taken in key order
   * (no deadlock). Not atomic should the process die between the two writes: ZooKeeper's
   * `multi` is what would make it so, and hand-written code rarely reaches for it.
   */
  async transfer(from, to, amount) {
    const locks = [];
    try {
      for (const key of [from, to].sort()) locks.push(await this.keyLock(key));
      const a = await this.client.getData(this.keyPath(from));
      const b = await this.client.getData(this.keyPath(to));
      const balance = a ? JSON.parse(a.data) : 0;
      if (balance < amount) return false;
      await this.client.setData(this.keyPath(from), JSON.stringify(balance - amount), a.version);
      const json = JSON.stringify((b ? JSON.parse(b.data) : 0) + amount);
      if (b) await this.client.setData(this.keyPath(to), json, b.version);
      else await this.createWithParents(this.keyPath(to), json, 'persistent');
      return true;
    } finally {
      for (const lock of locks.reverse()) await lock.release();
    }
  }

  async get(key) {
    const got = await this.client.getData(this.keyPath(key));
    return got ? JSON.parse(got.data) : undefined;
  }

  async set(key, value) {
    const path = this.keyPath(key);
    const json = JSON.stringify(value);
    for (;;) {
      try {
        return await this.client.setData(path, json, -1);
      } catch (err) {
        if (err.code !== 'NONODE') throw err;
      }
      try {
        await this.createWithParents(path, json, 'persistent');
        return 0;
      } catch (err) {
        if (err.code !== 'NODEEXISTS') throw err; // created meanwhile by someone else: overwrite it
      }
    }
  }
}

module.exports = { BaselineRecipes };
