//! The ZooKeeper session: connect options, lazy connection, per-call deadlines, expiry.
//!
//! A [`Session`] owns at most one live `zookeeper_client::Client` at a time. It connects on first
//! use; after the server expires the session it opens a new one for new work (unless
//! [`SessionOptions::reconnect_after_expiry`] is off), while everything acquired on the old one
//! (locks) keeps a weak handle to the old client and so fails loudly instead of silently moving
//! to the new session.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{broadcast, Mutex};
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
        }
    }
}

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
        if self.session_timeout.is_zero() {
            return Err(Error::invalid("timeout must be a positive number of milliseconds"));
        }
        Ok(())
    }

    /// The connect string with hosts shuffled unless `host_order_deterministic`.
    fn connect_string(&self) -> String {
        if self.host_order_deterministic {
            return self.connect.clone();
        }
        let (hosts, chroot) = match self.connect.find('/') {
            Some(i) => self.connect.split_at(i),
            None => (self.connect.as_str(), ""),
        };
        let mut hosts: Vec<&str> = hosts.split(',').map(str::trim).collect();
        fastrand::shuffle(&mut hosts);
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
    options: SessionOptions,
    current: Mutex<Current>,
    events: broadcast::Sender<SessionEvent>,
    last_event: Arc<std::sync::Mutex<Option<SessionEvent>>>,
}

#[derive(Debug, Default)]
struct Current {
    client: Option<Arc<zk::Client>>,
    expired_before: bool,
    closed: bool,
}

impl Session {
    /// Validates options; does not connect.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for an empty host list or a zero timeout.
    pub fn new(options: SessionOptions) -> Result<Self> {
        options.validate()?;
        let (events, _) = broadcast::channel(64);
        Ok(Session { options, current: Mutex::new(Current::default()), events, last_event: Default::default() })
    }

    /// Subscribes to session events (from now on).
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.events.subscribe()
    }

    /// The most recent session event; `None` before the first connection.
    pub fn last_event(&self) -> Option<SessionEvent> {
        self.last_event.lock().map(|e| *e).unwrap_or(None)
    }

    /// Forwards the client's state changes as [`SessionEvent`]s until the client ends.
    fn watch_states(&self, client: &zk::Client) {
        let (events, last) = (self.events.clone(), self.last_event.clone());
        let emit = move |e: SessionEvent| {
            if let Ok(mut l) = last.lock() {
                *l = Some(e);
            }
            let _ = events.send(e);
        };
        emit(SessionEvent::Connected);
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
                emit(event);
                if matches!(event, SessionEvent::Expired | SessionEvent::Closed) {
                    break;
                }
            }
        });
    }

    /// The options this session was made with.
    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// The live client, connecting first if needed.
    ///
    /// # Errors
    /// `CLIENT_CLOSED` after [`Session::close`]; `SESSIONEXPIRED` after an expiry when
    /// reconnecting is off; `TIMEOUT` / `CONNECTIONLOSS` when no server answers within the
    /// connect timeout.
    ///
    /// # On connection loss
    /// A client that is disconnected but whose session may still live is returned as is: its
    /// requests wait for the reconnect (bounded by their deadlines).
    pub async fn client(&self) -> Result<Arc<zk::Client>> {
        let mut cur = self.current.lock().await;
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
        if cur.expired_before && !self.options.reconnect_after_expiry {
            return Err(Error::SessionExpired);
        }
        let client = Arc::new(self.open().await?);
        self.watch_states(&client);
        cur.client = Some(client.clone());
        Ok(client)
    }

    async fn open(&self) -> Result<zk::Client> {
        let connect_timeout = self.options.connect_timeout.unwrap_or_else(|| self.options.session_timeout.min(Duration::from_secs(15)));
        let connector = zk::Client::connector().with_session_timeout(self.options.session_timeout);
        let connect = self.options.connect_string();
        match tokio::time::timeout(connect_timeout, connector.connect(&connect)).await {
            Ok(Ok(client)) => {
                tracing::debug!(session = %client.session_id(), timeout_ms = client.session_timeout().as_millis() as u64, "ZooKeeper session established");
                Ok(client)
            },
            Ok(Err(err)) => Err(match Error::from(err) {
                Error::Timeout { .. } => connect_timed_out(&self.options.connect, connect_timeout),
                other => other,
            }),
            Err(_) => Err(connect_timed_out(&self.options.connect, connect_timeout)),
        }
    }

    /// The deadline for one request on `client`.
    pub fn request_timeout(&self, client: &zk::Client) -> Duration {
        self.options.request_timeout.unwrap_or_else(|| client.session_timeout())
    }

    /// Connects now instead of on first use.
    pub async fn connect(&self) -> Result<()> {
        self.client().await.map(drop)
    }

    /// Whether [`Session::close`] was called.
    pub async fn is_closed(&self) -> bool {
        self.current.lock().await.closed
    }

    /// Closes the session: the server deletes its ephemeral nodes (locks) at once.
    ///
    /// # Guarantees
    /// Idempotent. Waits (up to 2 s) until the server acknowledged the close, so a process can
    /// exit right after without leaving a live session behind. A request still in flight keeps
    /// the client alive until it completes; the close then follows.
    pub async fn close(&self) {
        let client = {
            let mut cur = self.current.lock().await;
            cur.closed = true;
            cur.client.take()
        };
        let Some(client) = client else { return };
        let mut watcher = client.state_watcher();
        drop(client);
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                if matches!(watcher.changed().await, zk::SessionState::Closed | zk::SessionState::Expired | zk::SessionState::AuthFailed) {
                    break;
                }
            }
        })
        .await;
    }
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

/// Upgrades a weak client handle held by a lock; a dropped client means the session was closed.
pub(crate) fn upgrade(client: &Weak<zk::Client>) -> Result<Arc<zk::Client>> {
    client.upgrade().ok_or(Error::ClientClosed)
}
