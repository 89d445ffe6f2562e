//! Multi-key optimistic transactions, committed with one ZooKeeper `multi` (as etcd's STM).
//!
//! A [`Transaction`] records the version of every key it reads (absent keys too) and buffers its
//! writes. [`Transaction::commit`] sends one `multi`: optional lock fence, optional idempotence
//! marker, the read checks the isolation level asks for, then the writes. ZooKeeper applies all
//! of it or none; a failed check means another writer got there first: `CONFLICT`, and the caller
//! re-runs the transaction with fresh reads.
//!
//! Isolation levels (anomalies as in etcd's STM):
//! - [`Isolation::Serializable`]: every key read is checked at its read version (absent keys
//!   must still be absent). Committed transactions are equivalent to a serial order: the order
//!   of their commit zxids.
//! - [`Isolation::Snapshot`]: only written keys are checked (first committer wins). No lost
//!   updates, but write skew: two transactions that each read both `a` and `b` and write one of
//!   them can both commit.
//! - [`Isolation::ReadCommitted`]: no checks; writes apply last-writer-wins. Lost updates are
//!   possible. Reads still see only committed data.

use std::collections::HashMap;
use std::time::Duration;

use zookeeper_client as zk;

use crate::error::{Error, Result};
use crate::kv::{JsonValue, MAX_VALUE_BYTES};
use crate::recipe::Lock;
use crate::session::deadline;
use crate::store::{Store, Versioned};
use crate::txn::{commit_multi, MultiError, PERSISTENT};

/// Which reads a commit checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Isolation {
    /// Check every key read (default).
    #[default]
    Serializable,
    /// Check only keys written (write skew possible).
    Snapshot,
    /// Check nothing (lost updates possible).
    ReadCommitted,
}

impl std::str::FromStr for Isolation {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "serializable" => Ok(Isolation::Serializable),
            "snapshot" => Ok(Isolation::Snapshot),
            "read-committed" => Ok(Isolation::ReadCommitted),
            other => Err(Error::invalid(format!("isolation must be \"serializable\", \"snapshot\" or \"read-committed\", got {other:?}"))),
        }
    }
}

/// A buffered write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Create or overwrite.
    Set(JsonValue),
    /// Create; `NODEEXISTS` if the key exists.
    Create(JsonValue),
    /// Delete if present.
    Delete,
}

/// How to commit.
#[derive(Clone, Copy, Debug, Default)]
pub struct CommitOptions<'a> {
    /// Which reads to check.
    pub isolation: Isolation,
    /// Also check that these locks are still held (the commit is fenced on them).
    pub locks: &'a [&'a Lock],
    /// Idempotence key: the commit also creates a marker node named after it, so a commit retried
    /// with the same id after an unknown outcome can never apply twice.
    pub id: Option<&'a str>,
}

/// What a commit did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Writes applied (0 for a read-only transaction).
    pub writes: usize,
    /// The zxid of the commit (`None` for read-only transactions and create-only commits the
    /// server reports no stat for).
    pub zxid: Option<i64>,
    /// New versions of keys set by the commit.
    pub versions: Vec<(String, i32)>,
    /// A commit with this id had already been applied: nothing was applied now.
    pub already_applied: bool,
    /// Round trips the commit itself took (pre-reads, multi, retries after creating parents).
    pub round_trips: u32,
}

/// An optimistic multi-key transaction. One attempt: make a new one to retry.
#[derive(Debug, Default)]
pub struct Transaction {
    reads: HashMap<String, Option<Versioned>>,
    writes: Vec<(String, Write)>,
    read_batches: u32,
}

/// Where idempotence markers live.
const MARKERS: &str = "txn-ids";

impl Transaction {
    /// A new, empty attempt.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `keys` as of now, in one round trip for all keys not read before (a ZooKeeper
    /// multi-read, which the server answers from one consistent state). The attempt's own writes
    /// are visible; a key read twice returns the first read.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a bad key or stored non-JSON; connection errors.
    pub async fn get_many(&mut self, store: &Store, keys: &[&str]) -> Result<Vec<Option<JsonValue>>> {
        let missing: Vec<&str> = {
            let mut seen = std::collections::HashSet::new();
            keys.iter().copied().filter(|k| !self.reads.contains_key(*k) && self.write_of(k).is_none() && seen.insert(*k)).collect()
        };
        if !missing.is_empty() {
            let fetched = fetch(store, &missing).await?;
            self.read_batches += 1;
            for (k, v) in missing.iter().zip(fetched) {
                self.reads.insert(k.to_string(), v);
            }
        }
        Ok(keys.iter().map(|k| self.visible(k)).collect())
    }

