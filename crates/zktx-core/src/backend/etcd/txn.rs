//! Multi-key optimistic transactions on etcd, committed with one `Txn` (etcd's own STM, with
//! zktx's semantics: [`crate::transaction`]).
//!
//! What is shared with ZooKeeper: the buffered writes and how writes of one key combine
//! ([`WriteSet`]), which reads each isolation level checks ([`Isolation::checks`]), and how a
//! commit with an idempotence id settles against its marker ([`settle_with_marker`]); the JS
//! retry loop is the same code. What is etcd's: reads are `Range`s inside one `Txn` (one
//! revision; the batches after the first read at the first one's revision, so all reads of an
//! attempt are one state of the store however many batches they take), and the commit is one
//! `Txn` whose compares are the lock fences
//! (`create_revision(lock key) == token`), the id's marker (`create_revision == 0`), the reads
//! (`mod_revision == revision read`, 0 for an absent key) and creates (`create_revision == 0`).
//! Revisions never restart, so no tombstones are needed (a delete is a real delete), there is no
//! limit on the time between a read and the commit, and a new session in between changes
//! nothing (every check is on the data, not on the session).

use std::collections::HashMap;

use etcd_client as etcd;

use super::kv::{check_fences, lost, Read};
use super::{within, EtcdLock, EtcdSession};
use crate::error::{Error, Result};
use crate::coordinator::records::Cond;
use crate::kv::{JsonValue, Layout};
use crate::transaction::{settle_with_marker, CommitOptions, CommitReport, Write, WriteSet, MARKERS};

/// etcd's default `--max-txn-ops`: the most compares, or operations of one branch, a `Txn` may
/// have. A transaction that needs more is refused before anything is sent.
pub const MAX_TXN_OPS: usize = 128;

/// etcd's default `--max-request-bytes` (1.5 MiB), less a margin for the request's framing.
pub const MAX_TXN_BYTES: usize = 1_500_000;

/// The largest answer to a read `Txn` the client accepts: [`MAX_TXN_OPS`] values of up to
/// [`crate::kv::MAX_VALUE_BYTES`] each, with their keys.
pub(super) const MAX_READ_ANSWER_BYTES: usize = MAX_TXN_OPS * (crate::kv::MAX_VALUE_BYTES + 4096) + 65_536;

/// One attempt of a transaction on etcd. Make a new one to retry.
#[derive(Debug, Default)]
pub struct EtcdTransaction {
    reads: HashMap<String, Read>,
    writes: WriteSet,
    /// The revision of the first read batch: every later batch reads at it (etcd's own STM reads
    /// at the first read's revision too), so the attempt's reads are one snapshot. A read-only
    /// attempt then needs no validation (it fits the serial order at this revision), and snapshot
    /// isolation reads a snapshot, not keys from several moments.
    revision: Option<i64>,
}

/// Why a compare is in the commit, to explain its failure.
#[derive(Clone, Debug)]
enum Role {
    Fence,
    Marker,
    /// A key read (or written after a read) must be at the revision read.
    Check(String),
    /// A key created must be absent; `read`: the transaction had read it (as absent).
    Create { key: String, read: bool },
    /// A condition of a coordinator's decision committed with the transaction.
    Decision(Cond),
}

/// A coordinator's decision committed in the same `Txn` as a transaction
/// ([`EtcdTransaction::commit_deciding`]): its conditions and its writes.
#[derive(Default)]
pub(crate) struct Decision {
    pub conds: Vec<Cond>,
    pub ops: Vec<etcd::TxnOp>,
    /// The size of `ops` (keys and values), for the request size limit.
    pub bytes: usize,
}

impl EtcdTransaction {
    /// A new, empty attempt.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the attempt read or wrote nothing yet.
    pub fn is_empty(&self) -> bool {
        self.reads.is_empty() && self.writes.is_empty()
    }

