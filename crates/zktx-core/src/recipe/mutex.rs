//! The exclusive lock (Curator's `InterProcessMutex`): what users call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::watch;
use zookeeper_client as zk;

use super::driver::StandardDriver;
use super::internals::{self, AcquireOptions, Acquired};
use crate::error::{Error, Result};
use crate::session::{deadline, upgrade, Session, SuspendedAt};

/// A held lock: one ephemeral-sequential node that heads its directory's queue.
///
/// Not reentrant: acquiring the same path again from the same client queues behind the held
/// lock like any other contender.
///
/// # Dropping
/// A `Lock` dropped without [`Lock::release`] (in JS: garbage-collected) is released in the
/// background: its node is deleted (retried while the session lives), so it never blocks the
/// queue, and the same client never waits on its own forgotten lock. Call `release()` to know
/// when the lock is free; dropping is a safety net, not a way to release on time.
#[derive(Debug)]
pub struct Lock {
    state: Arc<LockState>,
    /// The runtime the lock was acquired on: `Drop` may run where none is current (a JS
    /// finalizer), and the background release must be spawned somewhere.
    runtime: Option<tokio::runtime::Handle>,
    /// The span it was acquired in: `Drop` may run outside it (a JS finalizer), and its log
    /// records and background release must still reach the acquiring client's logger.
    span: tracing::Span,
}

/// Everything about a held lock; shared with loss watchers, which must not keep the [`Lock`]
/// itself (and so its release-on-drop) from happening.
#[derive(Debug)]
struct LockState {
    /// Weak: a held lock must not keep a closed session alive.
    client: Weak<zk::Client>,
    session_id: zk::SessionId,
    dir: String,
    node_path: String,
    token: i64,
    request_timeout: Duration,
    /// The holder gave the lock up (release() called, or consumed by a commit): no more fenced
    /// writes, `lost()` resolves `Released`.
    released: AtomicBool,
    released_signal: watch::Sender<bool>,
    /// The lock node is known to be gone (deleted, or its session ended).
    node_gone: Arc<watch::Sender<bool>>,
    /// Disconnected this long, the lock counts as lost.
    lost_after: Duration,
    /// [`Lock::lost`] declared the lock lost: fenced writes are refused.
    lost: AtomicBool,
    suspended_at: SuspendedAt,
    /// The session's close: watchers stop (and drop their client handles) at once.
    closing: tokio_util::sync::CancellationToken,
    registration: std::sync::Mutex<Option<Registration>>,
    /// Contenders ahead when it joined the queue (for observability; `None`: not seen).
    queue_position: Option<u32>,
}

/// The lock paths one client holds, each with the session it was acquired on.
pub(crate) type HeldPaths = Arc<std::sync::Mutex<std::collections::HashMap<String, zk::SessionId>>>;

/// A path's entry in [`HeldPaths`], removed when the lock is released, lost or dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    held: std::sync::Weak<std::sync::Mutex<std::collections::HashMap<String, zk::SessionId>>>,
    path: String,
    session: zk::SessionId,
}

impl Registration {
    /// Claims `path` for this client's current `session`.
    ///
    /// # Errors
    /// `ALREADY_HELD` when the client holds or is acquiring it on this session. An entry left
    /// by an earlier, ended session (a lost lock never released) does not count.
    pub(crate) fn claim(held: &HeldPaths, path: &str, session: zk::SessionId) -> Result<Registration> {
        let mut map = held.lock().map_err(|_| Error::invalid("held-locks registry poisoned"))?;
        if map.get(path) == Some(&session) {
            return Err(Error::AlreadyHeld(format!(
                "this client already holds or is acquiring the lock {path}; zktx locks are not reentrant"
            )));
        }
        map.insert(path.to_string(), session);
        Ok(Registration { held: Arc::downgrade(held), path: path.to_string(), session })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(held) = self.held.upgrade() {
            if let Ok(mut map) = held.lock() {
                // Only our own entry: a newer session's claim of the path stays.
                if map.get(&self.path) == Some(&self.session) {
                    map.remove(&self.path);
                }
            }
        }
    }
}

