//! The key-value store: plain and lock-fenced reads and writes of JSON values by key.

use crate::error::{Error, Result};
use crate::clock::Clock;
use crate::kv::{JsonValue, Layout, Stored, COMPACTING, MAX_READ_BATCH_BYTES, MAX_TRANSACTION_AGE, MIN_COMPACTION_AGE, OP_OVERHEAD_BYTES, TOMBSTONE};
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

/// `age` in ms, if at most `max`.
fn check_age(age: std::time::Duration, max: std::time::Duration, what: &str) -> Result<i64> {
    if age > max {
        return Err(Error::invalid(format!("{what}: an age of {} ms is over the limit of {} ms", age.as_millis(), max.as_millis())));
    }
    i64::try_from(age.as_millis()).map_err(|_| Error::invalid(format!("{what}: age out of range")))
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
    clock: Clock,
}

/// What one compaction pass did (see [`Store::compact_tombstones`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compaction {
    /// Tombstones older than the horizon that this pass marked for removal: a pass at least
    /// the horizon later removes them.
    pub marked: usize,
    /// Marked tombstones removed (their mark was older than the horizon).
    pub removed: usize,
    /// Keys whose tombstone could not be removed, with the reason (a child node that another
    /// client created under it, or a permission the session lacks). Nothing else is affected.
    pub skipped: Vec<(String, String)>,
}