    /// Reads `keys`: those not read before, in one `Txn` of `Range`s at the attempt's revision
    /// (the first batch's: all reads of an attempt are one consistent state; read sets over
    /// [`MAX_TXN_OPS`] keys go out as several `Txn`s at that revision). The attempt's own writes
    /// are visible; a key read twice returns the first read.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a bad key or stored non-JSON; `CONFLICT` when the attempt's
    /// revision was compacted since its first read (retry with fresh reads); connection errors.
    pub async fn get_many(&mut self, session: &EtcdSession, layout: &Layout, keys: &[&str]) -> Result<Vec<Option<JsonValue>>> {
        let missing: Vec<&str> = {
            let mut seen = std::collections::HashSet::new();
            keys.iter().copied().filter(|k| !self.reads.contains_key(*k) && self.writes.get(k).is_none() && seen.insert(*k)).collect()
        };
        let paths = missing.iter().map(|k| layout.value_path(k)).collect::<Result<Vec<_>>>()?;
        for (batch, keys) in paths.chunks(MAX_TXN_OPS).zip(missing.chunks(MAX_TXN_OPS)) {
            let (read, revision) = session.read_keys(batch, self.revision).await?;
            self.revision.get_or_insert(revision);
            for (k, r) in keys.iter().zip(read) {
                self.reads.insert(k.to_string(), r);
            }
        }
        keys.iter()
            .map(|k| {
                Ok(match self.writes.visible(k) {
                    Some(own) => own.cloned(),
                    None => match self.reads.get(*k) {
                        Some(read) => read.decoded(k)?.cloned(),
                        None => None,
                    },
                })
            })
            .collect()
    }

    /// Buffers a write of `key` ([`WriteSet::add`]).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a bad key; `NODEEXISTS` for `Create` of a key this transaction
    /// already set or created.
    pub fn write(&mut self, layout: &Layout, key: &str, write: Write) -> Result<()> {
        layout.value_path(key)?;
        self.writes.add(key, write)
    }

    /// The revisions read so far: `None` for keys read as absent (or holding foreign data).
    pub fn read_versions(&self) -> impl Iterator<Item = (&str, Option<i64>)> {
        self.reads.iter().map(|(k, r)| (k.as_str(), r.value().map(|_| r.revision())))
    }

    /// Commits: one `Txn` with the fences, the id's marker, the checks `opts.isolation` asks for
    /// and all writes. Guarantees and errors as [`crate::transaction::Transaction::commit`], with
    /// etcd's limits: `TOO_LARGE` for more than [`MAX_TXN_OPS`] compares or writes, or a request
    /// over [`MAX_TXN_BYTES`] (nothing sent).
    ///
    /// # Errors
    /// `CONFLICT`, `LOCK_LOST` / `SESSIONEXPIRED`, `NODEEXISTS`, `TOO_LARGE`,
    /// `CONNECTIONLOSS` / `TIMEOUT` with outcome unknown.
    pub async fn commit(&mut self, session: &EtcdSession, layout: &Layout, opts: &CommitOptions<'_, EtcdLock>) -> Result<CommitReport> {
        crate::transaction::check_recorded_result(opts.result)?;
        let marker = opts.id.map(|id| marker_key(layout, id)).transpose()?;
        let mut report = CommitReport::default();
        let committed = self.commit_inner(session, layout, opts, marker.as_deref(), &Decision::default(), &mut report).await;
        // A commit that found the marker read its result in the same revision: a second read
        // could find it pruned since, and report the id applied with no result.
        let found = report.already_applied.then(|| report.recorded_result.clone());
        settle_with_marker(opts.id, committed, report, || async move {
            match found {
                Some(result) => Ok(Some(result)),
                None => session.recorded(layout, opts.id).await,
            }
        })
        .await
    }

