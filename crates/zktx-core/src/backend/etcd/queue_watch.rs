//! One etcd watch per session and lock queue, shared by the session's waiters on that queue and
//! kept open between their waits.
//!
//! A waiter needs every delete under `<path>/` after the listing it decides on. A watch opened
//! for each wait costs a new HTTP/2 stream and a round trip, and etcd 3.4 serves a new watch as
//! "unsynced" (from a loop that runs every 100 ms, `syncWatchersLoop`) whenever a write commits
//! between the server reading its current revision and registering the watch: even a watch
//! "from now" (`start_revision` 0 becomes that revision + 1 in `v3rpc/watch.go`). Under
//! contention that caught about one wait in a hundred, and each of those handoffs took up to
//! 100 ms. A watch kept open is synced once and stays so; a handoff then costs the release's
//! delete and one event.
//!
//! # Guarantees
//! A receiver taken with [`QueueWatches::get`], once [`QueueWatch::ready`] said `Open`,
//! sees every delete under the prefix committed after any read sent after that (the waiter's
//! listing): the watch was registered before the read was served, and etcd delivers a
//! registered watch's events in revision order, none left out, or ends it; then the receiver
//! sees the channel closed and the waiter lists again. A receiver that falls behind sees
//! `Lagged` and lists again too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use etcd_client as etcd;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// Deletes under the queue's prefix, as one watch response delivered them: revision and key.
pub(super) type Deleted = Arc<[(i64, Vec<u8>)]>;

/// How long a queue watch nobody waits on stays open for the session's next wait on that queue.
const LINGER: Duration = Duration::from_secs(5);

/// Queue watches kept open past their waits, at most (more are opened while waiters need them,
/// and close with their last waiter). Few: each is a gRPC stream of its own on the client's
/// connection, and a server or proxy that limits streams per connection (etcd's
/// `--max-concurrent-streams`, nginx's 128) would starve the client's next requests with them.
const MAX_LINGERING: usize = 16;

/// Where a queue watch stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// The create is on its way.
    Opening,
    /// etcd registered the watch.
    Open,
    /// etcd refused it (a permission): no events will come.
    Refused,
    /// The stream could not be opened, or it ended: open another.
    Failed,
}

/// A prefix watch of a lock queue's deletes, shared by a session's waiters on that queue.
pub(super) struct QueueWatch {
    prefix: String,
    deletes: broadcast::Sender<Deleted>,
    state: watch::Sender<State>,
    stop: CancellationToken,
    last_used: Mutex<Instant>,
    registry: Weak<QueueWatches>,
}

impl QueueWatch {
    /// Waits until etcd answered the watch's create (the caller bounds the wait).
    pub(super) async fn ready(&self) -> State {
        let mut state = self.state.subscribe();
        let ready = match state.wait_for(|s| *s != State::Opening).await {
            Ok(s) => *s,
            Err(_) => State::Failed,
        };
        ready
    }

    /// The deletes delivered from now on.
    fn subscribe(&self) -> broadcast::Receiver<Deleted> {
        if let Ok(mut t) = self.last_used.lock() {
            *t = Instant::now();
        }
        self.deletes.subscribe()
    }

    /// Resolves once the watch ended (retired, closed with the session, or its stream ended):
    /// no more deletes will come.
    pub(super) async fn ended(&self) {
        self.stop.cancelled().await;
    }

    /// A waiter stopped following the watch (its receiver dropped): past [`MAX_LINGERING`]
    /// watches, the idle ones over the cap close now rather than at their idle check (up to
    /// 2 × [`LINGER`] later), so watches opened past the cap close with their last waiter.
    pub(super) fn waited(&self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.trim();
        }
    }

    /// Takes the watch out of service (its waiter heard nothing for a re-list period: its member
    /// may have stopped answering); the session's next wait on the queue opens another.
    pub(super) fn retire(self: &Arc<Self>) {
        self.stop.cancel();
        if let Some(registry) = self.registry.upgrade() {
            registry.forget(self);
        }
    }
}

/// A session's queue watches, by prefix.
#[derive(Default)]
pub(super) struct QueueWatches(Mutex<HashMap<String, Arc<QueueWatch>>>);

impl QueueWatches {
    /// The watch of the queue under `prefix`, opened in the background on `client` if there is
    /// none, and a receiver of its deletes. `rt` bounds the open; `closing` (the session's) ends
    /// it.
    ///
    /// The receiver is taken here, under the registry's lock and before etcd confirmed the
    /// watch, so a watch a waiter is about to use always has a receiver: the cap below never
    /// closes it as idle (waiters opening watches at once on more than [`MAX_LINGERING`] paths
    /// closed each other's, retried in step and failed with `CONNECTIONLOSS`). Deletes delivered
    /// before the waiter's listing are in the listing: it skips them.
    pub(super) fn get(self: &Arc<Self>, client: &etcd::Client, prefix: &str, rt: Duration, closing: &CancellationToken) -> (Arc<QueueWatch>, broadcast::Receiver<Deleted>) {
        let Ok(mut map) = self.0.lock() else {
            let w = self.open(client, prefix, rt, closing);
            let deletes = w.subscribe();
            return (w, deletes);
        };
        if let Some(w) = map.get(prefix) {
            if !w.stop.is_cancelled() && *w.state.borrow() != State::Failed {
                return (w.clone(), w.subscribe());
            }
        }
        if map.len() >= MAX_LINGERING {
            // Close the idle ones; those with waiters (or a waiter's open on its way) stay.
            map.retain(|_, w| {
                let idle = w.deletes.receiver_count() == 0;
                if idle {
                    w.stop.cancel();
                }
                !idle
            });
        }
        let w = self.open(client, prefix, rt, closing);
        let deletes = w.subscribe();
        map.insert(prefix.to_string(), w.clone());
        (w, deletes)
    }

