'use strict';
// A TCP proxy on a free loopback port that forwards to one server (ZooKeeper, PostgreSQL, any
// TCP service) and can cut the line on demand: the network faults a single machine can make
// without namespaces or root.
//
//   const { startProxy } = require('zktx/testing');
//   const proxy = await startProxy('127.0.0.1:2181');
//   const zk = new ZooKeeper({ connect: proxy.connect });   // the client only knows the proxy
//   proxy.partition();  // every connection dropped, new ones accepted and dropped at once
//   proxy.heal();       // forwarding again
//   proxy.delay(300);   // +300 ms each way, order kept; delay(0) turns it off
//   await proxy.close();
//
// partition({ mode: 'blackhole' }) is a silent network instead: connections stay open but
// nothing moves either way (reading stops, so bytes wait in kernel buffers as they would for
// TCP retransmission) and new connections are accepted but not forwarded; heal() delivers what
// waited, unless an end gave up meanwhile. partition({ mode: 'responses' }) forwards requests
// but drops every answer (requests apply, their answers are lost); since that breaks the byte
// stream, heal() then closes the connections it damaged.
const net = require('node:net');

const HOST = '127.0.0.1';

function parseTarget(target) {
  if (typeof target === 'object') return { host: target.host || HOST, port: target.port };
  const i = target.lastIndexOf(':');
  return { host: target.slice(0, i) || HOST, port: Number(target.slice(i + 1)) };
}

class TcpProxy {
  constructor(target) {
    this.target = parseTarget(target);
    this.mode = 'open'; // 'open' | 'reset' | 'blackhole' | 'responses'
    this.delayMs = 0;
    this.pairs = new Set();
    this.starved = new Set(); // accepted during a blackhole, not yet forwarded
    this.stats = { accepted: 0, refused: 0, bytesUp: 0, bytesDown: 0, dropped: 0 };
    this.server = net.createServer({ pauseOnConnect: true }, (socket) => this._accept(socket));
    this.server.on('error', () => {});
  }

  async listen(port = 0) {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port, host: HOST, exclusive: true }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = this.server.address().port;
    this.connect = `${HOST}:${this.port}`;
    return this;
  }

  _accept(client) {
    client.on('error', () => {});
    if (this.mode === 'reset') {
      this.stats.refused += 1;
      client.destroy();
      return;
    }
    this.stats.accepted += 1;
    const pair = { client, upstream: null, timers: new Set(), damaged: false };
    this.pairs.add(pair);
    client.on('close', () => this._end(pair));
    if (this.mode === 'blackhole') {
      this.starved.add(pair); // accepted, never answered until heal()
      return;
    }
    this._forward(pair);
  }

  _forward(pair) {
    const upstream = net.connect(this.target);
    upstream.on('error', () => {});
    upstream.on('close', () => this._end(pair));
    pair.upstream = upstream;
    this._pipe(pair, pair.client, upstream, 'up');
    this._pipe(pair, upstream, pair.client, 'down');
    pair.client.resume();
  }

  _end(pair) {
    if (!this.pairs.delete(pair)) return;
    this.starved.delete(pair);
    for (const t of pair.timers) clearTimeout(t);
    pair.client.destroy();
    if (pair.upstream) pair.upstream.destroy();
  }

  /**
   * Forwards `from` -> `to`, honouring the current mode and delay. Order is kept per direction:
   * delayed chunks wait in one queue drained by one timer. (A timer per chunk reordered bytes
   * once the delay was lowered: a later chunk's shorter timer could fire first, and a reordered
   * HTTP/2 stream corrupts its header compression: a gRPC call then hung unanswered.)
   */
  _pipe(pair, from, to, dir) {
    const queue = []; // { at, chunk }, in arrival order; `at` never decreases
    let timer = null;
    const drain = () => {
      pair.timers.delete(timer);
      timer = null;
      const now = Date.now();
      while (queue.length > 0 && queue[0].at <= now) {
        const { chunk } = queue.shift();
        if (!to.destroyed) to.write(chunk);
      }
      if (queue.length > 0) schedule();
    };
    const schedule = () => {
      if (timer !== null) return;
      timer = setTimeout(drain, Math.max(0, queue[0].at - Date.now()));
      pair.timers.add(timer);
    };
    from.on('data', (chunk) => {
      if (this.mode === 'responses' && dir === 'down') {
        this.stats.dropped += chunk.length;
        pair.damaged = true;
        return;
      }
      this.stats[dir === 'up' ? 'bytesUp' : 'bytesDown'] += chunk.length;
      if (this.delayMs <= 0 && queue.length === 0) {
        to.write(chunk);
        return;
      }
      const last = queue.length > 0 ? queue[queue.length - 1].at : 0;
      queue.push({ at: Math.max(last, Date.now() + this.delayMs), chunk });
      schedule();
    });
  }

  /**
   * Cuts the line. mode 'reset' (default): destroys every connection and new ones as soon as
   * they are accepted (the client sees its connection closed, then refused). 'blackhole': connections stay open, nothing gets through.
   * 'responses': requests reach the server, answers are dropped.
   */
  partition({ mode = 'reset' } = {}) {
    if (!['reset', 'blackhole', 'responses'].includes(mode)) throw new Error(`unknown partition mode ${mode}`);
    this.heal();
    this.mode = mode;
    if (mode === 'reset') this.dropConnections();
    if (mode === 'blackhole') {
      for (const pair of this.pairs) {
        pair.client.pause();
        if (pair.upstream) pair.upstream.pause();
      }
    }
    return this;
  }

  /**
   * Forwards again. After a blackhole, held-back bytes flow on and starved connections are
   * forwarded; after 'responses', connections that lost answers are closed.
   */
  heal() {
    const was = this.mode;
    this.mode = 'open';
    if (was === 'blackhole') {
      for (const pair of this.pairs) {
        if (this.starved.delete(pair)) {
          this._forward(pair);
          continue;
        }
        pair.client.resume();
        if (pair.upstream) pair.upstream.resume();
      }
    }
    if (was === 'responses') {
      for (const pair of [...this.pairs]) {
        if (pair.damaged) this._end(pair);
      }
    }
    return this;
  }

  /** Adds `ms` of latency to each chunk in each direction from now on (0: none). */
  delay(ms) {
    this.delayMs = Math.max(0, ms);
    return this;
  }

  /** Destroys every connection without changing the mode (the client reconnects through us). */
  dropConnections() {
    // destroy(), not resetAndDestroy(): on Node 20 the latter sometimes left the process
    // spinning at exit in Environment::CleanupHandles (seen with this proxy, 1 run in 3).
    for (const pair of [...this.pairs]) this._end(pair);
    return this;
  }

  get connections() {
    return this.pairs.size;
  }

  /** Stops listening and destroys every connection. Idempotent. */
  close() {
    this.dropConnections();
    if (!this._closing) {
      this._closing = new Promise((resolve) => this.server.close(() => resolve()));
    }
    return this._closing;
  }
}

/** A proxy to `target` ('host:port' or {host, port}) listening on a free loopback port. */
function startProxy(target, { port } = {}) {
  return new TcpProxy(target).listen(port);
}

module.exports = { startProxy, TcpProxy };
