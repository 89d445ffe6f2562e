//! The ZooKeeper session: connect options, lazy connection, per-call deadlines, expiry, close.
//!
//! A [`Session`] owns at most one live `zookeeper_client::Client` at a time. It connects on first
//! use; after the server expires the session it opens a new one for new work (unless
//! [`SessionOptions::reconnect_after_expiry`] is off), while everything acquired on the old one
//! (locks) keeps a weak handle to the old client and so fails loudly instead of silently moving
//! to the new session.
//!
//! zookeeper-client 0.11 has no explicit close: a client's session ends when the last handle to
//! it drops. So the [`Session`] is the only long-lived owner of strong handles; work in flight
//! borrows one and watches [`Session::closing`], dropping it as soon as `close()` starts.

use tracing::Instrument as _;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use zookeeper_client as zk;

use crate::error::{Error, Result};

/// The largest session timeout ZooKeeper accepts with its default `tickTime` (20 × 2 s). The server
/// clamps the requested timeout to `[2, 20] × tickTime`.
pub const SERVER_MAX_SESSION_TIMEOUT: Duration = Duration::from_secs(40);

/// How to reach ZooKeeper and how long to wait.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// Comma-separated `host:port` list, optionally followed by a chroot (`/app`).
    pub connect: String,
    /// Requested session timeout. The server clamps it to `[2, 20] × tickTime` (4–40 s by default).
    pub session_timeout: Duration,
    /// How long establishing a session may take before failing with `TIMEOUT`.
    /// Defaults to `min(session_timeout, 15 s)`.
    pub connect_timeout: Option<Duration>,
    /// Deadline of each request. Defaults to the negotiated session timeout: past it, the session
    /// is gone anyway.
    pub request_timeout: Option<Duration>,
    /// Keep the host order as given. zookeeper-client 0.11 still picks its start host at random, so
    /// this only disables zktx's own shuffle.
    pub host_order_deterministic: bool,
    /// After the server expired the session, open a new one for new work (default `true`).
    pub reconnect_after_expiry: bool,
    /// How long after the connection drops (`SUSPENDED`) locks are declared lost, as a fraction
    /// of the negotiated session timeout: `0 < lost_after <= 1`, default 1 (Curator's choice).
    ///
    /// The server expires a silent session about one session timeout after it last heard from
    /// it and may then hand its locks to others, while the client notices a silent (not reset)
    /// connection only after 2/5 of the timeout. So with 1, a holder cut off by a silent network
    /// learns of its loss up to ~0.4 × timeout after a successor may hold the lock; below 0.6
    /// it learns before. Smaller values trade that for false alarms on short network blips.
    pub lost_after: f64,
    /// Credentials sent with every connect and reconnect (`addauth` in zkCli terms), in order.
    /// zookeeper-client replays them on each new connection, so the identity survives failover.
    pub auth: Vec<Auth>,
    /// The ACL of every node zktx creates: lock nodes and their directories, value nodes,
    /// transaction markers, the clock node. Default `world:anyone` with all permissions
    /// ([`zk::Acls::anyone_all`]); nodes that already exist keep their own ACL.
    pub acl: Vec<Acl>,
    /// SASL authentication, done by zookeeper-client on every connect and reconnect. Unlike the
    /// `digest` scheme of [`SessionOptions::auth`], the server checks the password: a wrong one
    /// fails the connect with `AUTHFAILED`.
    pub sasl: Option<Sasl>,
    /// TLS to every host (their `secureClientPort`), verified against a CA.
    pub tls: Option<Tls>,
    /// Resume this session (its id and password, as another client gave them out) on the
    /// first connect instead of opening a new one. The server refuses a wrong password or a
    /// session it no longer has: the connect fails `SESSIONEXPIRED`. A later session (after
    /// an expiry, with `reconnect_after_expiry`) is a new one.
    pub resume: Option<Resume>,
}

/// A session to resume: its id and its password. `Debug` shows the id only.
#[derive(Clone, PartialEq, Eq)]
pub struct Resume {
    /// The session id.
    pub id: i64,
    /// The session's password (16 bytes from the server).
    pub password: Vec<u8>,
}

impl std::fmt::Debug for Resume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resume").field("id", &format_args!("{:x}", self.id)).field("password", &"<redacted>").finish()
    }
}

/// TLS settings: PEM text. `Debug` shows none of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Tls {
    /// The CA certificate(s) that signed the servers' certificates.
    pub ca: String,
    /// The client's certificate chain, for servers with `ssl.clientAuth=need`.
    pub cert: Option<String>,
    /// The client's private key (with `cert`).
    pub key: Option<String>,
    /// Check that a server's certificate names the host connected to (default `true`). The
    /// chain is checked against `ca` either way.
    pub verify_hostname: bool,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("client_cert", &self.cert.is_some()).field("key", &"<redacted>").field("verify_hostname", &self.verify_hostname).finish()
    }
}

