//! The lock loop shared by every lock type: create a protected ephemeral-sequential node, list
//! the queue, watch the node the driver names, repeat until the driver says "acquired".
//!
//! Round trips: the `create` and the `getChildren` (and an optional `getData` the caller wants
//! to read under the lock) are sent back to back on one session, which the server answers in
//! order, so an uncontended acquisition costs exactly one round trip.

use tracing::Instrument as _;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use zookeeper_client as zk;

use super::driver::{sorted_contenders, Contender, Decision, LockDriver};
use crate::backend::zookeeper::{list_and_read, ZkQueue};
use crate::backend::Queue;
use crate::error::{Error, Result};
use crate::session::{deadline, Session, SuspendedAt};


/// How long to wait for a lock and how to give up.
#[derive(Clone, Debug, Default)]
pub struct AcquireOptions {
    /// Give up after this long; `None` waits forever, `Some(ZERO)` is a try-lock.
    pub wait: Option<Duration>,
    /// Cancelling this token makes the acquisition fail with `ABORTED`.
    pub cancel: Option<CancellationToken>,
}

/// A lock node that the driver declared the holder.
#[derive(Debug)]
pub(crate) struct Acquired {
    pub client: Arc<zk::Client>,
    pub node_path: String,
    /// czxid of the lock node: strictly increasing across holders of one lock directory.
    pub token: i64,
    /// The result of the read asked for, sent with the last queue listing (with the create when
    /// the lock was free). Sent after the listing that showed everyone ahead gone, so it sees
    /// every write their holders committed.
    pub piggyback: Read,
    /// Contenders ahead of this one when it joined the queue (the listing sent with its create),
    /// of any kind; `None` if that listing did not show its node.
    pub queue_position: Option<u32>,
    /// How long after `SUSPENDED` the lock counts as lost ([`SessionOptions::lost_after`]).
    ///
    /// [`SessionOptions::lost_after`]: crate::SessionOptions::lost_after
    pub lost_after: Duration,
    /// When the session's connection dropped.
    pub suspended_at: SuspendedAt,
    /// The session's [`Session::closing`] token.
    pub closing: CancellationToken,
}

/// The longest lock path accepted, in UTF-8 bytes. ZooKeeper itself refuses requests over
/// `jute.maxbuffer` (1 MiB) by dropping the connection; a lock path is repeated in every request
/// of the recipe (node names add ~50 bytes), so it is kept far below that.
pub const MAX_LOCK_PATH_BYTES: usize = 2048;

/// Checks that `path` is an absolute znode path usable as a lock directory.
///
/// # Errors
/// `INVALID_ARGUMENT` naming what is wrong (nothing is sent to the server), including a path
/// longer than [`MAX_LOCK_PATH_BYTES`].
pub fn validate_lock_path(path: &str) -> Result<()> {
    validate_path_shape(path)?;
    if path == "/zookeeper" || path.starts_with("/zookeeper/") {
        return Err(Error::invalid(format!("lock path {path:?} is inside ZooKeeper's reserved /zookeeper tree")));
    }
    Ok(())
}

/// The shape every backend's lock path has: absolute, `/`-separated, no empty, `.` or `..`
/// segment, no NUL, at most [`MAX_LOCK_PATH_BYTES`].
pub(crate) fn validate_path_shape(path: &str) -> Result<()> {
    if path.len() > MAX_LOCK_PATH_BYTES {
        return Err(Error::invalid(format!("lock path is {} bytes long; the limit is {MAX_LOCK_PATH_BYTES} (UTF-8 bytes)", path.len())));
    }
    let bad = |why: &str| Err(Error::invalid(format!("lock path {path:?} {why}")));
    if !path.starts_with('/') || path.len() < 2 {
        return bad("must be an absolute path such as \"/locks/orders\"");
    }
    if path.ends_with('/') {
        return bad("must not end with '/'");
    }
    if path.contains('\0') {
        return bad("must not contain NUL");
    }
    if path[1..].split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
        return bad("has an empty, '.' or '..' segment");
    }
    Ok(())
}

