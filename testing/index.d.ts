// zktx/testing: real servers for tests (ZooKeeper, etcd, PostgreSQL, a fault-injecting TCP proxy),
// the way Curator ships curator-test. Every server runs on a free loopback port in a fresh temp
// dir, is stopped by PID, and is SIGKILLed (its temp dir removed) when the process that started
// it exits without stopping it.
/**
 * Throwaway ZooKeeper, etcd and PostgreSQL servers and a fault-injecting proxy for tests: `require('zktx/testing')`.
 * @packageDocumentation
 * @module zktx/testing
 */

// ---------------------------------------------------------------------------------------------
// ZooKeeper

/** Where the ZooKeeper jars come from. */
export interface ZooKeeperInstall {
  classpath: string;
  /** `ZOOKEEPER_HOME=...` or `Debian package zookeeper`. */
  source: string;
}

/**
 * Locates ZooKeeper: $ZOOKEEPER_HOME, else Debian's `zookeeper` package (installed on the spot
 * with apt-get when running as root).
 *
 * *Errors*: throws with what to install when there is none.
 */
export function findZooKeeper(): ZooKeeperInstall;

/** The `auth` option: identities and providers of a secured server. */
export interface ZooKeeperAuthOptions {
  /** "user:password": a digest identity that passes every ACL check (for cleanup). */
  digestSuperUser?: string;
  /** ZooKeeper 3.7+ enforce.auth: a session not authenticated with one of these gets AUTHFAILED. */
  enforce?: string[];
  /** SASL DIGEST-MD5 users, name to password. */
  saslUsers?: Record<string, string>;
}

/** The `tls` option: a secureClientPort with certificates made at run time (openssl, keytool). */
export interface ZooKeeperTlsOptions {
  /** ssl.clientAuth; default 'need'. */
  clientAuth?: 'need' | 'want' | 'none';
  /**
   * No plaintext port at all: `port` / `connect` are the TLS port (also `secureConnect`), and the
   * health checks (`ruok`, `srvr`, mode(), fourLetter(), mntr()) go over TLS with the client
   * certificate. Required by startEnsemble.
   */
  only?: boolean;
  /**
   * Certificates from makeTlsFiles(dir) to use instead of fresh ones: one CA (and one client
   * certificate) for every server of a run. Default: made in the server's data dir.
   */
  files?: TlsFiles;
}

/** The PEM files makeTlsFiles wrote (etcd and etcdctl take files, not texts). */
export interface TlsPaths {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  otherCa: string;
}

/** What makeTlsFiles makes: PEM texts and files for clients and servers, and ZooKeeper's keystore settings. */
export interface TlsFiles extends ZooKeeperTlsMaterial {
  /** The PEM files in the dir. */
  paths: TlsPaths;
  /**
   * zoo.cfg lines: ssl.keyStore.* and ssl.trustStore.* (PKCS12 files in the dir, a random
   * password). Absent with `keystores: false`.
   */
  config?: Record<string, string>;
}

/**
 * Makes TLS material in `dir` with openssl and keytool: a CA, a server certificate for
 * 127.0.0.1 only (so "localhost" is a hostname mismatch), a client certificate, a second,
 * untrusted CA, and the server's keystore and truststore. Pass it as `tls.files` to share one CA
 * between servers. `keystores: false` skips the keystores (and keytool, so no JDK): enough for
 * etcd.
 */
export function makeTlsFiles(dir: string, options?: { keystores?: boolean }): TlsFiles;

export interface StandaloneOptions {
  /** Default 2000 ms; session timeouts are clamped to [2, 20] ticks. */
  tickTime?: number;
  /** Default: a fresh temp dir, removed by stop(). */
  dataDir?: string;
  /** Default: a free one. */
  port?: number;
  /** Default false (forceSync=no: faster, durable only against process death). */
  forceSync?: boolean;
  logDir?: string;
  minSessionTimeout?: number;
  maxSessionTimeout?: number;
  /** More zoo.cfg lines. */
  extraConfig?: Record<string, string | number | boolean>;
  auth?: ZooKeeperAuthOptions;
  tls?: ZooKeeperTlsOptions;
  /**
   * How often the server deletes empty containers and expired TTL nodes, in ms
   * (`-Dznode.container.checkIntervalMs`; the server's default is 60 s). TTL nodes also need
   * `extraConfig: { extendedTypesEnabled: true }`.
   */
  containerCheckIntervalMs?: number;
}