/// The shortest window of [`Lock::provably_held`]: a `lostAfter` × timeout of some ms would say
/// "not held" on a healthy but busy client (the answer read, the JS thread late to deliver).
const PROVEN_FLOOR: Duration = Duration::from_millis(300);

/// Why a lock stopped being held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockLoss {
    /// Released by its holder: not a loss.
    Released,
    /// Its node was deleted by someone else.
    NodeDeleted,
    /// Its session expired or was closed.
    SessionEnded,
    /// The connection was down this long ([`SessionOptions::lost_after`] × the session
    /// timeout): the lock counts as lost although its session may still live. Its node is
    /// deleted as soon as the session can act again (retried while the session lives), so the
    /// lock never stays blocked by a holder that was told it lost it.
    ///
    /// [`SessionOptions::lost_after`]: crate::SessionOptions::lost_after
    DisconnectedTooLong(Duration),
}

impl Lock {
    pub(crate) fn from_acquired(a: &Acquired, dir: &str, request_timeout: Duration) -> Lock {
        let state = LockState {
            client: Arc::downgrade(&a.client),
            session_id: a.client.session_id(),
            dir: dir.to_string(),
            node_path: a.node_path.clone(),
            token: a.token,
            request_timeout,
            released: AtomicBool::new(false),
            released_signal: watch::channel(false).0,
            node_gone: Arc::new(watch::channel(false).0),
            lost_after: a.lost_after,
            lost: AtomicBool::new(false),
            suspended_at: a.suspended_at.clone(),
            closing: a.closing.clone(),
            registration: std::sync::Mutex::new(None),
            queue_position: a.queue_position,
        };
        Lock { state: Arc::new(state), runtime: tokio::runtime::Handle::try_current().ok(), span: tracing::Span::current() }
    }

    pub(crate) fn with_registration(self, registration: Option<Registration>) -> Lock {
        if let Ok(mut r) = self.state.registration.lock() {
            *r = registration;
        }
        self
    }