    fn write_of(&self, key: &str) -> Option<&Write> {
        self.writes.iter().rev().find(|(k, _)| k == key).map(|(_, w)| w)
    }

    fn visible(&self, key: &str) -> Option<JsonValue> {
        match self.write_of(key) {
            Some(Write::Set(v) | Write::Create(v)) => Some(v.clone()),
            Some(Write::Delete) => None,
            None => self.reads.get(key).cloned().flatten().map(|v| v.value),
        }
    }

    /// Buffers a write of `key` (applied at commit).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a bad key.
    pub fn write(&mut self, store: &Store, key: &str, write: Write) -> Result<()> {
        store.layout().value_path(key)?;
        self.writes.retain(|(k, _)| k != key);
        self.writes.push((key.to_string(), write));
        Ok(())
    }

    /// The versions read so far: `None` for keys read as absent.
    pub fn read_versions(&self) -> impl Iterator<Item = (&str, Option<i32>)> {
        self.reads.iter().map(|(k, v)| (k.as_str(), v.as_ref().map(|v| v.version)))
    }

    /// Whether nothing was written.
    pub fn is_read_only(&self) -> bool {
        self.writes.is_empty()
    }

    /// Commits: one `multi` with the checks `opts.isolation` asks for and all writes.
    ///
    /// # Guarantees
    /// All writes apply atomically or none do. With `Serializable`, a successful commit saw the
    /// latest version of every key it read. A read-only transaction writes nothing: if its reads
    /// came from more than one batch, one multi-read re-validates them.
    ///
    /// # Errors
    /// `CONFLICT` when a check failed (re-run with fresh reads); `LOCK_LOST` when fenced on a lost
    /// lock; `NODEEXISTS` for `Create` of an existing key; `TOO_LARGE` when the request would
    /// exceed the server's limit; `CONNECTIONLOSS`/`TIMEOUT` with outcome unknown (with an `id`,
    /// committing again with the same id is safe).
    pub async fn commit(&mut self, store: &Store, opts: &CommitOptions<'_>) -> Result<CommitReport> {
        let mut report = CommitReport::default();
        if self.writes.is_empty() {
            if opts.isolation == Isolation::Serializable && self.read_batches > 1 {
                self.validate_reads(store).await?;
                report.round_trips += 1;
            }
            for lock in opts.locks {
                if !lock.is_held().await? {
                    return Err(Error::LockLost(format!("lock {} is no longer held", lock.path())));
                }
                report.round_trips += 1;
            }
            return Ok(report);
        }
        // Blind writes: learn whether each key exists (set vs create) and at which version.
        let blind: Vec<String> = self.writes.iter().filter(|(k, _)| !self.reads.contains_key(k)).map(|(k, _)| k.clone()).collect();
        if !blind.is_empty() {
            let keys: Vec<&str> = blind.iter().map(String::as_str).collect();
            let fetched = fetch(store, &keys).await?;
            report.round_trips += 1;
            for (k, v) in blind.into_iter().zip(fetched) {
                self.reads.insert(k, v);
            }
        }
        for (key, w) in &self.writes {
            if matches!(w, Write::Create(_)) && matches!(self.reads.get(key), Some(Some(_))) {
                return Err(Error::zk("NODEEXISTS", format!("create: key {key:?} already exists")));
            }
        }
        let client = match opts.locks.first() {
            Some(lock) => lock.client()?,
            None => store.session().client().await?,
        };
        let rt = store.session().request_timeout(&client);
        let plan = self.plan(store, opts)?;
        let mut created_parents = false;
        loop {
            report.round_trips += 1;
            let mut writer = client.new_multi_writer();
            for op in &plan.ops {
                op.add_to(&mut writer)?;
            }
            match commit_multi(rt, &mut writer, "commit transaction").await {
                Ok(results) => {
                    report.writes = self.writes.len();
                    for (i, result) in results.into_iter().enumerate() {
                        if let (zk::MultiWriteResult::SetData { stat }, Some(key)) = (result, plan.keys.get(i).and_then(|k| k.as_ref())) {
                            report.zxid = Some(stat.mzxid);
                            report.versions.push((key.clone(), stat.version));
                        }
                    }
                    return Ok(report);
                },
                Err(MultiError::Op(i, zk::Error::NoNode)) if !created_parents && plan.ops[i].is_create() => {
                    // The values or markers directory does not exist yet.
                    created_parents = true;
                    for dir in [store.layout().values_dir(), store.layout().root_child(MARKERS)] {
                        match deadline(rt, "create directory", client.mkdir(&dir, &PERSISTENT)).await {
                            Ok(()) | Err(Error::ZooKeeper { code: "NODEEXISTS", .. }) => {},
                            Err(e) => return Err(e),
                        }
                    }
                    report.round_trips += 1;
                },
                Err(MultiError::Op(i, err)) => {
                    let err = plan.explain(i, err, &mut report);
                    // Idempotence: an earlier commit with this id applied; this one must not.
                    return if report.already_applied { Ok(report) } else { Err(err) };
                },
                Err(MultiError::Request(err)) => return Err(err),
            }
        }
    }