/// What a sweep does with one node it examined.
pub(crate) enum Sweep {
    /// Delete it at this version (`None`: any).
    Delete(Option<i32>),
    /// Overwrite its data at this version.
    Mark(&'static [u8], i32),
}

/// Reads a value znode whose [`Stored::Compacting`] mark a transaction must not rely on, and turns
/// it back into a plain tombstone first: a version-checked write that bumps the version (so a
/// compaction pass holding the mark's version can no longer delete it) and restarts its age.
/// Returns what the key holds afterwards (anything but `Compacting`).
pub(crate) async fn unmark(client: &zookeeper_client::Client, rt: std::time::Duration, path: &str, mut read: Stored) -> Result<Stored> {
    for _ in 0..16 {
        let Stored::Compacting(version) = read else { return Ok(read) };
        if let Some(kept) = unmark_once(client, rt, path, version).await? {
            return Ok(kept);
        }
        // Removed or rewritten meanwhile: read again.
        read = match deadline(rt, "read value", client.get_data(path)).await {
            Ok((data, stat)) => Stored::from_stat(data, &stat),
            Err(Error::ZooKeeper { code: "NONODE", .. }) => Stored::Missing,
            Err(e) => return Err(e),
        };
    }
    Err(Error::Conflict(format!("{path} kept changing while a transaction read it")))
}

/// One attempt of [`unmark`]: `Some(tombstone)` when the mark at `version` was turned back,
/// `None` when the node was removed or written since it was read.
pub(crate) async fn unmark_once(client: &zookeeper_client::Client, rt: std::time::Duration, path: &str, version: i32) -> Result<Option<Stored>> {
    match deadline(rt, "keep a read tombstone", client.set_data(path, TOMBSTONE, Some(version))).await {
        Ok(stat) => Ok(Some(Stored::Tombstone(stat.version))),
        Err(Error::ZooKeeper { code: "NONODE" | "BADVERSION", .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Store {
    /// A store on a new (lazily connected) session, with the default layout under `/zktx`.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for bad options.
    pub fn new(options: SessionOptions) -> Result<Store> {
        Ok(Store { session: Session::new(options)?, layout: Layout::default(), held: HeldPaths::default(), clock: Clock::new() })
    }

    /// The clock this store measures transaction ages and compaction horizons on (tests move
    /// it forward: [`Clock::advance`]).
    pub fn clock(&self) -> &Clock {
        &self.clock
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

    /// A leader election at `path` for participant `id` (see [`recipe::Election`]); its calls
    /// take [`Store::session`].
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a path a lock could not use, or one inside zktx's own tree;
    /// `TOO_LARGE` for an id over [`recipe::election::MAX_PARTICIPANT_ID_BYTES`]. Nothing is sent.
    pub fn election(&self, path: &str, id: Vec<u8>) -> Result<recipe::Election> {
        self.validate_user_lock_path(path)?;
        recipe::Election::new(path, id)
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
        let read = self.read(key).await?;
        read.decoded(key)?;
        Ok(match read {
            Stored::Value(value, version) => Some(Versioned { value, version }),
            _ => None,
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
                Ok((data, stat)) => Ok(Stored::from_stat(data, &stat)),
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
            self.sweep(&self.layout.root_child(MARKERS), "transaction ids", |_, _, stat| (stat.ctime < cutoff).then_some(None)).await
        })
        .await
    }

    /// Deletes the children of `dir` that `select(data, stat)` picks: `Some(version)` deletes at
    /// that version (`None`: any), `None` keeps. Returns how many it deleted (a node already
    /// gone, written since, or with children, is skipped).
    pub(crate) async fn sweep(&self, dir: &str, what: &str, select: impl Fn(&str, &[u8], &zookeeper_client::Stat) -> Option<Option<i32>>) -> Result<usize> {
        let report = self.sweep_with(dir, what, |name, data, stat| select(name, data, stat).map(Sweep::Delete)).await?;
        Ok(report.removed)
    }

    /// Applies `select(data, stat)`'s [`Sweep`] to each child of `dir` (none: keep it). Reads
    /// them in multi-reads sized under the request limit. A node gone or written since it was
    /// read is left alone; one that cannot be deleted (children, permissions) is reported in
    /// `skipped` and the sweep goes on.
    pub(crate) async fn sweep_with(&self, dir: &str, what: &str, select: impl Fn(&str, &[u8], &zookeeper_client::Stat) -> Option<Sweep>) -> Result<Compaction> {
        let client = self.session.client().await?;
        let rt = self.session.request_timeout(&client);
        let names = match deadline(rt, &format!("list {what}"), client.list_children(dir)).await {
            Ok(names) => names,
            Err(Error::ZooKeeper { code: "NONODE", .. }) => return Ok(Compaction::default()),
            Err(e) => return Err(e),
        };
        let paths: Vec<String> = names.iter().map(|n| format!("{dir}/{n}")).collect();
        let mut report = Compaction::default();
        for batch in read_batches(&paths) {
            let mut reader = client.new_multi_reader();
            for p in batch {
                reader.add_get_data(p)?;
            }
            let results = deadline(rt, &format!("read {what}"), reader.commit()).await?;
            for (path, result) in batch.iter().zip(results) {
                let zookeeper_client::MultiReadResult::Data { data, stat } = result else { continue };
                let name = path.rsplit_once('/').map_or(path.as_str(), |(_, n)| n);
                let Some(action) = select(name, &data, &stat) else { continue };
                let done = match action {
                    Sweep::Delete(version) => deadline(rt, &format!("delete {what}"), client.delete(path, version)).await.map(|()| &mut report.removed),
                    Sweep::Mark(data, version) => deadline(rt, &format!("mark {what}"), client.set_data(path, data, Some(version))).await.map(|_| &mut report.marked),
                };
                match done {
                    Ok(count) => *count += 1,
                    Err(Error::ZooKeeper { code: "NONODE" | "BADVERSION", .. }) => {},
                    Err(Error::ZooKeeper { code: code @ ("NOTEMPTY" | "NOAUTH"), .. }) => {
                        let name = path.rsplit_once('/').map_or(path.as_str(), |(_, n)| n);
                        let name = crate::kv::decode_key(name).unwrap_or_else(|_| name.to_string());
                        let reason = if code == "NOTEMPTY" {
                            format!("{path} has child nodes that zktx did not create (NOTEMPTY): remove them to let it go")
                        } else {
                            format!("{path}: this session may not delete it (NOAUTH)")
                        };
                        tracing::warn!(node = %path, code, "sweep of {what} skipped a node");
                        report.skipped.push((name, reason));
                    },
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(report)
    }

    /// The server's clock minus `age`, in ms since the epoch: creation or modification times on
    /// the server older than this are older than `age`. One write (to `<root>/clock`) reads the
    /// server's time, so this machine's clock never matters.
    pub(crate) async fn server_cutoff(&self, age: std::time::Duration, max: std::time::Duration, what: &str) -> Result<i64> {
        let age_ms = check_age(age, max, what)?;
        Ok(self.server_now().await?.saturating_sub(age_ms))
    }

    /// The server's clock now, in ms since the epoch (a write to `<root>/clock`).
    async fn server_now(&self) -> Result<i64> {
        let client = self.session.client().await?;
        let rt = self.session.request_timeout(&client);
        let clock = self.layout.root_child(crate::transaction::CLOCK);
        loop {
            match deadline(rt, "read the server's clock", client.set_data(&clock, &[], None)).await {
                Ok(stat) => return Ok(stat.mtime),
                Err(Error::ZooKeeper { code: "NONODE", .. }) => match deadline(rt, "create the clock node", client.mkdir(&clock, &persistent(self.session.acls()))).await {
                    Ok(()) | Err(Error::ZooKeeper { code: "NODEEXISTS", .. }) => continue,
                    Err(e) => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }

    /// Compacts the tombstones of keys deleted more than `older_than` ago (by the server's
    /// clock), in two phases: a tombstone older than `older_than` is marked (its version bumped);
    /// a mark older than `older_than` is removed. A tombstone goes after two passes at least
    /// `older_than` apart. A deleted key's znode stays as a tombstone so its version never
    /// restarts (see [`crate::kv`]); this bounds their number.
    ///
    /// # Guarantees
    /// No transaction that read a key can commit after the key's tombstone was removed and the
    /// key re-created: the mark fails every version check of a read made before it, and the
    /// removal comes at least `older_than` (≥ [`MIN_COMPACTION_AGE`], above
    /// [`MAX_TRANSACTION_AGE`] plus a request's longest flight) after the mark, when every such
    /// transaction is too old to commit; a transaction that reads a mark removes it first. Every
    /// write is version-checked, so a key written meanwhile keeps its znode. Safe to run from
    /// several clients at once. Nodes that cannot be removed (a child created by another client)
    /// are reported in [`Compaction::skipped`], never fail the pass.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` when `older_than` is below [`MIN_COMPACTION_AGE`] or above
    /// [`MAX_PRUNE_AGE`]; connection errors.
    pub async fn compact_tombstones(&self, older_than: std::time::Duration) -> Result<Compaction> {
        if older_than < MIN_COMPACTION_AGE {
            return Err(Error::invalid(format!(
                "compactTombstones: olderThan must be at least {} ms (transactions may take up to {} ms)",
                MIN_COMPACTION_AGE.as_millis(),
                MAX_TRANSACTION_AGE.as_millis()
            )));
        }
        let age_ms = check_age(older_than, MAX_PRUNE_AGE, "compactTombstones")?;
        self.session.unless_closed(true, async {
            // Ages on this store's clock (tests move it forward; in production it is the server's).
            let cutoff = self.clock.server_ms(self.server_now().await?).saturating_sub(age_ms);
            self.sweep_with(&self.layout.values_dir(), "tombstones", |_, data, stat| {
                // An ephemeral node is another client's, not a tombstone of ours.
                if stat.ephemeral_owner != 0 || self.clock.server_ms(stat.mtime) >= cutoff {
                    None
                } else if data == TOMBSTONE {
                    Some(Sweep::Mark(COMPACTING, stat.version))
                } else if data == COMPACTING {
                    Some(Sweep::Delete(Some(stat.version)))
                } else {
                    None
                }
            })
            .await
        })
        .await
    }

    /// Locks `key` and reads it; see [`KeyTransaction`].
    ///
    /// Concurrent calls on one key from one client queue like any contenders. A call from
    /// inside an updater of the same key would wait for itself: the JS facade refuses that with
    /// `ALREADY_HELD` (it knows the async context; this layer does not).
    pub async fn begin(&self, key: &str, opts: &AcquireOptions) -> Result<KeyTransaction> {
        KeyTransaction::begin(&self.session, &self.layout, &self.clock, key, opts).await
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

    /// Needs a server: `npm test` / `npm run test:rust` start one and set ZK_CONNECT. Each call
    /// is a store in a chroot `root` of its own (created if absent): compaction passes on a clock
    /// moved hours ahead would otherwise mark the tombstones of tests running beside them.
    async fn store_in(root: &str) -> Store {
        let connect = std::env::var("ZK_CONNECT").expect("ZK_CONNECT is not set: run `npm run test:rust`");
        let options = |connect: String| SessionOptions { session_timeout: std::time::Duration::from_secs(10), ..SessionOptions::new(connect) };
        let plain = Store::new(options(connect.clone())).expect("store");
        let client = plain.session().client().await.expect("client");
        match client.create(&format!("/{root}"), b"", &crate::txn::persistent(zookeeper_client::Acls::anyone_all())).await {
            Ok(_) | Err(zookeeper_client::Error::NodeExists) => {},
            Err(e) => panic!("chroot /{root}: {e}"),
        }
        drop(client); // close() waits for whoever still holds the client
        plain.close().await;
        Store::new(options(format!("{connect}/{root}"))).expect("store")
    }

    fn json(v: i64) -> Result<JsonValue> {
        JsonValue::from_serialize(&v)
    }

    /// A new key, written then deleted: a plain tombstone at version 1.
    async fn deleted_key(s: &Store) -> Result<String> {
        let k = format!("compact-{}", uuid::Uuid::new_v4().simple());
        s.set(&k, &json(1)?, &[]).await?;
        let mut del = Transaction::new();
        del.write(s, &k, Write::Delete)?;
        del.commit(s, &CommitOptions::default()).await?;
        assert!(matches!(s.read(&k).await?, Stored::Tombstone(1)));
        Ok(k)
    }

    #[tokio::test]
    async fn compaction_marks_then_removes_and_a_reader_of_either_still_conflicts() -> Result<()> {
        let s = store_in(&format!("compact-{}", uuid::Uuid::new_v4().simple())).await;
        let k = deleted_key(&s).await?;
        // T1 reads the plain tombstone (version 1). The tombstone is 11 minutes old: the first
        // pass marks it (version 2); nothing is removed yet.
        let mut t1 = Transaction::new();
        assert_eq!(t1.get_many(&s, &[&k]).await?, vec![None]);
        s.clock().advance(MIN_COMPACTION_AGE + std::time::Duration::from_secs(60));
        let first = s.compact_tombstones(MIN_COMPACTION_AGE).await?;
        assert!(first.marked >= 1, "{first:?}");
        assert_eq!(s.read(&k).await?, Stored::Compacting(2));
        // A second pass right away removes nothing: the mark is new.
        let again = s.compact_tombstones(MIN_COMPACTION_AGE).await?;
        assert_eq!(s.read(&k).await?, Stored::Compacting(2), "{again:?}");
        // Eleven more minutes: the mark goes, and another client re-creates the key up to the
        // version T1 read. T1 (22 minutes old by now) cannot commit over it.
        s.clock().advance(MIN_COMPACTION_AGE + std::time::Duration::from_secs(60));
        assert!(s.compact_tombstones(MIN_COMPACTION_AGE).await?.removed >= 1);
        assert_eq!(s.read(&k).await?, Stored::Missing);
        s.set(&k, &json(100)?, &[]).await?;
        s.set(&k, &json(101)?, &[]).await?;
        t1.write(&s, &k, Write::Set(json(7)?))?;
        let err = t1.commit(&s, &CommitOptions::default()).await.err().map(|e| e.code());
        assert_eq!(err, Some("CONFLICT"));
        assert_eq!(s.get(&k).await?.map(|v| v.value), Some(json(101)?));
        // The public entry point refuses a horizon transactions could outlive.
        assert_eq!(s.compact_tombstones(std::time::Duration::from_secs(60)).await.err().map(|e| e.code()), Some("INVALID_ARGUMENT"));
        Ok(())
    }

    #[tokio::test]
    async fn a_reader_of_a_marked_tombstone_keeps_it() -> Result<()> {
        let root = format!("compact-{}", uuid::Uuid::new_v4().simple());
        let s = store_in(&root).await;
        let k = deleted_key(&s).await?;
        s.clock().advance(MIN_COMPACTION_AGE + std::time::Duration::from_secs(60));
        assert!(s.compact_tombstones(MIN_COMPACTION_AGE).await?.marked >= 1);
        assert_eq!(s.read(&k).await?, Stored::Compacting(2));
        // T1 (another client) reads the key just before the mark is old enough: it turns the
        // mark back into a plain tombstone (version 3), so the next pass cannot remove what it
        // read: it only marks it again.
        let t = store_in(&root).await;
        let mut t1 = Transaction::new();
        assert_eq!(t1.get_many(&t, &[&k]).await?, vec![None]);
        assert_eq!(s.read(&k).await?, Stored::Tombstone(3));
        s.clock().advance(MIN_COMPACTION_AGE + std::time::Duration::from_secs(60));
        let pass = s.compact_tombstones(MIN_COMPACTION_AGE).await?;
        assert_eq!(s.read(&k).await?, Stored::Compacting(4), "{pass:?}");
        // T1's clock was left alone, so its age limit does not refuse it: the version check does.
        t1.write(&t, &k, Write::Set(json(7)?))?;
        let err = t1.commit(&t, &CommitOptions::default()).await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT");
        assert!(err.to_string().contains("concurrent writer"), "{err}");
        Ok(())
    }
}