impl Tls {
    /// The client's TLS options; `INVALID_ARGUMENT` for PEM that holds no certificate or key.
    fn client_options(&self) -> Result<zk::TlsOptions> {
        if rustls_pemfile::certs(&mut self.ca.as_bytes()).next().is_none() {
            return Err(Error::invalid("tls.ca holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")"));
        }
        self.check_crls()?;
        let mut options = zk::TlsOptions::new().with_pem_ca(&self.ca).map_err(|_| Error::invalid("tls.ca is not valid PEM"))?;
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                if rustls_pemfile::certs(&mut cert.as_bytes()).next().is_none() {
                    return Err(Error::invalid("tls.cert holds no PEM certificate"));
                }
                if !matches!(rustls_pemfile::private_key(&mut key.as_bytes()), Ok(Some(_))) {
                    return Err(Error::invalid("tls.key holds no PEM private key")); // never echo a key
                }
                options = options.with_pem_identity(cert, key).map_err(|_| Error::invalid("tls.cert and tls.key are not a valid PEM certificate and key"))?;
            },
            (None, None) => {},
            _ => return Err(Error::invalid("tls.cert and tls.key go together")),
        }
        if !self.verify_hostname {
            // SAFETY (of the crate's contract): the caller asked for it; the chain is still checked.
            options = unsafe { options.with_no_hostname_verification() };
        }
        Ok(options)
    }

    /// `INVALID_ARGUMENT` for a certificate revocation list (`X509 CRL`) in `ca` that is not
    /// valid: zookeeper-client reads CRLs from the CA's PEM and parsed them only at connect (with
    /// the hostname check off it unwrapped the parse: zktx-io panicked).
    fn check_crls(&self) -> Result<()> {
        let invalid = |why: String| Error::invalid(format!("tls.ca holds a certificate revocation list (\"-----BEGIN X509 CRL-----\") that is not valid: {why}"));
        let crls = rustls_pemfile::crls(&mut self.ca.as_bytes()).collect::<std::result::Result<Vec<_>, _>>().map_err(|e| invalid(e.to_string()))?;
        if crls.is_empty() {
            return Ok(());
        }
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut self.ca.as_bytes()).flatten() {
            let _ = roots.add(cert); // an unusable certificate is zookeeper-client's to skip, as it does
        }
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        match rustls::client::WebPkiServerVerifier::builder_with_provider(std::sync::Arc::new(roots), provider).with_crls(crls).build() {
            // no usable trust anchor: zookeeper-client says so (tls.ca is not valid PEM)
            Ok(_) | Err(rustls::client::VerifierBuilderError::NoRootAnchors) => Ok(()),
            Err(e) => Err(invalid(e.to_string())),
        }
    }
}

/// A SASL mechanism and its credentials. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub enum Sasl {
    /// DIGEST-MD5 against the server's `DigestLoginModule` users; the identity is `sasl:<username>`.
    DigestMd5 {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for Sasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sasl::DigestMd5 { username, .. } => f.debug_struct("DigestMd5").field("username", username).field("password", &"<redacted>").finish(),
        }
    }
}

pub use zk::{Acl, AuthId, Permission};

/// The size of an ACL list on the wire: a length, then per entry perms, scheme and id.
pub(crate) fn acl_bytes(acl: &[Acl]) -> usize {
    4 + acl.iter().map(|a| 12 + a.scheme().len() + a.id().len()).sum::<usize>()
}

/// The longest ACL list accepted, in bytes on the wire: it travels with every create.
pub const MAX_ACL_BYTES: usize = 4096;

/// One `(scheme, credentials)` pair, e.g. `digest` and `user:password`.
///
/// `Debug` never shows the credentials: options get logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    /// The server's authentication provider: `digest`, `ip`, `x509`, or a custom one.
    pub scheme: String,
    /// What that provider expects: `user:password` for `digest`.
    pub credentials: Vec<u8>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("scheme", &self.scheme).field("credentials", &"<redacted>").finish()
    }
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            connect: "localhost:2181".into(),
            session_timeout: Duration::from_secs(30),
            connect_timeout: None,
            request_timeout: None,
            host_order_deterministic: false,
            reconnect_after_expiry: true,
            lost_after: 1.0,
            auth: Vec::new(),
            acl: zk::Acls::anyone_all().to_vec(),
            sasl: None,
            tls: None,
            resume: None,
        }
    }
}

/// The longest chroot a connect string may name, in bytes (as the longest znode path argument).
pub const MAX_CHROOT_BYTES: usize = 32 * 1024;

impl SessionOptions {
    /// Options for the given connect string, defaults otherwise.
    pub fn new(connect: impl Into<String>) -> Self {
        SessionOptions { connect: connect.into(), ..Default::default() }
    }

    fn validate(&self) -> Result<()> {
        let hosts = self.connect.split('/').next().unwrap_or("");
        if hosts.trim().is_empty() || hosts.split(',').any(|h| h.trim().is_empty()) {
            return Err(Error::invalid(format!("connect: expected \"host:port[,host:port...][/chroot]\", got {:?}", self.connect)));
        }
        if let Some(chroot) = chroot_of(&self.connect).filter(|c| c.len() > MAX_CHROOT_BYTES) {
            // every request's path carries it: the size checks of the znode calls count it, and a
            // chroot this long would leave little room for anything else
            return Err(Error::invalid(format!("connect: the chroot is {} bytes; at most {MAX_CHROOT_BYTES}", chroot.len())));
        }
        if self.session_timeout.is_zero() {
            return Err(Error::invalid("timeout must be a positive number of milliseconds"));
        }
        if !(self.lost_after > 0.0 && self.lost_after <= 1.0) {
            return Err(Error::invalid(format!("lostAfter must be a fraction of the session timeout in (0, 1], got {}", self.lost_after)));
        }
        for a in &self.auth {
            if a.scheme.is_empty() {
                return Err(Error::invalid("auth: every entry needs a scheme, such as \"digest\""));
            }
            // The server's digest provider accepts anything (a malformed pair is just another
            // identity), so catch the obvious mistake here. Never echo the credentials.
            if a.scheme == "digest" && !a.credentials.iter().skip(1).any(|&b| b == b':') {
                return Err(Error::invalid("auth: digest credentials must have the form \"user:password\""));
            }
            // Sent on every connect: a packet the server cannot take would drop each one.
            let bytes = crate::kv::OP_OVERHEAD_BYTES + a.scheme.len() + a.credentials.len();
            if bytes > crate::kv::MAX_REQUEST_BYTES {
                return Err(Error::TooLarge(format!("auth: the {:?} entry would be a {bytes}-byte request; ZooKeeper accepts at most {} (jute.maxbuffer)", a.scheme, crate::kv::MAX_REQUEST_BYTES)));
            }
        }
        if self.acl.is_empty() {
            return Err(Error::invalid("acl must grant at least one permission to someone (an empty list is refused by ZooKeeper)"));
        }
        if acl_bytes(&self.acl) > MAX_ACL_BYTES {
            return Err(Error::invalid(format!("acl is {} bytes long; the limit is {MAX_ACL_BYTES}", acl_bytes(&self.acl))));
        }
        if self.auth.is_empty() && self.sasl.is_none() && self.acl.iter().any(|a| a.scheme() == "auth") {
            return Err(Error::invalid("acl 'creator-all' (scheme \"auth\") grants the creator's authenticated identity: pass auth (or sasl) too, e.g. auth: [{ scheme: 'digest', credentials: 'user:password' }]"));
        }
        if let Some(tls) = &self.tls {
            tls.client_options()?;
            // the name each host's certificate is checked against: an IP address or a DNS name
            for entry in hosts.split(',').map(str::trim) {
                let host = match entry.strip_prefix('[') {
                    Some(rest) => rest.split(']').next().unwrap_or(rest),
                    None => entry.rsplit_once(':').map_or(entry, |(host, _)| host),
                };
                if rustls::pki_types::ServerName::try_from(host.to_string()).is_err() {
                    return Err(Error::invalid(format!("connect: with tls, every host must be a DNS name or an IP address its certificate names; {host:?} is neither (write 127.0.0.1, not 127.1)")));
                }
            }
        }
        if let Some(Sasl::DigestMd5 { username, .. }) = &self.sasl {
            if username.is_empty() {
                return Err(Error::invalid("sasl: username must not be empty"));
            }
        }
        Ok(())
    }