/** PEM texts for a client of a TLS server (`tls` option). */
export interface ZooKeeperTlsMaterial {
  /** The CA that signed the server's certificate (for 127.0.0.1 only). */
  ca: string;
  /** A client certificate and key signed by `ca`. */
  cert: string;
  key: string;
  /** A CA nobody trusts, for failure tests. */
  otherCa: string;
}

/** One ZooKeeper server process: standalone, or a node of an ensemble. */
export class ZkServer {
  private constructor();
  /** The node's myid in an ensemble, undefined for a standalone server. */
  readonly id: number | undefined;
  /** The client port: the TLS one with `tls: { only: true }`. */
  readonly port: number;
  /** '127.0.0.1:PORT' */
  readonly connect: string;
  /** '127.0.0.1:PORT' of the TLS port (`tls` option only; equals `connect` with `only: true`). */
  readonly secureConnect?: string;
  readonly tls?: ZooKeeperTlsMaterial;
  readonly dataDir: string;
  readonly cfgPath: string;
  readonly logPath: string;
  readonly tickTime: number;
  /** The JVM's PID (changes on restart()). */
  readonly pid: number | undefined;
  /** Resolves with the server's Mode once `ruok` and `srvr` answer. */
  waitReady(options?: { timeoutMs?: number }): Promise<string>;
  /** Is the JVM alive (a SIGSTOPped one counts)? */
  isRunning(): boolean;
  /** Sends a signal to the JVM ('SIGKILL', 'SIGSTOP', 'SIGCONT', ...); false if it is gone. */
  kill(signal?: NodeJS.Signals): boolean;
  /** SIGTERM, 10 s grace, SIGKILL; removes a data dir it created unless keepData. Idempotent. */
  stop(options?: { keepData?: boolean }): Promise<void>;
  /** Starts it again on the same port and data dir (after kill() or stop()). */
  restart(options?: { wait?: boolean; timeoutMs?: number }): Promise<this>;
  /** 'standalone' | 'leader' | 'follower' | 'observer', or null when not serving. */
  mode(): Promise<string | null>;
  fourLetter(cmd: string): Promise<string>;
  mntr(): Promise<Record<string, string | number>>;
  logTail(lines?: number): string;
  /** Leaves the server running when this process exits (stop it with `node scripts/zk.js stop <pid>`). */
  detach(): this;
}

/**
 * Starts a standalone server on a free loopback port; resolves once it serves requests.
 *
 * *Errors*: rejects with the server's log tail when it does not start within 60 s.
 */
export function startStandalone(options?: StandaloneOptions): Promise<ZkServer>;

export interface EnsembleOptions {
  /** Default 3. */
  size?: number;
  tickTime?: number;
  forceSync?: boolean;
  minSessionTimeout?: number;
  maxSessionTimeout?: number;
  extraConfig?: Record<string, string | number | boolean>;
  /** As for startStandalone, on every node. */
  auth?: ZooKeeperAuthOptions;
  /** Every node's client port is a TLS one: needs `only: true`. Quorum traffic stays plaintext. */
  tls?: ZooKeeperTlsOptions & { only: true };
}

export interface Ensemble {
  /** Every node's '127.0.0.1:PORT', comma-separated (TLS ports with the `tls` option). */
  readonly connect: string;
  readonly servers: ZkServer[];
  /** PEM texts for clients (`tls` option only). */
  readonly tls?: ZooKeeperTlsMaterial;
  /** The root of the nodes' data dirs. */
  readonly dataDir: string;
  /** Stops every node and removes the data. Idempotent. */
  stop(): Promise<void>;
  /** Leaves every node running when this process exits. */
  detach(): this;
  /** The node whose `srvr` says `Mode: leader`, waiting up to timeoutMs (30 s) for an election. */
  leader(options?: { timeoutMs?: number }): Promise<ZkServer>;
  /** Waits until every running node (every node with all: true) serves and exactly one leads. */
  waitForQuorum(options?: { timeoutMs?: number; all?: boolean }): Promise<void>;
}