    /// Re-reads every key read, in one multi-read, and fails with `CONFLICT` if any changed.
    async fn validate_reads(&self, store: &Store) -> Result<()> {
        let keys: Vec<&str> = self.reads.keys().map(String::as_str).collect();
        let now = fetch(store, &keys).await?;
        for (k, v) in keys.iter().zip(now) {
            let before = self.reads.get(*k).and_then(|v| v.as_ref().map(|v| v.version));
            if before != v.map(|v| v.version) {
                return Err(Error::Conflict(format!("key {k:?} changed while the transaction read it")));
            }
        }
        Ok(())
    }

    fn plan(&self, store: &Store, opts: &CommitOptions<'_>) -> Result<Plan> {
        let layout = store.layout();
        let mut plan = Plan::default();
        for lock in opts.locks {
            plan.push(Op::Check(lock.node_path().to_string(), 0), None, Role::Fence);
        }
        if let Some(id) = opts.id {
            let name = crate::kv::encode_key(id)?;
            plan.push(Op::Create(format!("{}/{name}", layout.root_child(MARKERS)), Vec::new()), None, Role::Marker);
        }
        let checked = |key: &str| match opts.isolation {
            Isolation::Serializable => true,
            Isolation::Snapshot => self.write_of(key).is_some(),
            Isolation::ReadCommitted => false,
        };
        // Read checks of keys that are not written (written keys are checked by their write).
        for (key, read) in &self.reads {
            if self.write_of(key).is_some() || !checked(key) {
                continue;
            }
            let path = layout.value_path(key)?;
            match read {
                Some(v) => plan.push(Op::Check(path, v.version), Some(key), Role::Check),
                None => {
                    // ZooKeeper has no "check absent": create then delete it in the same multi.
                    plan.push(Op::Create(path.clone(), Vec::new()), Some(key), Role::Check);
                    plan.push(Op::Delete(path, None), Some(key), Role::Check);
                },
            }
        }
        let mut bytes = 0usize;
        for (key, write) in &self.writes {
            let path = layout.value_path(key)?;
            let read = self.reads.get(key).cloned().flatten();
            let version = if checked(key) { read.as_ref().map(|v| v.version) } else { None };
            bytes += path.len() + 64;
            match (write, read) {
                (Write::Set(v), Some(_)) => {
                    bytes += v.as_str().len();
                    plan.push(Op::Set(path, v.as_str().as_bytes().to_vec(), version), Some(key), Role::Write);
                },
                (Write::Set(v) | Write::Create(v), None) => {
                    bytes += v.as_str().len();
                    plan.push(Op::Create(path, v.as_str().as_bytes().to_vec()), Some(key), Role::Write);
                },
                (Write::Create(_), Some(_)) => return Err(Error::zk("NODEEXISTS", format!("create: key {key:?} already exists"))),
                (Write::Delete, Some(_)) => plan.push(Op::Delete(path, version), Some(key), Role::Write),
                (Write::Delete, None) if checked(key) => {
                    plan.push(Op::Create(path.clone(), Vec::new()), Some(key), Role::Check);
                    plan.push(Op::Delete(path, None), Some(key), Role::Check);
                },
                (Write::Delete, None) => {},
            }
        }
        if bytes > MAX_VALUE_BYTES {
            return Err(Error::TooLarge(format!("transaction writes {bytes} bytes; one commit is limited to {MAX_VALUE_BYTES}")));
        }
        Ok(plan)
    }
}

