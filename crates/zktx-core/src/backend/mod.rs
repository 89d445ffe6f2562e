//! The seam between the recipes and a coordination service.
//!
//! Every lock recipe is one loop ([`crate::recipe::internals`]): join the queue, list it, let
//! the driver ([`crate::recipe::driver`]) decide, wait until the contender it names leaves (or
//! the queue changes), list again. The loop is written once, over [`Queue`]; each service says
//! how a queue is listed and watched:
//!
//! - [`zookeeper`]: a lock directory of protected ephemeral-sequential znodes
//!   (`<dir>/_c_<uuid>-<kind>-<seq>`), ordered by sequence, watched with `exists` / `getChildren`
//!   watches; the contender's session is the ZooKeeper session.
//! - [`etcd`]: keys under `<path>/` attached to the client's lease (etcd's own lock recipe, the
//!   one `etcdctl lock` and Go's `concurrency.Mutex` use), ordered by create revision, watched
//!   with etcd watches from the revision that was read; the session is the lease.
//!
//! What a third backend implements: a session with loss events (connected, suspended,
//! expired), an ephemeral entry the server orders (join / leave), [`Queue`] (list, watch one
//! contender leave, watch the queue), a token that grows from one holder to the next, and a
//! conditional write for fencing. The driver, the waiting loop, timeouts, cancellation and the
//! lock-kind rules come from the recipes and are the same on every backend.

pub mod etcd;
pub(crate) mod zookeeper;

use futures_util::future::BoxFuture;

use crate::error::Result;
use crate::recipe::driver::Contender;