/** Starts an ensemble on loopback; resolves once every node serves and one leads. */
export function startEnsemble(options?: EnsembleOptions): Promise<Ensemble>;

/** PEM texts of a client certificate for four-letter words over TLS. */
export interface FourLetterTls {
  ca: string;
  cert: string;
  key: string;
}

/**
 * Sends a four-letter word (`ruok`, `srvr`, `mntr`, `cons`, ...) and resolves the answer. With
 * `tls` it goes over TLS (the only way into a `tls: { only: true }` server).
 */
export function fourLetter(port: number, cmd: string, host?: string, timeoutMs?: number, tls?: FourLetterTls): Promise<string>;

/** `mntr` as an object; numeric values are numbers. */
export function mntr(port: number, host?: string, tls?: FourLetterTls): Promise<Record<string, string | number>>;

/** `user:base64(sha1("user:password"))`: the superDigest system property for "user:password". */
export function superDigest(userPassword: string): string;

// ---------------------------------------------------------------------------------------------
// etcd

/** Where etcd and etcdctl come from. */
export interface EtcdInstall {
  etcd: string;
  etcdctl: string;
  /** `etcd --version`, e.g. '3.4.23'. */
  version: string;
  /** `ETCD_BIN=...` or `PATH`. */
  source: string;
}

/**
 * Locates etcd and etcdctl: $ETCD_BIN (a directory holding both), else PATH (Debian's
 * `etcd-server` and `etcd-client`, installed on the spot with apt-get when running as root).
 *
 * *Errors*: throws with what to install when there is none.
 */
export function findEtcd(): EtcdInstall;

/** The `auth` option of the etcd starters: user/password authentication, enabled after start. */
export interface EtcdAuthOptions {
  /** The root user's password; default a random one (in `auth.password` of the result). */
  rootPassword?: string;
  /** More users, name to password, each with read and write on every key (role `zktx-readwrite`). */
  users?: Record<string, string>;
}

/** The credentials of a member or cluster started with `auth`. */
export interface EtcdAuth {
  /** 'root' */
  user: string;
  password: string;
  /** The `users` option. */
  users: Record<string, string>;
}

/** The `tls` option of the etcd starters: https client URLs (peers stay plain http). */
export interface EtcdTlsOptions {
  /** `--client-cert-auth`: clients must show a certificate signed by the CA. Default true. */
  clientAuth?: boolean;
  /** Certificates from makeTlsFiles(dir) to use instead of fresh ones (one CA for many servers). */
  files?: TlsFiles;
}

/** PEM texts and files for clients of a TLS member or cluster. */
export interface EtcdTlsMaterial extends ZooKeeperTlsMaterial {
  paths: TlsPaths;
  clientAuth: boolean;
}

/** A member's Maintenance.Status. Ids in hex, as etcdctl's `member list` prints them. */
export interface EtcdMemberStatus {
  memberId: string;
  /** null while there is no leader. */
  leaderId: string | null;
  isLeader: boolean;
  raftTerm: number;
  raftIndex: number;
  /** The store's revision. */
  revision: number;
  /** The server's version, e.g. '3.4.23'. */
  version: string;
  dbSize: number;
}

export interface EtcdOptions {
  /** `--heartbeat-interval` in ms; default 100 (etcd's). */
  heartbeatInterval?: number;
  /** `--election-timeout` in ms; default 1000 (etcd's). A lower one makes failover tests faster. */
  electionTimeout?: number;
  /** More `--flag=value`s, e.g. { 'auto-compaction-retention': '1', 'auto-compaction-mode': 'revision' }. */
  extraFlags?: Record<string, string | number | boolean>;
  auth?: EtcdAuthOptions;
  tls?: EtcdTlsOptions;
}