/// Reads keys with one multi-read.
async fn fetch(store: &Store, keys: &[&str]) -> Result<Vec<Option<Versioned>>> {
    let paths = keys.iter().map(|k| store.layout().value_path(k)).collect::<Result<Vec<_>>>()?;
    let client = store.session().client().await?;
    let rt = store.session().request_timeout(&client);
    let mut reader = client.new_multi_reader();
    for p in &paths {
        reader.add_get_data(p)?;
    }
    let results = deadline(rt, "read keys", reader.commit()).await?;
    results
        .into_iter()
        .map(|r| match r {
            zk::MultiReadResult::Data { data, stat } => Ok(Some(Versioned { value: JsonValue::from_stored(data)?, version: stat.version })),
            zk::MultiReadResult::Error { err: zk::Error::NoNode } => Ok(None),
            zk::MultiReadResult::Error { err } => Err(Error::from(err)),
            _ => Err(Error::zk("SYSTEMERROR", "unexpected multi-read result")),
        })
        .collect()
}

#[derive(Debug)]
enum Op {
    Check(String, i32),
    Create(String, Vec<u8>),
    Set(String, Vec<u8>, Option<i32>),
    Delete(String, Option<i32>),
}

impl Op {
    fn add_to(&self, w: &mut zk::MultiWriter<'_>) -> Result<()> {
        match self {
            Op::Check(p, v) => w.add_check_version(p, *v)?,
            Op::Create(p, data) => w.add_create(p, data, &PERSISTENT)?,
            Op::Set(p, data, v) => w.add_set_data(p, data, *v)?,
            Op::Delete(p, v) => w.add_delete(p, *v)?,
        }
        Ok(())
    }

    fn is_create(&self) -> bool {
        matches!(self, Op::Create(..))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Fence,
    Marker,
    Check,
    Write,
}

#[derive(Debug, Default)]
struct Plan {
    ops: Vec<Op>,
    keys: Vec<Option<String>>,
    roles: Vec<Role>,
}

impl Plan {
    fn push(&mut self, op: Op, key: Option<&str>, role: Role) {
        self.ops.push(op);
        self.keys.push(key.map(str::to_string));
        self.roles.push(role);
    }

    /// Maps a refused operation to the transaction's error.
    fn explain(&self, index: usize, err: zk::Error, report: &mut CommitReport) -> Error {
        let key = self.keys.get(index).cloned().flatten().unwrap_or_default();
        match (self.roles.get(index), err) {
            (Some(Role::Fence), zk::Error::NoNode | zk::Error::BadVersion) => Error::LockLost("the transaction's lock is no longer held: nothing written".into()),
            (Some(Role::Marker), zk::Error::NodeExists) => {
                report.already_applied = true;
                Error::zk("ALREADY_APPLIED", "a commit with this transaction id was already applied")
            },
            (Some(Role::Check | Role::Write), zk::Error::NoNode | zk::Error::NodeExists | zk::Error::BadVersion) => {
                Error::Conflict(format!("key {key:?} was changed by a concurrent writer"))
            },
            (_, other) => Error::from(other),
        }
    }
}

/// Backoff before retry `attempt` (0-based): exponential from 2 ms, capped at 250 ms, with full
/// jitter so that conflicting transactions spread out instead of colliding again in lockstep.
pub fn retry_delay(attempt: u32) -> Duration {
    let cap = 2u64.saturating_mul(1 << attempt.min(7)).min(250);
    Duration::from_micros(fastrand::u64(0..=cap * 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_names() {
        assert_eq!("serializable".parse::<Isolation>(), Ok(Isolation::Serializable));
        assert_eq!("snapshot".parse::<Isolation>(), Ok(Isolation::Snapshot));
        assert_eq!("read-committed".parse::<Isolation>(), Ok(Isolation::ReadCommitted));
        assert_eq!("x".parse::<Isolation>().unwrap_err().code(), "INVALID_ARGUMENT");
    }

    #[test]
    fn retry_delay_is_bounded_and_grows() {
        for a in 0..20 {
            assert!(retry_delay(a) <= Duration::from_millis(250));
        }
    }
}
