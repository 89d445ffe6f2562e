'use strict';
// A TCP proxy on a free loopback port that forwards to one ZooKeeper server and can cut the
// line on demand: the network faults a single machine can make without namespaces or root.
//
//   const proxy = await startProxy('127.0.0.1:2181');
//   const zk = clientAt(proxy.connect, ...);   // the client only knows the proxy
//   proxy.partition();  // every connection reset, new ones accepted and reset at once
//   proxy.heal();       // forwarding again
//   proxy.delay(300);   // +300 ms each way, order kept; delay(0) turns it off
//   await proxy.close();
//
// partition({ mode: 'blackhole' }) keeps connections open but drops every byte both ways
// (a silent network: the client only notices by its own timeouts); new connections are
// accepted and starved. partition({ mode: 'responses' }) forwards client -> server but drops
// server -> client: requests are applied, their answers are lost.
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
      client.resetAndDestroy();
      return;
    }
    this.stats.accepted += 1;
    const upstream = net.connect(this.target);
    upstream.on('error', () => {});
    const pair = { client, upstream, timers: new Set() };
    this.pairs.add(pair);
    const end = () => {
      if (!this.pairs.delete(pair)) return;
      for (const t of pair.timers) clearTimeout(t);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    this._pipe(pair, client, upstream, 'up');
    this._pipe(pair, upstream, client, 'down');
    client.resume();
  }

  /** Forwards `from` -> `to`, honouring the current mode and delay (order kept per direction). */
  _pipe(pair, from, to, dir) {
    let releaseAt = 0; // a later chunk never overtakes an earlier one
    from.on('data', (chunk) => {
      const drop = this.mode === 'blackhole' || this.mode === 'reset' || (this.mode === 'responses' && dir === 'down');
      if (drop) {
        this.stats.dropped += chunk.length;
        return;
      }
      this.stats[dir === 'up' ? 'bytesUp' : 'bytesDown'] += chunk.length;
      if (this.delayMs <= 0 && releaseAt <= Date.now()) {
        to.write(chunk);
        return;
      }
      releaseAt = Math.max(releaseAt, Date.now() + this.delayMs);
      const t = setTimeout(() => {
        pair.timers.delete(t);
        if (!to.destroyed) to.write(chunk);
      }, releaseAt - Date.now());
      pair.timers.add(t);
    });
  }

  /**
   * Cuts the line. mode 'reset' (default): destroys every connection (RST) and resets new ones
   * as soon as they are accepted. 'blackhole': connections stay open, nothing gets through.
   * 'responses': requests reach the server, answers are dropped.
   */
  partition({ mode = 'reset' } = {}) {
    if (!['reset', 'blackhole', 'responses'].includes(mode)) throw new Error(`unknown partition mode ${mode}`);
    this.mode = mode;
    if (mode === 'reset') {
      for (const pair of [...this.pairs]) {
        for (const t of pair.timers) clearTimeout(t);
        pair.client.resetAndDestroy();
        pair.upstream.destroy();
        this.pairs.delete(pair);
      }
    }
    return this;
  }

  /** Forwards again. Connections kept through a blackhole carry on (bytes dropped meanwhile are lost). */
  heal() {
    this.mode = 'open';
    return this;
  }

  /** Adds `ms` of latency to each chunk in each direction from now on (0: none). */
  delay(ms) {
    this.delayMs = Math.max(0, ms);
    return this;
  }

  /** Destroys every connection without changing the mode (the client reconnects through us). */
  dropConnections() {
    for (const pair of [...this.pairs]) {
      pair.client.resetAndDestroy();
      pair.upstream.destroy();
      this.pairs.delete(pair);
    }
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
