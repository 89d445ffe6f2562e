//! The raw ZooKeeper API: znodes by absolute path, their data as bytes, `Stat`s, ACLs, a raw
//! `multi`, `sync`, and one-shot watches.
//!
//! Nothing here knows zktx's key-value layout (`/zktx/kv/...`, JSON values): these calls read
//! and write exactly the znode they are given. Every call runs on the [`Session`]'s current
//! client with the session's request deadline (zookeeper-client 0.11 lets a request issued
//! while disconnected wait forever otherwise), stops at `close()`, and reports errors under
//! ZooKeeper's names (`NONODE`, `NODEEXISTS`, `BADVERSION`, `NOTEMPTY`, `NOAUTH`, ...).
//!
//! Writes that fail on the connection (`CONNECTIONLOSS`, `TIMEOUT`) have an unknown outcome:
//! the server may have applied them. Reads and `sync` have nothing to apply.
//!
//! Paths are checked here, before anything is sent: a bad path is `INVALID_ARGUMENT`, even when
//! no server is reachable.

use std::time::Duration;

use zookeeper_client as zk;

use crate::error::{Error, Result};
use crate::kv::{MAX_REQUEST_BYTES, OP_OVERHEAD_BYTES};
use crate::session::{acl_bytes, deadline, PersistentPaths, Session};

pub use zk::{Acl, AuthId, EventType, Permission, SessionState, Stat};

/// ZooKeeper's limit on a TTL node's time to live (its id space), in milliseconds.
pub const TTL_MAX_MS: u64 = 0x00FF_FFFF_FFFF;

/// How a created znode lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Lives until deleted.
    Persistent,
    /// Persistent, with a 10-digit counter of its parent appended to its name.
    PersistentSequential,
    /// Deleted by the server when the creating session ends.
    Ephemeral,
    /// Ephemeral and sequential (the lock recipe's node).
    EphemeralSequential,
    /// Deleted by the server some time after its last child is deleted (3.5.3+).
    Container,
}

impl Mode {
    fn is_sequential(self) -> bool {
        matches!(self, Mode::PersistentSequential | Mode::EphemeralSequential)
    }

    fn client_mode(self) -> zk::CreateMode {
        match self {
            Mode::Persistent => zk::CreateMode::Persistent,
            Mode::PersistentSequential => zk::CreateMode::PersistentSequential,
            Mode::Ephemeral => zk::CreateMode::Ephemeral,
            Mode::EphemeralSequential => zk::CreateMode::EphemeralSequential,
            Mode::Container => zk::CreateMode::Container,
        }
    }
}

/// How to create one znode.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// Lifetime of the node.
    pub mode: Mode,
    /// For a persistent (sequential) node: deleted by the server once it had no children and
    /// no write for this long (needs `extendedTypesEnabled=true` on the server, else
    /// `UNIMPLEMENTED`).
    pub ttl: Option<Duration>,
    /// The node's ACL; `None`: the session's default ACL (the client's `acl` option).
    pub acl: Option<Vec<Acl>>,
}

/// A created znode: its path (with the sequence suffix for a sequential one) and its `Stat`.
#[derive(Clone, Debug)]
pub struct Created {
    /// The path the server created.
    pub path: String,
    /// Its stat right after creation.
    pub stat: Stat,
}

/// One operation of a raw [`multi`].
#[derive(Clone, Debug)]
pub enum Op {
    /// Create a node.
    Create {
        /// Path (a prefix for a sequential node).
        path: String,
        /// Data.
        data: Vec<u8>,
        /// How.
        options: CreateOptions,
    },
    /// Set a node's data, at `version` if given.
    SetData {
        /// Path.
        path: String,
        /// New data.
        data: Vec<u8>,
        /// Expected data version; `None`: any.
        version: Option<i32>,
    },
    /// Delete a node, at `version` if given.
    Delete {
        /// Path.
        path: String,
        /// Expected data version; `None`: any.
        version: Option<i32>,
    },
    /// Require a node to exist at this data version.
    Check {
        /// Path.
        path: String,
        /// Expected data version.
        version: i32,
    },
}

/// What one operation of a committed [`multi`] produced.
#[derive(Clone, Debug)]
pub enum OpResult {
    /// A node was created at this path.
    Create {
        /// The created path.
        path: String,
        /// Its stat (may be all -1: ZOOKEEPER-4026).
        stat: Stat,
    },
    /// Data was set; the new stat.
    SetData(Stat),
    /// A node was deleted.
    Delete,
    /// A check passed.
    Check,
}