    /// The connect string with hosts trimmed (as ZooKeeper's ConnectStringParser does;
    /// zookeeper-client does not) and shuffled unless `host_order_deterministic`.
    fn connect_string(&self) -> String {
        let (hosts, chroot) = match self.connect.find('/') {
            Some(i) => self.connect.split_at(i),
            None => (self.connect.as_str(), ""),
        };
        let mut hosts: Vec<&str> = hosts.split(',').map(str::trim).collect();
        if !self.host_order_deterministic {
            fastrand::shuffle(&mut hosts);
        }
        format!("{}{}", hosts.join(","), chroot)
    }
}

/// A change of the session's connection, as Curator names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// A new session was established.
    Connected,
    /// The connection dropped; the session (and its locks) may still live. Requests wait for the
    /// reconnect, bounded by their deadlines.
    Suspended,
    /// Connected again to the same session: nothing was lost.
    Reconnected,
    /// The session expired: every ephemeral node (lock) it owned is gone.
    Expired,
    /// The session was closed by [`Session::close`].
    Closed,
}

impl SessionEvent {
    /// `CONNECTED`, `SUSPENDED`, `RECONNECTED`, `EXPIRED` or `CLOSED`.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEvent::Connected => "CONNECTED",
            SessionEvent::Suspended => "SUSPENDED",
            SessionEvent::Reconnected => "RECONNECTED",
            SessionEvent::Expired => "EXPIRED",
            SessionEvent::Closed => "CLOSED",
        }
    }
}

/// A ZooKeeper session that reconnects lazily and puts a deadline on every request.
#[derive(Debug)]
pub struct Session {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    options: SessionOptions,
    current: std::sync::Mutex<Current>,
    events: Events,
    /// Cancelled as soon as [`Session::close`] starts.
    closing: CancellationToken,
    /// Calls waiting for a client ([`Session::client`]), in the order they asked: tokio's Mutex
    /// is fair (locked in the order `lock` was first polled).
    waiting_turn: tokio::sync::Mutex<()>,
    /// How many calls are waiting for one (while any is, a new call queues behind them).
    waiting: std::sync::atomic::AtomicUsize,
    /// Set once the first `close()` finished, so later calls wait for it instead of returning early.
    closed: watch::Sender<bool>,
    /// The persistent watches set on this session, by path.
    persistent: Arc<PersistentPaths>,
    /// [`SessionOptions::resume`] until a connect succeeded: a failed first connect tries the
    /// same session again, a session opened after an expiry is new.
    resume: std::sync::Mutex<Option<Resume>>,
}

/// The paths this session holds persistent watches on.
///
/// ZooKeeper 3.6–3.8 keeps one watch mode per session and path (ZOOKEEPER-4466, fixed in 3.9):
/// a one-shot watch set on a path that has a persistent watch turns it into a one-shot on the
/// server, and the first event ends it; removing the one-shot removes it too. The raw znode API
/// looks here before and after a watched read (see `znode::Watch`).
#[derive(Debug, Default)]
pub(crate) struct PersistentPaths(std::sync::Mutex<std::collections::HashMap<String, PersistentPath>>);

#[derive(Debug)]
struct PersistentPath {
    node: usize,
    recursive: usize,
    /// Bumped when events on the path may have been lost: every watch on it resyncs.
    lost: watch::Sender<u64>,
}

impl PersistentPaths {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, PersistentPath>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a persistent watch on `path`; the receiver changes when its events may be lost.
    pub(crate) fn register(&self, path: &str, recursive: bool) -> watch::Receiver<u64> {
        let mut map = self.map();
        let e = map.entry(path.to_string()).or_insert_with(|| PersistentPath { node: 0, recursive: 0, lost: watch::channel(0).0 });
        if recursive {
            e.recursive += 1;
        } else {
            e.node += 1;
        }
        e.lost.subscribe()
    }