/// Acquires a lock on `dir` with `driver`, optionally reading `read` in the same round trip.
///
/// # Errors
/// `TIMEOUT` when `opts.wait` passes, `ABORTED` when cancelled, `LOCK_LOST` when the node
/// vanished while waiting, `SESSIONEXPIRED`, and connection errors from the session.
///
/// # Cancellation
/// On every error path the contender's node is deleted (or the session that owns it is gone),
/// so no ghost node stays behind to block others. [`Session::close`] makes a pending acquisition
/// fail with `CLIENT_CLOSED` at once and drop its client handle, so the close goes through (and
/// the server deletes the node with the session).
pub(crate) async fn acquire(
    session: &Session,
    dir: &str,
    driver: &dyn LockDriver,
    opts: &AcquireOptions,
    read: Option<&str>,
) -> Result<Acquired> {
    acquire_with_data(session, dir, driver, opts, read, &[]).await
}

/// [`acquire`] with a node that carries `data` (lock nodes carry none; an election candidate's
/// carries its participant id, as Curator's `LeaderLatch` does).
pub(crate) async fn acquire_with_data(
    session: &Session,
    dir: &str,
    driver: &dyn LockDriver,
    opts: &AcquireOptions,
    read: Option<&str>,
    data: &[u8],
) -> Result<Acquired> {
    let closing = session.closing();
    tokio::select! {
        biased;
        _ = closing.cancelled() => Err(Error::ClientClosed),
        acquired = acquire_in_session(session, dir, driver, opts, read, data) => acquired,
    }
}

async fn acquire_in_session(
    session: &Session,
    dir: &str,
    driver: &dyn LockDriver,
    opts: &AcquireOptions,
    read: Option<&str>,
    data: &[u8],
) -> Result<Acquired> {
    let client = session.client().await?;
    let rt = session.request_timeout(&client);
    let give_up_at = opts.wait.and_then(crate::session::instant_after);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let prefix = format!("{dir}/_c_{id}-{}-", driver.kind());

    let (name, token, children, piggyback) = match create_node(&client, rt, session.acls(), dir, &prefix, &id, read, data).await {
        Ok(created) => created,
        Err(err) => {
            // A create whose answer was lost may have applied even though we give up: remove
            // whatever carries our protected id once the server answers again. Not after NOAUTH:
            // this identity may not create there (nor list to look), so nothing of ours exists.
            if err.code() != "NOAUTH" {
                remove_protected_later(Arc::downgrade(&client), dir.to_string(), id);
            }
            return Err(err);
        },
    };
    let node_path = format!("{dir}/{name}");
    let queue_position = sorted_contenders(&children).iter().position(|c| c.name == name).map(|p| p as u32);
    let queue = ZkQueue { client: &client, rt, dir, own: &name, retry_for: client.session_timeout(), read, driver };
    match wait_in_queue(&queue, dir, &name, driver.contenders(&children), driver, opts, give_up_at).await {
        Ok(waited) => {
            let lost_after = client.session_timeout().mul_f64(session.options().lost_after);
            let piggyback = waited.unwrap_or(piggyback);
            Ok(Acquired { client, node_path, token, piggyback, queue_position, lost_after, suspended_at: session.suspended_at(), closing: session.closing() })
        },
        Err(err) => {
            if delete_node(&client, &node_path, rt).await.is_some() {
                // Not known to be gone: keep trying while the session lives, or it blocks everyone.
                remove_node_eventually(Arc::downgrade(&client), node_path);
            }
            Err(err)
        },
    }
}

type Read = crate::backend::zookeeper::Read;

type Created = (String, i64, Vec<String>, Read);