/// Runs `attempt` until it succeeds, fails for a reason retrying cannot fix, or `limit` passed.
///
/// A waiter's requests (list the queue, set a watch) fail with connection loss when the
/// connection drops under them (ZooKeeper fails requests in flight; an etcd member dies); the
/// session, and the waiter's place in the queue, may well live on. Retrying keeps that place
/// instead of giving it up; what ends the session (`SESSIONEXPIRED`, a closed client) is not
/// transient and ends the wait at once. Every call retried this way is a read or an idempotent
/// write.
pub(crate) async fn retry_transient<T, F, Fut>(limit: std::time::Duration, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    // Saturating: `limit` comes from a caller's timeout (at most 2^31 ms from JS).
    let until = crate::session::instant_after_or_far(limit);
    let mut pause = std::time::Duration::from_millis(50);
    loop {
        match attempt().await {
            Err(e) if e.is_transient() && crate::session::instant_after_or_far(pause) < until => {
                tracing::debug!(error = %e, "request failed on a lost connection; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(1));
            },
            done => return done,
        }
    }
}

/// A watch that resolves once what it watches changed (or can no longer be watched), with the
/// queue as it now stands when the backend could follow it from the watch's own events (etcd:
/// the listing the watch was set on, less the deletes it delivered since), or `None`: the loop
/// lists again. A spurious wake-up costs one listing, never a wrong decision.
pub(crate) type Watch<R> = BoxFuture<'static, Option<Listed<R>>>;

/// A listing of the queue and a watch set on it ([`Queue::watch_queue`]).
pub(crate) type Watched<R> = (Vec<Contender>, Watch<R>);

/// A listing of the queue, with what the backend read alongside ([`Queue::Read`]).
pub(crate) type Listed<R> = (Vec<Contender>, R);

/// One lock queue as a backend offers it to the shared recipe loop.
///
/// # Guarantees every implementation gives
/// - A listing is sorted by the server's order (ZooKeeper sequence, etcd create revision) and
///   holds contenders only (foreign entries are either left out or counted as exclusive).
/// - A watch set by [`Queue::watch_gone`] or [`Queue::watch_queue`] misses no change after the
///   state it was set on: the loop never sleeps through a release. It also wakes when the
///   contender's own entry goes (its session ended, or someone deleted it), so a waiter that
///   lost its place learns it instead of waiting on.
/// - A listing a watch resolves with is exact for every contender created before the waiter:
///   the driver's decision on it is the one a fresh listing would give (contenders that joined
///   since are behind the waiter, and no driver looks behind it).
/// - Every call has a deadline (the backend's request timeout).
pub(crate) trait Queue: Sync {
    /// What a fresh listing brings along (ZooKeeper: the value read under the lock, in the same
    /// round trip; etcd: nothing).
    type Read: Send + 'static;

    /// Starts watching contender `ahead` (as listed) leave the queue; `None` when it has already
    /// left. An entry of the same name created since (a holder that released and joined again)
    /// is another contender: `ahead` has left.
    fn watch_gone<'a>(&'a self, ahead: &'a Contender) -> BoxFuture<'a, Result<Option<Watch<Self::Read>>>>;

    /// Lists the queue and watches it for any change that matters to the waiter (semaphores:
    /// any holder ahead may leave first).
    fn watch_queue(&self) -> BoxFuture<'_, Result<Watched<Self::Read>>>;

    /// Lists the queue again after a watch fired, with what the backend reads alongside.
    fn relist(&self) -> BoxFuture<'_, Result<(Vec<Contender>, Self::Read)>>;
}

/// A held lock on either backend: one handle for what every lock offers (path, token, release,
/// is-held, loss), so that a binding has one lock class. A write fenced on locks needs the
/// backend's own type: [`AnyLock::zookeeper`] / [`AnyLock::etcd`] pick it, refusing the other.
#[derive(Clone, Debug)]
pub enum AnyLock {
    /// A ZooKeeper lock (a lock node).
    ZooKeeper(std::sync::Arc<crate::recipe::Lock>),
    /// An etcd lock (a key on the session's lease).
    Etcd(std::sync::Arc<etcd::EtcdLock>),
}

impl AnyLock {
    /// The lock's path.
    pub fn path(&self) -> &str {
        match self {
            AnyLock::ZooKeeper(l) => l.path(),
            AnyLock::Etcd(l) => l.path(),
        }
    }

    /// This holder's node (ZooKeeper) or key (etcd).
    pub fn node_path(&self) -> &str {
        match self {
            AnyLock::ZooKeeper(l) => l.node_path(),
            AnyLock::Etcd(l) => l.key(),
        }
    }

    /// The fencing token (czxid, or create revision).
    pub fn token(&self) -> i64 {
        match self {
            AnyLock::ZooKeeper(l) => l.token(),
            AnyLock::Etcd(l) => l.token(),
        }
    }

    /// Contenders ahead when it joined the queue, if known.
    pub fn queue_position(&self) -> Option<u32> {
        match self {
            AnyLock::ZooKeeper(l) => l.queue_position(),
            AnyLock::Etcd(l) => l.queue_position(),
        }
    }

    /// Whether it provably holds right now, without asking the server: an etcd lock whose lease
    /// was renewed within `lostAfter` × TTL ([`etcd::EtcdLock::provably_held`]); a ZooKeeper
    /// lock whose session's server answered a request made within `lostAfter` × the session
    /// timeout ([`crate::recipe::mutex::Lock::provably_held`]).
    pub fn provably_held(&self) -> bool {
        match self {
            AnyLock::ZooKeeper(l) => l.provably_held(),
            AnyLock::Etcd(l) => l.provably_held(),
        }
    }

    /// Whether it was released.
    pub fn is_released(&self) -> bool {
        match self {
            AnyLock::ZooKeeper(l) => l.is_released(),
            AnyLock::Etcd(l) => l.is_released(),
        }
    }

    /// Releases it (idempotent).
    ///
    /// # Errors
    /// The backend's release errors.
    pub async fn release(&self) -> Result<()> {
        match self {
            AnyLock::ZooKeeper(l) => l.release().await,
            AnyLock::Etcd(l) => l.release().await,
        }
    }

    /// Asks the server whether it is still held.
    ///
    /// # Errors
    /// Connection errors.
    pub async fn is_held(&self) -> Result<bool> {
        match self {
            AnyLock::ZooKeeper(l) => l.is_held().await,
            AnyLock::Etcd(l) => l.is_held().await,
        }
    }

    /// Resolves once it is no longer held, saying why; holds no reference to the lock.
    pub fn lost(&self) -> BoxFuture<'static, crate::recipe::LockLoss> {
        match self {
            AnyLock::ZooKeeper(l) => Box::pin(l.lost()),
            AnyLock::Etcd(l) => Box::pin(l.lost()),
        }
    }

    /// Whether it is an etcd lock.
    pub fn is_etcd(&self) -> bool {
        matches!(self, AnyLock::Etcd(_))
    }

    /// The ZooKeeper lock, for a ZooKeeper write fenced on it.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for an etcd lock.
    pub fn zookeeper(&self) -> Result<&std::sync::Arc<crate::recipe::Lock>> {
        match self {
            AnyLock::ZooKeeper(l) => Ok(l),
            AnyLock::Etcd(_) => Err(crate::error::Error::invalid(OTHER_BACKEND)),
        }
    }

    /// The etcd lock, for an etcd write fenced on it.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a ZooKeeper lock.
    pub fn etcd(&self) -> Result<&std::sync::Arc<etcd::EtcdLock>> {
        match self {
            AnyLock::Etcd(l) => Ok(l),
            AnyLock::ZooKeeper(_) => Err(crate::error::Error::invalid(OTHER_BACKEND)),
        }
    }
}

