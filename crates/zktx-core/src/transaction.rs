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
//!   them can both commit. Reads made in several batches (several ticks) are checked too, so
//!   that what the transaction saw is one state (no read skew).
//! - [`Isolation::ReadCommitted`]: no checks; writes apply last-writer-wins. Lost updates are
//!   possible. Reads still see only committed data.

use std::collections::HashMap;
use std::time::Duration;

use zookeeper_client as zk;

use crate::error::{Error, Result};
use tokio::time::Instant;

use crate::kv::{JsonValue, Stored, MAX_REQUEST_BYTES, MAX_TRANSACTION_AGE, OP_OVERHEAD_BYTES, TOMBSTONE};
use crate::recipe::Lock;
use crate::session::deadline;
use crate::store::Store;
use crate::txn::{commit_multi, persistent, MultiError};

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
    /// `NODEEXISTS` if the key exists; otherwise nothing (a `Create` then a `Delete` of the key
    /// in one transaction).
    Absent,
}

/// How to commit (`L`: the backend's lock: [`Lock`] on ZooKeeper,
/// [`crate::backend::etcd::EtcdLock`] on etcd).
#[derive(Debug)]
pub struct CommitOptions<'a, L = Lock> {
    /// Which reads to check.
    pub isolation: Isolation,
    /// Also check that these locks are still held (the commit is fenced on them).
    pub locks: &'a [&'a L],
    /// Idempotence key: the commit also creates a marker node named after it, so a commit retried
    /// with the same id after an unknown outcome can never apply twice.
    pub id: Option<&'a str>,
    /// With `id`: what to store in the marker (the caller's result, as JSON text, at most
    /// [`MAX_RECORDED_RESULT_BYTES`]); a later commit with the same id reports it back in
    /// [`CommitReport::recorded_result`].
    pub result: Option<&'a str>,
}

impl<L> Default for CommitOptions<'_, L> {
    fn default() -> Self {
        CommitOptions { isolation: Isolation::default(), locks: &[], id: None, result: None }
    }
}

impl<L> Clone for CommitOptions<'_, L> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<L> Copy for CommitOptions<'_, L> {}

impl Isolation {
    /// Whether a commit checks a key it read at this isolation (`written`: the transaction also
    /// writes it).
    pub fn checks(self, written: bool) -> bool {
        match self {
            Isolation::Serializable => true,
            Isolation::Snapshot => written,
            Isolation::ReadCommitted => false,
        }
    }
}

/// A transaction's buffered writes, the last write of each key, in the order of last writes.
/// Writes of one key combine as the transaction sees them (the same on every backend).
#[derive(Clone, Debug, Default)]
pub struct WriteSet(Vec<(String, Write)>);

impl WriteSet {
    /// The buffered write of `key`.
    pub fn get(&self, key: &str) -> Option<&Write> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, w)| w)
    }

    /// Buffers `write` of `key`, combined with an earlier write of it: `Create` after this
    /// transaction's own `Delete` is a `Set` (the key is absent in between); a create keeps its
    /// "must be absent" through later writes of the key.
    ///
    /// # Errors
    /// `NODEEXISTS` for `Create` of a key this transaction already set or created.
    pub fn add(&mut self, key: &str, write: Write) -> Result<()> {
        let write = match (self.get(key), write) {
            (Some(Write::Delete), Write::Create(v)) => Write::Set(v),
            (Some(Write::Absent), Write::Create(v) | Write::Set(v)) => Write::Create(v),
            (Some(Write::Set(_) | Write::Create(_)), Write::Create(_)) => {
                return Err(Error::zk("NODEEXISTS", format!("create: key {key:?} was already written by this transaction")));
            },
            (Some(Write::Create(_)), Write::Set(v)) => Write::Create(v),
            (Some(Write::Create(_) | Write::Absent), Write::Delete | Write::Absent) => Write::Absent,
            (_, w) => w,
        };
        self.0.retain(|(k, _)| k != key);
        self.0.push((key.to_string(), write));
        Ok(())
    }

    /// The writes, in the order of last writes.
    pub fn iter(&self) -> impl Iterator<Item = &(String, Write)> {
        self.0.iter()
    }

    /// Number of keys written.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What a read of `key` sees of this transaction's own write: `Some(Some(v))` a value it
    /// wrote, `Some(None)` absent (it deleted the key), `None` not written.
    pub fn visible(&self, key: &str) -> Option<Option<&JsonValue>> {
        self.get(key).map(|w| match w {
            Write::Set(v) | Write::Create(v) => Some(v),
            Write::Delete | Write::Absent => None,
        })
    }
}