    /// Forgets one persistent watch on `path`.
    pub(crate) fn unregister(&self, path: &str, recursive: bool) {
        let mut map = self.map();
        if let Some(e) = map.get_mut(path) {
            let n = if recursive { &mut e.recursive } else { &mut e.node };
            *n = n.saturating_sub(1);
            if e.node == 0 && e.recursive == 0 {
                map.remove(path);
            }
        }
    }

    /// The persistent modes set on `path`: `(node, recursive)`, `None` without any.
    pub(crate) fn modes(&self, path: &str) -> Option<(bool, bool)> {
        self.map().get(path).map(|e| (e.node > 0, e.recursive > 0))
    }

    /// Tells every persistent watch on `path` that events may have been lost.
    pub(crate) fn lost(&self, path: &str) {
        if let Some(e) = self.map().get(path) {
            e.lost.send_modify(|n| *n += 1);
        }
    }
}

#[derive(Debug, Default)]
struct Current {
    client: Option<Arc<zk::Client>>,
    /// The connect attempt in progress, shared by every caller: `Some(result)` once it ended.
    connecting: Option<watch::Receiver<Option<Result<()>>>>,
    expired_before: bool,
    closed: bool,
}

/// When the connection dropped, `None` while connected.
pub(crate) type SuspendedAt = Arc<std::sync::Mutex<Option<Instant>>>;

/// Session events out: the broadcast channel, the latest event, and when the connection dropped.
#[derive(Clone, Debug)]
struct Events {
    tx: broadcast::Sender<SessionEvent>,
    last: Arc<std::sync::Mutex<Option<SessionEvent>>>,
    suspended_at: SuspendedAt,
}

impl Events {
    /// Publishes `e`, except that nothing follows `Closed` (the session is over for good).
    fn emit(&self, e: SessionEvent) {
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if *last == Some(SessionEvent::Closed) {
                return;
            }
            *last = Some(e);
        }
        if let Ok(mut at) = self.suspended_at.lock() {
            *at = (e == SessionEvent::Suspended).then(Instant::now);
        }
        let _ = self.tx.send(e);
    }
}

impl Inner {
    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        // A panic while holding this lock leaves plain data behind, still consistent enough.
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How long `close()` lets work in flight drop its client handles before closing anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

impl Session {
    /// Validates options; does not connect.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for an empty host list or a zero timeout.
    pub fn new(options: SessionOptions) -> Result<Self> {
        options.validate()?;
        let (tx, _) = broadcast::channel(64);
        let events = Events { tx, last: Default::default(), suspended_at: Default::default() };
        let options_resume = options.resume.clone();
        let inner = Inner { options, current: Default::default(), events, closing: CancellationToken::new(), waiting_turn: tokio::sync::Mutex::new(()), waiting: Default::default(), closed: watch::channel(false).0, persistent: Default::default(), resume: std::sync::Mutex::new(options_resume) };
        Ok(Session { inner: Arc::new(inner) })
    }

    /// The persistent watches set on this session, by path.
    pub(crate) fn persistent_paths(&self) -> Arc<PersistentPaths> {
        self.inner.persistent.clone()
    }

    /// Subscribes to session events (from now on).
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.inner.events.tx.subscribe()
    }

    /// The most recent session event; `None` before the first connection.
    pub fn last_event(&self) -> Option<SessionEvent> {
        self.inner.events.last.lock().map(|e| *e).unwrap_or(None)
    }

    /// A token cancelled as soon as [`Session::close`] starts.
    ///
    /// Work that holds a client handle across an await should `select!` on
    /// `closing().cancelled()`, fail with `CLIENT_CLOSED` and drop the handle: the session only
    /// really closes once every handle is gone.
    pub fn closing(&self) -> CancellationToken {
        self.inner.closing.clone()
    }

    /// Runs `work` unless [`Session::close`] starts first: then drops it (and every client
    /// handle it holds, so the session can really close) and fails with `CLIENT_CLOSED` —
    /// with an unknown outcome when `work` may have sent a write.
    pub(crate) async fn unless_closed<T>(&self, writes: bool, work: impl Future<Output = Result<T>>) -> Result<T> {
        unless_cancelled(&self.closing(), writes, work).await
    }

    /// The options this session was made with.
    pub fn options(&self) -> &SessionOptions {
        &self.inner.options
    }