    /// Commits serializably, with a coordinator's decision in the same `Txn`: it applies with
    /// the transaction's writes or not at all.
    ///
    /// # Errors
    /// `ROLLED_BACK` when a condition of the decision failed (the run was already ended),
    /// `CONFLICT` when a key read or written changed; as [`EtcdTransaction::commit`].
    pub(crate) async fn commit_deciding(&mut self, session: &EtcdSession, layout: &Layout, decision: &Decision) -> Result<CommitReport> {
        let mut report = CommitReport::default();
        let opts = CommitOptions { isolation: crate::transaction::Isolation::Serializable, ..Default::default() };
        self.commit_inner(session, layout, &opts, None, decision, &mut report).await?;
        Ok(report)
    }

    async fn commit_inner(&self, session: &EtcdSession, layout: &Layout, opts: &CommitOptions<'_, EtcdLock>, marker: Option<&str>, decision: &Decision, report: &mut CommitReport) -> Result<()> {
        // A closed client sends nothing (its lease, and the keys of its locks, may outlive an
        // unconfirmed revoke); nor does a commit fenced on a released lock.
        if session.is_closed() {
            return Err(Error::ClientClosed);
        }
        check_fences(opts.locks)?;
        let mut compares: Vec<(etcd::Compare, String, Role)> = Vec::new();
        let mut ops: Vec<etcd::TxnOp> = Vec::new();
        let mut bytes = 0usize;
        for lock in opts.locks {
            compares.push((etcd::Compare::create_revision(lock.key(), etcd::CompareOp::Equal, lock.token()), lock.key().to_string(), Role::Fence));
        }
        let read_only = self.writes.is_empty() && marker.is_none() && decision.ops.is_empty();
        if let Some(marker) = marker {
            compares.push((etcd::Compare::create_revision(marker, etcd::CompareOp::Equal, 0), marker.to_string(), Role::Marker));
            let data = Marker::encode(opts.result)?;
            bytes += marker.len() + data.len();
            ops.push(etcd::TxnOp::put(marker, data, None));
        }
        // A transaction that writes no key saw one state (every batch read at the first one's
        // revision): it fits the serial order there, nothing to check however many keys it read
        // (its id's marker, if any, is no key another transaction reads). A decision is a write:
        // what the run read must still stand when it is recorded.
        if !self.writes.is_empty() || !decision.ops.is_empty() {
            for (key, read) in &self.reads {
                if self.writes.get(key).is_some() || !opts.isolation.checks(false) {
                    continue;
                }
                let path = layout.value_path(key)?;
                compares.push((etcd::Compare::mod_revision(path.clone(), etcd::CompareOp::Equal, read.revision()), path, Role::Check(key.clone())));
            }
        }
        for (key, write) in self.writes.iter() {
            let path = layout.value_path(key)?;
            let read = self.reads.get(key);
            if matches!(write, Write::Create(_) | Write::Absent) {
                if read.is_some_and(Read::exists) {
                    return Err(Error::zk("NODEEXISTS", format!("create: key {key:?} already exists")));
                }
                compares.push((etcd::Compare::create_revision(path.clone(), etcd::CompareOp::Equal, 0), path.clone(), Role::Create { key: key.clone(), read: read.is_some() }));
            } else if let Some(read) = read.filter(|_| opts.isolation.checks(true)) {
                compares.push((etcd::Compare::mod_revision(path.clone(), etcd::CompareOp::Equal, read.revision()), path.clone(), Role::Check(key.clone())));
            }
            match write {
                Write::Set(v) | Write::Create(v) => {
                    bytes += path.len() + v.as_str().len();
                    ops.push(etcd::TxnOp::put(path, v.as_str(), None));
                },
                Write::Delete => {
                    bytes += path.len();
                    ops.push(etcd::TxnOp::delete(path, None));
                },
                Write::Absent => {},
            }
        }
        for cond in &decision.conds {
            compares.push((super::records::compare(cond), cond.path().to_string(), Role::Decision(cond.clone())));
        }
        ops.extend(decision.ops.iter().cloned());
        bytes += decision.bytes;
        if compares.is_empty() && ops.is_empty() {
            return Ok(()); // read in one batch, nothing written, nothing fenced: nothing to send
        }
        bytes += compares.iter().map(|(_, k, _)| 2 * k.len() + 32).sum::<usize>();
        if compares.len() > MAX_TXN_OPS || ops.len() > MAX_TXN_OPS {
            return Err(Error::TooLarge(format!(
                "the commit needs {} compares and {} writes; etcd accepts at most {MAX_TXN_OPS} of each in one Txn (--max-txn-ops): nothing was sent",
                compares.len(),
                ops.len()
            )));
        }
        if bytes > MAX_TXN_BYTES {
            return Err(Error::TooLarge(format!("the commit would be a {bytes}-byte request; etcd accepts at most {MAX_TXN_BYTES} by default (--max-request-bytes): nothing was sent")));
        }
        // On failure, read every compared key (in the same revision) to say which compare failed.
        let mut explain_keys: Vec<String> = compares.iter().map(|(_, k, _)| k.clone()).collect();
        explain_keys.sort();
        explain_keys.dedup();
        // Keys only: the revisions are all the explanation needs, and the values of the keys read
        // (up to 128 of 1 MB each) would make the answer larger than the client accepts. But the
        // marker's value (at most 64 KiB): an earlier commit's recorded result, read here in
        // the same revision as the compare that found it (a later read may find it pruned).
        let explain: Vec<etcd::TxnOp> = explain_keys
            .iter()
            .map(|k| etcd::TxnOp::get(k.clone(), (Some(k.as_str()) != marker).then(|| etcd::GetOptions::new().with_keys_only())))
            .collect();
        let txn = etcd::Txn::new().when(compares.iter().map(|(c, _, _)| c.clone()).collect::<Vec<_>>()).and_then(ops).or_else(explain);
        let client = session.client().await?;
        let _writing = session.writing().await?;
        report.round_trips += 1;
        let done = super::send_txn(&client, &session.inner.closing, session.request_timeout(), "commit transaction", txn).await?;
        let revision = done.header().map_or(0, |h| h.revision());
        if done.succeeded() {
            if !read_only {
                report.writes = self.writes.len();
                // A commit that changed nothing (only deletes of absent keys, creates then
                // deletes) made no revision of its own: the header's is the revision its compares
                // held at, its place in the serial order (after the write of that revision).
                report.zxid = Some(revision).filter(|r| *r > 0);
                for (key, write) in self.writes.iter() {
                    if matches!(write, Write::Set(_) | Write::Create(_)) {
                        report.versions.push((key.clone(), revision));
                    }
                }
            }
            return Ok(());
        }
        let seen = revisions_read(&done);
        for (_, key, role) in &compares {
            let (create, modified) = seen.get(key.as_bytes()).copied().unwrap_or((0, 0));
            let holds = match role {
                Role::Fence => opts.locks.iter().any(|l| l.key() == key && l.token() == create),
                Role::Marker | Role::Create { .. } => create == 0,
                Role::Check(k) => self.reads.get(k).is_some_and(|r| r.revision() == modified),
                Role::Decision(cond) => super::records::holds(cond, create, modified),
            };
            if holds {
                continue;
            }
            return match role {
                Role::Fence => Err(lost(opts.locks)),
                Role::Marker => {
                    // An earlier commit with this id applied: this one must not.
                    report.already_applied = true;
                    report.recorded_result = recorded_in(&done, key);
                    Ok(())
                },
                Role::Check(k) => Err(Error::Conflict(format!("key {k:?} was changed by a concurrent writer"))),
                // Read as absent and created since: the read is stale (retry); never read: the
                // create itself is what fails.
                Role::Create { key, read: true } => Err(Error::Conflict(format!("key {key:?} was created by a concurrent writer"))),
                Role::Create { key, read: false } => Err(Error::zk("NODEEXISTS", format!("create: key {key:?} already exists"))),
                Role::Decision(_) => Err(Error::RolledBack(crate::coordinator::ALREADY_ENDED.into())),
            };
        }
        Err(Error::Conflict("a key the transaction read or writes changed concurrently".into()))
    }
}

