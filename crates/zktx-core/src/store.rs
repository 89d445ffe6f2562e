//! The key-value store: plain and lock-fenced reads and writes of JSON values by key.

use crate::error::{Error, Result};
use crate::kv::{JsonValue, Layout, Stored, MAX_READ_BATCH_BYTES, MAX_TRANSACTION_AGE, MIN_COMPACTION_AGE, OP_OVERHEAD_BYTES};
use crate::transaction::MARKERS;
use crate::recipe::{self, AcquireOptions, HeldPaths, Lock, Registration};
use crate::session::{deadline, Session, SessionOptions};
use crate::txn::{self, commit_multi, fenced_error, persistent, Committed, KeyTransaction};

/// Splits `paths` into groups whose multi-read stays under the request limit.
pub(crate) fn read_batches(paths: &[String]) -> Vec<&[String]> {
    let mut batches = Vec::new();
    let mut rest = paths;
    while !rest.is_empty() {
        let mut n = 0;
        let mut bytes = 0;
        while n < rest.len() && (n == 0 || bytes + rest[n].len() + OP_OVERHEAD_BYTES <= MAX_READ_BATCH_BYTES) {
            bytes += rest[n].len() + OP_OVERHEAD_BYTES;
            n += 1;
        }
        let (batch, tail) = rest.split_at(n);
        batches.push(batch);
        rest = tail;
    }
    batches
}

/// The oldest age `pruneTransactionIds` and `compactTombstones` accept: ten years.
pub const MAX_PRUNE_AGE: std::time::Duration = std::time::Duration::from_secs(10 * 365 * 24 * 3600);

/// A value with the znode version it was read at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    /// The value.
    pub value: JsonValue,
    /// Its znode data version (bumped by every write).
    pub version: i32,
}

/// Which kind of lock to acquire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// Exclusive lock.
    Exclusive,
    /// Shared side of a read-write lock.
    Read,
    /// Exclusive side of a read-write lock.
    Write,
    /// One lease of a semaphore with this many permits.
    Lease(u32),
}

/// One session plus the znode layout of keys and locks: everything the JS `ZooKeeper` class does.
#[derive(Debug)]
pub struct Store {
    session: Session,
    layout: Layout,
    held: HeldPaths,
}

impl Store {
    /// A store on a new (lazily connected) session, with the default layout under `/zktx`.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for bad options.
    pub fn new(options: SessionOptions) -> Result<Store> {
        Ok(Store { session: Session::new(options)?, layout: Layout::default(), held: HeldPaths::default() })
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The znode layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Acquires the exclusive lock at `path`. See [`recipe::lock`].
    pub async fn lock(&self, path: &str, opts: &AcquireOptions) -> Result<Lock> {
        self.acquire(LockKind::Exclusive, path, opts).await
    }

    /// Acquires a lock of any kind at `path`.
    ///
    /// # Errors
    /// `ALREADY_HELD` when this store already holds or is acquiring an exclusive, read or write
    /// lock on `path` (locks are not reentrant; semaphore leases may be taken repeatedly); else
    /// as [`recipe::lock`].
    pub async fn acquire(&self, kind: LockKind, path: &str, opts: &AcquireOptions) -> Result<Lock> {
        self.validate_user_lock_path(path)?;
        let registration = match kind {
            LockKind::Lease(_) => None,
            _ => Some(Registration::claim(&self.held, path, self.session.client().await?.session_id())?),
        };
        let lock = match kind {
            LockKind::Exclusive => recipe::lock(&self.session, path, opts).await?,
            LockKind::Read => recipe::read_lock(&self.session, path, opts).await?,
            LockKind::Write => recipe::write_lock(&self.session, path, opts).await?,
            LockKind::Lease(permits) => recipe::acquire_lease(&self.session, path, permits, opts).await?,
        };
        Ok(lock.with_registration(registration))
    }

    /// Acquires exclusive locks on all `paths`, all or nothing, in canonical order.
    ///
    /// # Errors
    /// As [`Store::acquire`] and [`recipe::multi_lock`].
    pub async fn multi_lock(&self, paths: &[&str], opts: &AcquireOptions) -> Result<Vec<Lock>> {
        let order = recipe::multi::canonical_order(paths);
        for p in &order {
            self.validate_user_lock_path(p)?;
        }
        let session = self.session.client().await?.session_id();
        let mut registrations = Vec::with_capacity(order.len());
        for p in &order {
            registrations.push(Some(Registration::claim(&self.held, p, session)?));
        }
        let locks = recipe::multi_lock(&self.session, paths, opts).await?;
        Ok(locks.into_iter().zip(registrations).map(|(l, r)| l.with_registration(r)).collect())
    }

    /// A lock path a user may take: valid, and outside zktx's own tree (its keys, their locks, its
    /// markers), whose nodes the library manages itself.
    fn validate_user_lock_path(&self, path: &str) -> Result<()> {
        recipe::validate_lock_path(path)?;
        let root = self.layout.root();
        if path == root || path.strip_prefix(root).is_some_and(|rest| rest.starts_with('/')) {
            return Err(Error::invalid(format!(
                "lock path {path:?} is inside zktx's own tree {root}: lock a key with executeTransaction, or use a path outside {root}"
            )));
        }
        Ok(())
    }

    /// Reads `key`: `None` when absent.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a bad key or a node holding something other than JSON;
    /// connection errors.
    pub async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        Ok(match self.read(key).await? {
            Stored::Value(value, version) => Some(Versioned { value, version }),
            Stored::Missing | Stored::Tombstone(_) => None,
        })
    }