    /// The ACL for nodes this session creates ([`SessionOptions::acl`]).
    pub(crate) fn acls(&self) -> zk::Acls<'_> {
        zk::Acls::new(&self.inner.options.acl)
    }

    /// When the current connection dropped (`None` while connected), shared with locks so that
    /// they time their loss from the `SUSPENDED` event.
    pub(crate) fn suspended_at(&self) -> SuspendedAt {
        self.inner.events.suspended_at.clone()
    }

    /// The live client, connecting first if needed.
    ///
    /// # Guarantees
    /// Concurrent callers share one connect attempt: with no server reachable, N calls all fail
    /// after one connect timeout, not after N of them.
    ///
    /// # Errors
    /// `CLIENT_CLOSED` after [`Session::close`] started (also for calls waiting to connect);
    /// `SESSIONEXPIRED` after an expiry when reconnecting is off; `TIMEOUT` / `CONNECTIONLOSS`
    /// when no server answers within the connect timeout.
    ///
    /// # Cancellation
    /// Dropping the future does not abort the shared connect attempt; `close()` does.
    ///
    /// # On connection loss
    /// A client that is disconnected but whose session may still live is returned as is: its
    /// requests wait for the reconnect (bounded by their deadlines).
    ///
    /// # Ordering
    /// Callers get the client in the order they asked, and a request sent right after (in the
    /// same poll, as zookeeper-client sends at call time) goes out in that order: ZooKeeper
    /// applies a session's requests in the order sent. Calls made before the session was
    /// established, or while a new one opens after an expiry, wait in a queue: released
    /// together by the connect attempt, they went out in the order tokio woke them (8 sessions
    /// x 8 setData on one node each, made before connecting: versions answered 7,3,8,4,5,1,2,6).
    pub async fn client(&self) -> Result<Arc<zk::Client>> {
        if self.inner.waiting.load(std::sync::atomic::Ordering::Acquire) == 0 {
            let cur = self.inner.current();
            if cur.closed {
                return Err(Error::ClientClosed);
            }
            if let Some(client) = &cur.client {
                if !matches!(client.state(), zk::SessionState::Expired | zk::SessionState::AuthFailed | zk::SessionState::Closed) {
                    return Ok(client.clone());
                }
            }
        }
        self.inner.waiting.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let _waited = Waited(&self.inner.waiting);
        // Every caller waits for the same connect attempt at once (a failed one fails them all
        // together, not one connect timeout each), and takes its turn in the queue it joined in
        // its first poll, in the order the calls were made.
        let (_turn, client) = tokio::select! {
            biased;
            _ = self.inner.closing.cancelled() => return Err(Error::ClientClosed),
            both = async { tokio::join!(self.inner.waiting_turn.lock(), self.wait_for_client()) } => both,
        };
        // Returned (and the turn handed on) in the poll where the caller sends its request.
        client
    }

    /// [`Session::client`] without its queue.
    async fn wait_for_client(&self) -> Result<Arc<zk::Client>> {
        loop {
            let mut attempt = {
                let mut cur = self.inner.current();
                if cur.closed {
                    return Err(Error::ClientClosed);
                }
                if let Some(client) = &cur.client {
                    match client.state() {
                        zk::SessionState::Expired | zk::SessionState::AuthFailed | zk::SessionState::Closed => {
                            tracing::info!(session = %client.session_id(), "opening a new session for new work");
                            cur.client = None;
                            cur.expired_before = true;
                        },
                        _ => return Ok(client.clone()),
                    }
                }
                if cur.expired_before && !self.inner.options.reconnect_after_expiry {
                    return Err(Error::SessionExpired);
                }
                match &cur.connecting {
                    Some(attempt) => attempt.clone(),
                    None => {
                        let attempt = start_connect(&self.inner);
                        cur.connecting = Some(attempt.clone());
                        attempt
                    },
                }
            };
            let failed = tokio::select! {
                biased;
                _ = self.inner.closing.cancelled() => return Err(Error::ClientClosed),
                ended = attempt.wait_for(Option::is_some) => match ended {
                    Ok(result) => result.as_ref().and_then(|r| r.as_ref().err().cloned()),
                    // The attempt's task ended without a word (it panicked). Looking again
                    // would find the same dead attempt at once and spin here for good: forget
                    // it, and fail this call (nothing was sent).
                    Err(_) => Some(Error::ConnectionLoss { message: "the connect attempt ended without a result (see the process's stderr)".into(), outcome: crate::error::Outcome::NotApplied }),
                },
            };
            if failed.is_some() {
                let mut cur = self.inner.current();
                if cur.connecting.as_ref().is_some_and(|c| c.same_channel(&attempt)) {
                    cur.connecting = None;
                }
            }
            if let Some(err) = failed {
                return Err(err);
            }
        }
    }

    /// The deadline for one request on `client`.
    pub fn request_timeout(&self, client: &zk::Client) -> Duration {
        self.inner.options.request_timeout.unwrap_or_else(|| client.session_timeout())
    }

    /// Connects now instead of on first use.
    ///
    /// # Errors
    /// As [`Session::client`].
    pub async fn connect(&self) -> Result<()> {
        self.client().await.map(drop)
    }

    /// Whether [`Session::close`] was called.
    pub async fn is_closed(&self) -> bool {
        self.inner.closing.is_cancelled()
    }

    /// Closes the session: the server deletes its ephemeral nodes (locks) at once.
    ///
    /// # Guarantees
    /// Idempotent; a second call resolves when the first has. On return the state is `CLOSED`,
    /// every pending call of this session (waiting to connect, queued for a lock) has been or
    /// is being rejected with `CLIENT_CLOSED`, and no further request of it will be sent.
    ///
    /// Resolves once the server acknowledged the close (a round trip), so a process can exit
    /// right after without leaving a live session or lock node behind, and no write of this
    /// session can apply any more. If the connection is down at that moment, it resolves once
    /// the client gave the session up (7/5 of the session timeout after the server's last
    /// answer, when the server has expired it too), or earlier if it reconnects and the close is
    /// acknowledged. So it takes a round trip when connected and at most 7/5 of the session
    /// timeout (+1 s) otherwise, however many calls are pending. (Work that ignores
    /// [`Session::closing`] and still holds the client after a 1 s grace keeps the session open
    /// until it finishes.)
    ///
    /// # Cancellation
    /// `closing()` is cancelled first thing; dropping this future later does not undo the close.
    pub async fn close(&self) {
        self.inner.closing.cancel();
        let first = {
            let mut cur = self.inner.current();
            let first = !cur.closed;
            cur.closed = true;
            first.then(|| (cur.client.take(), cur.connecting.take()))
        };
        let Some((client, attempt)) = first else {
            let mut done = self.inner.closed.subscribe();
            let _ = done.wait_for(|d| *d).await;
            return;
        };
        if let Some(mut attempt) = attempt {
            // It observes `closing` and ends at once; a client it opened meanwhile is dropped.
            let _ = tokio::time::timeout(CLOSE_GRACE, attempt.wait_for(Option::is_some)).await;
        }
        if let Some(client) = client {
            self.close_client(client).await;
        }
        self.inner.events.emit(SessionEvent::Closed);
        self.inner.closed.send_replace(true);
    }

    async fn close_client(&self, client: Arc<zk::Client>) {
        let session_timeout = client.session_timeout();
        let mut states = client.state_watcher();
        // Work in flight watches `closing` and drops its handles; background cleanups hold one
        // only for a single request. Past the grace period, close anyway.
        let grace = instant_after_or_far(CLOSE_GRACE);
        while Arc::strong_count(&client) > 1 && Instant::now() < grace {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if Arc::strong_count(&client) > 1 {
            tracing::warn!(session = %client.session_id(), "closing while work in flight still holds the client: it closes when that ends");
        }
        drop(client); // the last handle: the client sends CloseSession
        // Connected, the acknowledgement is a round trip away. Disconnected, zookeeper-client
        // keeps reconnecting (and would send what is queued, then CloseSession) until it gives
        // the session up itself, 7/5 of the timeout after the last answer, when the server has
        // expired it too. Either way wait for the client to end: then nothing more is sent.
        let until = instant_after_or_far(session_timeout.saturating_mul(7) / 5 + Duration::from_secs(1));
        let ended = |s: zk::SessionState| matches!(s, zk::SessionState::Closed | zk::SessionState::Expired | zk::SessionState::AuthFailed);
        let _ = tokio::time::timeout_at(until, async {
            // Checked first: an already expired client changes state no more.
            while !ended(states.peek_state()) {
                states.changed().await;
            }
        })
        .await;
    }
}

