//! The key-value store: plain and lock-fenced reads and writes of JSON values by key.

use crate::error::{Error, Result};
use crate::kv::{JsonValue, Layout};
use crate::recipe::{self, AcquireOptions, Lock};
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

/// One session plus the znode layout of keys and locks: everything the JS `ZooKeeper` class does.
#[derive(Debug)]
pub struct Store {
    session: Session,
    layout: Layout,
}

impl Store {
    /// A store on a new (lazily connected) session, with the default layout under `/zktx`.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for bad options.
    pub fn new(options: SessionOptions) -> Result<Store> {
        Ok(Store { session: Session::new(options)?, layout: Layout::default() })
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
        recipe::lock(&self.session, path, opts).await
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
    pub async fn set(&self, key: &str, value: &JsonValue, lock: Option<&Lock>) -> Result<i32> {
        let path = self.layout.value_path(key)?;
        let client = match lock {
            Some(lock) => lock.client()?,
            None => self.session.client().await?,
        };
        let rt = self.session.request_timeout(&client);
        let bytes = value.as_str().as_bytes();
        // Try overwrite, then create (then overwrite again, should a concurrent create win).
        for attempt in 0..4 {
            let create = attempt % 2 == 1;
            let mut writer = client.new_multi_writer();
            if let Some(lock) = lock {
                lock.fence(&mut writer)?;
            }
            if create {
                writer.add_create(&path, bytes, &PERSISTENT)?;
            } else {
                writer.add_set_data(&path, bytes, None)?;
            }
            let op = usize::from(lock.is_some());
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
                Err(e) => {
                    return Err(match lock {
                        Some(lock) => fenced_error(e, lock),
                        None => match e {
                            txn::MultiError::Op(_, e) => Error::from(e),
                            txn::MultiError::Request(e) => e,
                        },
                    })
                },
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