    /// Reads what `key`'s znode holds: a value, a tombstone (deleted) or nothing.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub async fn read(&self, key: &str) -> Result<Stored> {
        self.session.unless_closed(false, async {
            let path = self.layout.value_path(key)?;
            let client = self.session.client().await?;
            match deadline(self.session.request_timeout(&client), "read value", client.get_data(&path)).await {
                Ok((data, stat)) => Stored::from_znode(data, stat.version),
                Err(Error::ZooKeeper { code: "NONODE", .. }) => Ok(Stored::Missing),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Writes `key` unconditionally, or fenced on `lock` (one `multi` that checks the lock node
    /// first). Returns the new version.
    ///
    /// # Errors
    /// `LOCK_LOST` / `SESSIONEXPIRED` when fenced on a lock that is no longer held (nothing
    /// written); `CONNECTIONLOSS`/`TIMEOUT` with outcome unknown.
    pub async fn set(&self, key: &str, value: &JsonValue, locks: &[&Lock]) -> Result<i32> {
        self.session.unless_closed(true, async {
            let path = self.layout.value_path(key)?;
            let client = match locks.first() {
                Some(lock) => lock.client()?,
                None => self.session.client().await?,
            };
            let rt = self.session.request_timeout(&client);
            let bytes = value.as_str().as_bytes();
            // Try overwrite, then create (then overwrite again, should a concurrent create win).
            for attempt in 0..4 {
                let create = attempt % 2 == 1;
                let mut writer = client.new_multi_writer();
                for lock in locks {
                    lock.fence(&mut writer)?;
                }
                if create {
                    writer.add_create(&path, bytes, &persistent(self.session.acls()))?;
                } else {
                    writer.add_set_data(&path, bytes, None)?;
                }
                let op = locks.len();
                match commit_multi(rt, &mut writer, "write value").await {
                    Ok(results) => {
                        return Ok(match results.into_iter().nth(op) {
                            Some(zookeeper_client::MultiWriteResult::SetData { stat }) => stat.version,
                            _ => 0,
                        })
                    },
                    Err(txn::MultiError::Op(i, zookeeper_client::Error::NoNode)) if i == op && !create => continue,
                    Err(txn::MultiError::Op(i, zookeeper_client::Error::NodeExists)) if i == op && create => continue,
                    Err(txn::MultiError::Op(i, zookeeper_client::Error::NoNode)) if i == op && create => {
                        let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or_default();
                        match deadline(rt, "create values directory", client.mkdir(dir, &persistent(self.session.acls()))).await {
                            Ok(()) | Err(Error::ZooKeeper { code: "NODEEXISTS", .. }) => continue,
                            Err(e) => return Err(e),
                        }
                    },
                    Err(e) => return Err(fenced_error(e, locks)),
                }
            }
            Err(Error::Conflict(format!("key {key:?} kept being created and deleted concurrently")))
        })
        .await
    }

    /// Lists the children of any znode (e.g. a lock's queue); empty when the node is absent.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a malformed path; connection errors.
    pub async fn children(&self, path: &str) -> Result<Vec<String>> {
        self.session.unless_closed(false, async {
            let client = self.session.client().await?;
            match deadline(self.session.request_timeout(&client), "list children", client.list_children(path)).await {
                Ok(mut children) => {
                    children.sort();
                    Ok(children)
                },
                Err(Error::ZooKeeper { code: "NONODE", .. }) => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Deletes the idempotence markers of transactions committed more than `older_than` ago
    /// (see [`crate::transaction::CommitOptions::id`]); returns how many were deleted.
    ///
    /// # Guarantees
    /// Ages compare the markers' creation times with the server's own clock (read by a write to
    /// `<root>/clock`), so this machine's clock skew does not matter; keep `older_than` above the
    /// longest time a commit with that id may still be retried. Safe to run from several clients
    /// at once.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` when `older_than` exceeds [`MAX_PRUNE_AGE`]; connection errors.
    pub async fn prune_transaction_ids(&self, older_than: std::time::Duration) -> Result<usize> {
        self.session.unless_closed(true, async {
            let cutoff = self.server_cutoff(older_than, MAX_PRUNE_AGE, "pruneTransactionIds").await?;
            // Markers are created once and never written: unconditional deletes.
            self.sweep(&self.layout.root_child(MARKERS), "transaction ids", |_, stat| (stat.ctime < cutoff).then_some(None)).await
        })
        .await
    }

    /// Deletes the children of `dir` that `select(data, stat)` picks: `Some(version)` deletes at
    /// that version (`None`: any), `None` keeps. Reads them in multi-reads sized under the
    /// request limit; returns how many it deleted (a node already gone, or written since, is
    /// skipped).
    pub(crate) async fn sweep(&self, dir: &str, what: &str, select: impl Fn(&[u8], &zookeeper_client::Stat) -> Option<Option<i32>>) -> Result<usize> {
        let client = self.session.client().await?;
        let rt = self.session.request_timeout(&client);
        let names = match deadline(rt, &format!("list {what}"), client.list_children(dir)).await {
            Ok(names) => names,
            Err(Error::ZooKeeper { code: "NONODE", .. }) => return Ok(0),
            Err(e) => return Err(e),
        };
        let paths: Vec<String> = names.iter().map(|n| format!("{dir}/{n}")).collect();
        let mut deleted = 0;
        for batch in read_batches(&paths) {
            let mut reader = client.new_multi_reader();
            for p in batch {
                reader.add_get_data(p)?;
            }
            let results = deadline(rt, &format!("read {what}"), reader.commit()).await?;
            for (path, result) in batch.iter().zip(results) {
                let zookeeper_client::MultiReadResult::Data { data, stat } = result else { continue };
                let Some(version) = select(&data, &stat) else { continue };
                match deadline(rt, &format!("delete {what}"), client.delete(path, version)).await {
                    Ok(()) => deleted += 1,
                    Err(Error::ZooKeeper { code: "NONODE" | "BADVERSION", .. }) => {},
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(deleted)
    }

    /// The server's clock minus `age`, in ms since the epoch: creation or modification times on
    /// the server older than this are older than `age`. One write (to `<root>/clock`) reads the
    /// server's time, so this machine's clock never matters.
    pub(crate) async fn server_cutoff(&self, age: std::time::Duration, max: std::time::Duration, what: &str) -> Result<i64> {
        if age > max {
            return Err(Error::invalid(format!("{what}: an age of {} ms is over the limit of {} ms", age.as_millis(), max.as_millis())));
        }
        let age_ms = i64::try_from(age.as_millis()).map_err(|_| Error::invalid(format!("{what}: age out of range")))?;
        let client = self.session.client().await?;
        let rt = self.session.request_timeout(&client);
        let clock = self.layout.root_child(crate::transaction::CLOCK);
        let stat = loop {
            match deadline(rt, "read the server's clock", client.set_data(&clock, &[], None)).await {
                Ok(stat) => break stat,
                Err(Error::ZooKeeper { code: "NONODE", .. }) => match deadline(rt, "create the clock node", client.mkdir(&clock, &persistent(self.session.acls()))).await {
                    Ok(()) | Err(Error::ZooKeeper { code: "NODEEXISTS", .. }) => continue,
                    Err(e) => return Err(e),
                },
                Err(e) => return Err(e),
            }
        };
        Ok(stat.mtime.saturating_sub(age_ms))
    }

    /// Removes the tombstones of keys deleted more than `older_than` ago (by the server's clock);
    /// returns how many. A deleted key's znode stays as a tombstone so its version never restarts
    /// (see [`crate::kv`]); this bounds their number.
    ///
    /// # Guarantees
    /// A tombstone is removed only if it was not written since it was examined (version-checked
    /// delete). `older_than` must be at least [`MIN_COMPACTION_AGE`], which is above
    /// [`MAX_TRANSACTION_AGE`] (the longest a transaction may take from first read to commit)
    /// plus a request's longest flight: so no transaction that read a tombstone can still commit
    /// against a re-created key. Safe to run from several clients at once.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` when `older_than` is below [`MIN_COMPACTION_AGE`] or above
    /// [`MAX_PRUNE_AGE`]; connection errors.
    pub async fn compact_tombstones(&self, older_than: std::time::Duration) -> Result<usize> {
        if older_than < MIN_COMPACTION_AGE {
            return Err(Error::invalid(format!(
                "compactTombstones: olderThan must be at least {} ms (transactions may take up to {} ms)",
                MIN_COMPACTION_AGE.as_millis(),
                MAX_TRANSACTION_AGE.as_millis()
            )));
        }
        self.compact(older_than).await
    }

    /// [`Store::compact_tombstones`] without the horizon's lower bound.
    pub(crate) async fn compact(&self, older_than: std::time::Duration) -> Result<usize> {
        self.session.unless_closed(true, async {
            let cutoff = self.server_cutoff(older_than, MAX_PRUNE_AGE, "compactTombstones").await?;
            // Version-checked: a key written since it was read keeps its znode.
            self.sweep(&self.layout.values_dir(), "tombstones", |data, stat| (data.is_empty() && stat.mtime < cutoff).then_some(Some(stat.version))).await
        })
        .await
    }

    /// Locks `key` and reads it; see [`KeyTransaction`].
    ///
    /// Concurrent calls on one key from one client queue like any contenders. A call from
    /// inside an updater of the same key would wait for itself: the JS facade refuses that with
    /// `ALREADY_HELD` (it knows the async context; this layer does not).
    pub async fn begin(&self, key: &str, opts: &AcquireOptions) -> Result<KeyTransaction> {
        KeyTransaction::begin(&self.session, &self.layout, key, opts).await
    }

    /// Sets `key` to `value` under its lock, fenced. See [`txn::execute_transaction`].
    pub async fn execute_transaction(&self, key: &str, value: JsonValue, opts: &AcquireOptions) -> Result<Committed> {
        let tx = self.begin(key, opts).await?;
        tx.commit(value).await
    }

    /// Closes the session (idempotent); see [`Session::close`].
    pub async fn close(&self) {
        self.session.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::{CommitOptions, Transaction, Write};

    /// Needs a server: `npm test` / `npm run test:rust` start one and set ZK_CONNECT.
    fn store() -> Store {
        let connect = std::env::var("ZK_CONNECT").expect("ZK_CONNECT is not set: run `npm run test:rust`");
        Store::new(SessionOptions { session_timeout: std::time::Duration::from_secs(10), ..SessionOptions::new(connect) }).expect("store")
    }

    fn json(v: i64) -> Result<JsonValue> {
        JsonValue::from_serialize(&v)
    }

    #[tokio::test]
    async fn compaction_removes_old_tombstones_and_a_reader_of_one_still_conflicts() -> Result<()> {
        let s = store();
        let k = format!("compact-{}", uuid::Uuid::new_v4().simple());
        s.set(&k, &json(1)?, &[]).await?;
        let mut del = Transaction::new();
        del.write(&s, &k, Write::Delete)?;
        del.commit(&s, &CommitOptions::default()).await?;
        assert!(matches!(s.read(&k).await?, Stored::Tombstone(1)));
        // T1 reads the tombstone; then it is compacted and the key re-created at version 0.
        let mut t1 = Transaction::new();
        assert_eq!(t1.get_many(&s, &[&k]).await?, vec![None]);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(s.compact(std::time::Duration::ZERO).await? >= 1);
        assert_eq!(s.read(&k).await?, Stored::Missing);
        s.set(&k, &json(100)?, &[]).await?;
        t1.write(&s, &k, Write::Set(json(7)?))?;
        let err = t1.commit(&s, &CommitOptions::default()).await.err().map(|e| e.code());
        assert_eq!(err, Some("CONFLICT"));
        assert_eq!(s.get(&k).await?.map(|v| v.value), Some(json(100)?));
        // The public entry point refuses a horizon transactions could outlive.
        assert_eq!(s.compact_tombstones(std::time::Duration::from_secs(60)).await.err().map(|e| e.code()), Some("INVALID_ARGUMENT"));
        Ok(())
    }
}