/// Starts the one connect attempt that every caller of [`Session::client`] waits for.
fn start_connect(inner: &Arc<Inner>) -> watch::Receiver<Option<Result<()>>> {
    let (tx, rx) = watch::channel(None);
    let inner = inner.clone();
    // Through `spawns`, not tokio: zookeeper-client spawns its session task (socket, timers) on the
    // thread that connects, and the binding's I/O thread gives it its own spawner there, so the
    // session lives where the calls run (see the binding's bridge.rs). Elsewhere this is tokio::spawn.
    drop(spawns_core::spawn(async move {
        let opened = tokio::select! {
            biased;
            _ = inner.closing.cancelled() => Err(Error::ClientClosed),
            r = open(&inner.options, inner.resume.lock().ok().and_then(|r| r.clone())) => r,
        };
        let outcome = {
            let mut cur = inner.current();
            cur.connecting = None;
            match opened {
                Ok(client) if !cur.closed => {
                    if let Ok(mut resume) = inner.resume.lock() {
                        *resume = None;
                    }
                    let client = Arc::new(client);
                    watch_states(&inner, &client);
                    cur.client = Some(client);
                    Ok(())
                },
                // Closed meanwhile: dropping the only handle closes the new session.
                Ok(_) => Err(Error::ClientClosed),
                Err(e) => Err(e),
            }
        };
        let _ = tx.send(Some(outcome));
    }.in_current_span()));
    rx
}

/// Forwards the client's state changes as [`SessionEvent`]s until the client ends.
fn watch_states(inner: &Inner, client: &zk::Client) {
    let events = inner.events.clone();
    events.emit(SessionEvent::Connected);
    let mut watcher = client.state_watcher();
    let session = client.session_id();
    tokio::spawn(async move {
        let mut suspended = false;
        loop {
            let event = match watcher.changed().await {
                zk::SessionState::Disconnected => {
                    suspended = true;
                    SessionEvent::Suspended
                },
                zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly if suspended => {
                    suspended = false;
                    SessionEvent::Reconnected
                },
                zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => continue,
                zk::SessionState::Expired | zk::SessionState::AuthFailed => SessionEvent::Expired,
                zk::SessionState::Closed => SessionEvent::Closed,
            };
            if event == SessionEvent::Expired {
                tracing::warn!(%session, "ZooKeeper session expired: every lock held on it is lost");
            }
            events.emit(event);
            if matches!(event, SessionEvent::Expired | SessionEvent::Closed) {
                break;
            }
        }
    }.in_current_span());
}

/// Opens a session: a new one, or `resume` (only the first connect of a [`Session`] gets it).
async fn open(options: &SessionOptions, resume: Option<Resume>) -> Result<zk::Client> {
    let connect_timeout = options.connect_timeout.unwrap_or_else(|| options.session_timeout.min(Duration::from_secs(15)));
    let mut connector = zk::Client::connector().with_session_timeout(options.session_timeout);
    if let Some(r) = resume {
        // zookeeper-client 0.11.2 as vendored (crates/zookeeper-client): from_parts is zktx's.
        connector = connector.with_session(zk::SessionInfo::from_parts(zk::SessionId(r.id), r.password));
    }
    for a in &options.auth {
        // Replayed by zookeeper-client on every reconnect (its session keeps the auth packets).
        connector = connector.with_auth(&a.scheme, &a.credentials);
    }
    if let Some(Sasl::DigestMd5 { username, password }) = &options.sasl {
        connector = connector.with_sasl(zk::SaslOptions::digest_md5(username.clone(), password.clone()));
    }
    let connect = options.connect_string();
    let connecting: Connecting<'_> = match &options.tls {
        Some(tls) => {
            let connector = connector.with_tls(tls.client_options()?);
            Box::pin(async move {
                // zookeeper-client retries a failed handshake silently until its deadline: find
                // out why ourselves if it has not connected after a moment.
                tokio::select! {
                    connected = connector.secure_connect(&connect) => Ok(connected),
                    reason = tls_failure(tls, &options.connect, connect_timeout) => Err(Error::Tls(reason)),
                }
            })
        },
        None => Box::pin(async move { Ok(connector.connect(&connect).await) }),
    };
    // zookeeper-client retries refused hosts silently until the connect timeout: probe them
    // ourselves and fail at once, with the reason, when none can be reached at all.
    let connecting: Connecting<'_> = Box::pin(async move {
        tokio::select! {
            connected = connecting => connected,
            unreachable = unreachable_everywhere(&options.connect) => Err(unreachable),
        }
    });
    // One deadline for the whole connect, the chroot check included: "rejects within
    // connectTimeout" must not become twice that when the session opens late.
    let started = Instant::now();
    match tokio::time::timeout(connect_timeout, connecting).await {
        Ok(Err(failed)) => Err(failed),
        Ok(Ok(Ok(client))) => {
            tracing::debug!(session = %client.session_id(), timeout_ms = client.session_timeout().as_millis() as u64, "ZooKeeper session established");
            let left = connect_timeout.saturating_sub(started.elapsed());
            match check_chroot(&client, &options.connect, left).await {
                Err(Error::Timeout { .. }) => Err(connect_timed_out(&options.connect, connect_timeout)),
                checked => checked.map(|()| client),
            }
        },
        Ok(Ok(Err(err))) => Err(match Error::from(err) {
            Error::Timeout { .. } => connect_timed_out(&options.connect, connect_timeout),
            Error::ZooKeeper { code: "AUTHFAILED", .. } => auth_failed(options),
            other => other,
        }),
        Err(_) => Err(connect_timed_out(&options.connect, connect_timeout)),
    }
}

