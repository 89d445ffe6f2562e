'use strict';
// The floor: ZooKeeper's wire protocol spoken by hand on Node's own `net` socket, nothing else.
// A baseline for the bench, not a product: no reconnect, no auth, no chroot, no watch
// re-registration. It shows what a Node process can reach; every zktx row is compared with it.
//
// Protocol (jute, big-endian, each frame prefixed by its int32 length):
//   ConnectRequest  protocolVersion i32, lastZxidSeen i64, timeOut i32, sessionId i64, passwd buf, readOnly bool
//   request         RequestHeader {xid i32, type i32} + body
//   reply           ReplyHeader {xid i32, zxid i64, err i32} + body when err == 0
//   xid -1: watch event {type i32, state i32, path string}; xid -2: ping reply.
// Requests are pipelined: each gets an xid and a pending entry, the reply with that xid settles it.
//
// Recipes (recipe.js) use it through the same promise interface as the library baselines, with
// what a hand-written client on the wire would do better: the lock pipelines create +
// getChildren (1 round trip to enter, 1 to leave), executeTransaction pipelines create +
// getChildren + getData, then setData + delete.

const net = require('node:net');
const { BaselineRecipes } = require('./recipe');

const OP = { create: 1, delete: 2, exists: 3, getData: 4, setData: 5, getChildren: 8, ping: 11, close: -11 };
const ERR = new Map([[-101, 'NONODE'], [-110, 'NODEEXISTS'], [-103, 'BADVERSION'], [-111, 'NOTEMPTY'], [-112, 'SESSIONEXPIRED'], [-4, 'CONNECTIONLOSS']]);
const FLAGS = { persistent: 0, ephemeral_sequential: 3 };
const STAT_BYTES = 68; // czxid, mzxid, ctime, mtime i64; version, cversion, aversion i32; ephemeralOwner i64; dataLength, numChildren i32; pzxid i64
const OPEN_ACL = [{ perms: 31, scheme: 'world', id: 'anyone' }];

/** Appends jute fields to a growing list of Buffers. */
class Writer {
  constructor() {
    this.parts = [];
  }
  int(v) {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(v);
    this.parts.push(b);
    return this;
  }
  long(v) {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(BigInt(v));
    this.parts.push(b);
    return this;
  }
  bool(v) {
    this.parts.push(Buffer.from([v ? 1 : 0]));
    return this;
  }
  buf(b) {
    if (b === null) return this.int(-1);
    this.int(b.length);
    this.parts.push(b);
    return this;
  }
  str(s) {
    return this.buf(Buffer.from(s, 'utf8'));
  }
  /** The frame: int32 length + fields. */
  frame() {
    const body = Buffer.concat(this.parts);
    const len = Buffer.allocUnsafe(4);
    len.writeInt32BE(body.length);
    return Buffer.concat([len, body]);
  }
}

/** Reads jute fields from one reply frame. */
class Reader {
  constructor(b) {
    this.b = b;
    this.at = 0;
  }
  int() {
    const v = this.b.readInt32BE(this.at);
    this.at += 4;
    return v;
  }
  long() {
    const v = this.b.readBigInt64BE(this.at);
    this.at += 8;
    return v;
  }
  buf() {
    const n = this.int();
    if (n < 0) return null;
    const v = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
  str() {
    const v = this.buf();
    return v === null ? null : v.toString('utf8');
  }
  /** A whole Stat, every field a Number (what the raw calls return). */
  stat() {
    const l = () => Number(this.long());
    return {
      czxid: l(), mzxid: l(), ctime: l(), mtime: l(),
      version: this.int(), cversion: this.int(), aversion: this.int(),
      ephemeralOwner: l(), dataLength: this.int(), numChildren: this.int(), pzxid: l(),
    };
  }
  /** The Stat's version (the only field the recipes use); skips the rest. */
  statVersion() {
    const version = this.b.readInt32BE(this.at + 32);
    this.at += STAT_BYTES;
    return version;
  }
}

class WireClient {
  constructor(socket, sessionTimeout) {
    this.socket = socket;
    this.xid = 0;
    this.pending = new Map(); // xid -> { resolve, reject, parse }
    this.watches = new Map(); // path -> [callback] (data watches set by exists)
    this.pingTimer = setInterval(() => this.send(OP.ping, -2, new Writer()), sessionTimeout / 3).unref();
  }