const OTHER_BACKEND: &str = "a lock on the other backend cannot fence this write: fence a ZooKeeper write on ZooKeeper locks and an etcd write on etcd locks";

/// A key locked for `executeTransaction`'s updater, on either backend.
#[derive(Debug)]
pub enum AnyKeyTransaction {
    /// On ZooKeeper.
    ZooKeeper(crate::txn::KeyTransaction),
    /// On etcd.
    Etcd(etcd::EtcdKeyTransaction),
}

impl AnyKeyTransaction {
    /// Whether it is on etcd.
    pub fn is_etcd(&self) -> bool {
        matches!(self, AnyKeyTransaction::Etcd(_))
    }

    /// The value read under the lock, as an updater sees it.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` when the key holds data that is not JSON.
    pub fn decoded(&self) -> Result<Option<&crate::kv::JsonValue>> {
        match self {
            AnyKeyTransaction::ZooKeeper(t) => t.decoded(),
            AnyKeyTransaction::Etcd(t) => t.decoded(),
        }
    }

    /// The fencing token of the key's lock.
    pub fn token(&self) -> i64 {
        match self {
            AnyKeyTransaction::ZooKeeper(t) => t.lock().token(),
            AnyKeyTransaction::Etcd(t) => t.lock().token(),
        }
    }

    /// Writes `value` and releases the lock together.
    ///
    /// # Errors
    /// The backend's commit errors.
    pub async fn commit(&self, value: crate::kv::JsonValue) -> Result<crate::txn::Committed> {
        match self {
            AnyKeyTransaction::ZooKeeper(t) => t.commit(value).await,
            AnyKeyTransaction::Etcd(t) => t.commit(value).await,
        }
    }

    /// Releases the lock without writing.
    ///
    /// # Errors
    /// The release's errors.
    pub async fn abort(&self) -> Result<()> {
        match self {
            AnyKeyTransaction::ZooKeeper(t) => t.abort().await,
            AnyKeyTransaction::Etcd(t) => t.abort().await,
        }
    }
}

/// The key-value store of either backend: what fenced writes and multi-key transactions need.
#[derive(Clone, Debug)]
pub enum AnyStore {
    /// A ZooKeeper session with zktx's layout.
    ZooKeeper(std::sync::Arc<crate::store::Store>),
    /// An etcd session (zktx's default layout).
    Etcd(etcd::EtcdSession),
}

/// A multi-key transaction attempt of either backend (made by [`AnyStore::transaction`]).
#[derive(Debug)]
pub enum AnyTransaction {
    /// On ZooKeeper.
    ZooKeeper(crate::transaction::Transaction),
    /// On etcd.
    Etcd(etcd::EtcdTransaction),
}

fn mismatch() -> crate::error::Error {
    crate::error::Error::invalid("a transaction of one backend used with the other's store")
}

impl AnyStore {
    /// Whether it is on etcd.
    pub fn is_etcd(&self) -> bool {
        matches!(self, AnyStore::Etcd(_))
    }

