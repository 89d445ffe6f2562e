//! The key-value store on etcd: JSON values by key, plain and lock-fenced writes, and
//! `executeTransaction` (one key, under its lock, written and released in one `Txn`).
//!
//! The layout is ZooKeeper's ([`Layout`]): the value of `k` at `<root>/kv/<enc(k)>`, its lock
//! (etcd's lock recipe, as every etcd lock here) under `<root>/locks/kv/<enc(k)>/`. A key's
//! version is its *mod revision*: revisions are global and never restart, so a delete and a
//! re-create between a read and a write is seen by a version check, with no tombstones (a delete
//! is a real delete) and no limit on a transaction's age. Values written by something else
//! (`etcdctl put` of non-JSON data) read as `INVALID_ARGUMENT` and are replaced by a write, as on
//! ZooKeeper.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_client as etcd;

use super::{send_txn, within, EtcdLock, EtcdSession};
use crate::backend::retry_transient;
use crate::error::{Error, Outcome, Result};
use crate::kv::{JsonValue, Layout, Stored};
use crate::recipe::internals::AcquireOptions;
use crate::store::LockKind;
use crate::txn::Committed;

/// A value and its version (the key's mod revision).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdVersioned {
    /// The value.
    pub value: JsonValue,
    /// The key's mod revision.
    pub version: i64,
}

/// What a key holds, as read.
#[derive(Clone, Debug)]
pub(super) enum Read {
    Missing,
    /// Not JSON (written by another client), at this mod revision.
    Foreign(i64),
    Value(JsonValue, i64),
}

impl Read {
    pub(super) fn from_kv(kv: Option<&etcd::KeyValue>) -> Read {
        match kv {
            None => Read::Missing,
            Some(kv) => match JsonValue::from_stored(kv.value().to_vec()) {
                Ok(v) => Read::Value(v, kv.mod_revision()),
                Err(_) => Read::Foreign(kv.mod_revision()),
            },
        }
    }

    /// The mod revision read; 0 when absent (what etcd compares an absent key's to).
    pub(super) fn revision(&self) -> i64 {
        match self {
            Read::Missing => 0,
            Read::Foreign(r) | Read::Value(_, r) => *r,
        }
    }

    pub(super) fn value(&self) -> Option<&JsonValue> {
        match self {
            Read::Value(v, _) => Some(v),
            _ => None,
        }
    }

    /// Whether the key holds something (a value, or data another client wrote).
    pub(super) fn exists(&self) -> bool {
        !matches!(self, Read::Missing)
    }

    /// The value as an updater sees it (foreign data is `INVALID_ARGUMENT`, with ZooKeeper's message).
    pub(super) fn decoded(&self, key: &str) -> Result<Option<&JsonValue>> {
        match self {
            Read::Foreign(_) => Stored::Foreign(0).decoded(key).map(|_| None),
            other => Ok(other.value()),
        }
    }
}

impl EtcdSession {
    async fn read_key(&self, path: &str) -> Result<Read> {
        let client = self.client().await?;
        let rt = self.request_timeout();
        let got = retry_transient(rt, || {
            let (mut client, path) = (client.clone(), path.to_string());
            async move { within(rt, "read value", client.get(path, None)).await }
        })
        .await?;
        Ok(Read::from_kv(got.kvs().first()))
    }

    /// Reads `key` (a linearizable read): `None` when absent.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a bad key or a value that is not JSON; connection errors.
    pub async fn get_value(&self, layout: &Layout, key: &str) -> Result<Option<EtcdVersioned>> {
        let read = self.read_key(&layout.value_path(key)?).await?;
        read.decoded(key)?;
        Ok(match read {
            Read::Value(value, version) => Some(EtcdVersioned { value, version }),
            _ => None,
        })
    }

