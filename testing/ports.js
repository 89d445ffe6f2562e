'use strict';
// Free loopback ports for throwaway servers. The OS picks them (listen on port 0); a port stays
// free only until someone binds it, so the starters retry on a bind failure. Ports handed out
// by this process are not handed out again, so two servers started at once never get the same.
const net = require('node:net');

const HOST = '127.0.0.1';
const issued = new Set();

async function listenOnAnyPort() {
  const srv = net.createServer();
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen({ port: 0, host: HOST, exclusive: true }, resolve);
  });
  return srv;
}

/** Ask the OS for `count` distinct free loopback ports (all held open until all are picked). */
async function freePorts(count) {
  const servers = [];
  try {
    const ports = [];
    for (let tries = 0; ports.length < count; tries++) {
      const srv = await listenOnAnyPort();
      servers.push(srv);
      const { port } = srv.address();
      if (issued.has(port) && tries < 100 * count) continue; // keep it open: the OS picks another
      ports.push(port);
    }
    for (const p of ports) issued.add(p);
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(() => resolve()))));
  }
}

/** One free loopback port. */
async function freePort() {
  return (await freePorts(1))[0];
}

module.exports = { HOST, freePort, freePorts };