  /** Sends one request; resolves with `parse(reader)` of its reply. */
  request(type, fill, parse) {
    const xid = ++this.xid;
    const w = new Writer();
    fill(w);
    return new Promise((resolve, reject) => {
      this.pending.set(xid, { resolve, reject, parse });
      this.send(type, xid, w);
    });
  }

  send(type, xid, w) {
    w.parts.unshift(Buffer.from([xid >>> 24, (xid >>> 16) & 255, (xid >>> 8) & 255, xid & 255, type >>> 24 & 255, (type >>> 16) & 255, (type >>> 8) & 255, type & 255]));
    this.socket.write(w.frame());
  }

  /** One reply frame (length prefix removed). */
  onFrame(frame) {
    const r = new Reader(frame);
    const xid = r.int();
    r.long(); // zxid
    const err = r.int();
    if (xid === -2) return; // ping
    if (xid === -1) {
      r.int(); // event type
      r.int(); // state
      const path = r.str();
      const callbacks = this.watches.get(path) || [];
      this.watches.delete(path);
      for (const cb of callbacks) cb();
      return;
    }
    const p = this.pending.get(xid);
    if (!p) return;
    this.pending.delete(xid);
    if (err !== 0) p.reject(Object.assign(new Error(`ZooKeeper error ${err}`), { code: ERR.get(err) || String(err) }));
    else p.resolve(p.parse(r));
  }

  create(path, data, mode) {
    return this.request(
      OP.create,
      (w) => {
        w.str(path).str(data).int(OPEN_ACL.length);
        for (const a of OPEN_ACL) w.int(a.perms).str(a.scheme).str(a.id);
        w.int(FLAGS[mode]);
      },
      (r) => r.str()
    );
  }

  getChildren(path) {
    return this.request(OP.getChildren, (w) => w.str(path).bool(false), (r) => {
      const n = r.int();
      const names = new Array(n);
      for (let i = 0; i < n; i++) names[i] = r.str();
      return names;
    });
  }

  existsWatch(path, onChange) {
    const list = this.watches.get(path) || [];
    list.push(onChange);
    this.watches.set(path, list);
    return this.request(OP.exists, (w) => w.str(path).bool(true), () => true).catch((err) => {
      if (err.code === 'NONODE') return false; // the watch is set anyway: it fires on creation
      throw err;
    });
  }

  getData(path) {
    return this.request(OP.getData, (w) => w.str(path).bool(false), (r) => {
      const data = r.buf();
      return { data: data ? data.toString('utf8') : '', version: r.statVersion() };
    }).catch((err) => {
      if (err.code === 'NONODE') return null;
      throw err;
    });
  }

  setData(path, data, version) {
    return this.request(OP.setData, (w) => w.str(path).str(data).int(version), (r) => r.statVersion());
  }

  remove(path) {
    return this.request(OP.delete, (w) => w.str(path).int(-1), () => undefined);
  }

  // The raw calls (the bench's znode_* scenarios): data as Buffers, the Stat parsed whole.
  rawGet(path) {
    return this.request(OP.getData, (w) => w.str(path).bool(false), (r) => ({ data: r.buf(), stat: r.stat() }));
  }

  rawSet(path, data) {
    return this.request(OP.setData, (w) => w.str(path).buf(data).int(-1), (r) => r.stat());
  }

  rawCreate(path, data) {
    return this.request(
      OP.create,
      (w) => {
        w.str(path).buf(data).int(OPEN_ACL.length);
        for (const a of OPEN_ACL) w.int(a.perms).str(a.scheme).str(a.id);
        w.int(FLAGS.persistent);
      },
      (r) => r.str()
    );
  }

  rawRemove(path) {
    return this.remove(path);
  }