    /// Writes `key`, unconditionally or fenced on `locks` (one `Txn` that compares every lock
    /// key's create revision with its token first). Returns the new version.
    ///
    /// # Errors
    /// `LOCK_LOST` / `SESSIONEXPIRED` when fenced on a lock that is no longer held, or that its
    /// holder released or closed even if etcd has not deleted its key yet (nothing written);
    /// `CONNECTIONLOSS` / `TIMEOUT` with outcome unknown.
    pub async fn set_value(&self, layout: &Layout, key: &str, value: &JsonValue, locks: &[&EtcdLock]) -> Result<i64> {
        let path = layout.value_path(key)?;
        check_fences(locks)?;
        let client = self.client().await?;
        let rt = self.request_timeout();
        let txn = etcd::Txn::new().when(fences(locks)).and_then([etcd::TxnOp::put(path, value.as_str(), None)]);
        let _writing = self.writing().await?;
        let done = send_txn(&client, &self.inner.closing, rt, "write value", txn).await?;
        if !done.succeeded() {
            return Err(lost(locks));
        }
        Ok(done.header().map_or(0, |h| h.revision()))
    }

    /// Locks `key` and reads its value, for [`EtcdKeyTransaction::commit`].
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a bad key, the lock's errors (`TIMEOUT`, `ABORTED`, ...) and read
    /// errors; on any of them the lock is released.
    pub async fn begin(&self, layout: &Layout, key: &str, opts: &AcquireOptions) -> Result<EtcdKeyTransaction> {
        let value_path = layout.value_path(key)?;
        // A 1-permit contender (`<lease>-lock-<uuid>`: an exclusive holder to every client, Go's
        // and etcdctl's included), so that concurrent calls of this client on one key queue as
        // on ZooKeeper, each with its own key, instead of colliding on the lease's name.
        // Not `acquire`: its 2,048-byte limit is for user paths, and an encoded key that `get` and
        // `set` accept may be longer (every key is made of [A-Za-z0-9_%-] once encoded).
        let lock = self.acquire_checked(LockKind::Lease(1), &layout.lock_path(key)?, opts).await?;
        // Read after the lock is held: every earlier holder's write was applied with its release.
        let read = match self.read_key(&value_path).await {
            Ok(r) => r,
            Err(e) => {
                let _ = lock.release().await;
                return Err(e);
            },
        };
        Ok(EtcdKeyTransaction { key: key.to_string(), value_path, lock, read, rt: self.request_timeout(), finished: AtomicBool::new(false), session: self.clone() })
    }

    /// `executeTransaction(key, value)`: [`EtcdSession::begin`] then commit `value`.
    ///
    /// # Errors
    /// As [`EtcdSession::begin`] and [`EtcdKeyTransaction::commit`].
    pub async fn execute_transaction(&self, layout: &Layout, key: &str, value: JsonValue, opts: &AcquireOptions) -> Result<Committed> {
        self.begin(layout, key, opts).await?.commit(value).await
    }
}

/// Compares that each lock's key is still the one its holder created.
fn fences(locks: &[&EtcdLock]) -> Vec<etcd::Compare> {
    locks.iter().map(|l| etcd::Compare::create_revision(l.key(), etcd::CompareOp::Equal, l.token())).collect()
}

/// Refuses, before sending, a write fenced on a lock its holder released or whose client closed:
/// it fences nothing, even while etcd still has its key (a release or revoke not confirmed yet),
/// and the Txn's compare would pass.
///
/// # Errors
/// As [`lost`].
pub(super) fn check_fences(locks: &[&EtcdLock]) -> Result<()> {
    if locks.iter().any(|l| l.is_released() || l.lease_ended() || l.closing.is_cancelled()) {
        return Err(lost(locks));
    }
    if let Some(l) = locks.iter().find(|l| l.declared_lost()) {
        return Err(Error::LockLost(format!(
            "lock {} was declared lost: etcd did not answer its keep-alives for {} ms or more (lostAfter): nothing written",
            l.path(),
            l.lost_after.as_millis()
        )));
    }
    Ok(())
}

/// The error of a write whose fence failed: `SESSIONEXPIRED` if a lock's lease ended.
pub(super) fn lost(locks: &[&EtcdLock]) -> Error {
    if locks.iter().any(|l| l.lease_ended()) {
        return Error::SessionExpired;
    }
    Error::LockLost("the write's lock is no longer held: nothing written".into())
}