/// The create and mod revisions of the keys a failed `Txn`'s `or_else` branch read, by key (a
/// key absent from the map was absent: 0, 0).
pub(super) fn revisions_read(done: &etcd::TxnResponse) -> HashMap<Vec<u8>, (i64, i64)> {
    done.op_responses()
        .into_iter()
        .filter_map(|r| match r {
            etcd::TxnOpResponse::Get(g) => g.kvs().first().map(|kv| (kv.key().to_vec(), (kv.create_revision(), kv.mod_revision()))),
            _ => None,
        })
        .collect()
}

/// The result recorded by the marker `key` as a failed `Txn`'s `or_else` branch read it.
fn recorded_in(done: &etcd::TxnResponse, key: &str) -> Option<String> {
    done.op_responses().into_iter().find_map(|r| match r {
        etcd::TxnOpResponse::Get(g) => g.kvs().first().filter(|kv| kv.key() == key.as_bytes()).and_then(|kv| Marker::decode(kv.value()).result),
        _ => None,
    })
}

/// The etcd key of a transaction id's marker.
fn marker_key(layout: &Layout, id: &str) -> Result<String> {
    Ok(format!("{}/{}", layout.root_child(MARKERS), crate::kv::encode_name("transaction id", id)?))
}

impl EtcdSession {
    /// Reads keys' values in one `Txn` (one revision): at `revision` when given, else the
    /// current one; also returns the revision read at.
    ///
    /// # Errors
    /// `CONFLICT` when `revision` was compacted; connection errors.
    pub(super) async fn read_keys(&self, paths: &[String], revision: Option<i64>) -> Result<(Vec<Read>, i64)> {
        // Up to 128 values of up to 1 MB each: far over tonic's default 4 MB answer.
        let kv = self.client().await?.kv_client().max_decoding_message_size(MAX_READ_ANSWER_BYTES);
        let rt = self.request_timeout();
        let options = revision.map(|r| etcd::GetOptions::new().with_revision(r));
        let txn = etcd::Txn::new().and_then(paths.iter().map(|p| etcd::TxnOp::get(p.clone(), options.clone())).collect::<Vec<_>>());
        let done = crate::backend::retry_transient(rt, || {
            let (mut kv, txn) = (kv.clone(), txn.clone());
            async move { within(rt, "read keys", kv.txn(txn)).await }
        })
        .await
        .map_err(|err| match err {
            Error::InvalidArgument(m) if revision.is_some() && m.contains("compacted") => {
                Error::Conflict(format!("the revision this transaction first read at was compacted before its later reads ({m})"))
            },
            err => err,
        })?;
        let at = revision.unwrap_or_else(|| done.header().map_or(0, |h| h.revision()));
        let read: Vec<Read> = done
            .op_responses()
            .into_iter()
            .filter_map(|r| match r {
                etcd::TxnOpResponse::Get(g) => Some(Read::from_kv(g.kvs().first())),
                _ => None,
            })
            .collect();
        if read.len() != paths.len() {
            return Err(Error::zk("SYSTEMERROR", "etcd answered a read Txn with the wrong number of results"));
        }
        Ok((read, at))
    }