    /// Resolves when the lock is no longer held, saying why.
    ///
    /// # Guarantees
    /// Watches the lock node (one-shot watches, which the client restores after a reconnect):
    /// resolves `NodeDeleted` when someone else deletes it, `SessionEnded` when the session
    /// expires or is closed, `Released` after [`Lock::release`] (or when the `Lock` is dropped).
    ///
    /// # On connection loss
    /// While disconnected the lock is still considered held, for at most
    /// [`SessionOptions::lost_after`] × the negotiated session timeout after `SUSPENDED` (the
    /// whole timeout by default, as Curator does); then this resolves `DisconnectedTooLong`,
    /// even if the client reconnects to the same session later: the server may have handed the
    /// lock to someone else meanwhile. Fenced writes on the lock are refused from then on, and
    /// its node is deleted once the connection is back (retried while the session lives; the
    /// server removes it with the session otherwise), so a session that survived the silence
    /// does not keep the lock from everyone, this client included.
    ///
    /// [`SessionOptions::lost_after`]: crate::SessionOptions::lost_after
    ///
    /// # Cancellation
    /// The future owns what it needs: it does not keep the `Lock` alive (dropping the `Lock`
    /// still releases it). Dropping the future stops watching; it holds the client only while a
    /// request is in flight, so it never keeps a closed session alive.
    pub fn lost(&self) -> impl std::future::Future<Output = LockLoss> + Send + 'static {
        let state = self.state.clone();
        async move { state.lost().await }
    }

    /// The lock's directory, as passed to [`lock`].
    pub fn path(&self) -> &str {
        &self.state.dir
    }

    /// The full path of this holder's lock node.
    pub fn node_path(&self) -> &str {
        &self.state.node_path
    }

    /// The fencing token: the zxid that created this holder's lock node. It increases strictly
    /// from one holder of this path to the next, so a downstream store that remembers the highest
    /// token it has seen can refuse writes from a stale holder.
    pub fn token(&self) -> i64 {
        self.state.token
    }

    /// How many contenders (of any kind) were ahead of this one when it joined the queue: 0 when
    /// the lock was free. Known from the listing sent with the create, so it costs nothing.
    pub fn queue_position(&self) -> Option<u32> {
        self.state.queue_position
    }

    /// Whether it provably holds right now, without asking the server: not given up nor lost,
    /// its session the client's current one, and a request of it that the server answered made
    /// within `lostAfter` × the session timeout (at least [`PROVEN_FLOOR`], at most 0.9 × the
    /// timeout; `SocketSlot::last_heard`). A server answers only a live session and cannot
    /// expire it within the timeout of receiving a request: then the session, and the lock's
    /// ephemeral node, still live. The acquisition is decided on the answer to a request made
    /// just before, so a healthy client passes at once; a process paused (SIGSTOP, a long GC)
    /// around the decision past the bound does not, also when the answer waited in its socket
    /// buffer through the pause, and its session may have expired meanwhile, a successor holding
    /// the lock (as an etcd lock's: [`crate::backend::etcd::EtcdLock::provably_held`]).
    pub fn provably_held(&self) -> bool {
        if self.state.is_given_up() || self.state.lost.load(Ordering::Acquire) {
            return false;
        }
        let Some(client) = self.state.client.upgrade() else { return false };
        // (connected or not: an answer to a request made within the bound proves the session,
        // not the link)
        if client.session_id() != self.state.session_id {
            return false;
        }
        // at most 0.9 × the timeout: a margin for the two clocks' rates (and the server's tick);
        // the shortest timeout any server granted: a reconnect negotiates it again, and the
        // client's own figure is the first connect's (a server restarted with a lower maximum
        // expired the session after 2 s while this allowed 9: the waiter got the lock beside
        // its successor, 5 of 9 rounds)
        let socket = client.socket();
        let timeout = client.session_timeout().min(socket.min_session_timeout().unwrap_or(Duration::MAX));
        let bound = self.state.lost_after.max(PROVEN_FLOOR).min(timeout.mul_f64(0.9));
        socket.last_heard().is_some_and(|heard| heard.elapsed() < bound)
    }

    /// Whether the lock was released and its node is known to be gone.
    ///
    /// After a [`Lock::release`] whose delete failed, this stays `false` until the background
    /// removal succeeded (or the session ended).
    pub fn is_released(&self) -> bool {
        self.state.is_given_up() && *self.state.node_gone.borrow()
    }

    /// The client of the session that owns the lock node.
    ///
    /// # Errors
    /// `LOCK_LOST` once released or lost, or when the session's client is gone;
    /// `CLIENT_CLOSED` once the session started closing.
    pub(crate) fn client(&self) -> Result<Arc<zk::Client>> {
        self.state.client()
    }

    /// Adds "this lock is still held" as the first operation of a multi: the lock node exists
    /// (we never set its data, so its version is 0). Only this session can have created a node
    /// with this protected name, so existence means ownership.
    pub(crate) fn fence(&self, writer: &mut zk::MultiWriter<'_>) -> Result<()> {
        writer.add_check_version(&self.state.node_path, 0).map_err(Error::from)
    }

    /// Marks the lock released because its node is already gone (a commit deleted it).
    pub(crate) fn mark_released(&self) {
        self.state.mark_released()
    }

    /// Releases the lock: deletes its node.
    ///
    /// # Guarantees
    /// Once it returns `Ok`, the node is gone. If the delete fails, the node is still deleted
    /// eventually: a background task retries while the session lives (the server removes the
    /// node with the session anyway), so a failed release never leaves a ghost that blocks the
    /// queue. From the first call on, fenced writes on this lock are refused and
    /// [`Lock::lost`] resolves `Released`.
    ///
    /// Idempotent: a call after the session ended succeeds; a second call waits (up to the
    /// request timeout) for the removal the first one started and succeeds once it is done.
    ///
    /// # Errors
    /// `TIMEOUT` / `CONNECTIONLOSS` with outcome `Unknown` when the delete's answer did not
    /// arrive (it may have applied); other ZooKeeper errors (e.g. `THROTTLED`) as they come. In
    /// every case the node is removed in the background.
    ///
    /// # On connection loss
    /// Retries the delete until the request deadline, then hands it to the background removal.
    ///
    /// # Cancellation
    /// [`Session::close`] ends a release in flight at once (it succeeds): the handle it held is
    /// dropped so the close sends CloseSession within its bound, and the server deletes the node
    /// with the session.
    pub async fn release(&self) -> Result<()> {
        self.state.release().await
    }

    /// Checks with the server that the lock node still exists (one round trip).
    ///
    /// # Errors
    /// Connection errors; `false` (not an error) once released, lost or expired, or when the
    /// session's close starts (a check in flight then gives its client handle up at once).
    pub async fn is_held(&self) -> Result<bool> {
        self.state.is_held().await
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if self.state.is_given_up() {
            return;
        }
        // Forgotten without release(): release in the background rather than leave a node that
        // blocks everyone (this client included) for the session's life.
        let Some(runtime) = &self.runtime else { return };
        let _entered = runtime.enter();
        let _span = self.span.enter();
        tracing::debug!(lock = %self.state.dir, "lock dropped without release(): releasing it in the background");
        self.state.give_up();
        let state = self.state.clone();
        if let Some(client) = state.client.upgrade().filter(|c| c.session_id() == state.session_id) {
            drop(client);
            state.remove_in_background();
        } else {
            state.node_gone.send_replace(true);
        }
    }
}