/// What a one-shot watch saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// The node was created (exists watch).
    Created(String),
    /// The node was deleted.
    Deleted(String),
    /// The node's data changed.
    DataChanged(String),
    /// The node's children changed (a child created or deleted).
    ChildrenChanged(String),
    /// The session expired: the watch is gone, and what it watched may have changed unseen.
    Expired,
    /// The client was closed (or its session ended otherwise) before the event.
    Closed,
}

impl WatchEvent {
    /// `created`, `deleted`, `changed`, `children`, `expired` or `closed`.
    pub fn kind(&self) -> &'static str {
        match self {
            WatchEvent::Created(_) => "created",
            WatchEvent::Deleted(_) => "deleted",
            WatchEvent::DataChanged(_) => "changed",
            WatchEvent::ChildrenChanged(_) => "children",
            WatchEvent::Expired => "expired",
            WatchEvent::Closed => "closed",
        }
    }

    /// The node's path for node events, `""` for session events.
    pub fn path(&self) -> &str {
        match self {
            WatchEvent::Created(p) | WatchEvent::Deleted(p) | WatchEvent::DataChanged(p) | WatchEvent::ChildrenChanged(p) => p,
            WatchEvent::Expired | WatchEvent::Closed => "",
        }
    }
}

/// Runs one request with the session's deadline, stopping at `close()`: `$call` uses the
/// client `$c` (a macro: the request borrows the client, which a closure could not return).
macro_rules! request {
    ($session:expr, $writes:expr, $what:expr, |$c:ident| $call:expr) => {{
        let client = $session.client().await?;
        let $c: &zk::Client = &client;
        let rt = $session.request_timeout($c);
        let r = $session.unless_closed($writes, deadline(rt, $what, $call)).await;
        if $writes {
            r.map_err(Error::for_write)
        } else {
            r
        }
    }};
}

/// A one-shot watch set by a read: fires once, with the first change after that read.
///
/// # Guarantees
/// One event at most. The server sends it before the answer to any later read of the same
/// node on this session, so a reader that re-reads after the event sees that change or a
/// later one.
///
/// Beside a persistent watch of the same session on the same path: ZooKeeper 3.6–3.8 keeps one
/// watch mode per session and path (ZOOKEEPER-4466), so the read turns the persistent watch
/// into a one-shot on the server. The read sets the persistent watch again right after (the
/// persistent watch gets `Resync("overlapped")` if a change came in between, so nothing is lost
/// silently), and this watch is never removed early (that would remove the persistent one too):
/// dropped before its event, it is left to fire and be ignored.
///
/// # On connection loss
/// zookeeper-client sets the watch again on the reconnect, with the last zxid it saw: the
/// server fires it at once if the node's data changed (`changed`), it was deleted, or, for an
/// exists watch on a missing node, it exists now. A node created *and* deleted (or deleted
/// and created again) while disconnected leaves nothing to compare: the watch stays set and
/// that change is not reported. On session expiry the watch ends with
/// [`WatchEvent::Expired`]: re-read on the new session.
///
/// # Cancellation
/// Dropping it removes the watch (except beside a persistent watch, above).
pub struct Watch {
    pending: Option<Pending>,
    path: String,
    paths: std::sync::Arc<PersistentPaths>,
    closing: crate::CancellationToken,
}

type EventFuture = std::pin::Pin<Box<dyn std::future::Future<Output = zk::WatchedEvent> + Send>>;

