//! The exclusive lock (Curator's `InterProcessMutex`): what users call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::watch;
use zookeeper_client as zk;

use super::driver::StandardDriver;
use super::internals::{self, AcquireOptions, Acquired};
use crate::error::{Error, Result};
use crate::session::{deadline, upgrade, Session};

/// A held lock: one ephemeral-sequential node that heads its directory's queue.
///
/// Not reentrant: acquiring the same path again from the same client queues behind the held
/// lock like any other contender.
#[derive(Debug)]
pub struct Lock {
    /// Weak: a held lock must not keep a closed session alive.
    client: Weak<zk::Client>,
    session_id: zk::SessionId,
    dir: String,
    node_path: String,
    token: i64,
    request_timeout: Duration,
    released: AtomicBool,
    released_signal: watch::Sender<bool>,
    registration: std::sync::Mutex<Option<Registration>>,
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

/// Why a lock stopped being held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockLoss {
    /// Released by its holder: not a loss.
    Released,
    /// Its node was deleted by someone else.
    NodeDeleted,
    /// Its session expired or was closed.
    SessionEnded,
}

impl Lock {
    pub(crate) fn from_acquired(a: &Acquired, dir: &str, request_timeout: Duration) -> Lock {
        Lock {
            client: Arc::downgrade(&a.client),
            session_id: a.client.session_id(),
            dir: dir.to_string(),
            node_path: a.node_path.clone(),
            token: a.token,
            request_timeout,
            released: AtomicBool::new(false),
            released_signal: watch::channel(false).0,
            registration: std::sync::Mutex::new(None),
        }
    }

    pub(crate) fn with_registration(self, registration: Option<Registration>) -> Lock {
        if let Ok(mut r) = self.registration.lock() {
            *r = registration;
        }
        self
    }

    fn unregister(&self) {
        if let Ok(mut r) = self.registration.lock() {
            r.take();
        }
    }

    /// Resolves when the lock is no longer held, saying why.
    ///
    /// # Guarantees
    /// Watches the lock node (one-shot watches, which the client restores after a reconnect):
    /// resolves `NodeDeleted` when someone else deletes it, `SessionEnded` when the session
    /// expires or is closed, `Released` after [`Lock::release`]. While disconnected the lock is
    /// still considered held; zookeeper-client declares the session expired at the latest 7/5 of
    /// the session timeout after losing the connection, and this resolves then.
    ///
    /// # Cancellation
    /// Dropping the future stops watching; holds the client only while a request is in flight,
    /// so it never keeps a closed session alive.
    pub async fn lost(&self) -> LockLoss {
        let loss = self.watch_until_lost().await;
        if loss != LockLoss::Released {
            self.unregister(); // a lost lock no longer blocks this client from acquiring anew
        }
        loss
    }

    async fn watch_until_lost(&self) -> LockLoss {
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

    /// The lock's directory, as passed to [`lock`].
    pub fn path(&self) -> &str {
        &self.dir
    }

    /// The full path of this holder's lock node.
    pub fn node_path(&self) -> &str {
        &self.node_path
    }

    /// The fencing token: the zxid that created this holder's lock node. It increases strictly
    /// from one holder of this path to the next, so a downstream store that remembers the highest
    /// token it has seen can refuse writes from a stale holder.
    pub fn token(&self) -> i64 {
        self.token
    }

    /// Whether [`Lock::release`] has been called.
    pub fn is_released(&self) -> bool {
        self.released.load(Ordering::Acquire)
    }

    /// The client of the session that owns the lock node.
    ///
    /// # Errors
    /// `LOCK_LOST` once released or when the session's client is gone.
    pub(crate) fn client(&self) -> Result<Arc<zk::Client>> {
        if self.is_released() {
            return Err(Error::LockLost(format!("lock {} was released", self.dir)));
        }
        let client = upgrade(&self.client).map_err(|_| Error::LockLost(format!("lock {}: its client was closed", self.dir)))?;
        if client.session_id() != self.session_id {
            return Err(Error::LockLost(format!("lock {}: its session ended", self.dir)));
        }
        Ok(client)
    }

    /// Adds "this lock is still held" as the first operation of a multi: the lock node exists
    /// (we never set its data, so its version is 0). Only this session can have created a node
    /// with this protected name, so existence means ownership.
    pub(crate) fn fence(&self, writer: &mut zk::MultiWriter<'_>) -> Result<()> {
        writer.add_check_version(&self.node_path, 0).map_err(Error::from)
    }

    /// Why the node went away: our release, our session closing (the server deletes its
    /// ephemerals), or someone else.
    fn deletion_cause(&self) -> LockLoss {
        if self.is_released() {
            return LockLoss::Released;
        }
        match self.client.upgrade() {
            Some(c) if c.session_id() == self.session_id && !matches!(c.state(), zk::SessionState::Expired | zk::SessionState::Closed) => LockLoss::NodeDeleted,
            _ => LockLoss::SessionEnded,
        }
    }

    pub(crate) fn mark_released(&self) {
        self.released.store(true, Ordering::Release);
        self.released_signal.send_replace(true);
        self.unregister();
    }

    /// Releases the lock.
    ///
    /// # Guarantees
    /// Idempotent: a second call, or a call after the session ended (the server already removed
    /// the node), succeeds without doing anything.
    ///
    /// # On connection loss
    /// Retries the delete until the request deadline; if the connection stays down, the node
    /// goes away with the session.
    pub async fn release(&self) -> Result<()> {
        if self.released.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.released_signal.send_replace(true);
        self.unregister();
        let Some(client) = self.client.upgrade() else { return Ok(()) };
        match internals::delete_node(&client, &self.node_path, self.request_timeout).await {
            None => Ok(()),
            Some(err) => Err(err),
        }
    }

    /// Checks with the server that the lock node still exists (one round trip).
    pub async fn is_held(&self) -> Result<bool> {
        let Ok(client) = self.client() else { return Ok(false) };
        match deadline(self.request_timeout, "check lock node", client.check_stat(&self.node_path)).await {
            Ok(stat) => Ok(stat.is_some()),
            Err(Error::SessionExpired) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Acquires the exclusive lock at `path`.
///
/// # Guarantees
/// At most one holder per path at a time among live sessions; waiters are served in arrival
/// order and each waits only on its predecessor (no herd effect). Uncontended: one round trip.
///
/// # Errors
/// `INVALID_ARGUMENT` for a bad path, `TIMEOUT` when `opts.wait` passes, `ABORTED` when
/// `opts.cancel` fires, `SESSIONEXPIRED`, `CONNECTIONLOSS`.
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