impl LockState {
    fn unregister(&self) {
        if let Ok(mut r) = self.registration.lock() {
            r.take();
        }
    }

    async fn lost(&self) -> LockLoss {
        let loss = self.watch_until_lost().await;
        if loss != LockLoss::Released {
            self.unregister(); // a lost lock no longer blocks this client from acquiring anew
        }
        loss
    }

    async fn watch_until_lost(&self) -> LockLoss {
        let Some(states) = self.client.upgrade().map(|c| c.state_watcher()) else { return LockLoss::SessionEnded };
        let loss = tokio::select! {
            loss = self.watch_node_until_lost() => loss,
            // A lock given up during the silence (release() whose delete cannot get through
            // yet) is not lost: its holder let it go, and its node goes in the background.
            silent = disconnected_too_long(states, &self.suspended_at, self.lost_after) => match silent {
                _ if self.is_given_up() => LockLoss::Released,
                Some(for_) => LockLoss::DisconnectedTooLong(for_),
                None => LockLoss::SessionEnded,
            },
            // Closing deletes the node with the session; a watch request pending on a dead
            // connection must not keep the client (and so the session) alive meanwhile.
            _ = self.closing.cancelled() => if self.is_given_up() { LockLoss::Released } else { LockLoss::SessionEnded },
        };
        if matches!(loss, LockLoss::SessionEnded | LockLoss::DisconnectedTooLong(_)) {
            self.lost.store(true, Ordering::Release);
        }
        if let LockLoss::DisconnectedTooLong(for_) = loss {
            // Declared lost while the session may live on: if it reconnects, its node would
            // block every contender (this client's too) for the session's life. Delete it as
            // soon as the connection is back; the delete waits for the reconnect, and is
            // retried until the node or the session is gone (ZOOKEEPER.md: cleanup that gives up
            // leaves ghosts).
            tracing::warn!(lock = %self.dir, disconnected_ms = for_.as_millis() as u64, "lock declared lost (lostAfter): its node is deleted when the connection returns");
            self.remove_in_background();
        }
        loss
    }