/// Creates the contender's node, recovering it by its protected id after a connection loss.
#[allow(clippy::too_many_arguments)]
async fn create_node(client: &zk::Client, rt: Duration, acls: zk::Acls<'_>, dir: &str, prefix: &str, id: &str, read: Option<&str>, data: &[u8]) -> Result<Created> {
    let node = zk::CreateMode::EphemeralSequential.with_acls(acls);
    // Lock directories are containers: the server removes them once their last lock node is
    // gone, so short-lived keys leave no garbage behind.
    let container = zk::CreateMode::Container.with_acls(acls);
    let mut attempts = 0;
    loop {
        attempts += 1;
        // Sent in this order, answered in this order: one round trip.
        let create = client.create(prefix, data, &node);
        let rest = list_and_read(client, dir, read);
        let (created, (listed, read_result)) = match tokio::time::timeout(rt, async { tokio::join!(create, rest) }).await {
            Ok(r) => r,
            Err(_) => (Err(zk::Error::Timeout), (Err(zk::Error::Timeout), None)),
        };
        match created {
            Ok((stat, seq)) => {
                let name = format!("{}{}", &prefix[dir.len() + 1..], seq);
                let children = match listed {
                    Ok(children) => children,
                    Err(_) => deadline(rt, "list lock queue", client.list_children(dir)).await?,
                };
                return Ok((name, stat.czxid, children, read_result));
            },
            Err(zk::Error::NoNode) if attempts <= 5 => {
                // Missing directory (or a container the server just reaped): create it, retry.
                match deadline(rt, "create lock directory", client.mkdir(dir, &container)).await {
                    Ok(()) | Err(Error::ZooKeeper { code: "NODEEXISTS", .. }) => continue,
                    Err(e) => return Err(e),
                }
            },
            Err(err) => {
                let err = Error::from(err);
                if !err.is_transient() || attempts > 5 {
                    return Err(err);
                }
                // The create may have been applied: find our node by its protected id instead of
                // creating a second one (a "ghost" that would block everyone behind it).
                tracing::debug!(%dir, error = %err, "create of lock node outcome unknown; recovering by protected id");
                if let Some(found) = find_protected(client, rt, dir, id).await? {
                    return Ok(found);
                }
            },
        }
    }
}