/** One etcd process: the only member of startEtcd(), or a member of startEtcdCluster(). */
export class EtcdMember {
  private constructor();
  /** 1-based index in its cluster. */
  readonly id: number;
  /** `--name`: 'm1', 'm2', ... */
  readonly name: string;
  /** The client port. */
  readonly port: number;
  readonly clientPort: number;
  readonly peerPort: number;
  /** '127.0.0.1:PORT' */
  readonly endpoint: string;
  /** [endpoint]: what a client of this member alone takes. */
  readonly endpoints: string[];
  /** The endpoint, as for ZooKeeper servers. */
  readonly connect: string;
  /** 'http://127.0.0.1:PORT' (https with `tls`). */
  readonly clientUrl: string;
  readonly peerUrl: string;
  /** The member's dir: data/ and etcd.log (and tls/ for a lone member). */
  readonly dir: string;
  /** `--data-dir`; kept across kill() and restart(). */
  readonly dataDir: string;
  readonly logPath: string;
  /** The process's PID (changes on restart()). */
  readonly pid: number | undefined;
  /** Credentials, with the `auth` option. */
  readonly auth?: EtcdAuth;
  /** Certificates for clients, with the `tls` option. */
  readonly tls?: EtcdTlsMaterial;
  /** Resolves once `GET /health` says true. */
  waitReady(options?: { timeoutMs?: number }): Promise<void>;
  /** `GET /health`: false when it does not serve (dead, frozen, no leader). */
  health(options?: { timeoutMs?: number }): Promise<boolean>;
  /** Its Maintenance.Status; rejects when it does not answer. */
  status(options?: { timeoutMs?: number }): Promise<EtcdMemberStatus>;
  /** Is the process alive (a SIGSTOPped one counts)? False once it has exited, every thread. */
  isRunning(): boolean;
  /** Sends a signal to the PID ('SIGKILL', 'SIGSTOP', 'SIGCONT', ...); false if it is gone. */
  kill(signal?: NodeJS.Signals): boolean;
  /**
   * SIGTERM (with SIGCONT), `graceMs` (10 s), SIGKILL; graceMs 0 is a plain SIGKILL. Removes the
   * dir of a lone member unless keepData. Idempotent.
   */
  stop(options?: { keepData?: boolean; graceMs?: number }): Promise<void>;
  /** Starts it again on the same ports and data dir (after kill() or stop()): it rejoins its cluster. */
  restart(options?: { wait?: boolean; timeoutMs?: number }): Promise<this>;
  /** etcdctl against this member (with root's credentials and the client certificate when set); resolves stdout. */
  etcdctl(...args: string[]): Promise<string>;
  logTail(lines?: number): string;
  /** Leaves it running when this process exits (stop it with `node scripts/etcd.js stop <pid>`). */
  detach(): this;
}

/**
 * Starts a one-member etcd on free loopback ports in a fresh temp dir; resolves once it serves.
 *
 * *Errors*: rejects when etcd is not installed, or with its log tail when it does not serve
 * within 30 s.
 */
export function startEtcd(options?: EtcdOptions): Promise<EtcdMember>;

export interface EtcdClusterOptions extends EtcdOptions {
  /** Default 3. */
  size?: number;
}

export interface EtcdCluster {
  /** Every member's '127.0.0.1:PORT'. */
  readonly endpoints: string[];
  /** The endpoints, comma-separated. */
  readonly connect: string;
  readonly members: EtcdMember[];
  /** The root of the members' dirs. */
  readonly dataDir: string;
  readonly auth?: EtcdAuth;
  readonly tls?: EtcdTlsMaterial;
  /** SIGKILLs every member and removes the data. Idempotent. */
  stop(): Promise<void>;
  /** Leaves every member running when this process exits. */
  detach(): this;
  /** The member that says it leads, waiting up to timeoutMs (30 s) for an election. */
  leader(options?: { timeoutMs?: number }): Promise<EtcdMember>;
  /** Waits until every running member (every member with all: true) serves. */
  waitForQuorum(options?: { timeoutMs?: number; all?: boolean }): Promise<void>;
  /** etcdctl against every member; resolves stdout. */
  etcdctl(...args: string[]): Promise<string>;
}