enum Pending {
    /// The watcher's event; dropping it removes the watch from the server.
    Plain(EventFuture),
    /// On a path with a persistent watch: awaited to the end, never removed.
    Shared(EventFuture),
    /// Fired while the persistent watch was being set again.
    Fired(zk::WatchedEvent),
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Watch {
    /// Waits for the event; `Closed` once the client is closed.
    pub async fn changed(mut self) -> WatchEvent {
        let closing = self.closing.clone();
        // Awaited in place: dropped before the event (cancelled), `self` decides what removing
        // it means (see `Drop`).
        let e = match self.pending.as_mut() {
            Some(Pending::Plain(f) | Pending::Shared(f)) => tokio::select! {
                biased;
                e = f => e,
                _ = closing.cancelled() => return WatchEvent::Closed,
            },
            Some(Pending::Fired(_)) => match self.pending.take() {
                Some(Pending::Fired(e)) => e,
                _ => return WatchEvent::Closed,
            },
            None => return WatchEvent::Closed,
        };
        self.pending = None;
        event_of(e)
    }

    /// Wraps the watcher of a watched read of `path`; beside a persistent watch on the same
    /// path, sets that one again first (see the type's doc).
    async fn after_read(session: &Session, path: &str, watcher: zk::OneshotWatcher) -> Watch {
        let paths = session.persistent_paths();
        let mut w = Watch { pending: None, path: path.to_string(), paths: paths.clone(), closing: session.closing() };
        let Some((node, recursive)) = paths.modes(path) else {
            w.pending = Some(Pending::Plain(Box::pin(watcher.changed())));
            return w;
        };
        let mut fired: EventFuture = Box::pin(watcher.changed());
        let mut event = None;
        let restore = async {
            // Node mode first: a recursive watch is a data watch only on the server (child events
            // come from the node mode), so it is the one that must be set last.
            if node {
                drop(request!(session, false, "addWatch", |c| c.watch(path, zk::AddWatchMode::Persistent))?);
            }
            if recursive {
                drop(request!(session, false, "addWatch", |c| c.watch(path, zk::AddWatchMode::PersistentRecursive))?);
            }
            Ok::<(), Error>(())
        };
        tokio::pin!(restore);
        let restored = loop {
            tokio::select! {
                biased;
                // Events come before the answer to a later request: polled first, an event
                // that fired before the watch was set again is seen here.
                e = &mut fired, if event.is_none() => event = Some(e),
                r = &mut restore => break r,
            }
        };
        if event.is_some() || restored.is_err() {
            tracing::debug!(path, "a one-shot watch overlapped a persistent one; the persistent watch resyncs");
            paths.lost(path);
        }
        w.pending = Some(match event {
            Some(e) => Pending::Fired(e),
            None => Pending::Shared(fired),
        });
        w
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let fired: EventFuture = match self.pending.take() {
            Some(Pending::Shared(f)) => f,
            // A persistent watch set on the path since: removing this one would remove it too.
            Some(Pending::Plain(f)) if self.paths.modes(&self.path).is_some() => f,
            Some(Pending::Plain(f)) => return drop(f),
            _ => return,
        };
        drop(spawns_core::spawn(async move {
            let _ = fired.await;
        }));
    }
}

fn event_of(e: zk::WatchedEvent) -> WatchEvent {
    match e.event_type {
        EventType::NodeCreated => WatchEvent::Created(e.path),
        EventType::NodeDeleted => WatchEvent::Deleted(e.path),
        EventType::NodeDataChanged => WatchEvent::DataChanged(e.path),
        EventType::NodeChildrenChanged => WatchEvent::ChildrenChanged(e.path),
        EventType::Session => match e.session_state {
            SessionState::Expired => WatchEvent::Expired,
            _ => WatchEvent::Closed,
        },
    }
}

/// What a persistent watch sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PersistentEvent {
    /// A node event ([`WatchEvent::Created`], `Deleted`, `DataChanged`, `ChildrenChanged`).
    Node(WatchEvent),
    /// The watch was set again after the connection came back (`"reconnected"`), on a new
    /// session after an expiry (`"expired"`), or after a one-shot watch of this session on the
    /// same path let a change through before it was set again (`"overlapped"`, ZOOKEEPER-4466):
    /// events in between may be lost (ZOOKEEPER-4698), so re-read what you watch.
    Resync(&'static str),
    /// The session ended for good (expired with `reconnect_after_expiry` off, or auth failed):
    /// no more events.
    Ended,
    /// The client was closed: no more events.
    Closed,
}

/// A persistent (or persistent-recursive) watch, ZooKeeper 3.6+ `addWatch`, that survives
/// connection loss and expiry.
///
/// # Guarantees
/// Every node event the server sends while the watch is set, in order. zookeeper-client 0.11
/// does not set persistent watches again after a reconnect: this does (the old one dropped
/// first), then yields [`PersistentEvent::Resync`], so a consumer knows to re-read.
///
/// # On connection loss
/// Events during the disconnection can be lost (ZOOKEEPER-4698): `Resync("reconnected")` follows
/// the reconnect. After an expiry the watch is set on the new session: `Resync("expired")`.
///
/// # Cancellation
/// Dropping it removes the watch (best effort: ZOOKEEPER-4472).
#[derive(Debug)]
pub struct PersistentWatch {
    path: String,
    mode: zk::AddWatchMode,
    watcher: Option<zk::PersistentWatcher>,
    paths: std::sync::Arc<PersistentPaths>,
    /// Changes when a one-shot watch on the same path may have cost events (ZOOKEEPER-4466).
    lost: tokio::sync::watch::Receiver<u64>,
}

impl Drop for PersistentWatch {
    fn drop(&mut self) {
        self.paths.unregister(&self.path, self.mode == zk::AddWatchMode::PersistentRecursive);
    }
}

impl PersistentWatch {
    /// Sets the watch (`recursive`: on the node and every descendant).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a bad path; `UNIMPLEMENTED` on a server before 3.6; `NOAUTH`;
    /// connection errors.
    pub async fn add(session: &Session, path: &str, recursive: bool) -> Result<PersistentWatch> {
        check_path(path, false)?;
        let mode = if recursive { zk::AddWatchMode::PersistentRecursive } else { zk::AddWatchMode::Persistent };
        // Registered before it is set: a one-shot read racing with this add sets it again.
        let paths = session.persistent_paths();
        let lost = paths.register(path, recursive);
        let mut w = PersistentWatch { path: path.to_string(), mode, watcher: None, paths, lost };
        w.watcher = Some(w.set(session).await?);
        Ok(w)
    }