async fn find_protected(client: &zk::Client, rt: Duration, dir: &str, id: &str) -> Result<Option<Created>> {
    let children = match deadline(rt, "list lock queue", client.list_children(dir)).await {
        Ok(c) => c,
        Err(Error::ZooKeeper { code: "NONODE", .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(mine) = sorted_contenders(&children).into_iter().find(|c| c.is_protected_by(id)) else { return Ok(None) };
    let stat = deadline(rt, "stat lock node", client.check_stat(&format!("{dir}/{}", mine.name))).await?;
    Ok(stat.map(|s| (mine.name, s.czxid, children, None)))
}

/// Waits in `queue` until `driver` says contender `name` holds: the recipe loop every backend
/// shares ([`crate::backend`]). `Ok(None)`: it held at once (on `contenders`, the listing made
/// when it joined); `Ok(Some(read))`: it held after waiting, with what the last listing brought.
///
/// # Errors
/// `TIMEOUT` at `give_up_at`, `ABORTED` when `opts.cancel` fires, `LOCK_LOST` when its own entry
/// left the queue, `LOCK_KIND_MISMATCH`, and the backend's errors. The caller removes the entry.
pub(crate) async fn wait_in_queue<Q: Queue>(
    queue: &Q,
    dir: &str,
    name: &str,
    mut contenders: Vec<Contender>,
    driver: &dyn LockDriver,
    opts: &AcquireOptions,
    give_up_at: Option<Instant>,
) -> Result<Option<Q::Read>> {
    let mut waited = None;
    loop {
        if opts.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            return Err(Error::Aborted(format!("acquiring {dir} was aborted")));
        }
        let decision = driver.decide(&contenders, name);
        match decision {
            Decision::Acquired => return Ok(waited),
            Decision::NodeGone => return Err(Error::LockLost(format!("lock node {dir}/{name} vanished while waiting"))),
            Decision::KindMismatch(theirs) => return Err(kind_mismatch(dir, driver.kind(), &theirs)),
            Decision::WaitFor(_) | Decision::WaitForChildren => {},
        }
        if give_up_at.is_some_and(|t| Instant::now() >= t) {
            return Err(Error::timeout(format!("lock {dir} not acquired within {} ms", opts.wait.unwrap_or_default().as_millis())));
        }
        let watch = match decision {
            Decision::WaitFor(predecessor) => match contenders.iter().find(|c| c.name == predecessor) {
                Some(ahead) => queue.watch_gone(ahead).await?,
                None => None, // not in the listing the driver decided on: look again
            },
            _ => {
                // The fresh listing replaces the stale one: decide on it before waiting.
                let (fresh, watch) = queue.watch_queue().await?;
                let ready = matches!(driver.decide(&fresh, name), Decision::Acquired | Decision::NodeGone | Decision::KindMismatch(_));
                contenders = fresh;
                if ready {
                    continue;
                }
                Some(watch)
            },
        };
        let mut woke = None;
        if let Some(watch) = watch {
            let far = crate::session::instant_after_or_far(Duration::from_secs(86_400 * 365));
            let cancelled = async {
                match &opts.cancel {
                    Some(c) => c.cancelled().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                w = watch => woke = w,
                // Give up without another request: it could wait on a dead connection.
                _ = tokio::time::sleep_until(give_up_at.unwrap_or(far)) => {
                    return Err(Error::timeout(format!("lock {dir} not acquired within {} ms", opts.wait.unwrap_or_default().as_millis())));
                },
                _ = cancelled => return Err(Error::Aborted(format!("acquiring {dir} was aborted"))),
            }
        }
        // A watch that followed the queue (etcd) saves the listing; else (ZooKeeper) list again.
        let (fresh, read) = match woke {
            Some(followed) => followed,
            None => queue.relist().await?,
        };
        contenders = fresh;
        waited = Some(read);
    }
}

/// `LOCK_KIND_MISMATCH`: a contender of kind `mine` found a node of kind `theirs` (the other
/// family: lease vs lock) heading the queue at `dir`.
fn kind_mismatch(dir: &str, mine: &str, theirs: &str) -> Error {
    let role = |kind: &str| match kind {
        "lease" => ("a semaphore lease", "a semaphore (semaphore(path, permits) with permits > 1)"),
        "latch" => ("a leader election candidacy", "a leader election (election(path), or Curator's LeaderLatch)"),
        _ => ("a lock", "a lock (exclusive, read-write or multiLock)"),
    };
    let (asked, _) = role(mine);
    let (_, used) = role(theirs);
    Error::LockKindMismatch(format!(
        "{dir} is in use as {used} (a {theirs:?} node heads its queue), so {asked} cannot be taken on it: a semaphore counts leases, a lock excludes holders and an election picks a leader, they cannot share a path; use another path (a 1-permit semaphore is an exclusive lock)"
    ))
}

/// The largest request ZooKeeper accepts by default (`jute.maxbuffer`). A bigger one makes the
/// server drop the connection, so it can never succeed and is never retried.
const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// Whether a request naming `path` can fit in one ZooKeeper request (with room for its framing).
pub(crate) fn path_fits_request(path: &str) -> bool {
    path.len() + 1024 <= MAX_REQUEST_BYTES
}

/// In the background, deletes the node at `path`, retrying until it is gone or its session is.
///
/// For nodes zktx meant to delete but could not confirm (a delete that timed out, was throttled,
/// or lost its answer): left alone they would block a lock queue for the session's life.
///
/// # Guarantees
/// Retries (backoff 50 ms doubling to 2 s) on connection loss, timeouts and throttling while
/// the client lives; stops when the node is gone, the session ended (the server removes its
/// ephemerals) or the client was dropped ([`Session::close`]). Never sends a request that
/// cannot succeed (a path over the request size limit) and gives up on errors that retrying
/// cannot fix.
///
/// # Cancellation
/// Holds the client only while sending a request, never while waiting for it, so it never keeps
/// a closed session alive. Must be called within a tokio runtime (it spawns).
pub(crate) fn remove_node_eventually(client: Weak<zk::Client>, path: String) {
    remove_node_eventually_then(client, path, || {});
}

/// [`remove_node_eventually`], calling `gone` once the node is known to be gone.
pub(crate) fn remove_node_eventually_then(client: Weak<zk::Client>, path: String, gone: impl FnOnce() + Send + 'static) {
    if !path_fits_request(&path) {
        tracing::warn!(bytes = path.len(), "not removing a node whose path exceeds ZooKeeper's request limit");
        return;
    }
    tokio::spawn(async move {
        let mut pause = Duration::from_millis(50);
        loop {
            let (sent, limit) = {
                let Some(c) = client.upgrade() else { return };
                if matches!(c.state(), zk::SessionState::Expired | zk::SessionState::Closed | zk::SessionState::AuthFailed) {
                    return gone(); // ephemeral: the server removed it with the session
                }
                (c.delete(&path, None), c.session_timeout())
            };
            match tokio::time::timeout(limit, sent).await {
                Ok(Ok(())) | Ok(Err(zk::Error::NoNode)) => {
                    tracing::debug!(%path, "removed a lock node left by a failed delete");
                    return gone();
                },
                Ok(Err(zk::Error::SessionExpired | zk::Error::SessionMoved | zk::Error::ClientClosed)) => return gone(),
                Ok(Err(zk::Error::ConnectionLoss | zk::Error::Custom(_) | zk::Error::Timeout | zk::Error::Throttled)) | Err(_) => {},
                Ok(Err(e)) => {
                    tracing::warn!(%path, error = %e, "giving up removing a node: the server refuses the delete");
                    return;
                },
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }.in_current_span());
}

/// In the background, deletes every node of `dir` created under the protected `id`, retrying
/// until it succeeds or the session ends (then the server removes them: they are ephemeral).
///
/// Holds the client only while a request is in flight, so it never keeps a closed session open.
fn remove_protected_later(client: std::sync::Weak<zk::Client>, dir: String, id: String) {
    if !path_fits_request(&dir) {
        return; // never sent, so nothing to remove (and a retry could never fit)
    }
    tokio::spawn(async move {
        let mut pause = Duration::from_millis(50);
        loop {
            let Some(c) = client.upgrade() else { return };
            if matches!(c.state(), zk::SessionState::Expired | zk::SessionState::Closed | zk::SessionState::AuthFailed) {
                return;
            }
            let rt = c.session_timeout();
            let done = match deadline(rt, "list lock queue", c.list_children(&dir)).await {
                Ok(children) => {
                    // Each delete is retried on its own, and given up if it can never succeed.
                    for mine in sorted_contenders(&children).into_iter().filter(|n| n.is_protected_by(&id)) {
                        tracing::debug!(%dir, node = %mine.name, "removing the node of a failed acquisition");
                        remove_node_eventually(client.clone(), format!("{dir}/{}", mine.name));
                    }
                    true
                },
                Err(Error::ZooKeeper { code: "NONODE", .. }) | Err(Error::SessionExpired) | Err(Error::ClientClosed) => true,
                Err(e @ (Error::ConnectionLoss { .. } | Error::Timeout { .. } | Error::ZooKeeper { code: "THROTTLED", .. })) => {
                    tracing::debug!(%dir, error = %e, "listing the lock queue failed; retrying");
                    false
                },
                Err(e) => {
                    tracing::warn!(%dir, error = %e, "giving up removing the node of a failed acquisition");
                    true
                },
            };
            drop(c);
            if done {
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }.in_current_span());
}

/// Deletes a lock node, retrying through connection loss until the deadline.
///
/// # Guarantees
/// Returns once the node is gone, its session is gone (ephemeral: the server deletes it), or
/// the deadline passed (then the session's expiry removes it).
pub(crate) async fn delete_node(client: &zk::Client, path: &str, rt: Duration) -> Option<Error> {
    let until = crate::session::instant_after_or_far(rt);
    loop {
        match deadline(rt, "delete lock node", client.delete(path, None)).await {
            Ok(()) | Err(Error::ZooKeeper { code: "NONODE", .. }) | Err(Error::SessionExpired) | Err(Error::ClientClosed) => return None,
            Err(e) if e.is_transient() && Instant::now() < until => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => return Some(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_over_the_request_limit_is_never_sent() {
        assert!(path_fits_request("/locks/a"));
        assert!(!path_fits_request(&format!("/{}", "a".repeat(MAX_REQUEST_BYTES))));
    }

    #[test]
    fn lock_paths_have_a_length_limit() {
        assert!(validate_lock_path(&format!("/{}", "a".repeat(MAX_LOCK_PATH_BYTES - 1))).is_ok());
        assert_eq!(validate_lock_path(&format!("/{}", "a".repeat(MAX_LOCK_PATH_BYTES))).unwrap_err().code(), "INVALID_ARGUMENT");
    }
}
