//! The key-value store: plain and lock-fenced reads and writes of JSON values by key.

use crate::error::{Error, Result};
use crate::kv::{JsonValue, Layout};
use crate::recipe::{self, AcquireOptions, HeldPaths, Lock, Registration};
use crate::session::{deadline, Session, SessionOptions};
use crate::txn::{self, commit_multi, fenced_error, Committed, KeyTransaction, PERSISTENT};

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
        recipe::validate_lock_path(path)?;
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
            recipe::validate_lock_path(p)?;
        }
        let session = self.session.client().await?.session_id();
        let mut registrations = Vec::with_capacity(order.len());
        for p in &order {
            registrations.push(Some(Registration::claim(&self.held, p, session)?));
        }
        let locks = recipe::multi_lock(&self.session, paths, opts).await?;
        Ok(locks.into_iter().zip(registrations).map(|(l, r)| l.with_registration(r)).collect())
    }

    /// Reads `key`: `None` when absent.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a bad key or a node holding something other than JSON;
    /// connection errors.
    pub async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        let path = self.layout.value_path(key)?;
        let client = self.session.client().await?;
        match deadline(self.session.request_timeout(&client), "read value", client.get_data(&path)).await {
            Ok((data, stat)) => Ok(Some(Versioned { value: JsonValue::from_stored(data)?, version: stat.version })),
            Err(Error::ZooKeeper { code: "NONODE", .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes `key` unconditionally, or fenced on `lock` (one `multi` that checks the lock node
    /// first). Returns the new version.
    ///
    /// # Errors
    /// `LOCK_LOST` / `SESSIONEXPIRED` when fenced on a lock that is no longer held (nothing
    /// written); `CONNECTIONLOSS`/`TIMEOUT` with outcome unknown.
    pub async fn set(&self, key: &str, value: &JsonValue, locks: &[&Lock]) -> Result<i32> {
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
                writer.add_create(&path, bytes, &PERSISTENT)?;
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
                    match deadline(rt, "create values directory", client.mkdir(dir, &PERSISTENT)).await {
                        Ok(()) | Err(Error::ZooKeeper { code: "NODEEXISTS", .. }) => continue,
                        Err(e) => return Err(e),
                    }
                },
                Err(e) => return Err(fenced_error(e, locks)),
            }
        }
        Err(Error::Conflict(format!("key {key:?} kept being created and deleted concurrently")))
    }

    /// Lists the children of any znode (e.g. a lock's queue); empty when the node is absent.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a malformed path; connection errors.
    pub async fn children(&self, path: &str) -> Result<Vec<String>> {
        let client = self.session.client().await?;
        match deadline(self.session.request_timeout(&client), "list children", client.list_children(path)).await {
            Ok(mut children) => {
                children.sort();
                Ok(children)
            },
            Err(Error::ZooKeeper { code: "NONODE", .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Deletes the idempotence markers of transactions committed more than `older_than` ago
    /// (see [`crate::transaction::CommitOptions::id`]); returns how many were deleted.
    ///
    /// # Guarantees
    /// Ages come from the markers' creation times on the server compared with this machine's
    /// clock, so keep `older_than` well above any clock skew and above the longest time a commit
    /// with that id may still be retried. Safe to run from several clients at once.
    pub async fn prune_transaction_ids(&self, older_than: std::time::Duration) -> Result<usize> {
        let dir = self.layout.root_child("txn-ids");
        let client = self.session.client().await?;
        let rt = self.session.request_timeout(&client);
        let names = match deadline(rt, "list transaction ids", client.list_children(&dir)).await {
            Ok(names) => names,
            Err(Error::ZooKeeper { code: "NONODE", .. }) => return Ok(0),
            Err(e) => return Err(e),
        };
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let cutoff = now_ms - older_than.as_millis() as i64;
        let mut deleted = 0;
        for chunk in names.chunks(500) {
            // One multi-read gives the creation time of 500 markers.
            let mut reader = client.new_multi_reader();
            let paths: Vec<String> = chunk.iter().map(|n| format!("{dir}/{n}")).collect();
            for p in &paths {
                reader.add_get_data(p)?;
            }
            let results = deadline(rt, "stat transaction ids", reader.commit()).await?;
            for (path, result) in paths.iter().zip(results) {
                if let zookeeper_client::MultiReadResult::Data { stat, .. } = result {
                    if stat.ctime < cutoff {
                        match deadline(rt, "delete transaction id", client.delete(path, None)).await {
                            Ok(()) => deleted += 1,
                            Err(Error::ZooKeeper { code: "NONODE", .. }) => {},
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
        }
        Ok(deleted)
    }

    /// Locks `key` and reads it; see [`KeyTransaction`].
    pub async fn begin(&self, key: &str, opts: &AcquireOptions) -> Result<KeyTransaction> {
        KeyTransaction::begin(&self.session, &self.layout, key, opts).await
    }

    /// Sets `key` to `value` under its lock, fenced. See [`txn::execute_transaction`].
    pub async fn execute_transaction(&self, key: &str, value: JsonValue, opts: &AcquireOptions) -> Result<Committed> {
        txn::execute_transaction(&self.session, &self.layout, key, opts, |_| async move { Ok(value) }).await
    }

    /// Closes the session (idempotent); see [`Session::close`].
    pub async fn close(&self) {
        self.session.close().await
    }
}
