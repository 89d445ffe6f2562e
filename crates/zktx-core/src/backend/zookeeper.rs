//! The lock queue on ZooKeeper: a directory of protected ephemeral-sequential znodes.
//!
//! One [`ZkQueue`] is one contender's view of one lock directory while it waits. Joining (the
//! protected create, with recovery by id after a lost answer) and leaving stay in
//! [`crate::recipe::internals`], which owns the session and the node's lifetime.

use std::time::Duration;

pub(crate) mod records;

use futures_util::future::BoxFuture;
use zookeeper_client as zk;

use super::{retry_transient, Queue, Watch, Watched};
use crate::error::{Error, Result};
use crate::recipe::driver::{Contender, LockDriver};
use crate::session::deadline;

/// The result of a read sent along with a queue listing, if one was asked for.
pub(crate) type Read = Option<Result<(Vec<u8>, zk::Stat)>>;

/// One lock directory on one ZooKeeper session.
pub(crate) struct ZkQueue<'a> {
    pub client: &'a zk::Client,
    /// The session's request timeout: the deadline of every call.
    pub rt: Duration,
    pub dir: &'a str,
    /// The waiter's own node (its name): its deletion wakes the waiter too.
    pub own: &'a str,
    /// How long a request lost with the connection is retried (the session timeout: past it,
    /// the session is gone and the error says so).
    pub retry_for: Duration,
    /// A znode to read with every listing (the value a transaction reads under its lock).
    pub read: Option<&'a str>,
    /// Turns a listing into the queue the driver decides on ([`LockDriver::contenders`]).
    pub driver: &'a dyn LockDriver,
}

/// Sends `getChildren(dir)` and, if asked, `getData(read)` back to back — now, not when polled —
/// and waits for both: requests on one session are answered in order, so this is one round trip
/// (and one with whatever was sent just before).
pub(crate) fn list_and_read<'a>(client: &'a zk::Client, dir: &str, read: Option<&str>) -> impl std::future::Future<Output = (Result<Vec<String>, zk::Error>, Read)> + 'a {
    let list = client.list_children(dir);
    let get = read.map(|p| client.get_data(p));
    async move {
        let get = async {
            match get {
                Some(g) => Some(g.await.map_err(Error::from)),
                None => None,
            }
        };
        tokio::join!(list, get)
    }
}

impl Queue for ZkQueue<'_> {
    type Read = Read;

    fn watch_gone<'a>(&'a self, ahead: &'a Contender) -> BoxFuture<'a, Result<Option<Watch<Read>>>> {
        // Sequence numbers are never reused in a directory: the name alone is the contender.
        Box::pin(async move {
            // Both watches in one round trip: the node ahead, and our own (deleted by someone
            // else, a waiter must learn it now, not when the one ahead leaves).
            let ahead_path = format!("{}/{}", self.dir, ahead.name);
            let own_path = format!("{}/{}", self.dir, self.own);
            let ((ahead_stat, ahead_watcher), (own_stat, own_watcher)) = retry_transient(self.retry_for, || async {
                let (ahead, own) = tokio::join!(
                    deadline(self.rt, "watch lock predecessor", self.client.check_and_watch_stat(&ahead_path)),
                    deadline(self.rt, "watch own lock node", self.client.check_and_watch_stat(&own_path)),
                );
                Ok((ahead?, own?))
            })
            .await?;
            if ahead_stat.is_none() || own_stat.is_none() {
                return Ok(None); // look again now: the one ahead left, or we did
            }
            // A ZooKeeper watch says that something changed, not what: the loop lists again.
            Ok(Some(Box::pin(async move {
                tokio::select! {
                    _ = ahead_watcher.changed() => {},
                    _ = own_watcher.changed() => {},
                }
                None
            }) as Watch<Read>))
        })
    }

    fn watch_queue(&self) -> BoxFuture<'_, Result<Watched<Read>>> {
        Box::pin(async move {
            let (children, watcher) = retry_transient(self.retry_for, || deadline(self.rt, "watch lock queue", self.client.list_and_watch_children(self.dir))).await?;
            let watch: Watch<Read> = Box::pin(async move {
                watcher.changed().await;
                None
            });
            Ok((self.driver.contenders(&children), watch))
        })
    }

    fn relist(&self) -> BoxFuture<'_, Result<(Vec<Contender>, Read)>> {
        Box::pin(async move {
            // One round trip: the queue, and the value the caller will read once it holds.
            let (listed, got) = tokio::time::timeout(self.rt, list_and_read(self.client, self.dir, self.read))
                .await
                .map_err(|_| Error::timeout(format!("list lock queue: no answer from ZooKeeper within {} ms", self.rt.as_millis())))?;
            Ok((self.driver.contenders(&listed.map_err(Error::from)?), got))
        })
    }
}