/// Settles a commit with an idempotence id (the same on every backend): a commit refused with
/// nothing applied (a lost lock, a conflict, a create of a key the earlier commit created) whose
/// id's marker shows an earlier commit applied reports that commit (`already_applied` and its
/// recorded result); a commit that found the marker reads the recorded result.
///
/// # Errors
/// The commit's error when the marker is absent or unreadable; the marker read's error when a
/// commit that found the marker cannot read what it recorded; `CONFLICT` (nothing applied now)
/// when that marker was pruned before its result was read.
pub(crate) async fn settle_with_marker<F, Fut>(id: Option<&str>, committed: Result<()>, mut report: CommitReport, recorded: F) -> Result<CommitReport>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Option<Option<String>>>>,
{
    match committed {
        Err(err) if id.is_some() && !report.already_applied && err.outcome() == crate::error::Outcome::NotApplied && !matches!(err, Error::ClientClosed) => {
            // Refused (before sending, or by a check that comes before the marker): if a commit
            // with this id applied, that is the answer. An unreadable marker leaves the refusal
            // as it was (nothing applied now).
            match recorded().await {
                Ok(Some(recorded)) => {
                    report.already_applied = true;
                    report.recorded_result = recorded;
                    Ok(report)
                },
                Ok(None) | Err(_) => Err(err),
            }
        },
        Err(err) => Err(err),
        Ok(()) => {
            if report.already_applied {
                match recorded().await? {
                    Some(result) => report.recorded_result = result,
                    // The commit found the marker, and a prune deleted it before this read: the
                    // id applied long ago (at least the prune's age), and its result is gone.
                    // Reporting it applied with no result would be a wrong answer (JS: `undefined`
                    // for what `fn` had returned); the id is free again, as for a call made after
                    // the prune: retry (nothing was applied now).
                    None => return Err(Error::Conflict("the transaction id's marker, found by the commit, was pruned before its result was read: nothing applied now; retry (the id applies anew)".into())),
                }
            }
            Ok(report)
        },
    }
}

/// Refuses a result too large for an idempotence marker.
///
/// # Errors
/// `TOO_LARGE` over [`MAX_RECORDED_RESULT_BYTES`].
pub(crate) fn check_recorded_result(result: Option<&str>) -> Result<()> {
    match result {
        Some(r) if r.len() > MAX_RECORDED_RESULT_BYTES => Err(Error::TooLarge(format!("transaction result is {} bytes of JSON; a marker records at most {MAX_RECORDED_RESULT_BYTES}", r.len()))),
        _ => Ok(()),
    }
}

/// The largest caller result an idempotence marker records.
pub const MAX_RECORDED_RESULT_BYTES: usize = 64 * 1024;

/// What a commit did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Number of keys written.
    pub writes: usize,
    /// The zxid of the commit (ZooKeeper's total order), `None` for read-only transactions (and
    /// commits the server reports no stat for).
    pub zxid: Option<i64>,
    /// New versions of keys set by the commit (znode versions on ZooKeeper, mod revisions on
    /// etcd).
    pub versions: Vec<(String, i64)>,
    /// A commit with this id had already been applied: nothing was applied now.
    pub already_applied: bool,
    /// With `already_applied`: the result recorded by the commit that applied (JSON text), if it
    /// recorded one.
    pub recorded_result: Option<String>,
    /// Round trips the commit itself took (pre-reads, multi, retries after creating parents).
    pub round_trips: u32,
}

/// An optimistic multi-key transaction. One attempt: make a new one to retry.
#[derive(Debug, Default)]
pub struct Transaction {
    reads: HashMap<String, Stored>,
    writes: WriteSet,
    read_batches: u32,
    /// When the first read was sent: a commit later than [`MAX_TRANSACTION_AGE`] is refused.
    started: Option<Instant>,
    /// The session of the first read: a commit on another session is refused. A session that
    /// ended (expired, or its host asleep past the session timeout) may have been away longer
    /// than the age limit without this process's monotonic clock seeing it.
    session: Option<i64>,
}

/// Where idempotence markers live.
pub(crate) const MARKERS: &str = "txn-ids";