/// The chroot of `connect` (`/app` in `zk1:2181/app`), if any.
pub(crate) fn chroot_of(connect: &str) -> Option<&str> {
    connect.find('/').map(|i| &connect[i..]).filter(|c| *c != "/")
}

/// `NONODE` naming the chroot when it does not exist: ZooKeeper accepts a session in a missing
/// chroot, and every call in it would then fail with a bare `NONODE`.
async fn check_chroot(client: &zk::Client, connect: &str, limit: Duration) -> Result<()> {
    let Some(chroot) = chroot_of(connect) else { return Ok(()) };
    match deadline(limit, "checking the chroot", client.check_stat("/")).await? {
        Some(_) => Ok(()),
        None => Err(Error::zk(
            "NONODE",
            format!("chroot {chroot} (from the connect string {connect:?}) does not exist on the server: create it first (zkCli.sh create {chroot}) or leave it out of the connect string"),
        )),
    }
}

/// How long a connect runs before [`unreachable_everywhere`] probes the hosts.
const PROBE_AFTER: Duration = Duration::from_millis(150);

/// Resolves only when no host of `connect` can be reached at all: each either has no address
/// (`ENOTFOUND`) or refuses a TCP connection on every address (`ECONNREFUSED`). A host that
/// accepts, times out or fails otherwise (a temporary DNS failure) leaves the decision to
/// zookeeper-client and the connect timeout, so this never fails a connect that could succeed
/// (short of a server starting within the probe's round trip).
async fn unreachable_everywhere(connect: &str) -> Error {
    // A connect that succeeds takes a round trip or two: it never pays for the probe (nor do
    // the servers see a probe's connection).
    tokio::time::sleep(PROBE_AFTER).await;
    let hosts: Vec<String> = connect.split('/').next().unwrap_or("").split(',').map(|h| h.trim().to_string()).collect();
    // Blocking sockets on the blocking pool: the binding's runtime has timers but no I/O driver
    // (zookeeper-client brings its own), as diagnose_tls does.
    let probed = tokio::task::spawn_blocking(move || hosts.iter().map(|h| host_failure(h)).collect::<Option<Vec<_>>>()).await;
    let Ok(Some(failures)) = probed else { return std::future::pending().await };
    let Some((cause_code, cause)) = failures.first().cloned() else { return std::future::pending().await };
    let what = match (failures.iter().all(|f| f.0 == "ECONNREFUSED"), failures.iter().all(|f| f.0 == "ENOTFOUND")) {
        (true, _) => "every host refused the connection",
        (_, true) => "no host name resolves",
        _ => "every host refused the connection or does not resolve",
    };
    let detail: Vec<String> = failures.iter().map(|(_, m)| m.clone()).collect();
    Error::Unreachable {
        message: format!("cannot connect to ZooKeeper at {connect:?}: {what} ({cause_code}): {}; is the server running, and is this its client port?", detail.join("; ")),
        cause_code,
        cause,
    }
}

/// Why `host` (`host[:port]`, port 2181 by default) cannot be reached: `Some((code, message))`
/// only for a definite `ENOTFOUND`, or `ECONNREFUSED` on every address. Blocking.
pub(crate) fn host_failure(host: &str) -> Option<(&'static str, String)> {
    use std::net::ToSocketAddrs;
    let host = host.strip_prefix("tcp://").or_else(|| host.strip_prefix("tcp+tls://")).unwrap_or(host);
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !p.contains(']') => (n, p.parse::<u16>().ok()?),
        _ => (host, 2181),
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<std::net::SocketAddr> = match (name, port).to_socket_addrs() {
        Ok(addrs) => addrs.collect(),
        Err(e) => {
            let text = e.to_string();
            // getaddrinfo's EAI_NONAME / EAI_NODATA: the name does not exist. EAI_AGAIN (a
            // resolver that did not answer) may pass: leave that to the connect timeout.
            let missing = ["not known", "No address associated", "nodename nor servname", "No such host"].iter().any(|m| text.contains(m));
            return missing.then(|| ("ENOTFOUND", format!("getaddrinfo ENOTFOUND {name}")));
        },
    };
    if addrs.is_empty() {
        return Some(("ENOTFOUND", format!("getaddrinfo ENOTFOUND {name}")));
    }
    for addr in &addrs {
        match std::net::TcpStream::connect_timeout(addr, Duration::from_secs(2)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {},
            _ => return None,
        }
    }
    Some(("ECONNREFUSED", format!("connect ECONNREFUSED {}", addrs[0])))
}