/// A key locked for update on etcd: the value as read under the lock, waiting for
/// [`EtcdKeyTransaction::commit`] or [`EtcdKeyTransaction::abort`].
#[derive(Debug)]
pub struct EtcdKeyTransaction {
    key: String,
    value_path: String,
    lock: EtcdLock,
    read: Read,
    rt: Duration,
    finished: AtomicBool,
    /// For the commit's write guard (`EtcdSession::writing`).
    session: EtcdSession,
}

impl EtcdKeyTransaction {
    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value read under the lock, as an updater sees it.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` when the key holds data that is not JSON (committing replaces it).
    pub fn decoded(&self) -> Result<Option<&JsonValue>> {
        self.read.decoded(&self.key)
    }

    /// The lock held for this key.
    pub fn lock(&self) -> &EtcdLock {
        &self.lock
    }

    /// Writes `value` and releases the lock in one `Txn`: if the lock key is still this holder's
    /// and the value still at the revision read, put the value and delete the lock key.
    ///
    /// # Guarantees
    /// The write and the release apply together or not at all; after any outcome the lock is
    /// released (or lost). A commit whose answer was lost is resolved by deleting the lock key:
    /// if that delete applies, the commit never can (its compare fails); if the key is already
    /// gone, etcd's history says whether the commit deleted it (its put has the same revision).
    ///
    /// # Errors
    /// `LOCK_LOST` / `SESSIONEXPIRED` when the lock is gone (nothing written), `CLIENT_CLOSED`
    /// when the client was closed before the commit was sent (nothing sent), `BADVERSION` when
    /// someone wrote the key without taking its lock (nothing written), `CONNECTIONLOSS` /
    /// `TIMEOUT` with outcome unknown when neither the commit nor its resolution got an answer,
    /// `INVALID_ARGUMENT` after a previous commit or abort.
    pub async fn commit(&self, value: JsonValue) -> Result<Committed> {
        if self.finished.swap(true, Ordering::AcqRel) {
            return Err(Error::invalid("transaction already committed or aborted"));
        }
        // A client closed while the updater ran sends nothing: its lease (and so its lock key)
        // may outlive close() if the revoke did not reach etcd, and the Txn would still apply.
        // Otherwise the commit (and the settling of a lost answer) is a write in flight that
        // close() waits for: without it, a revoke that overtook the commit on another member's
        // connection and was lost let close() resolve before the commit applied.
        let _writing = match self.session.writing().await {
            Ok(guard) => guard,
            Err(err) => {
                let _ = self.lock.release().await;
                return Err(err);
            },
        };
        // Declared lost by `lostAfter` while the updater ran: write nothing (as on ZooKeeper);
        // its key is deleted once etcd answers again.
        if let Err(err) = check_fences(&[&self.lock]) {
            let _ = self.lock.release().await;
            return Err(err);
        }
        let lock_key = self.lock.key().to_string();
        let txn = etcd::Txn::new()
            .when([
                etcd::Compare::create_revision(lock_key.clone(), etcd::CompareOp::Equal, self.lock.token()),
                etcd::Compare::mod_revision(self.value_path.clone(), etcd::CompareOp::Equal, self.read.revision()),
            ])
            .and_then([etcd::TxnOp::put(self.value_path.clone(), value.as_str(), None), etcd::TxnOp::delete(lock_key.clone(), None)])
            .or_else([etcd::TxnOp::get(lock_key, None)]);
        let client = self.lock.client();
        let result = match send_txn(&client, &self.session.inner.closing, self.rt, "commit transaction", txn).await {
            Ok(done) if done.succeeded() => Ok(done.header().map_or(0, |h| h.revision())),
            Ok(done) => {
                let lock_there = done.op_responses().into_iter().any(|r| match r {
                    etcd::TxnOpResponse::Get(g) => g.kvs().first().is_some_and(|kv| kv.create_revision() == self.lock.token()),
                    _ => false,
                });
                Err(if !lock_there {
                    lost(&[&self.lock])
                } else {
                    Error::zk("BADVERSION", format!("key {:?} was written or deleted without its lock since it was read: nothing written", self.key))
                })
            },
            Err(err) if err.outcome() == Outcome::Unknown => self.resolve_unknown(err, &value).await,
            Err(err) => Err(err),
        };
        match result {
            Ok(revision) => {
                self.lock.mark_released();
                Ok(Committed { key: self.key.clone(), value, previous: self.read.value().cloned(), version: revision, token: self.lock.token(), zxid: Some(revision).filter(|r| *r > 0) })
            },
            Err(err) => {
                if matches!(err, Error::LockLost(_) | Error::SessionExpired) {
                    self.lock.mark_released();
                } else {
                    let _ = self.lock.release().await;
                }
                Err(err)
            },
        }
    }

    /// Settles a commit whose answer was lost; returns the commit's revision if it applied.
    async fn resolve_unknown(&self, original: Error, value: &JsonValue) -> Result<i64> {
        let lock_key = self.lock.key().to_string();
        let token = self.lock.token();
        let release = etcd::Txn::new()
            .when([etcd::Compare::create_revision(lock_key.clone(), etcd::CompareOp::Equal, token)])
            .and_then([etcd::TxnOp::delete(lock_key.clone(), None)]);
        let settled = retry_transient(self.rt, || {
            let (mut client, release) = (self.lock.client(), release.clone());
            async move { within(self.rt, "resolve commit outcome", client.txn(release)).await }
        })
        .await;
        match settled {
            Ok(done) if done.succeeded() => {
                self.lock.mark_released();
                Err(Error::ConnectionLoss { message: format!("{original}; resolved: the write was not applied (the lock was released)"), outcome: Outcome::NotApplied })
            },
            Ok(_) => {
                // The lock key is gone: our commit deleted it, or the lease ended. The commit
                // deletes it in the revision that puts the value: find the delete in the key's
                // history and look at the value at that revision.
                self.lock.mark_released();
                match self.applied_at(&lock_key, token, value).await {
                    Ok(Some(revision)) => {
                        tracing::debug!(key = %self.key, revision, "commit outcome resolved: applied");
                        Ok(revision)
                    },
                    Ok(None) => Err(Error::ConnectionLoss { message: format!("{original}; resolved: the write was not applied (the lock was lost)"), outcome: Outcome::NotApplied }),
                    Err(_) => Err(original),
                }
            },
            Err(_) => Err(original),
        }
    }

    /// The revision at which `lock_key` (created at `token`) was deleted, if the value written
    /// in that same revision is `value` (our commit); `None` if it was deleted otherwise.
    ///
    /// # Errors
    /// When the history is compacted or etcd does not answer: the outcome stays unknown.
    async fn applied_at(&self, lock_key: &str, token: i64, value: &JsonValue) -> Result<Option<i64>> {
        let mut client = self.lock.client();
        let options = etcd::WatchOptions::new().with_start_revision(token);
        let deleted = async {
            let mut stream = within(self.rt, "read lock history", client.watch(lock_key, Some(options))).await?;
            loop {
                let Some(resp) = stream.message().await.map_err(|e| super::etcd_error("read lock history", e))? else {
                    return Err(Error::ConnectionLoss { message: "lock history: watch ended".into(), outcome: Outcome::Unknown });
                };
                if resp.compact_revision() > 0 || resp.canceled() {
                    return Err(Error::ConnectionLoss { message: "lock history compacted".into(), outcome: Outcome::Unknown });
                }
                if let Some(ev) = resp.events().iter().find(|e| e.event_type() == etcd::EventType::Delete) {
                    return Ok(ev.kv().map_or(0, |kv| kv.mod_revision()));
                }
            }
        };
        let revision = match tokio::time::timeout(self.rt, deleted).await {
            Ok(r) => r?,
            Err(_) => return Err(Error::timeout("lock history: no answer")),
        };
        let mut client = self.lock.client();
        let at = within(self.rt, "read committed value", client.get(self.value_path.clone(), Some(etcd::GetOptions::new().with_revision(revision)))).await?;
        Ok(at.kvs().first().filter(|kv| kv.mod_revision() == revision && kv.value() == value.as_str().as_bytes()).map(|_| revision))
    }

    /// Releases the lock without writing. Idempotent; a no-op after a commit.
    ///
    /// # Errors
    /// Connection errors of the release (the key is then deleted in the background).
    pub async fn abort(&self) -> Result<()> {
        if self.finished.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.lock.release().await
    }
}