    /// Whether a transaction with this id committed: `None` when its marker is absent (or no
    /// id), `Some(recorded result)` when present.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a malformed id; connection errors (the answer is then unknown).
    pub async fn recorded(&self, layout: &Layout, id: Option<&str>) -> Result<Option<Option<String>>> {
        let Some(id) = id else { return Ok(None) };
        let key = marker_key(layout, id)?;
        let client = self.client().await?;
        let rt = self.request_timeout();
        let got = crate::backend::retry_transient(rt, || {
            let (mut client, key) = (client.clone(), key.clone());
            async move { within(rt, "read transaction id", client.get(key, None)).await }
        })
        .await?;
        Ok(got.kvs().first().map(|kv| Marker::decode(kv.value()).result))
    }

    /// Deletes the markers of transaction ids committed more than `older_than` ago; returns how
    /// many. etcd keeps no time for a key, and a committer's clock is not to be trusted (one an
    /// hour behind would have its markers pruned at once, and a retry of its ids applied
    /// twice): each call records the store's revision with the server's clock in
    /// `<root>/txn-ids-prune/prune-marks`, as the coordinator's `prune()` does
    /// ([`super::records`]), and deletes the markers committed at or before the latest mark at
    /// least `older_than` old by that clock. So call it periodically: the first call deletes
    /// nothing unless `older_than` is 0. Safe from several clients at once.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` above [`crate::store::MAX_PRUNE_AGE`]; connection errors.
    pub async fn prune_transaction_ids(&self, layout: &Layout, older_than: std::time::Duration) -> Result<usize> {
        use crate::coordinator::records::Records as _;
        if older_than > crate::store::MAX_PRUNE_AGE {
            return Err(Error::invalid(format!("pruneTransactionIds: olderThanMs must be at most {} ms", crate::store::MAX_PRUNE_AGE.as_millis())));
        }
        let records = super::records::EtcdRecords { session: self.clone(), wall_offset_ms: 0 };
        // Beside the markers' directory, not in it: the sweep below must never see the marks.
        let clock = format!("{}-prune", layout.root_child(MARKERS));
        let Some(horizon) = records.horizon(&clock, older_than, "pruneTransactionIds").await? else {
            return Ok(0);
        };
        let before = horizon.revision.unwrap_or(0);
        // Markers are never written again (their mod revision is their commit's), but a pruned
        // id may commit anew meanwhile: each delete only if the marker is still the one listed.
        // Listed without their values: a page of 128 markers recording results of up to 64 KiB
        // each would exceed the client's 4 MiB answer limit, and fail every prune at that page.
        // Only markers: a key directly under the directory (an encoded id has no `/`) and on no
        // lease (a marker is put without one). A lock on a path at or under the directory
        // (`etcd.lock('/zktx/txn-ids/x')`: keys `<path>/<lease hex>` on the holder's lease) is
        // not a marker: deleting its key hands the lock to the next contender while it is held.
        let prefix = format!("{}/", layout.root_child(MARKERS));
        let is_marker = |kv: &etcd::KeyValue| kv.lease() == 0 && kv.key().get(prefix.len()..).is_some_and(|name| !name.contains(&b'/'));
        self.sweep_prefix(&prefix, "transaction ids", false, |kv| kv.mod_revision() <= before && is_marker(kv)).await
    }
}

/// What a transaction id's marker holds on etcd: when it was committed (the committer's wall
/// clock, ms since the epoch: for people, and for earlier versions of zktx, which pruned by it; pruning
/// now goes by the marker's revision) and the recorded result. JSON: `{"at":…,"result":"<json text>"}`.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Marker {
    at: Option<i64>,
    result: Option<String>,
}

impl Marker {
    fn encode(result: Option<&str>) -> Result<String> {
        serde_json::to_string(&Marker { at: Some(unix_millis()), result: result.filter(|r| !r.is_empty()).map(str::to_string) })
            .map_err(|e| Error::invalid(format!("transaction id marker: {e}")))
    }

    /// A marker's content; one another client wrote (not this shape) has no time and no result.
    fn decode(data: &[u8]) -> Marker {
        serde_json::from_slice(data).unwrap_or_default()
    }
}

/// This machine's wall clock in ms since the epoch (0 before it).
pub(super) fn unix_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The end of the range of keys starting with `prefix` (etcd's prefix range end).
pub(super) fn range_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}