/// Why TLS handshakes with the first host fail: resolves only if one does, after a short wait
/// (connects that succeed never pay for it).
async fn tls_failure(tls: &Tls, connect: &str, connect_timeout: Duration) -> String {
    tokio::time::sleep((connect_timeout / 4).min(Duration::from_millis(500))).await;
    let host = connect.split('/').next().unwrap_or("").split(',').next().unwrap_or("").trim().to_string();
    let tls = tls.clone();
    match tokio::task::spawn_blocking(move || diagnose_tls(&tls, &host)).await {
        Ok(Some(reason)) => reason,
        _ => std::future::pending().await,
    }
}

/// One blocking TLS handshake with `host` (`host:port`) with the session's settings: the
/// reason it fails, or `None` when it succeeds or the network (not TLS) is the problem.
fn diagnose_tls(tls: &Tls, host: &str) -> Option<String> {
    use std::net::ToSocketAddrs;
    use std::sync::Arc;
    let (name, _) = host.rsplit_once(':')?;
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut tls.ca.as_bytes()).flatten() {
        roots.add(cert).ok()?;
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = rustls_pemfile::certs(&mut cert.as_bytes()).flatten().collect();
            let key = rustls_pemfile::private_key(&mut key.as_bytes()).ok()??;
            builder.with_client_auth_cert(chain, key).ok()?
        },
        _ => builder.with_no_client_auth(),
    };
    let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).ok()?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), server_name).ok()?;
    let addr = host.to_socket_addrs().ok()?.next()?;
    let mut sock = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    sock.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    let failed = |e: rustls::Error| {
        let name_only = matches!(e, rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. }));
        (tls.verify_hostname || !name_only).then(|| format!("TLS handshake with {host} failed: {e}"))
    };
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            return match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                Some(tls_error) => failed(tls_error.clone()),
                None => None,
            };
        }
    }
    // TLS 1.3 servers refuse a missing client certificate only after the client's handshake
    // ended: read once to hear their alert.
    let mut buf = [0u8; 1];
    match std::io::Read::read(&mut rustls::Stream::new(&mut conn, &mut sock), &mut buf) {
        Err(e) => e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).cloned().and_then(failed),
        Ok(_) => None,
    }
}

/// The server refused an `auth` entry: say which schemes were sent, never the credentials.
fn auth_failed(options: &SessionOptions) -> Error {
    let schemes: Vec<&str> = options.auth.iter().map(|a| a.scheme.as_str()).collect();
    let mut sent = if schemes.is_empty() { "no auth".to_string() } else { format!("auth schemes {schemes:?}") };
    if let Some(Sasl::DigestMd5 { username, .. }) = &options.sasl {
        sent.push_str(&format!(", SASL DIGEST-MD5 as {username:?}"));
    }
    Error::zk(
        "AUTHFAILED",
        format!("authentication failed: the server refused the session ({sent}); check the auth and sasl options' credentials against the server's auth providers"),
    )
}

fn connect_timed_out(connect: &str, after: Duration) -> Error {
    Error::timeout(format!("no ZooKeeper session with {connect} within {} ms", after.as_millis()))
}

/// Runs one request with a deadline, mapping client errors to zktx errors.
///
/// zookeeper-client 0.11 lets a request issued while disconnected wait without a deadline of
/// its own, so every request goes through here.
pub(crate) async fn deadline<T>(limit: Duration, what: &str, fut: impl Future<Output = Result<T, zk::Error>>) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => result.map_err(Error::from),
        Err(_) => Err(Error::timeout(format!("{what}: no answer from ZooKeeper within {} ms", limit.as_millis()))),
    }
}

/// Counts a call out of [`Session::client`]'s queue however it leaves (answered, failed,
/// dropped).
struct Waited<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Waited<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// [`Session::unless_closed`] with the session's `closing` token already in hand.
pub(crate) async fn unless_cancelled<T>(closing: &CancellationToken, writes: bool, work: impl Future<Output = Result<T>>) -> Result<T> {
    if closing.is_cancelled() {
        return Err(Error::ClientClosed); // nothing sent
    }
    tokio::select! {
        biased;
        _ = closing.cancelled() => Err(if writes {
            Error::ClosedDuringWrite("the client was closed while the write was in flight: it may have applied before the session closed, never after".into())
        } else {
            Error::ClientClosed
        }),
        r = work => r,
    }
}

/// A connect attempt in progress (plain or TLS).
type Connecting<'a> = std::pin::Pin<Box<dyn Future<Output = Result<Result<zk::Client, zk::Error>>> + Send + 'a>>;

/// `now + d`, or `None` when that instant is not representable (a wait that long is a wait
/// forever): durations reach here from callers, and `Instant + Duration` panics on overflow.
pub(crate) fn instant_after(d: Duration) -> Option<tokio::time::Instant> {
    tokio::time::Instant::now().checked_add(d)
}

/// `now + d`, saturating at a year from now (beyond any request or session).
pub(crate) fn instant_after_or_far(d: Duration) -> tokio::time::Instant {
    instant_after(d.min(Duration::from_secs(86_400 * 365))).unwrap_or_else(tokio::time::Instant::now)
}

/// Upgrades a weak client handle held by a lock; a dropped client means the session was closed.
pub(crate) fn upgrade(client: &Weak<zk::Client>) -> Result<Arc<zk::Client>> {
    client.upgrade().ok_or(Error::ClientClosed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(connect: &str, host_order_deterministic: bool) -> SessionOptions {
        SessionOptions { connect: connect.into(), host_order_deterministic, ..SessionOptions::default() }
    }

    #[test]
    fn the_client_gets_hosts_trimmed_whatever_the_order_option() {
        assert_eq!(options(" zk1:2181 , zk2.example.com.:2181 /app", true).connect_string(), "zk1:2181,zk2.example.com.:2181/app");
        assert_eq!(options("h:2181 ", false).connect_string(), "h:2181");
    }
}
