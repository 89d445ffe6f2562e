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