  close() {
    clearInterval(this.pingTimer);
    this.send(OP.close, ++this.xid, new Writer());
    this.socket.end();
  }
}

/** What the wire allows: the lock enters in one round trip (create and list pipelined). */
class ProbeRecipes extends BaselineRecipes {
  async lock(path) {
    let created;
    const creating = this.client.create(`${path}/lock-`, '', 'ephemeral_sequential');
    const listed = this.client.getChildren(path).catch(() => null); // queued right behind the create
    try {
      created = await creating;
    } catch (err) {
      await listed;
      if (err.code !== 'NONODE') throw err;
      return super.lock(path); // first use: parents are missing
    }
    return this.wait(path, created, await listed);
  }

  /** Holds when first in the queue; otherwise watches the predecessor and lists again. */
  async wait(path, nodePath, queue) {
    const name = nodePath.slice(path.length + 1);
    for (let waited = false; ; waited = true) {
      queue = queue.filter((n) => n.startsWith('lock-')).sort();
      const at = queue.indexOf(name);
      if (at === 0) return { release: () => this.client.remove(nodePath), nodePath, waited };
      if (at < 0) throw Object.assign(new Error(`lock node ${nodePath} vanished`), { code: 'LOCK_LOST' });
      await this.waitForGone(`${path}/${queue[at - 1]}`);
      queue = await this.client.getChildren(path);
    }
  }

  /** Round trip 1: create + list + read, pipelined. Round trip 2: write + unlock, pipelined. */
  async executeTransaction(key, valueOrUpdater) {
    const path = this.keyPath(key);
    const lockPath = `${this.root}/locks/${encodeURIComponent(key)}`;
    let lock;
    // create first, then list and read: a session's requests are answered in order, so the read
    // sees every write committed before the lock node existed
    const created = this.client.create(`${lockPath}/lock-`, '', 'ephemeral_sequential');
    const listed = this.client.getChildren(lockPath).catch(() => null);
    const read = this.client.getData(path).catch(() => null);
    try {
      lock = await this.wait(lockPath, await created, await listed);
    } catch (err) {
      await read;
      if (err.code !== 'NONODE') throw err;
      return super.executeTransaction(key, valueOrUpdater); // first use: parents are missing
    }
    // re-read if the lock had to wait: the holders before it wrote meanwhile
    let current = await read;
    if (lock.waited) current = await this.client.getData(path);
    const previous = current ? JSON.parse(current.data) : undefined;
    const value = typeof valueOrUpdater === 'function' ? await valueOrUpdater(previous) : valueOrUpdater;
    const json = JSON.stringify(value);
    const write = current ? this.client.setData(path, json, current.version) : this.createWithParents(path, json, 'persistent');
    const release = lock.release();
    await Promise.all([write, release]);
    return { key, value, previous };
  }
}

/** Connects; resolves ProbeRecipes bound to a session (call `.client.close()` to end it). */
function open(connect, root, { sessionTimeout = 30000 } = {}) {
  const [host, port] = connect.split('/')[0].split(',')[0].split(':');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port: Number(port), noDelay: true });
    let client = null;
    let chunks = Buffer.alloc(0);
    socket.on('error', (err) => (client ? client.pending.forEach((p) => p.reject(err)) : reject(err)));
    socket.on('data', (data) => {
      chunks = chunks.length ? Buffer.concat([chunks, data]) : data;
      while (chunks.length >= 4 && chunks.length >= 4 + chunks.readInt32BE(0)) {
        const frame = chunks.subarray(4, 4 + chunks.readInt32BE(0));
        chunks = chunks.subarray(4 + frame.length);
        if (client) client.onFrame(frame);
        else {
          // ConnectResponse: protocolVersion, timeOut, sessionId, passwd
          const r = new Reader(frame);
          r.int();
          const negotiated = r.int();
          client = new WireClient(socket, negotiated);
          resolve(new ProbeRecipes(client, root));
        }
      }
    });
    socket.on('connect', () => {
      socket.write(new Writer().int(0).long(0).int(sessionTimeout).long(0).buf(Buffer.alloc(16)).bool(false).frame());
    });
  });
}

module.exports = { name: 'wire-probe', open };