/**
 * Starts a cluster of `size` members (default 3) on loopback, one data dir each; resolves once
 * every member serves and one leads. `startEtcdCluster(3)`, `startEtcdCluster(3, options)` or
 * `startEtcdCluster({ size: 3, ...options })`.
 */
export function startEtcdCluster(size?: number, options?: EtcdOptions): Promise<EtcdCluster>;
export function startEtcdCluster(options: EtcdClusterOptions): Promise<EtcdCluster>;

/**
 * Runs etcdctl (API v3) against `endpoints` ('host:port' strings, or one comma-separated
 * string) and resolves its stdout.
 *
 * *Errors*: rejects with etcdctl's stderr when it exits non-zero or runs past timeoutMs (15 s).
 */
export function etcdctl(
  endpoints: string | string[],
  args: string[],
  options?: {
    auth?: { user: string; password: string };
    tls?: { paths: Pick<TlsPaths, 'ca'> & Partial<Pick<TlsPaths, 'clientCert' | 'clientKey'>> };
    timeoutMs?: number;
    input?: string;
  }
): Promise<string>;

// ---------------------------------------------------------------------------------------------
// PostgreSQL

export interface PostgresInstall {
  /** Holds initdb, postgres, psql. */
  binDir: string;
  /** `postgres --version`. */
  version: string;
  major: number;
}

/**
 * Locates PostgreSQL's server programs: $PG_BIN, else Debian's /usr/lib/postgresql/<newest>/bin,
 * else `initdb` on PATH.
 *
 * *Errors*: throws with what to install when there is none.
 */
export function findPostgres(): PostgresInstall;

export interface PostgresOptions {
  /** max_prepared_transactions; default 20 (PostgreSQL's default 0 makes PREPARE TRANSACTION fail). */
  maxPreparedTransactions?: number;
  /** Default: a free loopback port. */
  port?: number;
  /**
   * Default false: fsync=off loses nothing when processes die (kill() included), only on an OS
   * crash. synchronous_commit stays on either way.
   */
  fsync?: boolean;
  /** More server settings (`-c name=value`), e.g. { max_connections: 50 }. */
  settings?: Record<string, string | number | boolean>;
}

/** Connection settings for the `pg` package: `new pg.Client(server.config)`. */
export interface PostgresClientConfig {
  host: string;
  port: number;
  user: string;
  database: string;
}

export interface PreparedTransaction {
  gid: string;
  database: string;
  owner: string;
  /** ISO timestamp of the PREPARE. */
  prepared: string;
}

