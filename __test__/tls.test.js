'use strict';
// TLS to a server's secureClientPort (Netty, ssl.clientAuth=need), with certificates made at test
// time (testing/tls.js makeTlsFiles): the server's is for 127.0.0.1 only.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const util = require('node:util');
const { ZooKeeper } = require('..');
const { clientAt, unique, zkScripts } = require('./helpers/zk');
const { SERVER_ORDERING_BUG } = require('./helpers/secure');

describe('TLS (a server that requires client certificates)', () => {
  let server;
  let files;
  const good = () => ({ ca: files.ca, cert: files.cert, key: files.key });
  beforeAll(async () => {
    server = await zkScripts.startStandalone({ tickTime: 500, tls: { clientAuth: 'need' } });
    files = server.tls;
  });
  afterAll(async () => { if (server) await server.stop(); });

  it('a client with a trusted CA and its certificate locks, transacts and fences as before', async () => {
    const zk = clientAt(server.secureConnect, { timeout: 5000, tls: good() });
    try {
      const key = unique('tls');
      const lock = await zk.lock('/tls/locks/a');
      await zk.set(key, 1, { lock });
      await lock.release();
      expect((await zk.executeTransaction(key, (n) => n + 1)).value).toBe(2);
      await zk.transaction(async (tx) => tx.set(key, (await tx.get(key)) + 1));
      expect(await zk.get(key)).toBe(3);
    } finally {
      await zk.close();
    }
  });

  it('certificate problems are TLS_HANDSHAKE errors with the reason, within a second, not a connect timeout', async () => {
    const cases = [
      [{ ...good(), ca: files.otherCa }, server.secureConnect, /UnknownIssuer/],
      [{ ca: files.ca }, server.secureConnect, /alert/i], // no client certificate
      [good(), server.secureConnect.replace('127.0.0.1', 'localhost'), /not valid for name "localhost"/],
    ];
    for (const [tls, connect, reason] of cases) {
      const zk = clientAt(connect, { timeout: 10000, tls });
      const t0 = Date.now();
      const err = await zk.connect().then(() => null, (e) => e);
      const ms = Date.now() - t0;
      await zk.close();
      expect(err).toMatchObject({ name: 'ZktxError', code: 'TLS_HANDSHAKE', outcome: 'not_applied' });
      expect(err.message).toMatch(reason);
      expect(err.cause).toMatchObject({ code: 'ERR_TLS_HANDSHAKE', message: expect.stringMatching(reason) }); // the handshake's own failure
      expect(err.message).not.toMatch(/PRIVATE KEY/);
      expect(ms).toBeLessThan(3000); // the connect timeout here is 10 s
    }
  });

  it('rejectUnauthorized: false skips the hostname check only: the chain is still verified', async () => {
    const localhost = server.secureConnect.replace('127.0.0.1', 'localhost');
    const zk = clientAt(localhost, { timeout: 5000, tls: { ...good(), rejectUnauthorized: false } });
    await zk.set(unique('tls-noname'), 1);
    await zk.close();
    const untrusted = clientAt(localhost, { timeout: 5000, tls: { ...good(), ca: files.otherCa, rejectUnauthorized: false } });
    await expect(untrusted.connect()).rejects.toMatchObject({ code: 'TLS_HANDSHAKE', message: expect.stringMatching(/UnknownIssuer/) });
    await untrusted.close();
  });

  it('the private key never appears in util.inspect(zk), errors or debug-level logs', async () => {
    const keyLine = files.key.split('\n')[1]; // a line of the key's base64 body
    const zk = clientAt(server.secureConnect, { timeout: 5000, tls: good() });
    await zk.connect();
    expect(util.inspect(zk, { depth: 10, showHidden: true })).not.toContain(keyLine);
    await zk.close();
    const script = `
      const { ZooKeeper } = require(${JSON.stringify(require.resolve('..'))});
      const tls = ${JSON.stringify(good())};
      (async () => {
        const a = new ZooKeeper({ connect: ${JSON.stringify(server.secureConnect)}, debug_level: 4, timeout: 5000, tls });
        await a.set('logged', 1);
        const b = new ZooKeeper({ connect: ${JSON.stringify(server.secureConnect)}, timeout: 5000, tls: { ...tls, ca: ${JSON.stringify(files.otherCa)} } });
        console.error('refused:', (await b.connect().catch((e) => e)).message);
        await Promise.all([a.close(), b.close()]);
      })().catch((e) => { console.error('FAILED', e); process.exit(1); });`;
    const out = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
    expect(out.status).toBe(0);
    expect(out.stderr).toMatch(/DEBUG/);
    expect(out.stderr).toMatch(/refused: TLS handshake/);
    expect(`${out.stderr}${out.stdout}`).not.toContain(keyLine);
  });

  // Server bug found by `npm run test:secure`: ZooKeeper 3.8.0's NettyServerCnxnFactory (the
  // server side of TLS) sometimes answers the auth request a client pipelines behind its connect
  // request *before* the connect response (raw bytes: frames of 16 then 37 bytes instead of 37
  // then 16, about 1 connect in 10 under load; NIOServerCnxnFactory never does). zookeeper-client
  // 0.11.2 reads the 16-byte auth reply as the connect response, fails the attempt ("unable to
  // unmarshal ConnectResponse ... insufficient buf"; with SASL "unsupported server version") and
  // retries: the session is established later, after a warning and a backoff. Fixing it needs
  // zookeeper-client to set such early replies aside until the connect response (a patch to the
  // crate) or a server that keeps the order. Whether a run hits it depends on timing, so the test
  // holds what must hold (every session is established and works) and only reports how many
  // connects needed a retry; when that stays 0 on a newer server, drop SERVER_ORDERING_BUG from
  // __test__/helpers/secure.js.
  it('64 connects with auth over TLS each establish their session and work (connects retried by the server ordering bug are counted)', async () => {
    const prefix = unique('tls-auth');
    const attempts = []; // per client: its failed connection attempts (warnings)
    let working = 0;
    for (let batch = 0; batch < 8; batch++) {
      const clients = Array.from({ length: 8 }, () => {
        const failed = [];
        attempts.push(failed);
        const logger = {
          debug() {}, info() {}, error() {},
          warn: (message) => { if (/^fails to establish session/.test(message)) failed.push(message); },
        };
        return clientAt(server.secureConnect, { timeout: 5000, tls: good(), auth: [{ scheme: 'digest', credentials: 'u:p' }], logger });
      });
      try {
        await Promise.all(clients.map(async (zk, i) => {
          await zk.connect();
          const key = `${prefix}-${batch}-${i}`;
          await zk.set(key, { batch, i });
          expect(await zk.get(key)).toEqual({ batch, i });
          working += 1;
        }));
      } finally {
        await Promise.all(clients.map((zk) => zk.close()));
      }
    }
    expect(working).toBe(64);
    await new Promise((r) => setTimeout(r, 100)); // log records are delivered on the event loop
    const retried = attempts.filter((a) => a.length > 0);
    const failedAttempts = attempts.flat();
    const known = failedAttempts.filter((m) => SERVER_ORDERING_BUG.test(m)).length;
    console.log(`TLS + digest auth: 64 of 64 sessions established and working; ${retried.length} connect(s) needed a retry ` +
      `(${failedAttempts.length} failed attempt(s), ${known} of them the Netty auth-before-connect ordering bug)` +
      (failedAttempts.length > known ? `; other failures: ${[...new Set(failedAttempts.filter((m) => !SERVER_ORDERING_BUG.test(m)))].join(' | ')}` : ''));
  }, 30000);

  it('malformed tls options are INVALID_ARGUMENT before connecting, never echoing the key', () => {
    const refused = (tls) => {
      try {
        new ZooKeeper({ tls }).close();
      } catch (e) {
        expect(e.message).not.toContain('SECRET-KEY-TEXT');
        return e.code;
      }
      return 'accepted';
    };
    expect(refused(good())).toBe('accepted');
    expect(refused({ ...good(), cert: Buffer.from(files.cert), key: Buffer.from(files.key) })).toBe('accepted');
    for (const tls of [
      {}, // no CA
      { ca: 'not a pem' },
      { ca: files.ca, cert: files.cert }, // cert without key
      { ca: files.ca, cert: files.cert, key: 'SECRET-KEY-TEXT' },
      { ca: files.ca, rejectUnauthorized: 'no' },
      { ca: files.ca, extra: 1 },
      'pem',
    ]) {
      expect([tls, refused(tls)]).toEqual([tls, 'INVALID_ARGUMENT']);
    }
  });

  it('a host no certificate can name (127.1) is INVALID_ARGUMENT before connecting, never a panic', async () => {
    // 127.1 resolves (inet_aton) and connects, and zookeeper-client unwrapped its TLS server
    // name: the I/O thread panicked and every call of the client hung past its deadlines
    const port = server.secureConnect.split(':').pop();
    for (const connect of [`127.1:${port}`, `127.0.0.1:${port},127.1:${port}`]) {
      let err;
      try {
        new ZooKeeper({ connect, timeout: 5000, connectTimeout: 2000, tls: good() }).close();
      } catch (e) {
        err = e;
      }
      expect([connect, err?.code, err?.message]).toEqual([connect, 'INVALID_ARGUMENT', expect.stringContaining('DNS name or an IP address')]);
    }
    // names a certificate can carry are accepted: localhost, an IPv6 literal, a name with an underscore
    for (const connect of [`localhost:${port}`, `[::1]:${port}`, `under_score:${port}`]) new ZooKeeper({ connect, tls: good() }).close();
  });

  it('a certificate revocation list in tls.ca that is not valid DER is INVALID_ARGUMENT before connecting, never a panic', async () => {
    // zookeeper-client unwrapped the parse of each CRL when the hostname check is off: zktx-io
    // panicked at connect (the connect then failed CONNECTIONLOSS); with the check on the connect
    // failed CONNECTIONLOSS "fail to create tls server cert verifier". A CRL is read from tls.ca.
    const crl = (base64) => `-----BEGIN X509 CRL-----\n${base64}\n-----END X509 CRL-----\n`;
    for (const bad of [crl('MAA='), crl(Buffer.from('not DER at all').toString('base64'))]) {
      for (const rejectUnauthorized of [false, true]) {
        let err;
        try {
          new ZooKeeper({ connect: server.secureConnect, timeout: 5000, connectTimeout: 2000, tls: { ...good(), ca: files.ca + bad, rejectUnauthorized } }).close();
        } catch (e) {
          err = e;
        }
        expect([rejectUnauthorized, err?.code, err?.message]).toEqual([rejectUnauthorized, 'INVALID_ARGUMENT', expect.stringMatching(/tls\.ca .*revocation list/)]);
      }
    }
    // a well-formed CRL of the CA (revoking nothing) is still accepted, and used
    const dir = path.dirname(files.paths.ca);
    const run = (args) => spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    fs.writeFileSync(path.join(dir, 'index.txt'), '');
    fs.writeFileSync(path.join(dir, 'crlnumber'), '01\n'); // a v2 CRL with a number, as webpki wants
    fs.writeFileSync(path.join(dir, 'crl.cnf'), '[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 1\n');
    const made = run(['ca', '-gencrl', '-config', 'crl.cnf', '-keyfile', 'ca.key', '-cert', 'ca.pem', '-out', 'crl.pem']);
    expect([made.status, made.status === 0 ? '' : made.stderr]).toEqual([0, '']);
    const ca = files.ca + fs.readFileSync(path.join(dir, 'crl.pem'), 'utf8');
    for (const rejectUnauthorized of [false, true]) {
      const zk = clientAt(server.secureConnect, { timeout: 5000, tls: { ...good(), ca, rejectUnauthorized } });
      try {
        await zk.set(unique('tls-crl'), 1);
      } finally {
        await zk.close();
      }
    }
  });
});