    /// Closes idle watches (no receiver, not being opened for a waiter: it has one) until at
    /// most [`MAX_LINGERING`] are kept.
    fn trim(&self) {
        let Ok(mut map) = self.0.lock() else { return };
        let mut excess = map.len().saturating_sub(MAX_LINGERING);
        if excess == 0 {
            return;
        }
        map.retain(|_, w| {
            if excess > 0 && w.deletes.receiver_count() == 0 {
                w.stop.cancel();
                excess -= 1;
                return false;
            }
            true
        });
    }

    /// Ends every queue watch (the session closes).
    pub(super) fn close_all(&self) {
        if let Ok(mut map) = self.0.lock() {
            for (_, w) in map.drain() {
                w.stop.cancel();
            }
        }
    }

    fn forget(&self, w: &Arc<QueueWatch>) {
        if let Ok(mut map) = self.0.lock() {
            if map.get(&w.prefix).is_some_and(|mine| Arc::ptr_eq(mine, w)) {
                map.remove(&w.prefix);
            }
        }
    }

    fn open(self: &Arc<Self>, client: &etcd::Client, prefix: &str, rt: Duration, closing: &CancellationToken) -> Arc<QueueWatch> {
        let w = Arc::new(QueueWatch {
            prefix: prefix.to_string(),
            deletes: broadcast::channel(64).0,
            state: watch::channel(State::Opening).0,
            stop: closing.child_token(),
            last_used: Mutex::new(Instant::now()),
            registry: Arc::downgrade(self),
        });
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(run(client.clone(), w.clone(), rt).in_current_span());
            },
            Err(_) => {
                w.state.send_replace(State::Failed);
            },
        }
        w
    }
}

/// Opens the watch, then hands each response's deletes to the subscribers until the watch is
/// retired, the session closes, the stream ends, or nobody used it for [`LINGER`].
async fn run(mut client: etcd::Client, w: Arc<QueueWatch>, rt: Duration) {
    let options = etcd::WatchOptions::new().with_prefix().with_filters([etcd::WatchFilterType::NoPut]);
    let opened = tokio::time::timeout(rt, async {
        let mut stream = client.watch(w.prefix.clone(), Some(options)).await?;
        loop {
            match stream.message().await? {
                Some(resp) if resp.created() => return Ok::<_, etcd::Error>((stream, !resp.canceled())),
                Some(_) => {},
                None => return Err(etcd::Error::WatchError("the watch stream ended before etcd confirmed the watch".into())),
            }
        }
    });
    let mut stream = tokio::select! {
        _ = w.stop.cancelled() => None,
        opened = opened => match opened {
            Ok(Ok((stream, true))) => Some(stream),
            Ok(Ok((_, false))) => {
                tracing::debug!(prefix = %w.prefix, "etcd refused the watch of a lock queue");
                w.state.send_replace(State::Refused);
                None
            },
            Ok(Err(e)) => {
                tracing::debug!(prefix = %w.prefix, error = %e, "could not open the watch of a lock queue");
                None
            },
            Err(_) => None,
        },
    };
    if let Some(stream) = stream.as_mut() {
        w.state.send_replace(State::Open);
        let mut idle_check = tokio::time::interval_at(crate::session::instant_after_or_far(LINGER), LINGER);
        loop {
            tokio::select! {
                _ = w.stop.cancelled() => break,
                msg = stream.message() => match msg {
                    Ok(Some(resp)) if !resp.canceled() => {
                        let deletes: Vec<(i64, Vec<u8>)> = resp
                            .events()
                            .iter()
                            .filter(|e| e.event_type() == etcd::EventType::Delete)
                            .filter_map(|e| e.kv())
                            .map(|kv| (kv.mod_revision(), kv.key().to_vec()))
                            .collect();
                        if !deletes.is_empty() {
                            let _ = w.deletes.send(deletes.into());
                        }
                    },
                    // Ended, broken, or cancelled by the server (a member gone): the waiters
                    // list again and the next wait opens another watch.
                    _ => break,
                },
                _ = idle_check.tick() => {
                    let unused = w.last_used.lock().map(|t| t.elapsed() >= LINGER).unwrap_or(true);
                    if w.deletes.receiver_count() == 0 && unused {
                        break;
                    }
                },
            }
        }
    }
    if *w.state.borrow() != State::Refused {
        w.state.send_replace(State::Failed);
    }
    w.stop.cancel(); // the subscribers' `ended`
    if let Some(registry) = w.registry.upgrade() {
        registry.forget(&w);
    }
    // Dropping the stream cancels the watch on the server; dropping `w` (with the waiters'
    // clones) closes the channel: the waiters list again.
}
