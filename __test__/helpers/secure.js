'use strict';
// Secure mode of the test suite: ZKTX_TEST_SECURE=1 (digest identity) or ZKTX_TEST_SECURE=sasl
// (SASL DIGEST-MD5). Every ZooKeeper server the tests start then accepts TLS only (a
// secureClientPort on Netty, no plaintext port, client certificates required) and refuses
// unauthenticated sessions (enforce.auth); every client the tests build (helpers/zk.js, the
// worker processes) connects with `tls`, that identity and `acl: 'creator-all'`. Test bodies do
// not change: `npm run test:secure` runs the fault and concurrency suites this way.
//
// global-setup calls prepare() once per run: one CA and one server certificate (for 127.0.0.1)
// for every server of the run, so a client needs no per-server material. What the jest workers
// and their child processes need travels in ZKTX_TEST_SECURE_JSON:
//   { mode, credentials, ca, cert, key, server }   (ca/cert/key: PEM file paths; server: the
//   JSON file with the servers' keystore settings; credentials: "user:password" of this run)
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ENV = 'ZKTX_TEST_SECURE_JSON';
const USER = 'zktx-test';

/** null (plain mode), 'digest' or 'sasl', from ZKTX_TEST_SECURE. */
function mode() {
  const v = process.env.ZKTX_TEST_SECURE;
  if (v === undefined || v === '' || v === '0' || v === 'false') return null;
  if (v === 'sasl') return 'sasl';
  if (v === '1' || v === 'true' || v === 'digest') return 'digest';
  throw new Error(`ZKTX_TEST_SECURE must be 1 (or digest) or sasl, got ${JSON.stringify(v)}`);
}

/**
 * Makes this run's certificates and credentials (global-setup, once) and publishes them in
 * ZKTX_TEST_SECURE_JSON. Returns a function that removes them.
 */
function prepare(testing) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zktx-secure-'));
  const files = testing.makeTlsFiles(dir);
  const server = path.join(dir, 'server.json');
  fs.writeFileSync(server, JSON.stringify(files), { mode: 0o600 });
  const password = crypto.randomBytes(12).toString('hex');
  process.env[ENV] = JSON.stringify({
    mode: mode(),
    credentials: `${USER}:${password}`,
    ca: path.join(dir, 'ca.pem'),
    cert: path.join(dir, 'client.pem'),
    key: path.join(dir, 'client.key'),
    server,
  });
  return () => fs.rmSync(dir, { recursive: true, force: true });
}

/** "user:password" -> { user, password } */
function split(credentials) {
  const i = credentials.indexOf(':');
  return { user: credentials.slice(0, i), password: credentials.slice(i + 1) };
}

let cached;
/** The published settings, or null in plain mode. */
function settings() {
  if (cached !== undefined) return cached;
  if (!mode()) return (cached = null);
  const raw = process.env[ENV];
  if (!raw) throw new Error(`ZKTX_TEST_SECURE is set but ${ENV} is not: run through jest (global-setup makes it)`);
  const s = JSON.parse(raw);
  const pem = (file) => fs.readFileSync(file, 'utf8');
  cached = { ...s, tls: { ca: pem(s.ca), cert: pem(s.cert), key: pem(s.key) } };
  return cached;
}

/**
 * Options for every test client: {} in plain mode; in secure mode TLS with the run's client
 * certificate, the run's identity, and creator-only ACLs on everything zktx creates.
 */
function clientOptions() {
  const s = settings();
  if (!s) return {};
  const { user: username, password } = split(s.credentials);
  const identity = s.mode === 'sasl'
    ? { sasl: { mechanism: 'DIGEST-MD5', username, password } }
    : { auth: [{ scheme: 'digest', credentials: s.credentials }] };
  return { tls: s.tls, ...identity, acl: 'creator-all', logger };
}

/**
 * What a `zktx/zookeeper` client adds to its config in secure mode (`zktx: {...}`): TLS and the
 * identity, but the package's own default ACL (world:anyone), which programs written for it assume.
 */
function compatConfig(config) {
  if (!settings()) return config;
  const { acl, ...options } = clientOptions();
  return { ...config, zktx: options };
}

// ZooKeeper 3.8.0's Netty server (the only one with TLS) sometimes answers the auth or SASL
// request that a client pipelines behind its connect request before the connect response;
// zookeeper-client 0.11.2 then fails that connection attempt ("unable to unmarshal
// ConnectResponse", "unsupported server version") and retries. The session is established on a
// later attempt: nothing is lost, but the retry warns. That warning (and only it) is kept out of
// the workers' stderr, which the suites require to be empty; __test__/tls.test.js ("64 connects
// with auth over TLS ...") counts how many connects it makes retry.
const SERVER_ORDERING_BUG = /^fails to establish session to \S+ due to (unable to unmarshal \S*ConnectResponse|unexpected error: (unsupported server version|invalid negotiated session timeout|invalid session password length))/;

/** Like the default log (stderr), minus the warning of the server bug above. */
const logger = Object.fromEntries(['debug', 'info', 'warn', 'error'].map((level) => [level, (message, fields = {}) => {
  if (level === 'warn' && fields.target === 'zookeeper_client::session' && SERVER_ORDERING_BUG.test(message)) return;
  process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} ${JSON.stringify(fields)}: ${message}\n`);
}]));

/** Options for testing/'s starters: {} in plain mode; TLS only and enforced auth in secure mode. */
function serverOptions() {
  const s = settings();
  if (!s) return {};
  const files = JSON.parse(fs.readFileSync(s.server, 'utf8'));
  const { user, password } = split(s.credentials);
  const auth = s.mode === 'sasl' ? { saslUsers: { [user]: password }, enforce: ['sasl'] } : { enforce: ['digest'] };
  return { auth, tls: { only: true, clientAuth: 'need', files } };
}

/**
 * testing/ (zktx/testing) with startStandalone/startEnsemble that start secured servers in
 * secure mode (a test's own auth/tls options still win).
 */
function starters(testing) {
  if (!mode()) return testing;
  return {
    ...testing,
    startStandalone: (options = {}) => testing.startStandalone({ ...serverOptions(), ...options }),
    startEnsemble: (options = {}) => testing.startEnsemble({ ...serverOptions(), ...options }),
  };
}

/**
 * `it`, or in secure mode `it.skip` with the reason printed: for a test that cannot run against
 * a TLS-only, authenticated server (say why).
 */
function itUnlessSecure(reason) {
  if (!mode()) return it;
  process.stdout.write(`[secure] skipped: ${reason}\n`);
  return it.skip;
}

module.exports = { mode, prepare, settings, clientOptions, compatConfig, serverOptions, starters, itUnlessSecure, SERVER_ORDERING_BUG };
