//! `executeTransaction`: one key, under its lock, written with a fenced `multi`.
//!
//! An uncontended transaction costs two round trips: (1) create the lock node, list the queue
//! and read the value, pipelined; (2) one `multi` that checks the lock node still exists, writes
//! the value at the version read, and deletes the lock node. The write and the release commit
//! together or not at all, so a holder that lost its lock can never write.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use zookeeper_client as zk;

use std::time::Duration;

use crate::error::{Error, Outcome, Result};
use crate::clock::Clock;
use crate::kv::{JsonValue, Layout, Stored, MAX_TRANSACTION_AGE};
use crate::recipe::driver::StandardDriver;
use crate::recipe::internals::{self, AcquireOptions};
use crate::recipe::Lock;
use crate::session::{deadline, unless_cancelled, Session};

/// How zktx creates value nodes, directories, markers and the clock node: persistent, with the
/// session's ACL ([`SessionOptions::acl`](crate::SessionOptions::acl)).
pub(crate) fn persistent(acls: zk::Acls<'_>) -> zk::CreateOptions<'_> {
    zk::CreateMode::Persistent.with_acls(acls)
}

/// What a committed transaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The key written.
    pub key: String,
    /// The value now stored.
    pub value: JsonValue,
    /// The value before, `None` if the key did not exist.
    pub previous: Option<JsonValue>,
    /// The new value's version: on ZooKeeper its znode data version (0 for a new key), on etcd
    /// the key's mod revision.
    pub version: i64,
    /// The fencing token of the lock the write was made under.
    pub token: i64,
    /// The zxid of the commit (ZooKeeper's total order of writes); `None` when the commit's
    /// answer was lost and its outcome was resolved afterwards.
    pub zxid: Option<i64>,
}

/// A key locked for update: the value as read under the lock, waiting for [`commit`] or
/// [`abort`].
///
/// [`commit`]: KeyTransaction::commit
/// [`abort`]: KeyTransaction::abort
#[derive(Debug)]
pub struct KeyTransaction {
    key: String,
    value_path: String,
    values_dir: String,
    /// Written blindly by a commit that creates the key, to learn the commit's zxid.
    clock_path: String,
    /// Holds the client weakly, like every lock: a transaction in progress (a slow updater)
    /// never keeps a closed session alive, so after `close()` its commit cannot apply.
    lock: Lock,
    /// What the key held when read under the lock (never [`Stored::Compacting`]).
    read: Stored,
    current: Option<JsonValue>,
    /// The znode version read (a tombstone's too); `None` when the key has no znode.
    version: Option<i32>,
    request_timeout: std::time::Duration,
    finished: AtomicBool,
    /// When the value was read: a commit later than [`MAX_TRANSACTION_AGE`] is refused.
    read_at: tokio::time::Instant,
    /// The clock `read_at` is on.
    clock: Clock,
    /// The session's `closing` token: `close()` cancels a commit in flight.
    closing: tokio_util::sync::CancellationToken,
    /// The session's ACL for the nodes a commit creates.
    acl: Vec<zk::Acl>,
}