/// A node under the root that commits write blindly to learn their zxid, and that
/// `pruneTransactionIds` / `compactTombstones` write to read the server's clock.
pub(crate) const CLOCK: &str = "clock";

impl Transaction {
    /// A new, empty attempt.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `keys` as of now, in one round trip for all keys not read before (a ZooKeeper
    /// multi-read, which the server answers from one consistent state; read sets larger than
    /// [`MAX_READ_BATCH_BYTES`] of paths go out as several multi-reads). The attempt's own writes
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
            self.started.get_or_insert_with(|| store.clock().now());
            let (fetched, batches) = self.fetch(store, &missing).await?;
            self.read_batches += batches;
            for (k, v) in missing.iter().zip(fetched) {
                self.reads.insert(k.to_string(), v);
            }
        }
        keys.iter().map(|k| self.visible(k)).collect()
    }

    fn write_of(&self, key: &str) -> Option<&Write> {
        self.writes.get(key)
    }

    fn visible(&self, key: &str) -> Result<Option<JsonValue>> {
        Ok(match self.writes.visible(key) {
            Some(own) => own.cloned(),
            None => match self.reads.get(key) {
                Some(read) => read.decoded(key)?.cloned(),
                None => None,
            },
        })
    }

    /// Buffers a write of `key` (applied at commit), combined with this transaction's earlier
    /// writes of it ([`WriteSet::add`]).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a bad key; `NODEEXISTS` for `Create` of a key this transaction
    /// already set or created.
    pub fn write(&mut self, store: &Store, key: &str, write: Write) -> Result<()> {
        store.layout().value_path(key)?;
        self.writes.add(key, write)
    }

    /// The versions read so far: `None` for keys read as absent.
    pub fn read_versions(&self) -> impl Iterator<Item = (&str, Option<i32>)> {
        self.reads.iter().map(|(k, v)| (k.as_str(), v.value().and(v.znode_version())))
    }

    /// Whether nothing was written.
    pub fn is_read_only(&self) -> bool {
        self.writes.is_empty()
    }

    /// Commits: one `multi` with the checks `opts.isolation` asks for and all writes (and, with
    /// an `id`, the id's marker: a transaction with an id always commits one, even when it writes
    /// no key, so that a replay of it finds the recorded result whatever its function does).
    ///
    /// # Guarantees
    /// All writes apply atomically or none do. With `Serializable`, a successful commit saw the
    /// latest version of every key it read; versions never restart (deletes leave tombstones, see
    /// [`crate::kv`]), so a key deleted and re-created since the read is a conflict too. A
    /// read-only transaction writes nothing: if its reads came from more than one batch, one
    /// multi-read re-validates them. With an `id`, a commit whose id was already applied applies
    /// nothing and reports `already_applied` (also when this attempt's writes could not even be
    /// planned against the state the earlier commit left).
    ///
    /// # Errors
    /// `CONFLICT` when a check failed (re-run with fresh reads) or the attempt is older than
    /// [`MAX_TRANSACTION_AGE`]; `LOCK_LOST` when fenced on a lost lock; `NODEEXISTS` for `Create`
    /// of an existing key; `TOO_LARGE` when the request would exceed the server's limit (nothing
    /// sent); `CONNECTIONLOSS`/`TIMEOUT` with outcome unknown (with an `id`, committing again
    /// with the same id is safe).
    pub async fn commit(&mut self, store: &Store, opts: &CommitOptions<'_>) -> Result<CommitReport> {
        check_recorded_result(opts.result)?;
        if let Some(id) = opts.id {
            marker_path(store, id)?;
        }
        let mut report = CommitReport::default();
        let committed = store.session().unless_closed(true, self.commit_inner(store, opts, Vec::new(), &mut report)).await;
        settle_with_marker(opts.id, committed, report, || recorded(store, opts.id)).await
    }

    /// Commits the reads' checks and the writes together with a coordinator's decision ops
    /// (see [`crate::coordinator`]): all apply in one `multi`, or none. A failed decision op is
    /// `ROLLED_BACK` (the coordinator's transaction was already ended).
    pub(crate) async fn commit_deciding(&mut self, store: &Store, isolation: Isolation, decision: Vec<Op>) -> Result<CommitReport> {
        let mut report = CommitReport::default();
        let opts = CommitOptions { isolation, ..Default::default() };
        store.session().unless_closed(true, self.commit_inner(store, &opts, decision, &mut report)).await?;
        Ok(report)
    }

    /// Whether the attempt read or wrote anything.
    pub fn is_empty(&self) -> bool {
        self.reads.is_empty() && self.writes.is_empty()
    }

    async fn commit_inner(&mut self, store: &Store, opts: &CommitOptions<'_>, decision: Vec<Op>, report: &mut CommitReport) -> Result<()> {
        // A transaction with an id commits its marker even when it writes nothing.
        if self.writes.is_empty() && decision.is_empty() && opts.id.is_none() {
            if opts.isolation != Isolation::ReadCommitted && self.read_batches > 1 {
                self.check_age(store)?;
                self.validate_reads(store).await?;
                report.round_trips += 1;
            }
            for lock in opts.locks {
                if !lock.is_held().await? {
                    return Err(Error::LockLost(format!("lock {} is no longer held", lock.path())));
                }
                report.round_trips += 1;
            }
            return Ok(());
        }
        // Blind writes: learn whether each key exists (set vs create) and at which version.
        let blind: Vec<String> = self.writes.iter().filter(|(k, _)| !self.reads.contains_key(k)).map(|(k, _)| k.clone()).collect();
        if !blind.is_empty() {
            self.started.get_or_insert_with(|| store.clock().now());
            let keys: Vec<&str> = blind.iter().map(String::as_str).collect();
            let (fetched, batches) = self.fetch(store, &keys).await?;
            report.round_trips += batches;
            for (k, v) in blind.into_iter().zip(fetched) {
                self.reads.insert(k, v);
            }
        }
        for (key, w) in self.writes.iter() {
            if matches!(w, Write::Create(_) | Write::Absent) && self.reads.get(key).is_some_and(Stored::exists) {
                return Err(Error::zk("NODEEXISTS", format!("create: key {key:?} already exists")));
            }
        }
        let mut plan = self.plan(store, opts)?;
        for op in decision {
            plan.push(op, None, Role::Decision);
        }
        self.check_age(store)?;
        let client = match opts.locks.first() {
            Some(lock) => lock.client()?,
            None => store.session().client().await?,
        };
        self.same_session(client.session_id().0)?;
        let rt = store.session().request_timeout(&client);
        let mut created_parents = false;
        loop {
            report.round_trips += 1;
            let mut writer = client.new_multi_writer();
            for op in &plan.ops {
                op.add_to(&mut writer, store.session().acls())?;
            }
            match commit_multi(rt, &mut writer, "commit transaction").await {
                Ok(results) => {
                    report.writes = self.writes.len();
                    for (i, result) in results.into_iter().enumerate() {
                        // A created znode is at version 0; its stat may be invalid (ZOOKEEPER-4026).
                        let (stat, version) = match result {
                            zk::MultiWriteResult::SetData { stat } => (stat, stat.version),
                            zk::MultiWriteResult::Create { stat, .. } => (stat, 0),
                            _ => continue,
                        };
                        if stat.mzxid > 0 {
                            report.zxid = Some(report.zxid.map_or(stat.mzxid, |z| z.max(stat.mzxid)));
                        }
                        if let (Role::Write, Some(key)) = (plan.roles[i], plan.keys.get(i).and_then(|k| k.as_ref())) {
                            report.versions.push((key.clone(), i64::from(version)));
                        }
                    }
                    return Ok(());
                },
                Err(MultiError::Op(i, zk::Error::NoNode)) if !created_parents && (plan.ops[i].is_create() || plan.roles[i] == Role::Clock) => {
                    // The values or markers directory, or the clock node, does not exist yet.
                    created_parents = true;
                    for dir in [store.layout().values_dir(), store.layout().root_child(MARKERS), store.layout().root_child(CLOCK)] {
                        match deadline(rt, "create directory", client.mkdir(&dir, &persistent(store.session().acls()))).await {
                            Ok(()) | Err(Error::ZooKeeper { code: "NODEEXISTS", .. }) => {},
                            Err(e) => return Err(e),
                        }
                    }
                    report.round_trips += 1;
                },
                Err(MultiError::Op(i, err)) => {
                    let err = plan.explain(i, err, report);
                    // Idempotence: an earlier commit with this id applied; this one must not.
                    return if report.already_applied { Ok(()) } else { Err(err) };
                },
                Err(MultiError::Request(err)) => return Err(err),
            }
        }
    }

    /// Refuses an attempt older than [`MAX_TRANSACTION_AGE`]: a tombstone it read may have been
    /// compacted and its key re-created at the version it read.
    fn check_age(&self, store: &Store) -> Result<()> {
        if self.started.is_some_and(|t| store.clock().elapsed(t) > MAX_TRANSACTION_AGE) {
            return Err(Error::Conflict(format!(
                "transaction ran longer than {} s between its first read and its commit: re-run it with fresh reads",
                MAX_TRANSACTION_AGE.as_secs()
            )));
        }
        Ok(())
    }

    /// Refuses to go on (read more, validate, commit) on another session than the first read's:
    /// the time between them is not bounded by this process's clock (see [`Transaction::session`]).
    fn same_session(&self, session: i64) -> Result<()> {
        match self.session {
            Some(first) if first != session => Err(Error::Conflict(
                "the ZooKeeper session changed since the transaction's first read (the old one expired): re-run it with fresh reads".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Reads `keys` (see [`fetch`]) on the first read's session.
    async fn fetch(&mut self, store: &Store, keys: &[&str]) -> Result<(Vec<Stored>, u32)> {
        let (read, batches, session) = fetch(store, keys).await?;
        self.same_session(session)?;
        self.session = Some(session);
        Ok((read, batches))
    }

    /// Re-reads every key read and fails with `CONFLICT` if any changed.
    async fn validate_reads(&self, store: &Store) -> Result<()> {
        let keys: Vec<&str> = self.reads.keys().map(String::as_str).collect();
        let (now, _, session) = fetch(store, &keys).await?;
        self.same_session(session)?;
        for (k, v) in keys.iter().zip(now) {
            if self.reads.get(*k).map(|r| (r.znode_version(), r.exists())) != Some((v.znode_version(), v.exists())) {
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
            let data = opts.result.unwrap_or_default().as_bytes().to_vec();
            plan.push(Op::Create(marker_path(store, id)?, data), None, Role::Marker);
        }
        // Snapshot reads made in several batches (several ticks, or a read set over one
        // request) came from several states: check them all, or the snapshot could mix states
        // that never existed together (read skew), which snapshot isolation does not allow.
        let spans_states = opts.isolation == Isolation::Snapshot && self.read_batches > 1;
        let checked = |key: &str| spans_states || opts.isolation.checks(self.write_of(key).is_some());
        // Asserts that `key` is still as read: at its version, or (never created) without a
        // znode — a create that must succeed, and leaves a tombstone.
        let assert_unchanged = |plan: &mut Plan, key: &str, path: String, read: &Stored| match read.znode_version() {
            Some(v) => plan.push(Op::Check(path, v), Some(key), Role::Check),
            None => plan.push(Op::Create(path, TOMBSTONE.to_vec()), Some(key), Role::Check),
        };
        // Read checks of keys that are not written (written keys are checked by their write).
        for (key, read) in &self.reads {
            if self.write_of(key).is_some() || !checked(key) {
                continue;
            }
            assert_unchanged(&mut plan, key, layout.value_path(key)?, read);
        }
        for (key, write) in self.writes.iter() {
            let path = layout.value_path(key)?;
            let read = self.reads.get(key).cloned().unwrap_or(Stored::Missing);
            if !matches!(write, Write::Create(_) | Write::Absent) {
                read.writable(key)?;
            }
            let version = if checked(key) { read.znode_version() } else { None };
            match (write, &read) {
                (Write::Set(v) | Write::Create(v), Stored::Missing) => plan.push(Op::Create(path, v.as_str().as_bytes().to_vec()), Some(key), Role::Write),
                // A foreign value (not JSON, written by another client) is replaced like any value.
                (Write::Set(v), Stored::Tombstone(_) | Stored::Compacting(_) | Stored::Value(..) | Stored::Foreign(_) | Stored::Ephemeral(_)) => {
                    plan.push(Op::Set(path, v.as_str().as_bytes().to_vec(), version), Some(key), Role::Write)
                },
                // Create needs the key absent at commit whatever the isolation: check the
                // tombstone's version.
                (Write::Create(v), Stored::Tombstone(tv) | Stored::Compacting(tv)) => plan.push(Op::Set(path, v.as_str().as_bytes().to_vec(), Some(*tv)), Some(key), Role::Write),
                (Write::Create(_) | Write::Absent, Stored::Value(..) | Stored::Foreign(_) | Stored::Ephemeral(_)) => {
                    return Err(Error::zk("NODEEXISTS", format!("create: key {key:?} already exists")))
                },
                // Created and deleted by this transaction: the key must be absent, and stays so.
                (Write::Absent, _) => assert_unchanged(&mut plan, key, path, &read),
                (Write::Delete, Stored::Value(..) | Stored::Foreign(_) | Stored::Ephemeral(_)) => plan.push(Op::Set(path, TOMBSTONE.to_vec(), version), Some(key), Role::Write),
                // Deleting an absent key changes nothing; under a checking isolation it still
                // asserts the key is absent.
                (Write::Delete, _) if checked(key) => assert_unchanged(&mut plan, key, path, &read),
                (Write::Delete, _) => {},
            }
        }
        if !plan.ops.iter().any(|op| matches!(op, Op::Set(..))) && plan.roles.contains(&Role::Write) {
            // Only creates: the server answers a create inside a multi without a valid stat
            // (ZOOKEEPER-4026), so a blind write of the clock node reports the commit's zxid.
            plan.push(Op::Set(layout.root_child(CLOCK), Vec::new(), None), None, Role::Clock);
        }
        let bytes = plan.request_bytes(crate::session::acl_bytes(&store.session().options().acl));
        if bytes > MAX_REQUEST_BYTES {
            return Err(Error::TooLarge(format!(
                "the commit would be a {bytes}-byte request; ZooKeeper accepts at most {MAX_REQUEST_BYTES} (jute.maxbuffer): nothing was sent"
            )));
        }
        Ok(plan)
    }
}

fn marker_path(store: &Store, id: &str) -> Result<String> {
    Ok(format!("{}/{}", store.layout().root_child(MARKERS), crate::kv::encode_name("transaction id", id)?))
}

/// Whether a transaction with this id committed: `None` when its marker is absent (with no id:
/// `None`), `Some(recorded result)` when present.
///
/// # Errors
/// `INVALID_ARGUMENT` for a malformed id; connection errors (the answer is then unknown).
pub async fn recorded(store: &Store, id: Option<&str>) -> Result<Option<Option<String>>> {
    let Some(id) = id else { return Ok(None) };
    let path = marker_path(store, id)?;
    store
        .session()
        .unless_closed(false, async {
            let client = store.session().client().await?;
            match deadline(store.session().request_timeout(&client), "read transaction id", client.get_data(&path)).await {
                Ok((data, _)) => Ok(Some(String::from_utf8(data).ok().filter(|s| !s.is_empty()))),
                Err(Error::ZooKeeper { code: "NONODE", .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
}

/// Reads keys with multi-reads, as few as the request limit allows (each answered from one
/// consistent state); returns the values, the number of round trips and the session's id.
pub(crate) async fn fetch(store: &Store, keys: &[&str]) -> Result<(Vec<Stored>, u32, i64)> {
    store.session().unless_closed(false, fetch_now(store, keys)).await
}

async fn fetch_now(store: &Store, keys: &[&str]) -> Result<(Vec<Stored>, u32, i64)> {
    let paths = keys.iter().map(|k| store.layout().value_path(k)).collect::<Result<Vec<_>>>()?;
    let client = store.session().client().await?;
    let rt = store.session().request_timeout(&client);
    let mut out = Vec::with_capacity(paths.len());
    let mut batches = 0;
    for batch in crate::store::read_batches(&paths) {
        let mut attempts = 0;
        let read = loop {
            attempts += 1;
            let mut reader = client.new_multi_reader();
            for p in batch {
                reader.add_get_data(p)?;
            }
            let results = deadline(rt, "read keys", reader.commit()).await?;
            batches += 1;
            let mut read = Vec::with_capacity(batch.len());
            for r in results {
                read.push(match r {
                    zk::MultiReadResult::Data { data, stat } => Stored::from_stat(data, &stat),
                    zk::MultiReadResult::Error { err: zk::Error::NoNode } => Stored::Missing,
                    zk::MultiReadResult::Error { err } => return Err(Error::from(err)),
                    _ => return Err(Error::zk("SYSTEMERROR", "unexpected multi-read result")),
                });
            }
            // A tombstone marked by compaction may be removed once the mark is old enough: keep
            // what this transaction read (see `crate::kv`). Rare: only keys deleted long ago. An
            // unmark that succeeds proves the key unchanged since the batch was read, so the
            // batch is still one state; one that fails means it changed: read the batch again.
            let mut consistent = true;
            for (path, r) in batch.iter().zip(read.iter_mut()) {
                if let Stored::Compacting(version) = *r {
                    batches += 1;
                    match crate::store::unmark_once(&client, rt, path, version).await? {
                        Some(kept) => *r = kept,
                        None => consistent = false,
                    }
                }
            }
            if consistent {
                break read;
            }
            if attempts >= 16 {
                return Err(Error::Conflict("keys kept changing while the transaction read them".into()));
            }
        };
        out.extend(read);
    }
    Ok((out, batches, client.session_id().0))
}

#[derive(Debug)]
pub(crate) enum Op {
    Check(String, i32),
    Create(String, Vec<u8>),
    Set(String, Vec<u8>, Option<i32>),
    /// Delete at a version (`None`: any).
    Delete(String, Option<i32>),
}

impl Op {
    fn add_to(&self, w: &mut zk::MultiWriter<'_>, acls: zk::Acls<'_>) -> Result<()> {
        match self {
            Op::Check(p, v) => w.add_check_version(p, *v)?,
            Op::Create(p, data) => w.add_create(p, data, &persistent(acls))?,
            Op::Set(p, data, v) => w.add_set_data(p, data, *v)?,
            Op::Delete(p, v) => w.add_delete(p, *v)?,
        }
        Ok(())
    }

    fn is_create(&self) -> bool {
        matches!(self, Op::Create(..))
    }

    /// An upper estimate of the operation's size on the wire; a create also carries the ACL.
    fn request_bytes(&self, acl_bytes: usize) -> usize {
        OP_OVERHEAD_BYTES
            + match self {
                Op::Check(p, _) | Op::Delete(p, _) => p.len(),
                Op::Create(p, d) => p.len() + d.len() + acl_bytes,
                Op::Set(p, d, _) => p.len() + d.len(),
            }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Fence,
    Marker,
    Check,
    Write,
    Clock,
    /// A coordinator's decision ops.
    Decision,
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

    fn request_bytes(&self, acl_bytes: usize) -> usize {
        OP_OVERHEAD_BYTES + self.ops.iter().map(|op| op.request_bytes(acl_bytes)).sum::<usize>()
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
            (Some(Role::Decision), zk::Error::NoNode | zk::Error::NodeExists | zk::Error::BadVersion) => {
                Error::RolledBack("the transaction was already ended (aborted by recovery, or its coordinator's session expired): nothing was committed".into())
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
    fn writes_of_one_key_combine_as_the_transaction_sees_them() {
        let v = |n: i64| JsonValue::from_serialize(&n).unwrap();
        let mut w = WriteSet::default();
        w.add("k", Write::Delete).unwrap();
        w.add("k", Write::Create(v(1))).unwrap();
        assert_eq!(w.get("k"), Some(&Write::Set(v(1)))); // delete then create: a set
        assert_eq!(w.add("k", Write::Create(v(2))).unwrap_err().code(), "NODEEXISTS");
        let mut w = WriteSet::default();
        w.add("k", Write::Create(v(1))).unwrap();
        w.add("k", Write::Set(v(2))).unwrap();
        assert_eq!(w.get("k"), Some(&Write::Create(v(2)))); // a create keeps its check
        w.add("k", Write::Delete).unwrap();
        assert_eq!(w.get("k"), Some(&Write::Absent));
        assert_eq!(w.visible("k"), Some(None));
        w.add("k", Write::Set(v(3))).unwrap();
        assert_eq!(w.get("k"), Some(&Write::Create(v(3))));
        w.add("j", Write::Set(v(4))).unwrap();
        w.add("k", Write::Set(v(5))).unwrap();
        assert_eq!(w.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["j", "k"]); // order of last writes
        assert_eq!((w.len(), w.visible("j"), w.visible("x")), (2, Some(Some(&v(4))), None));
    }

    #[test]
    fn isolation_levels_check_what_they_promise() {
        assert!(Isolation::Serializable.checks(false) && Isolation::Serializable.checks(true));
        assert!(!Isolation::Snapshot.checks(false) && Isolation::Snapshot.checks(true));
        assert!(!Isolation::ReadCommitted.checks(false) && !Isolation::ReadCommitted.checks(true));
    }

    #[test]
    fn retry_delay_is_bounded_and_grows() {
        for a in 0..20 {
            assert!(retry_delay(a) <= Duration::from_millis(250));
        }
    }
}