/** One throwaway PostgreSQL cluster: a postmaster, its backends and its temp dir. */
export class PgServer {
  private constructor();
  /** '127.0.0.1' */
  readonly host: string;
  readonly port: number;
  /** The database superuser, 'postgres' (trust authentication, loopback only). */
  readonly user: string;
  /** 'postgres' */
  readonly database: string;
  /** 'postgresql://postgres@127.0.0.1:PORT/postgres' */
  readonly connectionString: string;
  readonly config: PostgresClientConfig;
  /** The postmaster's PID (changes on restart()); it leads the cluster's process group. */
  readonly pid: number | undefined;
  /** The temp dir: data/, the Unix socket, postgres.log. */
  readonly dir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logPath: string;
  /** Resolves once the postmaster accepts connections. */
  waitReady(options?: { timeoutMs?: number }): Promise<void>;
  /** cluster_name, in every process title of the cluster ('zktx-pg-XXXXXX'). */
  readonly clusterName: string;
  /** Is the postmaster alive (a SIGSTOPped one counts)? */
  isRunning(): boolean;
  /** PIDs of the cluster's live processes: the postmaster and its children (Linux /proc). */
  processes(): number[];
  /**
   * Signals every process of the cluster: 'SIGKILL' (default) is a crash and resolves once all
   * are gone; 'SIGSTOP' / 'SIGCONT' freeze and thaw it. The data stays for restart().
   */
  kill(signal?: NodeJS.Signals): Promise<boolean>;
  /**
   * Fast shutdown by PID (prepared transactions stay prepared), then the temp dir is removed
   * unless keepData. Idempotent.
   */
  stop(options?: { keepData?: boolean }): Promise<void>;
  /**
   * Starts the cluster again on the same port and data (shutting a running one down first);
   * after kill() that is crash recovery. Resolves once it accepts connections.
   */
  restart(options?: { timeoutMs?: number }): Promise<this>;
  /**
   * Runs SQL with psql as the superuser and resolves its output (unaligned, tuples only, '|'
   * between columns, trimmed). Rejects on the first error.
   */
  psql(sql: string, options?: { database?: string }): Promise<string>;
  /** One query with the `pg` package (optional peer dependency) on a fresh connection. */
  query(sql: string, params?: unknown[], options?: { database?: string }): Promise<{ rows: any[]; rowCount: number | null }>;
  /** pg_prepared_xacts of the whole cluster, ordered by gid. */
  preparedTransactions(): Promise<PreparedTransaction[]>;
  logTail(lines?: number): string;
  /** Leaves the cluster running when this process exits (stop it with `node scripts/zk.js stop <pid>`). */
  detach(): this;
}

/**
 * Starts a throwaway cluster (initdb into a temp dir, postgres on a free loopback port);
 * resolves once it accepts connections. As root, initdb and postgres run as the `postgres` OS
 * user (or $ZKTX_PG_USER). Two clusters are two independent participants.
 *
 * *Errors*: rejects when PostgreSQL is not installed, there is no user to run it as, or it does
 * not start within 60 s (with its log tail).
 */
export function startPostgres(options?: PostgresOptions): Promise<PgServer>;

// ---------------------------------------------------------------------------------------------
// network

/** `count` distinct free loopback ports (never one this process handed out before). */
export function freePorts(count: number): Promise<number[]>;
/** One free loopback port. */
export function freePort(): Promise<number>;

export interface ProxyStats {
  accepted: number;
  refused: number;
  bytesUp: number;
  bytesDown: number;
  dropped: number;
}

/** A TCP proxy on a free loopback port that forwards to one server and cuts the line on demand. */
export class TcpProxy {
  constructor(target: string | { host?: string; port: number });
  readonly port: number;
  /** '127.0.0.1:PORT': give this to the client instead of the server's address. */
  readonly connect: string;
  readonly stats: ProxyStats;
  /** Open connections. */
  readonly connections: number;
  listen(port?: number): Promise<this>;
  /**
   * Cuts the line. 'reset' (default): every connection closed, new ones closed on accept.
   * 'blackhole': connections stay open, nothing moves. 'responses': requests reach the server,
   * answers are dropped.
   */
  partition(options?: { mode?: 'reset' | 'blackhole' | 'responses' }): this;
  /** Forwards again (after 'responses', connections that lost answers are closed). */
  heal(): this;
  /** Adds `ms` of latency each way from now on (0: none). */
  delay(ms: number): this;
  /** Closes every connection without changing the mode. */
  dropConnections(): this;
  /** Stops listening and closes every connection. Idempotent. */
  close(): Promise<void>;
}

/** A proxy to `target` ('host:port' or { host, port }) on a free loopback port (or `port`). */
export function startProxy(target: string | { host?: string; port: number }, options?: { port?: number }): Promise<TcpProxy>;

/**
 * Moves `zk`'s clock forward by `ms` (tests only): every age limit of that client (a
 * transaction's 5-minute age, `compactTombstones`' horizon) passes that much sooner for what
 * happened before the call; the limits stay what production uses. Each client has its own
 * clock: advance every client that takes part in a scenario.
 */
export function advanceClock(zk: import('../index').ZooKeeper, ms: number): void;
