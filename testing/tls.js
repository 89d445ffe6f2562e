'use strict';
// TLS material for throwaway servers, made at run time with openssl and the JDK's keytool
// (nothing is committed): see makeTlsFiles. etcd takes the PEM files as they are (`paths`);
// only ZooKeeper's JVM needs the keystores, so keytool runs only for those.
const childProcess = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

/**
 * TLS material for a test server, made in `dir` with openssl and keytool: a CA, a server
 * certificate for 127.0.0.1 only (so "localhost" is a hostname mismatch), a client certificate,
 * and a second, untrusted CA. Returns PEM texts, their files (`paths`) and the server's keystore
 * settings. `{ keystores: false }` skips keytool (etcd needs PEM files only, not a JDK).
 */
function makeTlsFiles(dir, { keystores = true } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const f = (name) => path.join(dir, name);
  const run = (cmd, args) => childProcess.execFileSync(cmd, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const subj = (cn) => ['-subj', `/CN=${cn}`];
  run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', ...subj('zktx test CA')]);
  run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('other-ca.key'), '-out', f('other-ca.pem'), '-days', '2', ...subj('untrusted CA')]);
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n');
  for (const who of ['server', 'client']) {
    run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), ...subj(who === 'server' ? '127.0.0.1' : 'zktx client')]);
    run('openssl', ['x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${who}.pem`), '-days', '2', '-extfile', f('ext.cnf')]);
  }
  const pem = (name) => fs.readFileSync(f(name), 'utf8');
  const made = {
    ca: pem('ca.pem'),
    cert: pem('client.pem'),
    key: pem('client.key'),
    otherCa: pem('other-ca.pem'),
    paths: {
      ca: f('ca.pem'),
      serverCert: f('server.pem'),
      serverKey: f('server.key'),
      clientCert: f('client.pem'),
      clientKey: f('client.key'),
      otherCa: f('other-ca.pem'),
    },
  };
  if (!keystores) return made;
  const password = crypto.randomBytes(12).toString('hex');
  run('openssl', ['pkcs12', '-export', '-in', f('server.pem'), '-inkey', f('server.key'), '-out', f('keystore.p12'), '-passout', `pass:${password}`, '-name', 'server']);
  // The truststore must hold the CA as a trusted entry (see shared/ZOOKEEPER.md).
  run('keytool', ['-importcert', '-noprompt', '-alias', 'ca', '-file', f('ca.pem'), '-keystore', f('truststore.p12'), '-storetype', 'PKCS12', '-storepass', password]);
  return {
    ...made,
    config: {
      'ssl.keyStore.location': f('keystore.p12'),
      'ssl.keyStore.password': password,
      'ssl.keyStore.type': 'PKCS12',
      'ssl.trustStore.location': f('truststore.p12'),
      'ssl.trustStore.password': password,
      'ssl.trustStore.type': 'PKCS12',
    },
  };
}


module.exports = { makeTlsFiles };