    async fn watch_node_until_lost(&self) -> LockLoss {
        let mut released = self.released_signal.subscribe();
        loop {
            if *released.borrow_and_update() {
                return LockLoss::Released;
            }
            let Some(client) = self.client.upgrade() else { return LockLoss::SessionEnded };
            if client.session_id() != self.session_id || matches!(client.state(), zk::SessionState::Expired | zk::SessionState::Closed | zk::SessionState::AuthFailed) {
                return LockLoss::SessionEnded;
            }
            let armed = tokio::select! {
                r = client.check_and_watch_stat(&self.node_path) => r,
                _ = released.changed() => return LockLoss::Released,
            };
            drop(client);
            let watcher = match armed {
                Ok((Some(_), watcher)) => watcher,
                Ok((None, _)) => return self.deletion_cause(),
                Err(zk::Error::SessionExpired | zk::Error::ClientClosed | zk::Error::SessionMoved) => return LockLoss::SessionEnded,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                },
            };
            let changed = watcher.changed();
            tokio::pin!(changed);
            tokio::select! {
                event = &mut changed => match event.event_type {
                    zk::EventType::NodeDeleted => return self.deletion_cause(),
                    zk::EventType::Session => return LockLoss::SessionEnded,
                    _ => continue, // data changed (someone wrote to our node): watch again
                },
                _ = released.changed() => {
                    // Our own delete fires this watch: wait for that instead of dropping the
                    // watcher, which would cost a RemoveWatches request per release.
                    let _ = tokio::time::timeout(self.request_timeout, changed).await;
                    return LockLoss::Released;
                },
            }
        }
    }

    /// Whether the holder gave the lock up (release called, or consumed by a commit).
    fn is_given_up(&self) -> bool {
        self.released.load(Ordering::Acquire)
    }

    fn client(&self) -> Result<Arc<zk::Client>> {
        if self.is_given_up() {
            return Err(Error::LockLost(format!("lock {} was released", self.dir)));
        }
        if self.lost.load(Ordering::Acquire) {
            return Err(Error::LockLost(format!(
                "lock {} was declared lost: its session was cut off from ZooKeeper for {} ms or more (lostAfter), or ended",
                self.dir,
                self.lost_after.as_millis()
            )));
        }
        if self.closing.is_cancelled() {
            return Err(Error::ClientClosed); // no new request once close() started
        }
        let client = upgrade(&self.client).map_err(|_| Error::LockLost(format!("lock {}: its client was closed", self.dir)))?;
        if client.session_id() != self.session_id {
            return Err(Error::LockLost(format!("lock {}: its session ended", self.dir)));
        }
        Ok(client)
    }


    /// Why the node went away: our release, our session closing (the server deletes its
    /// ephemerals), or someone else.
    fn deletion_cause(&self) -> LockLoss {
        if self.is_given_up() {
            return LockLoss::Released;
        }
        match self.client.upgrade() {
            Some(c) if c.session_id() == self.session_id && !matches!(c.state(), zk::SessionState::Expired | zk::SessionState::Closed) => LockLoss::NodeDeleted,
            _ => LockLoss::SessionEnded,
        }
    }

    fn mark_released(&self) {
        self.released.store(true, Ordering::Release);
        self.released_signal.send_replace(true);
        self.node_gone.send_replace(true);
        self.unregister();
    }

    /// Gives the lock up locally: no more fenced writes, `lost()` resolves `Released`, the path
    /// no longer counts as held by this client. Returns whether it was already given up.
    fn give_up(&self) -> bool {
        if self.released.swap(true, Ordering::AcqRel) {
            return true;
        }
        self.released_signal.send_replace(true);
        self.unregister();
        false
    }

    async fn release(&self) -> Result<()> {
        if self.give_up() {
            return self.wait_node_gone().await;
        }
        let client = match self.client.upgrade() {
            Some(c) if c.session_id() == self.session_id => c,
            // The session that owned the (ephemeral) node is over: so is the node.
            _ => {
                self.node_gone.send_replace(true);
                return Ok(());
            },
        };
        // Like every other call, the delete watches the session's close: closing ends the
        // session and the server deletes the node with it, while a delete retried on a frozen
        // link would hold the client (so no CloseSession is sent) until its request deadline.
        let deleted = tokio::select! {
            biased;
            _ = self.closing.cancelled() => None,
            r = internals::delete_node(&client, &self.node_path, self.request_timeout) => Some(r),
        };
        let Some(deleted) = deleted else {
            drop(client);
            self.node_gone.send_replace(true);
            return Ok(());
        };
        match deleted {
            None => {
                self.node_gone.send_replace(true);
                Ok(())
            },
            Some(err) => {
                drop(client);
                self.remove_in_background();
                Err(err.for_write())
            },
        }
    }

    fn remove_in_background(&self) {
        let gone = self.node_gone.clone();
        internals::remove_node_eventually_then(self.client.clone(), self.node_path.clone(), move || {
            gone.send_replace(true);
        });
    }

    /// A later `release()`: waits for the first one's background removal.
    async fn wait_node_gone(&self) -> Result<()> {
        let mut gone = self.node_gone.subscribe();
        let waited = tokio::time::timeout(self.request_timeout, gone.wait_for(|g| *g)).await.map(|r| r.is_ok());
        match waited {
            Ok(_) => Ok(()),
            Err(_) => Err(Error::Timeout {
                message: format!("lock {}: its node is not deleted yet; removal goes on in the background", self.dir),
                outcome: crate::error::Outcome::Unknown,
            }),
        }
    }

    async fn is_held(&self) -> Result<bool> {
        let Ok(client) = self.client() else { return Ok(false) };
        // Watches close like every call: a check waiting on a frozen server must not keep the
        // client (and so CloseSession) until its deadline.
        let check = deadline(self.request_timeout, "check lock node", client.check_stat(&self.node_path));
        match crate::session::unless_cancelled(&self.closing, false, check).await {
            Ok(stat) => Ok(stat.is_some()),
            // Closing ends the session and its node with it, as when close() came first.
            Err(Error::SessionExpired | Error::ClientClosed) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Resolves once the client has been disconnected for `limit` since `SUSPENDED`, with how long
/// it has been (`Some`), or when its session ended (`None`); pends while connected.
async fn disconnected_too_long(mut states: zk::StateWatcher, suspended_at: &SuspendedAt, limit: Duration) -> Option<Duration> {
    loop {
        match states.peek_state() {
            zk::SessionState::Disconnected => {
                // The session's own record of the drop; our watcher may see it first.
                let since = suspended_at.lock().ok().and_then(|a| *a).unwrap_or_else(tokio::time::Instant::now);
                tokio::select! {
                    _ = tokio::time::sleep_until(since + limit) => return Some(since.elapsed()),
                    _ = states.changed() => {},
                }
            },
            zk::SessionState::Expired | zk::SessionState::Closed | zk::SessionState::AuthFailed => return None,
            _ => {
                states.changed().await;
            },
        }
    }
}

/// Acquires the exclusive lock at `path`.
///
/// # Guarantees
/// At most one holder per path at a time among live sessions, also against the read and write
/// sides of a read-write lock on the path; waiters are served in arrival order and each waits
/// only on its predecessor (no herd effect). Uncontended: one round trip.
///
/// # Errors
/// `INVALID_ARGUMENT` for a bad path, `TIMEOUT` when `opts.wait` passes, `ABORTED` when
/// `opts.cancel` fires, `SESSIONEXPIRED`, `CONNECTIONLOSS`, `LOCK_KIND_MISMATCH` when `path` is
/// in use as a semaphore (a lease node heads its queue; see [`super::driver`]).
///
/// # Cancellation
/// Timeout, abort or error never leave a lock node behind.
///
/// # Example
/// ```no_run
/// # async fn demo(session: &zktx_core::Session) -> zktx_core::Result<()> {
/// let lock = zktx_core::recipe::lock(session, "/locks/orders", &Default::default()).await?;
/// println!("holding with token {}", lock.token());
/// lock.release().await?;
/// # Ok(()) }
/// ```
pub async fn lock(session: &Session, path: &str, opts: &AcquireOptions) -> Result<Lock> {
    acquire_with(session, path, &StandardDriver { max_leases: 1 }, opts).await
}

/// Acquires `path` with any driver; the facade of every lock type.
pub(crate) async fn acquire_with(session: &Session, path: &str, driver: &dyn super::driver::LockDriver, opts: &AcquireOptions) -> Result<Lock> {
    internals::validate_lock_path(path)?;
    let acquired = internals::acquire(session, path, driver, opts, None).await?;
    Ok(Lock::from_acquired(&acquired, path, session.request_timeout(&acquired.client)))
}