    async fn set(&self, session: &Session) -> Result<zk::PersistentWatcher> {
        let (path, mode) = (self.path.as_str(), self.mode);
        request!(session, false, "addWatch", |c| c.watch(path, mode))
    }

    /// The next event. After `Ended` or `Closed` it keeps answering that.
    pub async fn next(&mut self, session: &Session) -> PersistentEvent {
        let closing = session.closing();
        let reason = loop {
            let Some(w) = self.watcher.as_mut() else { break "expired" };
            let e = tokio::select! {
                biased;
                _ = closing.cancelled() => return PersistentEvent::Closed,
                e = w.changed() => e,
                // The read that overlapped already set the watch again: only re-read.
                Ok(()) = self.lost.changed() => return PersistentEvent::Resync("overlapped"),
            };
            match e.event_type {
                EventType::Session => match e.session_state {
                    SessionState::Disconnected => continue,
                    SessionState::SyncConnected | SessionState::ConnectedReadOnly => {
                        // Terminal events aside, the watcher may be polled again; but the server
                        // no longer has the watch: drop it (its removal goes out first), set it again.
                        self.watcher = None;
                        break "reconnected";
                    },
                    // Polling a watcher after a terminal state panics: never again.
                    _ => {
                        self.watcher = None;
                        break "expired";
                    },
                },
                _ => return PersistentEvent::Node(event_of(e)),
            }
        };
        loop {
            if closing.is_cancelled() {
                return PersistentEvent::Closed;
            }
            match self.set(session).await {
                Ok(w) => {
                    self.watcher = Some(w);
                    return PersistentEvent::Resync(reason);
                },
                Err(Error::ClientClosed) => return PersistentEvent::Closed,
                Err(Error::SessionExpired) | Err(Error::ZooKeeper { code: "AUTHFAILED", .. }) => return PersistentEvent::Ended,
                Err(e) => {
                    tracing::debug!(path = %self.path, error = %e, "setting a persistent watch again failed; retrying");
                    tokio::select! {
                        biased;
                        _ = closing.cancelled() => return PersistentEvent::Closed,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {},
                    }
                },
            }
        }
    }
}

/// `INVALID_ARGUMENT` unless `path` is an absolute znode path as ZooKeeper accepts it (and
/// `TOO_LARGE` for a path longer than a request may be): starts
/// with `/`, no empty, `.` or `..` segment, no trailing `/` (allowed for a sequential node's
/// prefix, `/queue/`), no NUL or control characters.
///
/// Checked before anything is sent (the server would refuse it, or the client would, only once
/// connected).
pub fn check_path(path: &str, sequential: bool) -> Result<()> {
    let refuse = |why: &str| Err(Error::invalid(format!("znode path {path:?} {why}")));
    if !path.starts_with('/') {
        return refuse("must be absolute (start with '/')");
    }
    if path == "/" {
        return Ok(());
    }
    // Reads carry their path too: a path the server cannot take would drop the connection.
    check_size("a request with this path", OP_OVERHEAD_BYTES + path.len())?;
    // A sequential node's path is a prefix: "/queue/" makes "/queue/0000000001".
    let trimmed = if sequential { path.strip_suffix('/').unwrap_or(path) } else { path };
    let body = trimmed.get(1..).unwrap_or("");
    for segment in body.split('/') {
        match segment {
            "" => return refuse("has an empty segment (a double or trailing '/')"),
            "." | ".." => return refuse("has a relative segment ('.' or '..')"),
            _ => {},
        }
    }
    if path.chars().any(|c| c == '\0' || ('\u{1}'..='\u{1f}').contains(&c) || ('\u{7f}'..='\u{9f}').contains(&c) || ('\u{e000}'..='\u{f8ff}').contains(&c) || ('\u{fff0}'..='\u{ffff}').contains(&c)) {
        return refuse("has a character ZooKeeper refuses (NUL, a control character or U+D800-F8FF / U+FFF0-FFFF)");
    }
    Ok(())
}

fn check_options(path: &str, options: &CreateOptions) -> Result<()> {
    check_path(path, options.mode.is_sequential())?;
    if path == "/" && !options.mode.is_sequential() {
        return Err(Error::zk("NODEEXISTS", "the root node always exists"));
    }
    if let Some(ttl) = options.ttl {
        if !matches!(options.mode, Mode::Persistent | Mode::PersistentSequential) {
            return Err(Error::invalid("ttl is only for persistent (sequential) nodes"));
        }
        if ttl.is_zero() || ttl.as_millis() > u128::from(TTL_MAX_MS) {
            return Err(Error::invalid(format!("ttl must be from 1 to {TTL_MAX_MS} ms, got {} ms", ttl.as_millis())));
        }
    }
    if let Some(acl) = &options.acl {
        if acl.is_empty() {
            return Err(Error::invalid("acl must not be empty (ZooKeeper refuses a node no one can access: INVALIDACL)"));
        }
    }
    Ok(())
}

fn create_options<'a>(session: &'a Session, options: &'a CreateOptions) -> zk::CreateOptions<'a> {
    let acls = match &options.acl {
        Some(acl) => zk::Acls::new(acl),
        None => session.acls(),
    };
    let o = options.mode.client_mode().with_acls(acls);
    match options.ttl {
        Some(ttl) => o.with_ttl(ttl),
        None => o,
    }
}


/// Creates a znode and returns its path (with the sequence suffix for a sequential node).
///
/// # Guarantees
/// Atomic: the node exists with `data` and the ACL, or nothing changed (unless the outcome is
/// unknown, below).
///
/// # Errors
/// `NODEEXISTS`, `NONODE` (no parent), `NOCHILDRENFOREPHEMERALS`, `NOAUTH`, `INVALIDACL`,
/// `UNIMPLEMENTED` (TTL or container nodes the server does not enable); `INVALID_ARGUMENT`
/// for a bad path, TTL or ACL (nothing sent); `TOO_LARGE` over the server's request limit.
///
/// # On connection loss
/// `CONNECTIONLOSS` or `TIMEOUT` with an unknown outcome: the node may exist. A sequential
/// create cannot be retried blindly (it would make a second node): look for it by its data or
/// use the lock recipes, which use protected names.
pub async fn create(session: &Session, path: &str, data: &[u8], options: &CreateOptions) -> Result<Created> {
    check_options(path, options)?;
    check_size("create", OP_OVERHEAD_BYTES + chroot_bytes(session) + path.len() + data.len() + create_acl_bytes(session, options))?;
    let o = create_options(session, options);
    let (stat, sequence) = request!(session, true, "create", |c| c.create(path, data, &o))?;
    let path = if options.mode.is_sequential() { format!("{path}{sequence}") } else { path.to_string() };
    Ok(Created { path, stat })
}

/// Reads a znode's data and stat.
///
/// # Errors
/// `NONODE`, `NOAUTH`; `INVALID_ARGUMENT` for a bad path.
///
/// # On connection loss
/// Waits for the reconnect within the request deadline, then `TIMEOUT`.
pub async fn get_data(session: &Session, path: &str) -> Result<(Vec<u8>, Stat)> {
    check_path(path, false)?;
    request!(session, false, "getData", |c| c.get_data(path))
}

/// [`get_data`] and a one-shot watch for the node's next data change or deletion.
///
/// # Errors
/// As [`get_data`]; with `NONODE` no watch is left (use [`exists_watch`] to wait for creation).
pub async fn get_data_watch(session: &Session, path: &str) -> Result<(Vec<u8>, Stat, Watch)> {
    check_path(path, false)?;
    let (data, stat, w) = request!(session, false, "getData", |c| c.get_and_watch_data(path))?;
    Ok((data, stat, Watch::after_read(session, path, w).await))
}

/// The node's stat, or `None` when it does not exist.
///
/// # Errors
/// `INVALID_ARGUMENT` for a bad path; connection errors as [`get_data`].
pub async fn exists(session: &Session, path: &str) -> Result<Option<Stat>> {
    check_path(path, false)?;
    request!(session, false, "exists", |c| c.check_stat(path))
}

/// [`exists`] and a one-shot watch: fires on creation (when absent), data change or deletion.
pub async fn exists_watch(session: &Session, path: &str) -> Result<(Option<Stat>, Watch)> {
    check_path(path, false)?;
    let (stat, w) = request!(session, false, "exists", |c| c.check_and_watch_stat(path))?;
    Ok((stat, Watch::after_read(session, path, w).await))
}

/// Replaces a znode's data, at `version` if given; returns the new stat.
///
/// # Errors
/// `NONODE`, `BADVERSION`, `NOAUTH`; `INVALID_ARGUMENT` for a bad path or a version below -1;
/// `TOO_LARGE` over the server's request limit (nothing sent).
///
/// # On connection loss
/// `CONNECTIONLOSS` or `TIMEOUT` with an unknown outcome: re-read (a versioned set can be
/// retried safely: it fails `BADVERSION` if the first applied).
pub async fn set_data(session: &Session, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
    check_path(path, false)?;
    check_version(version)?;
    check_size("setData", OP_OVERHEAD_BYTES + chroot_bytes(session) + path.len() + data.len())?;
    request!(session, true, "setData", |c| c.set_data(path, data, version))
}

/// Deletes a znode, at `version` if given.
///
/// # Errors
/// `NONODE`, `BADVERSION`, `NOTEMPTY`, `NOAUTH`; `INVALID_ARGUMENT` for a bad path or `/`.
///
/// # On connection loss
/// Unknown outcome: a retry may answer `NONODE` because the first attempt applied.
pub async fn delete(session: &Session, path: &str, version: Option<i32>) -> Result<()> {
    check_path(path, false)?;
    check_version(version)?;
    if path == "/" {
        return Err(Error::invalid("the root node cannot be deleted"));
    }
    request!(session, true, "delete", |c| c.delete(path, version))
}

/// `TOO_LARGE` unless a request of about `bytes` bytes fits the server's `jute.maxbuffer`:
/// over it the server drops the whole connection (every other request and watch of the session
/// sees a connection loss), so nothing that cannot fit is sent.
fn check_size(what: &str, bytes: usize) -> Result<()> {
    if bytes > MAX_REQUEST_BYTES {
        return Err(Error::TooLarge(format!(
            "{what} would be a {bytes}-byte request; ZooKeeper accepts at most {MAX_REQUEST_BYTES} (jute.maxbuffer): nothing was sent"
        )));
    }
    Ok(())
}

/// What the client adds to each path it sends: the connect string's chroot (its length was
/// bounded when the session was made). Without it, a write sized just under the limit went over
/// it in a chroot, and the server dropped the connection instead of the call failing `TOO_LARGE`.
fn chroot_bytes(session: &Session) -> usize {
    crate::session::chroot_of(&session.options().connect).map_or(0, str::len)
}

/// The ACL a create sends: its own, or the session's default.
fn create_acl_bytes(session: &Session, options: &CreateOptions) -> usize {
    acl_bytes(options.acl.as_deref().unwrap_or(&session.options().acl))
}

/// An operation's size on the wire (conservative: [`OP_OVERHEAD_BYTES`] covers the header,
/// lengths, version, flags and TTL).
fn op_bytes(session: &Session, op: &Op) -> usize {
    OP_OVERHEAD_BYTES
        + chroot_bytes(session)
        + match op {
            Op::Create { path, data, options } => path.len() + data.len() + create_acl_bytes(session, options),
            Op::SetData { path, data, .. } => path.len() + data.len(),
            Op::Delete { path, .. } | Op::Check { path, .. } => path.len(),
        }
}

fn check_version(version: Option<i32>) -> Result<()> {
    match version {
        Some(v) if v < -1 => Err(Error::invalid(format!("version must be -1 (any) or a data version >= 0, got {v}"))),
        _ => Ok(()),
    }
}

/// The node's children (names, unsorted as the server gives them) and its stat.
///
/// # Errors
/// `NONODE`, `NOAUTH`; `INVALID_ARGUMENT` for a bad path.
pub async fn children(session: &Session, path: &str) -> Result<(Vec<String>, Stat)> {
    check_path(path, false)?;
    request!(session, false, "getChildren", |c| c.get_children(path))
}

/// [`children`] and a one-shot watch: fires when a child is created or deleted, or the node is
/// deleted.
pub async fn children_watch(session: &Session, path: &str) -> Result<(Vec<String>, Stat, Watch)> {
    check_path(path, false)?;
    let (list, stat, w) = request!(session, false, "getChildren", |c| c.get_and_watch_children(path))?;
    Ok((list, stat, Watch::after_read(session, path, w).await))
}

/// The node's ACL and stat.
///
/// # Errors
/// `NONODE`, `NOAUTH` (reading an ACL needs READ or ADMIN since 3.6).
pub async fn get_acl(session: &Session, path: &str) -> Result<(Vec<Acl>, Stat)> {
    check_path(path, false)?;
    request!(session, false, "getACL", |c| c.get_acl(path))
}

/// Replaces the node's ACL, at ACL version `version` if given; returns the new stat.
///
/// # Errors
/// `NONODE`, `BADVERSION` (of the ACL version), `NOAUTH` (needs ADMIN), `INVALIDACL`;
/// `INVALID_ARGUMENT` for an empty ACL.
pub async fn set_acl(session: &Session, path: &str, acl: &[Acl], version: Option<i32>) -> Result<Stat> {
    check_path(path, false)?;
    check_version(version)?;
    if acl.is_empty() {
        return Err(Error::invalid("acl must not be empty"));
    }
    check_size("setACL", OP_OVERHEAD_BYTES + chroot_bytes(session) + path.len() + acl_bytes(acl))?;
    request!(session, true, "setACL", |c| c.set_acl(path, acl, version))
}

/// Waits until the server this session is connected to has applied every write the leader had
/// committed when it received the sync (a "read your other clients' writes" barrier).
pub async fn sync(session: &Session, path: &str) -> Result<()> {
    check_path(path, false)?;
    request!(session, false, "sync", |c| c.sync(path))
}

/// Adds an identity to the session (`digest`, `user:password`), as `addAuthInfo`.
///
/// # Guarantees
/// Kept across reconnects of this session; a session opened after an expiry has only the
/// client's `auth` option.
///
/// # Errors
/// `AUTHFAILED` (the server then closes the session), `INVALID_ARGUMENT` for an empty scheme.
pub async fn add_auth(session: &Session, scheme: &str, credentials: &[u8]) -> Result<()> {
    if scheme.is_empty() {
        return Err(Error::invalid("auth scheme must not be empty"));
    }
    // zookeeper-client sends an auth packet again on every reconnect: one the server cannot
    // take would drop every connection of the session (never echo the credentials).
    check_size("addAuth", OP_OVERHEAD_BYTES + scheme.len() + credentials.len())?;
    request!(session, false, "addAuth", |c| c.auth(scheme, credentials))
}

/// The current session's id (`0x...`), connecting first if needed.
pub async fn session_id(session: &Session) -> Result<String> {
    let client = session.client().await?;
    Ok(format!("{:x}", client.session_id().0))
}

/// The current session's password in hex (connects first if needed): with its id, what another
/// client needs to resume it ([`crate::session::SessionOptions::resume`]).
///
/// # Errors
/// As [`session_id`].
pub async fn session_password(session: &Session) -> Result<String> {
    let client = session.client().await?;
    Ok(client.session().password().iter().map(|b| format!("{b:02x}")).collect())
}

/// A multi whose operation `index` failed (the others were not applied).
fn op_failed(index: usize, e: zk::Error) -> Error {
    let err = Error::from(e);
    match err {
        Error::ZooKeeper { code, message } => Error::ZooKeeper { code, message: format!("multi op {index} failed: {message}; no operation was applied") },
        other => other,
    }
}

/// Commits `ops` all or nothing (ZooKeeper's `multi`).
///
/// # Guarantees
/// Either every operation applied, in order, in one zxid, or none did.
///
/// # Errors
/// The first failing operation's error under its code (`NONODE`, `NODEEXISTS`, `BADVERSION`,
/// `NOTEMPTY`, ...), with `multi op <index> failed:` in its message; `INVALID_ARGUMENT` for an
/// empty list or a bad path or option in any operation (nothing sent); `TOO_LARGE` when the
/// whole multi is over the server's request limit (nothing sent).
///
/// # On connection loss
/// Unknown outcome: all or nothing applied; a `check` op in the same multi makes a retry safe.
pub async fn multi(session: &Session, ops: &[Op]) -> Result<Vec<OpResult>> {
    if ops.is_empty() {
        return Err(Error::invalid("multi needs at least one operation"));
    }
    for (i, op) in ops.iter().enumerate() {
        let checked = match op {
            Op::Create { path, options, .. } => check_options(path, options),
            Op::SetData { path, version, .. } | Op::Delete { path, version } => check_path(path, false).and_then(|_| check_version(*version)),
            Op::Check { path, version } => check_path(path, false).and_then(|_| check_version(Some(*version))),
        };
        checked.map_err(|e| Error::invalid(format!("multi op {i}: {e}")))?;
    }
    check_size("multi", OP_OVERHEAD_BYTES + ops.iter().map(|op| op_bytes(session, op)).sum::<usize>())?;
    let client = session.client().await?;
    let rt = session.request_timeout(&client);
    let create_opts: Vec<Option<zk::CreateOptions<'_>>> = ops
        .iter()
        .map(|op| match op {
            Op::Create { options, .. } => Some(create_options(session, options)),
            _ => None,
        })
        .collect();
    let mut writer = client.new_multi_writer();
    for (i, op) in ops.iter().enumerate() {
        let added = match (op, &create_opts[i]) {
            (Op::Create { path, data, .. }, Some(o)) => writer.add_create(path, data, o),
            (Op::SetData { path, data, version }, _) => writer.add_set_data(path, data, *version),
            (Op::Delete { path, version }, _) => writer.add_delete(path, *version),
            (Op::Check { path, version }, _) => writer.add_check_version(path, *version),
            (Op::Create { .. }, None) => Err(zk::Error::BadArguments(&"create without options")),
        };
        added.map_err(|e| Error::invalid(format!("multi op {i}: {}", Error::from(e))))?;
    }
    let work = async {
        match tokio::time::timeout(rt, writer.commit()).await {
            Err(_) => Err(Error::timeout(format!("multi: no answer from ZooKeeper within {} ms", rt.as_millis()))),
            Ok(Ok(results)) => Ok(results),
            Ok(Err(zk::MultiWriteError::OperationFailed { index, source })) => Err(op_failed(index, source)),
            Ok(Err(zk::MultiWriteError::RequestFailed { source })) => Err(Error::from(source)),
        }
    };
    let results = session.unless_closed(true, work).await.map_err(Error::for_write)?;
    Ok(results
        .into_iter()
        .map(|r| match r {
            zk::MultiWriteResult::Check => OpResult::Check,
            zk::MultiWriteResult::Delete => OpResult::Delete,
            zk::MultiWriteResult::Create { path, stat } => OpResult::Create { path, stat },
            zk::MultiWriteResult::SetData { stat } => OpResult::SetData(stat),
            // The enum is non-exhaustive; we only ever add the four ops above.
            _ => OpResult::Check,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked_before_anything_is_sent() {
        for ok in ["/", "/a", "/a/b", "/a b/ü", "/zookeeper"] {
            assert!(check_path(ok, false).is_ok(), "{ok}");
        }
        for bad in ["", "a", "a/b", "//", "/a/", "/a//b", "/a/./b", "/..", "/a\0b", "/a\u{1}"] {
            let e = check_path(bad, false).expect_err(bad);
            assert_eq!(e.code(), "INVALID_ARGUMENT", "{bad}");
        }
        assert!(check_path("/queue/", true).is_ok());
        assert!(check_path("/queue/job-", true).is_ok());
        assert!(check_path("/", true).is_ok());
        assert!(check_path("/q//", true).is_err());
    }

    #[test]
    fn create_options_are_checked() {
        let o = |mode, ttl: Option<u64>| CreateOptions { mode, ttl: ttl.map(Duration::from_millis), acl: None };
        assert!(check_options("/a", &o(Mode::Persistent, Some(1000))).is_ok());
        assert_eq!(check_options("/a", &o(Mode::Ephemeral, Some(1000))).unwrap_err().code(), "INVALID_ARGUMENT");
        assert_eq!(check_options("/a", &o(Mode::Persistent, Some(0))).unwrap_err().code(), "INVALID_ARGUMENT");
        assert_eq!(check_options("/a", &o(Mode::Persistent, Some(TTL_MAX_MS + 1))).unwrap_err().code(), "INVALID_ARGUMENT");
        let empty = CreateOptions { mode: Mode::Persistent, ttl: None, acl: Some(vec![]) };
        assert_eq!(check_options("/a", &empty).unwrap_err().code(), "INVALID_ARGUMENT");
        assert_eq!(check_version(Some(-2)).unwrap_err().code(), "INVALID_ARGUMENT");
    }
}