impl KeyTransaction {
    /// Locks `key` and reads its value.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a bad key, lock acquisition errors (`TIMEOUT`, `ABORTED`, ...),
    /// and read errors; on any of them the lock is released.
    pub async fn begin(session: &Session, layout: &Layout, clock: &Clock, key: &str, opts: &AcquireOptions) -> Result<KeyTransaction> {
        let value_path = layout.value_path(key)?;
        let lock_dir = layout.lock_path(key)?;
        let acquired = internals::acquire(session, &lock_dir, &StandardDriver { max_leases: 1 }, opts, Some(&value_path)).await?;
        let rt = session.request_timeout(&acquired.client);
        let lock = Lock::from_acquired(&acquired, &lock_dir, rt);
        let client = acquired.client;
        // The piggybacked read is current: it was sent after the listing that showed every
        // earlier holder gone, and each of them deleted its lock node atomically with its write.
        let read = match acquired.piggyback {
            Some(r) if !r.as_ref().is_err_and(Error::is_transient) => r,
            _ => session.unless_closed(false, deadline(rt, "read value", client.get_data(&value_path))).await,
        };
        let read_at = clock.now();
        let read = match read {
            Ok((data, stat)) => Ok(Stored::from_stat(data, &stat)),
            Err(Error::ZooKeeper { code: "NONODE", .. }) => Ok(Stored::Missing),
            Err(e) => Err(e),
        };
        // A tombstone marked by compaction: keep it, as every transaction read does (see
        // `crate::kv`); the write under the lock is then checked against the kept version.
        let read = match read {
            Ok(r @ Stored::Compacting(_)) => session.unless_closed(false, crate::store::unmark(&client, rt, &value_path, r)).await,
            other => other,
        };
        let read = match read.and_then(|r| r.writable(key).map(|()| r)) {
            Ok(r) => r,
            Err(e) => {
                let _ = lock.release().await;
                return Err(e);
            },
        };
        let (current, version) = (read.value().cloned(), read.znode_version());
        drop(client);
        let values_dir = value_path.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
        Ok(KeyTransaction {
            key: key.to_string(),
            value_path,
            values_dir,
            clock_path: layout.root_child(crate::transaction::CLOCK),
            lock,
            read,
            current,
            version,
            request_timeout: rt,
            finished: AtomicBool::new(false),
            read_at,
            clock: clock.clone(),
            closing: session.closing(),
            acl: session.options().acl.clone(),
        })
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value read under the lock; `None` if the key does not exist (or holds data that
    /// zktx did not write: see [`KeyTransaction::decoded`]).
    pub fn current(&self) -> Option<&JsonValue> {
        self.current.as_ref()
    }

    /// The value read under the lock, as an updater sees it.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` when the key holds data that is not JSON (written by another client):
    /// an updater cannot compute from it; committing a value replaces it.
    pub fn decoded(&self) -> Result<Option<&JsonValue>> {
        self.read.decoded(&self.key)
    }

    /// The lock held for this key.
    pub fn lock(&self) -> &Lock {
        &self.lock
    }

    /// Writes `value` fenced on the lock and releases the lock, in one `multi`.
    ///
    /// # Guarantees
    /// Either the value is written and the lock released together, or nothing is written.
    /// After any outcome the lock is released (or lost).
    ///
    /// # Errors
    /// `LOCK_LOST` if the lock node is gone (nothing written), `SESSIONEXPIRED`, `BADVERSION` /
    /// `NODEEXISTS` if someone wrote the key without taking its lock (nothing written),
    /// `CONNECTIONLOSS`/`TIMEOUT` with outcome unknown, `INVALID_ARGUMENT` after a previous
    /// commit or abort.
    pub async fn commit(&self, value: JsonValue) -> Result<Committed> {
        if self.finished.swap(true, Ordering::AcqRel) {
            return Err(Error::invalid("transaction already committed or aborted"));
        }
        if self.clock.elapsed(self.read_at) > MAX_TRANSACTION_AGE {
            // The key may have been deleted, its tombstone compacted and the key re-created at
            // the version we read since: refuse rather than risk a lost update.
            let _ = self.lock.release().await;
            return Err(Error::Conflict(format!(
                "executeTransaction on {:?} took longer than {} s between its read and its commit: nothing written",
                self.key,
                MAX_TRANSACTION_AGE.as_secs()
            )));
        }
        let result = unless_cancelled(&self.closing, true, self.commit_once(&value)).await;
        let result = match result {
            Err(Error::ZooKeeper { code: "NONODE", .. }) if self.version.is_none() => {
                // The values directory or the clock node does not exist yet: create them and try
                // once more.
                let mut made = Ok(());
                for dir in [&self.values_dir, &self.clock_path] {
                    let client = self.lock.client()?;
                    match deadline(self.request_timeout, "create values directory", client.mkdir(dir, &persistent(zk::Acls::new(&self.acl)))).await {
                        Ok(()) | Err(Error::ZooKeeper { code: "NODEEXISTS", .. }) => {},
                        Err(e) => made = Err(e),
                    }
                }
                match made {
                    Ok(()) => self.commit_once(&value).await,
                    Err(e) => Err(e),
                }
            },
            Err(err) if err.outcome() == Outcome::Unknown && !self.closing.is_cancelled() => self.resolve_unknown(err, &value).await,
            other => other,
        };
        match result {
            Ok((version, zxid)) => {
                self.lock.mark_released();
                Ok(Committed {
                    key: self.key.clone(),
                    value,
                    previous: self.current.clone(),
                    version: i64::from(version),
                    token: self.lock.token(),
                    zxid,
                })
            },
            Err(err) => {
                if !matches!(err, Error::LockLost(_) | Error::SessionExpired) {
                    let _ = self.lock.release().await;
                } else {
                    self.lock.mark_released();
                }
                Err(err)
            },
        }
    }

    /// Finds out whether a commit whose answer was lost applied, using the lock node as the
    /// commit marker: the commit deletes it atomically with the write.
    ///
    /// Deleting the node ourselves settles it either way: if our delete succeeds, the commit had
    /// not applied and now never can (its fence check would fail); if the node is already gone
    /// while our session lives, the commit applied. Only if the session ends first does the
    /// outcome stay unknown.
    async fn resolve_unknown(&self, original: Error, value: &JsonValue) -> Result<(i32, Option<i64>)> {
        let Ok(client) = self.lock.client() else { return Err(original) };
        let until = crate::session::instant_after_or_far(self.request_timeout);
        loop {
            match deadline(self.request_timeout, "resolve commit outcome", client.delete(self.lock.node_path(), None)).await {
                Ok(()) => {
                    self.lock.mark_released();
                    return Err(Error::ConnectionLoss {
                        message: format!("{original}; resolved: the write was not applied (the lock was released)"),
                        outcome: Outcome::NotApplied,
                    });
                },
                // `lock.client()` only returns the client of the lock's own session.
                Err(Error::ZooKeeper { code: "NONODE", .. }) => {
                    // Our commit deleted it — unless a third party deleted the lock node. Tell
                    // them apart by the value: ours, at the version right after the one we read.
                    self.lock.mark_released();
                    let expected = self.version.map_or(0, |v| v + 1);
                    return match deadline(self.request_timeout, "read committed value", client.get_data(&self.value_path)).await {
                        Ok((data, stat)) if stat.version == expected && data == value.as_str().as_bytes() => {
                            tracing::debug!(key = %self.key, "commit outcome resolved: applied");
                            Ok((expected, None))
                        },
                        _ => Err(original),
                    };
                },
                Err(e) if e.is_transient() && tokio::time::Instant::now() < until => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(_) => return Err(original),
            }
        }
    }

    /// One fenced multi: [check lock node, write value, delete lock node]. Returns the version
    /// and the commit's zxid.
    async fn commit_once(&self, value: &JsonValue) -> Result<(i32, Option<i64>)> {
        let client = self.lock.client()?;
        let mut writer = client.new_multi_writer();
        self.lock.fence(&mut writer)?;
        let bytes = value.as_str().as_bytes();
        match self.version {
            Some(v) => writer.add_set_data(&self.value_path, bytes, Some(v))?,
            None => writer.add_create(&self.value_path, bytes, &persistent(zk::Acls::new(&self.acl)))?,
        }
        writer.add_delete(self.lock.node_path(), None)?;
        if self.version.is_none() {
            // A create inside a multi is answered without a valid stat (ZOOKEEPER-4026): a blind
            // write of the clock node reports the commit's zxid.
            writer.add_set_data(&self.clock_path, &[], None)?;
        }
        let results = commit_multi(self.request_timeout, &mut writer, "commit transaction").await.map_err(|e| fenced_error(e, &[&self.lock]))?;
        let mut results = results.into_iter();
        Ok(match (results.nth(1), results.nth(1)) {
            (Some(zk::MultiWriteResult::SetData { stat }), _) => (stat.version, Some(stat.mzxid).filter(|z| *z > 0)),
            (Some(zk::MultiWriteResult::Create { .. }), Some(zk::MultiWriteResult::SetData { stat })) => (0, Some(stat.mzxid).filter(|z| *z > 0)),
            _ => (0, None),
        })
    }

    /// Releases the lock without writing.
    ///
    /// # Guarantees
    /// Idempotent; a no-op after [`KeyTransaction::commit`].
    pub async fn abort(&self) -> Result<()> {
        if self.finished.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.lock.release().await
    }
}

/// Error of a multi whose first operation is the lock fence.
pub(crate) enum MultiError {
    /// Operation `index` was refused; nothing was applied.
    Op(usize, zk::Error),
    /// The request as a whole failed (connection, deadline, session).
    Request(Error),
}

/// Sends a multi with a deadline.
pub(crate) async fn commit_multi(rt: std::time::Duration, writer: &mut zk::MultiWriter<'_>, what: &str) -> Result<Vec<zk::MultiWriteResult>, MultiError> {
    match tokio::time::timeout(rt, writer.commit()).await {
        Ok(Ok(results)) => Ok(results),
        Ok(Err(zk::MultiWriteError::OperationFailed { index, source })) => Err(MultiError::Op(index, source)),
        Ok(Err(zk::MultiWriteError::RequestFailed { source })) => Err(MultiError::Request(Error::from(source).for_write())),
        Err(_) => Err(MultiError::Request(Error::timeout(format!("{what}: no answer from ZooKeeper within {} ms", rt.as_millis())).for_write())),
    }
}

/// Maps a fenced multi's failure: a failed fence (one of the first `locks.len()` ops) means
/// that lock is lost.
pub(crate) fn fenced_error(err: MultiError, locks: &[&Lock]) -> Error {
    match err {
        MultiError::Op(i, zk::Error::NoNode | zk::Error::BadVersion) if i < locks.len() => {
            Error::LockLost(format!("lock {} is no longer held: write refused, nothing changed", locks[i].path()))
        },
        MultiError::Op(_, e) => Error::from(e),
        MultiError::Request(e) => e,
    }
}

/// Locks `key`, computes its new value from the current one, writes it fenced, releases.
///
/// # Guarantees
/// The update sees the latest committed value of `key`, and its result is written only while
/// the lock is still held: concurrent `execute_transaction`s on one key are serializable. On
/// any failure the stored value is unchanged (except `CONNECTIONLOSS`/`TIMEOUT` with outcome
/// unknown).
///
/// # Errors
/// Those of [`KeyTransaction::begin`] and [`KeyTransaction::commit`], and whatever `update`
/// returns (the lock is released, nothing is written).
///
/// # Example
/// ```no_run
/// # async fn demo(session: &zktx_core::Session) -> zktx_core::Result<()> {
/// use zktx_core::{kv::{JsonValue, Layout}, txn::execute_transaction};
/// let done = execute_transaction(session, &Layout::default(), "counter", &Default::default(), |cur| async move {
///     let n: i64 = match cur { Some(v) => v.parse()?, None => 0 };
///     JsonValue::from_serialize(&(n + 1))
/// }).await?;
/// println!("counter = {}", done.value.as_str());
/// # Ok(()) }
/// ```
pub async fn execute_transaction<F, Fut>(session: &Session, layout: &Layout, key: &str, opts: &AcquireOptions, update: F) -> Result<Committed>
where
    F: FnOnce(Option<JsonValue>) -> Fut,
    Fut: Future<Output = Result<JsonValue>>,
{
    let tx = KeyTransaction::begin(session, layout, &Clock::new(), key, opts).await?;
    let current = match tx.decoded() {
        Ok(v) => v.cloned(),
        Err(e) => {
            let _ = tx.abort().await;
            return Err(e);
        },
    };
    match update(current).await {
        Ok(value) => tx.commit(value).await,
        Err(e) => {
            let _ = tx.abort().await;
            Err(e)
        },
    }
}