    /// Writes `key`, fenced on `locks` (this backend's). Returns the new version.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a lock of the other backend; the backend's write errors.
    pub async fn set(&self, key: &str, value: &crate::kv::JsonValue, locks: &[AnyLock]) -> Result<i64> {
        match self {
            AnyStore::ZooKeeper(store) => {
                let locks = locks.iter().map(AnyLock::zookeeper).collect::<Result<Vec<_>>>()?;
                let refs: Vec<&crate::recipe::Lock> = locks.iter().map(|l| l.as_ref()).collect();
                store.set(key, value, &refs).await.map(i64::from)
            },
            AnyStore::Etcd(session) => {
                let locks = locks.iter().map(AnyLock::etcd).collect::<Result<Vec<_>>>()?;
                let refs: Vec<&etcd::EtcdLock> = locks.iter().map(|l| l.as_ref()).collect();
                session.set_value(&crate::kv::Layout::default(), key, value, &refs).await
            },
        }
    }

    /// A new transaction attempt on this store.
    pub fn transaction(&self) -> AnyTransaction {
        match self {
            AnyStore::ZooKeeper(_) => AnyTransaction::ZooKeeper(crate::transaction::Transaction::new()),
            AnyStore::Etcd(_) => AnyTransaction::Etcd(etcd::EtcdTransaction::new()),
        }
    }
}

impl AnyTransaction {
    /// Reads `keys` (see the backends' `get_many`).
    ///
    /// # Errors
    /// As the backends'.
    pub async fn get_many(&mut self, store: &AnyStore, keys: &[&str]) -> Result<Vec<Option<crate::kv::JsonValue>>> {
        match (self, store) {
            (AnyTransaction::ZooKeeper(t), AnyStore::ZooKeeper(s)) => t.get_many(s, keys).await,
            (AnyTransaction::Etcd(t), AnyStore::Etcd(s)) => t.get_many(s, &crate::kv::Layout::default(), keys).await,
            _ => Err(mismatch()),
        }
    }

    /// Buffers a write.
    ///
    /// # Errors
    /// As the backends'.
    pub fn write(&mut self, store: &AnyStore, key: &str, write: crate::transaction::Write) -> Result<()> {
        match (self, store) {
            (AnyTransaction::ZooKeeper(t), AnyStore::ZooKeeper(s)) => t.write(s, key, write),
            (AnyTransaction::Etcd(t), AnyStore::Etcd(_)) => t.write(&crate::kv::Layout::default(), key, write),
            _ => Err(mismatch()),
        }
    }

    /// Commits, fenced on `locks` (this backend's).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a lock of the other backend; as the backends' commits.
    pub async fn commit(&mut self, store: &AnyStore, isolation: crate::transaction::Isolation, locks: &[AnyLock], id: Option<&str>, result: Option<&str>) -> Result<crate::transaction::CommitReport> {
        use crate::transaction::CommitOptions;
        match (self, store) {
            (AnyTransaction::ZooKeeper(t), AnyStore::ZooKeeper(s)) => {
                let locks = locks.iter().map(AnyLock::zookeeper).collect::<Result<Vec<_>>>()?;
                let refs: Vec<&crate::recipe::Lock> = locks.iter().map(|l| l.as_ref()).collect();
                t.commit(s, &CommitOptions { isolation, locks: &refs, id, result }).await
            },
            (AnyTransaction::Etcd(t), AnyStore::Etcd(s)) => {
                let locks = locks.iter().map(AnyLock::etcd).collect::<Result<Vec<_>>>()?;
                let refs: Vec<&etcd::EtcdLock> = locks.iter().map(|l| l.as_ref()).collect();
                t.commit(s, &crate::kv::Layout::default(), &CommitOptions { isolation, locks: &refs, id, result }).await
            },
            _ => Err(mismatch()),
        }
    }

    /// Whether the attempt read or wrote nothing yet.
    pub fn is_empty(&self) -> bool {
        match self {
            AnyTransaction::ZooKeeper(t) => t.is_empty(),
            AnyTransaction::Etcd(t) => t.is_empty(),
        }
    }

    /// The versions read so far (`None`: read as absent).
    pub fn read_versions(&self) -> Vec<(String, Option<i64>)> {
        match self {
            AnyTransaction::ZooKeeper(t) => t.read_versions().map(|(k, v)| (k.to_string(), v.map(i64::from))).collect(),
            AnyTransaction::Etcd(t) => t.read_versions().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }
}
