//! Atomic commit across resources outside ZooKeeper: two-phase commit with presumed abort, and
//! sagas, with ZooKeeper holding every decision.
//!
//! # Two-phase commit
//!
//! A [`Coordinator`] has a name and registered [`Participant`]s (a PostgreSQL database, any
//! resource that can *prepare*). A transaction ([`Run`]) goes:
//!
//! 1. [`Coordinator::begin`] creates `active/<txid>`, an **ephemeral** node of the coordinator's
//!    session. Its existence is the transaction's "may still commit".
//! 2. The caller does its work on the participants it enlists ([`Run::enlist`] gives each its
//!    branch id, the *gid* `zktx:<coordinator>:<txid>:<participant>`).
//! 3. [`Run::commit`] prepares every enlisted branch. If one fails, the transaction aborts.
//! 4. The decision is **one `multi`**: delete `active/<txid>` and create `decisions/<txid>`
//!    (`commit`, with the branch list), plus the checks and writes of zktx's own store when the
//!    run wrote keys. It applies entirely or not at all.
//! 5. Every branch commits; the record is marked done (the decision's multi also created
//!    `committing/<txid>`, which recovery lists; marking done removes it).
//!
//! Presumed abort: a transaction without a `decisions/<txid>` record never committed, and once
//! its `active/<txid>` node is gone it never can — the only way to commit deletes that node in
//! the same `multi`. So a recoverer that sees neither aborts safely, and a slow coordinator
//! (partitioned, its session expired meanwhile) and a recoverer can never record different
//! decisions: the recoverer records its abort with `create active, delete active, create
//! decision` in one `multi`, which fails if the transaction is still active or decided.
//!
//! # Recovery
//!
//! [`Coordinator::recover`] (one process at a time, under a zktx lock) commits every branch of
//! a commit decision not yet done, and, for each branch a participant lists as prepared
//! ([`Participant::in_doubt`]): commit decided → commit; abort decided → roll back; no decision
//! and no active node → record abort, roll back; still active → leave it to its coordinator.
//!
//! # Sagas
//!
//! For participants that cannot prepare: steps with compensations ([`SagaSteps`]). The log
//! `sagas/<txid>` records how many steps were started, each record fenced on the saga's active
//! node. On a failed step the started steps are compensated in reverse (each retried until it
//! succeeds, at least once); a saga whose coordinator died is compensated by recovery. Steps get
//! idempotency keys; duplicated actions, null compensations and hanging actions are the steps'
//! business (see the PostgreSQL barrier in the JS package).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use zookeeper_client as zk;

use crate::error::{Error, Outcome, Result};
use crate::kv::encode_key;
use crate::recipe::{self, AcquireOptions};
use crate::session::deadline;
use crate::store::Store;
use crate::transaction::{Isolation, Op, Transaction};
use crate::txn::persistent;

/// A boxed, sendable future (participants are trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A resource that can prepare: every method is idempotent (called again after a crash, or by
/// recovery in another process).
pub trait Participant: Send + Sync {
    /// Makes the branch `gid` durable and ready to commit (PostgreSQL: `PREPARE TRANSACTION`).
    fn prepare<'a>(&'a self, gid: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Commits a prepared branch; a branch already committed is success.
    fn commit<'a>(&'a self, gid: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Rolls back a branch, prepared or not; a branch already gone is success.
    fn rollback<'a>(&'a self, gid: &'a str) -> BoxFuture<'a, Result<()>>;
    /// The gids of branches prepared and not yet resolved (any coordinator's: recovery keeps
    /// its own).
    fn in_doubt(&self) -> BoxFuture<'_, Result<Vec<String>>>;
}

/// The steps of sagas, by saga name and step index.
pub trait SagaSteps: Send + Sync {
    /// Runs step `step`'s action. `key` identifies (saga run, step): pass it on as the
    /// idempotency key.
    fn action<'a>(&'a self, saga: &'a str, step: usize, key: &'a SagaKey, input: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Undoes step `step`'s action, whether it ran, ran twice, or never ran (null compensation).
    fn compensate<'a>(&'a self, saga: &'a str, step: usize, key: &'a SagaKey, input: &'a str) -> BoxFuture<'a, Result<()>>;
    /// The number of steps of saga `saga`, `None` if this process does not know it.
    fn steps(&self, saga: &str) -> Option<usize>;
}

/// Identifies one step of one saga run (a barrier's key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SagaKey {
    /// `<coordinator>:<txid>`: the saga run.
    pub transaction: String,
    /// The step's index, as text.
    pub branch: String,
}

/// The longest coordinator or participant name.
pub const MAX_NAME_BYTES: usize = 64;

/// Where a transaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Committed (every branch commits, now or by recovery).
    Commit,
    /// Aborted (every branch rolls back).
    Abort,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    decision: Decision,
    /// Participants enlisted (every one prepared before a commit decision).
    branches: Vec<String>,
    /// Every branch is resolved.
    #[serde(default)]
    done: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SagaState {
    Running,
    Compensating,
    Done,
    Compensated,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SagaLog {
    saga: String,
    input: String,
    /// Steps whose action was started (each may have run, or not).
    started: usize,
    state: SagaState,
}

/// What a committed distributed transaction did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// The transaction id.
    pub txid: String,
    /// Branches whose commit failed for now (the transaction is committed; recovery finishes
    /// them).
    pub pending: Vec<String>,
    /// The zxid of the decision.
    pub zxid: Option<i64>,
    /// Keys of zktx's store written with the decision, and their new versions.
    pub versions: Vec<(String, i32)>,
}

/// A transaction's outcome as ZooKeeper records it ([`Coordinator::outcome`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxOutcome {
    /// Committed; `true` once every branch is committed.
    Committed(bool),
    /// Aborted (recorded, or presumed: no decision and no longer active).
    Aborted,
    /// Still running (its coordinator's session is alive, no decision yet).
    Active,
    /// No record: it ended before the prune horizon ([`Coordinator::prune`]) and its record
    /// was deleted, so whether it committed is no longer known here.
    Forgotten,
    /// A saga: finished, compensated, or still running/compensating.
    Saga(&'static str),
}

/// What a recovery pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Branches committed (of committed transactions).
    pub committed: usize,
    /// Branches rolled back.
    pub rolled_back: usize,
    /// Transactions recovery recorded as aborted.
    pub aborted: usize,
    /// Branches left alone: their transaction is still active.
    pub active: usize,
    /// Sagas compensated.
    pub compensated: usize,
    /// Failures (a participant down, a participant or saga this process does not register):
    /// the next pass retries them.
    pub errors: Vec<String>,
}

/// Refuses names that would not fit a gid or a znode name.
fn validate_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.') {
        return Err(Error::invalid(format!("{what} must be 1 to {MAX_NAME_BYTES} characters of [A-Za-z0-9_.-], got {name:?}")));
    }
    Ok(())
}

struct Inner {
    store: Arc<Store>,
    name: String,
    base: String,
    participants: BTreeMap<String, Arc<dyn Participant>>,
    steps: Option<Arc<dyn SagaSteps>>,
    dirs_ready: AtomicBool,
}

/// A named transaction coordinator (see the [module docs](self)).
#[derive(Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator").field("name", &self.inner.name).field("participants", &self.inner.participants.keys().collect::<Vec<_>>()).finish()
    }
}

/// Attempts, and the pause between them, for branch commits and rollbacks inside a run (a
/// branch still failing after them is left to recovery).
const BRANCH_ATTEMPTS: u32 = 3;

impl Coordinator {
    /// A coordinator named `name` on `store`'s session, with its participants and saga steps.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a bad name.
    pub fn new(store: Arc<Store>, name: &str, participants: Vec<(String, Arc<dyn Participant>)>, steps: Option<Arc<dyn SagaSteps>>) -> Result<Coordinator> {
        validate_name("coordinator name", name)?;
        let mut map = BTreeMap::new();
        for (n, p) in participants {
            validate_name("participant name", &n)?;
            if map.insert(n.clone(), p).is_some() {
                return Err(Error::invalid(format!("participant {n:?} is registered twice")));
            }
        }
        let base = format!("{}/coordinators/{}", store.layout().root(), encode_key(name)?);
        Ok(Coordinator { inner: Arc::new(Inner { store, name: name.to_string(), base, participants: map, steps, dirs_ready: AtomicBool::new(false) }) })
    }

    /// The coordinator's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    fn path(&self, dir: &str, txid: &str) -> String {
        format!("{}/{dir}/{txid}", self.inner.base)
    }

    /// The gid of `participant`'s branch of `txid`.
    pub fn gid(&self, txid: &str, participant: &str) -> String {
        format!("zktx:{}:{txid}:{participant}", self.inner.name)
    }

    /// `(txid, participant)` of one of this coordinator's gids.
    fn parse_gid<'g>(&self, gid: &'g str) -> Option<(&'g str, &'g str)> {
        let rest = gid.strip_prefix("zktx:")?.strip_prefix(self.inner.name.as_str())?.strip_prefix(':')?;
        let (txid, participant) = rest.split_once(':')?;
        (txid.len() == 32 && txid.bytes().all(|b| b.is_ascii_hexdigit())).then_some((txid, participant))
    }

    async fn client(&self) -> Result<(Arc<zk::Client>, Duration)> {
        let session = self.inner.store.session();
        let client = session.client().await?;
        let rt = session.request_timeout(&client);
        if !self.inner.dirs_ready.load(Ordering::Acquire) {
            for dir in ["active", "decisions", "committing", "sagas"] {
                let path = format!("{}/{dir}", self.inner.base);
                match deadline(rt, "create coordinator directory", client.mkdir(&path, &persistent(session.acls()))).await {
                    Ok(()) | Err(Error::ZooKeeper { code: "NODEEXISTS", .. }) => {},
                    Err(e) => return Err(e),
                }
            }
            self.inner.dirs_ready.store(true, Ordering::Release);
        }
        Ok((client, rt))
    }

    /// Starts a transaction: records it as active (an ephemeral node of this session). The
    /// record is written in the background, while the caller works on its participants; the
    /// commit waits for it before it prepares anything.
    ///
    /// # Errors
    /// `CLIENT_CLOSED`; a failed record fails the commit later (nothing is left behind: the node
    /// is ephemeral).
    pub async fn begin(&self) -> Result<Run> {
        if self.inner.store.session().is_closed().await {
            return Err(Error::ClientClosed);
        }
        let txid = new_txid();
        let coord = self.clone();
        let path = self.path("active", &txid);
        let begun = tokio::spawn(async move {
            let (client, rt) = coord.client().await?;
            let acls = coord.inner.store.session().acls();
            deadline(rt, "begin transaction", client.create(&path, b"", &zk::CreateMode::Ephemeral.with_acls(acls))).await.map_err(Error::for_write)?;
            Ok(())
        });
        Ok(Run { coord: self.clone(), txid, enlisted: Mutex::new(Vec::new()), ended: AtomicBool::new(false), begun: tokio::sync::Mutex::new(Some(begun)) })
    }

    fn participant(&self, name: &str) -> Result<&Arc<dyn Participant>> {
        self.inner.participants.get(name).ok_or_else(|| Error::invalid(format!("coordinator {:?} has no participant {name:?}", self.inner.name)))
    }

    async fn read<T: serde::de::DeserializeOwned>(&self, dir: &str, txid: &str) -> Result<Option<(T, i32)>> {
        let (client, rt) = self.client().await?;
        match deadline(rt, "read transaction record", client.get_data(&self.path(dir, txid))).await {
            Ok((data, stat)) => {
                let record = serde_json::from_slice(&data).map_err(|e| Error::zk("SYSTEMERROR", format!("unreadable coordinator record {dir}/{txid}: {e}")))?;
                Ok(Some((record, stat.version)))
            },
            Err(Error::ZooKeeper { code: "NONODE", .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn is_active(&self, txid: &str) -> Result<bool> {
        let (client, rt) = self.client().await?;
        Ok(deadline(rt, "check transaction", client.check_stat(&self.path("active", txid))).await?.is_some())
    }

    /// The recorded outcome of `txid`.
    ///
    /// # Errors
    /// Connection errors.
    pub async fn outcome(&self, txid: &str) -> Result<TxOutcome> {
        if let Some((record, _)) = self.read::<Record>("decisions", txid).await? {
            return Ok(match record.decision {
                Decision::Commit => TxOutcome::Committed(record.done),
                Decision::Abort => TxOutcome::Aborted,
            });
        }
        if let Some((log, _)) = self.read::<SagaLog>("sagas", txid).await? {
            return Ok(TxOutcome::Saga(match log.state {
                SagaState::Running => "running",
                SagaState::Compensating => "compensating",
                SagaState::Done => "done",
                SagaState::Compensated => "compensated",
            }));
        }
        if self.is_active(txid).await? {
            return Ok(TxOutcome::Active);
        }
        // No record: presumed abort, unless records of its time may have been pruned.
        if let Some(horizon) = self.pruned_before().await? {
            let margin = MIN_PRUNE_AGE.as_millis() as i64;
            if txid_millis(txid).is_none_or(|t| t <= horizon.saturating_add(margin)) {
                return Ok(TxOutcome::Forgotten);
            }
        }
        Ok(TxOutcome::Aborted)
    }

    /// The prune horizon (server ms): records of transactions ended before it may be gone.
    async fn pruned_before(&self) -> Result<Option<i64>> {
        let (client, rt) = self.client().await?;
        match deadline(rt, "read prune horizon", client.get_data(&format!("{}/pruned", self.inner.base))).await {
            Ok((data, _)) => Ok(std::str::from_utf8(&data).ok().and_then(|s| s.trim().parse().ok())),
            Err(Error::ZooKeeper { code: "NONODE", .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes the records of transactions that ended more than `older_than` ago (by the
    /// server's clock): commit decisions whose branches are all committed, abort decisions,
    /// finished sagas. Returns how many. Afterwards [`Coordinator::outcome`] answers
    /// [`TxOutcome::Forgotten`] for transactions from before the horizon.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` when `older_than` is below [`MIN_PRUNE_AGE`] or above ten years.
    pub async fn prune(&self, older_than: Duration) -> Result<usize> {
        if older_than < MIN_PRUNE_AGE {
            return Err(Error::invalid(format!("prune: olderThan must be at least {} ms", MIN_PRUNE_AGE.as_millis())));
        }
        self.prune_now(older_than).await
    }

    /// [`Coordinator::prune`] without the lower bound (tests).
    pub(crate) async fn prune_now(&self, older_than: Duration) -> Result<usize> {
        let store = &self.inner.store;
        let cutoff = store.server_cutoff(older_than, crate::store::MAX_PRUNE_AGE, "prune").await?;
        // First the horizon (only ever moved forward), then the deletes: a reader never finds a
        // record missing without a horizon that says it may be.
        let (client, rt) = self.client().await?;
        let horizon = format!("{}/pruned", self.inner.base);
        loop {
            match deadline(rt, "read prune horizon", client.get_data(&horizon)).await {
                Ok((data, stat)) => {
                    let old: i64 = std::str::from_utf8(&data).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(i64::MIN);
                    if old >= cutoff {
                        break;
                    }
                    match deadline(rt, "move prune horizon", client.set_data(&horizon, cutoff.to_string().as_bytes(), Some(stat.version))).await {
                        Ok(_) => break,
                        Err(Error::ZooKeeper { code: "BADVERSION", .. }) => continue,
                        Err(e) => return Err(e),
                    }
                },
                Err(Error::ZooKeeper { code: "NONODE", .. }) => {
                    let acls = store.session().acls();
                    match deadline(rt, "create prune horizon", client.create(&horizon, cutoff.to_string().as_bytes(), &persistent(acls))).await {
                        Ok(_) => break,
                        Err(Error::ZooKeeper { code: "NODEEXISTS", .. }) => continue,
                        Err(e) => return Err(e),
                    }
                },
                Err(e) => return Err(e),
            }
        }
        let decisions = store
            .sweep(&format!("{}/decisions", self.inner.base), "transaction decisions", |data, stat| {
                let ended = serde_json::from_slice::<Record>(data).is_ok_and(|r| r.decision == Decision::Abort || r.done);
                (ended && stat.mtime < cutoff).then_some(Some(stat.version))
            })
            .await?;
        let sagas = store
            .sweep(&format!("{}/sagas", self.inner.base), "saga logs", |data, stat| {
                let ended = serde_json::from_slice::<SagaLog>(data).is_ok_and(|l| matches!(l.state, SagaState::Done | SagaState::Compensated));
                (ended && stat.mtime < cutoff).then_some(Some(stat.version))
            })
            .await?;
        Ok(decisions + sagas)
    }

    /// Commits (or rolls back) one branch, retrying a few times.
    async fn resolve_branch(&self, decision: Decision, participant: &str, txid: &str) -> Result<()> {
        let p = self.participant(participant)?;
        let gid = self.gid(txid, participant);
        let mut last = None;
        for attempt in 0..BRANCH_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            let done = match decision {
                Decision::Commit => p.commit(&gid).await,
                Decision::Abort => p.rollback(&gid).await,
            };
            match done {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Participant("no attempt made".into())))
    }

    /// Resolves every branch; returns the participants whose branch is still unresolved.
    async fn resolve_all(&self, decision: Decision, participants: &[String], txid: &str) -> Vec<(String, Error)> {
        let results = join_all(participants.iter().map(|p| self.resolve_branch(decision, p, txid))).await;
        participants.iter().zip(results).filter_map(|(p, r)| r.err().map(|e| (p.clone(), e))).collect()
    }

    /// Records that every branch of a committed `txid` is committed.
    async fn mark_done(&self, txid: &str) -> Result<()> {
        let Some((record, version)) = self.read::<Record>("decisions", txid).await? else { return Ok(()) };
        self.write_done(txid, record, version).await
    }

    /// Writes `record` as done at `version` (a concurrent writer did it already if it moved).
    /// One multi: the record says done, and the `committing/<txid>` marker (what recovery
    /// lists) goes. A record already done only loses its marker.
    async fn write_done(&self, txid: &str, mut record: Record, version: i32) -> Result<()> {
        let (client, rt) = self.client().await?;
        let marker = self.path("committing", txid);
        if record.done {
            return match deadline(rt, "mark transaction done", client.delete(&marker, None)).await {
                Ok(()) | Err(Error::ZooKeeper { code: "NONODE", .. }) => Ok(()),
                Err(e) => Err(e),
            };
        }
        record.done = true;
        let data = serde_json::to_vec(&record).map_err(|e| Error::zk("SYSTEMERROR", e))?;
        let mut writer = client.new_multi_writer();
        writer.add_set_data(&self.path("decisions", txid), &data, Some(version))?;
        writer.add_delete(&marker, None)?;
        match crate::txn::commit_multi(rt, &mut writer, "mark transaction done").await {
            Ok(_) => Ok(()),
            // Marked by another process meanwhile (its multi removed the marker too).
            Err(crate::txn::MultiError::Op(_, zk::Error::BadVersion | zk::Error::NoNode)) => Ok(()),
            Err(e) => Err(multi_error(e)),
        }
    }

    /// Records `abort` for a transaction that is no longer active and has no decision; returns
    /// the decision that stands (a concurrent commit decision wins), `None` if still active.
    async fn record_abort(&self, txid: &str) -> Result<Option<Decision>> {
        let (client, rt) = self.client().await?;
        let acls = self.inner.store.session().acls();
        let active = self.path("active", txid);
        let record = serde_json::to_vec(&Record { decision: Decision::Abort, branches: Vec::new(), done: false }).map_err(|e| Error::zk("SYSTEMERROR", e))?;
        let mut writer = client.new_multi_writer();
        // "active is absent": creating it must succeed; then it goes away again.
        writer.add_create(&active, b"", &persistent(acls))?;
        writer.add_delete(&active, None)?;
        writer.add_create(&self.path("decisions", txid), &record, &persistent(acls))?;
        match crate::txn::commit_multi(rt, &mut writer, "record abort").await {
            Ok(_) => Ok(Some(Decision::Abort)),
            Err(crate::txn::MultiError::Op(0, zk::Error::NodeExists)) => Ok(None),
            Err(crate::txn::MultiError::Op(2, zk::Error::NodeExists)) => Ok(self.read::<Record>("decisions", txid).await?.map(|(r, _)| r.decision)),
            Err(crate::txn::MultiError::Op(_, e)) => Err(Error::from(e)),
            Err(crate::txn::MultiError::Request(e)) => Err(e),
        }
    }

    /// Runs a recovery pass, waiting up to `wait` for the recovery lock (`None`: forever);
    /// `Ok(None)` if another process holds it that long.
    ///
    /// # Errors
    /// Connection errors; participant failures are in the report.
    pub async fn recover(&self, wait: Option<Duration>) -> Result<Option<RecoveryReport>> {
        self.client().await?;
        let session = self.inner.store.session();
        let lock = match recipe::lock(session, &format!("{}/recovery", self.inner.base), &AcquireOptions { wait, cancel: None }).await {
            Ok(lock) => lock,
            Err(Error::Timeout { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let report = self.recover_locked().await;
        let released = lock.release().await;
        let report = report?;
        released?;
        Ok(Some(report))
    }

    async fn recover_locked(&self) -> Result<RecoveryReport> {
        let mut report = RecoveryReport::default();
        let store = &self.inner.store;
        // 1. Commit decisions whose branches are not all committed: those still marked in
        // `committing/` (a pass reads only those, not every decision ever recorded).
        for txid in store.children(&format!("{}/committing", self.inner.base)).await? {
            let Some((record, _)) = self.read::<Record>("decisions", &txid).await? else { continue };
            if record.decision != Decision::Commit || record.done {
                self.write_done(&txid, record, 0).await?;
                continue;
            }
            let failed = self.resolve_all(Decision::Commit, &record.branches, &txid).await;
            report.committed += record.branches.len() - failed.len();
            if failed.is_empty() {
                self.mark_done(&txid).await?;
            }
            report.errors.extend(failed.into_iter().map(|(p, e)| format!("commit {}: {e}", self.gid(&txid, &p))));
        }
        // 2. Branches the participants list as prepared.
        let mut decided: HashMap<String, Option<Decision>> = HashMap::new();
        for (name, p) in &self.inner.participants {
            let gids = match p.in_doubt().await {
                Ok(gids) => gids,
                Err(e) => {
                    report.errors.push(format!("participant {name}: listing prepared branches failed: {e}"));
                    continue;
                },
            };
            for gid in gids {
                let Some((txid, participant)) = self.parse_gid(&gid) else { continue };
                if participant != name {
                    continue;
                }
                let decision = match decided.get(txid) {
                    Some(d) => *d,
                    None => {
                        let d = match self.read::<Record>("decisions", txid).await? {
                            Some((r, _)) => Some(r.decision),
                            None => match self.record_abort(txid).await? {
                                Some(Decision::Abort) => {
                                    report.aborted += 1;
                                    Some(Decision::Abort)
                                },
                                other => other,
                            },
                        };
                        decided.insert(txid.to_string(), d);
                        d
                    },
                };
                let Some(decision) = decision else {
                    report.active += 1;
                    continue;
                };
                match self.resolve_branch(decision, participant, txid).await {
                    Ok(()) if decision == Decision::Commit => report.committed += 1,
                    Ok(()) => report.rolled_back += 1,
                    Err(e) => report.errors.push(format!("{} {gid}: {e}", if decision == Decision::Commit { "commit" } else { "rollback" })),
                }
            }
        }
        // 3. Sagas whose coordinator is gone.
        for txid in store.children(&format!("{}/sagas", self.inner.base)).await? {
            match self.recover_saga(&txid).await {
                Ok(true) => report.compensated += 1,
                Ok(false) => {},
                Err(e) => report.errors.push(format!("saga {txid}: {e}")),
            }
        }
        Ok(report)
    }

    // ---- sagas ----

    fn steps(&self) -> Result<&Arc<dyn SagaSteps>> {
        self.inner.steps.as_ref().ok_or_else(|| Error::invalid(format!("coordinator {:?} has no saga steps", self.inner.name)))
    }

    fn saga_key(&self, txid: &str, step: usize) -> SagaKey {
        SagaKey { transaction: format!("{}:{txid}", self.inner.name), branch: step.to_string() }
    }

    /// Runs saga `saga` (its steps from [`SagaSteps`]) on `input`: every action in order, or, when
    /// one fails, the compensations of every started step in reverse. Returns the saga's txid.
    ///
    /// # Errors
    /// `ROLLED_BACK` when a step failed and every started step was compensated (the step's
    /// error in the message); `IN_DOUBT` when compensation could not finish (recovery finishes
    /// it); connection errors before the first step (nothing ran).
    pub async fn run_saga(&self, saga: &str, input: &str) -> Result<String> {
        let mut begun = None;
        match self.run_saga_steps(saga, input, &mut begun).await {
            Err(err @ Error::InDoubt { .. }) => {
                // Unfinished, and recovery takes over a saga only once its active node is gone:
                // while this session lives that would be never. Hand it over now.
                if let Some(txid) = begun {
                    self.release_saga(&txid).await;
                }
                Err(err)
            },
            other => other,
        }
    }

    /// Deletes saga `txid`'s active node if this session owns it (never a recoverer's), so that
    /// the next recovery pass, in any process, finishes the saga.
    async fn release_saga(&self, txid: &str) {
        let released = async {
            let (client, rt) = self.client().await?;
            let active = self.path("active", txid);
            let Some(stat) = deadline(rt, "check saga", client.check_stat(&active)).await? else { return Ok(()) };
            if stat.ephemeral_owner != client.session_id().0 {
                return Ok(());
            }
            match deadline(rt, "release saga", client.delete(&active, Some(stat.version))).await {
                Ok(()) | Err(Error::ZooKeeper { code: "NONODE" | "BADVERSION", .. }) => Ok(()),
                Err(e) => Err(e),
            }
        };
        if let Err(e) = released.await {
            tracing::warn!(%txid, error = %e, "could not hand the unfinished saga to recovery; it waits for this session to end");
        }
    }

    async fn run_saga_steps(&self, saga: &str, input: &str, begun: &mut Option<String>) -> Result<String> {
        let steps = self.steps()?;
        let count = steps.steps(saga).ok_or_else(|| Error::invalid(format!("no saga named {saga:?}")))?;
        let txid = new_txid();
        let (client, rt) = self.client().await?;
        let acls = self.inner.store.session().acls();
        let log_path = self.path("sagas", &txid);
        let active = self.path("active", &txid);
        let mut log = SagaLog { saga: saga.to_string(), input: input.to_string(), started: 0, state: SagaState::Running };
        let mut writer = client.new_multi_writer();
        writer.add_create(&active, b"", &zk::CreateMode::Ephemeral.with_acls(acls))?;
        writer.add_create(&log_path, &to_json(&log)?, &persistent(acls))?;
        crate::txn::commit_multi(rt, &mut writer, "begin saga").await.map_err(multi_error)?;
        *begun = Some(txid.clone());
        let mut version = 0;
        for step in 0..count {
            // Record the start before the action, fenced on the saga still being ours.
            log.started = step + 1;
            version = self.write_log(&active, &log_path, &log, version).await.map_err(|e| self.saga_error(&txid, e))?;
            if let Err(err) = steps.action(saga, step, &self.saga_key(&txid, step), input).await {
                return match self.compensate(&txid, &mut log, version).await {
                    Ok(()) => Err(Error::RolledBack(format!("saga {saga} ({txid}) step {step} failed and every started step was compensated: {err}"))),
                    Err(e) => Err(Error::InDoubt { txid: txid.clone(), message: format!("saga {saga} ({txid}) step {step} failed ({err}); compensation is unfinished, recovery will finish it: {e}") }),
                };
            }
        }
        log.state = SagaState::Done;
        let mut writer = client.new_multi_writer();
        writer.add_delete(&active, None)?;
        writer.add_set_data(&log_path, &to_json(&log)?, Some(version))?;
        crate::txn::commit_multi(rt, &mut writer, "finish saga").await.map_err(|e| self.saga_error(&txid, multi_error(e)))?;
        Ok(txid)
    }

    fn saga_error(&self, txid: &str, err: Error) -> Error {
        match err {
            Error::ZooKeeper { code: "NONODE" | "BADVERSION", .. } => Error::RolledBack(format!("saga {txid} was taken over by recovery (its session expired): recovery compensates it")),
            other if other.outcome() == Outcome::Unknown => Error::InDoubt { txid: txid.to_string(), message: format!("saga {txid}: {other}") },
            other => other,
        }
    }

    /// Writes the saga log at `version` if `active` still exists; returns the new version.
    async fn write_log(&self, active: &str, log_path: &str, log: &SagaLog, version: i32) -> Result<i32> {
        let (client, rt) = self.client().await?;
        let mut writer = client.new_multi_writer();
        writer.add_check_version(active, -1)?;
        writer.add_set_data(log_path, &to_json(log)?, Some(version))?;
        crate::txn::commit_multi(rt, &mut writer, "record saga step").await.map_err(multi_error)?;
        Ok(version + 1)
    }

    /// Compensates every started step in reverse (each retried until it succeeds, within a
    /// bound), then records the saga compensated and ends it.
    async fn compensate(&self, txid: &str, log: &mut SagaLog, mut version: i32) -> Result<()> {
        let steps = self.steps()?;
        let active = self.path("active", txid);
        let log_path = self.path("sagas", txid);
        if log.state != SagaState::Compensating {
            log.state = SagaState::Compensating;
            version = self.write_log(&active, &log_path, log, version).await?;
        }
        for step in (0..log.started).rev() {
            let key = self.saga_key(txid, step);
            let mut attempt = 0;
            loop {
                match steps.compensate(&log.saga, step, &key, &log.input).await {
                    Ok(()) => break,
                    Err(e) if attempt + 1 >= BRANCH_ATTEMPTS * 2 => return Err(e),
                    Err(_) => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(20 << attempt.min(5))).await;
                    },
                }
            }
        }
        log.state = SagaState::Compensated;
        let (client, rt) = self.client().await?;
        let mut writer = client.new_multi_writer();
        writer.add_delete(&active, None)?;
        writer.add_set_data(&log_path, &to_json(log)?, Some(version))?;
        crate::txn::commit_multi(rt, &mut writer, "finish compensation").await.map_err(multi_error)?;
        Ok(())
    }

    /// Compensates saga `txid` if it is unfinished and its coordinator is gone; `Ok(true)` if
    /// it did.
    async fn recover_saga(&self, txid: &str) -> Result<bool> {
        let Some((mut log, version)) = self.read::<SagaLog>("sagas", txid).await? else { return Ok(false) };
        if matches!(log.state, SagaState::Done | SagaState::Compensated) {
            return Ok(false);
        }
        if self.steps()?.steps(&log.saga).is_none() {
            return Err(Error::invalid(format!("this process does not define saga {:?}", log.saga)));
        }
        // Take it over: our own ephemeral active node, created only if the owner's is gone.
        let (client, rt) = self.client().await?;
        let acls = self.inner.store.session().acls();
        let active = self.path("active", txid);
        log.state = SagaState::Compensating;
        let mut writer = client.new_multi_writer();
        writer.add_create(&active, b"", &zk::CreateMode::Ephemeral.with_acls(acls))?;
        writer.add_set_data(&self.path("sagas", txid), &to_json(&log)?, Some(version))?;
        match crate::txn::commit_multi(rt, &mut writer, "take over saga").await {
            Ok(_) => {},
            Err(crate::txn::MultiError::Op(_, zk::Error::NodeExists | zk::Error::BadVersion)) => return Ok(false),
            Err(e) => return Err(multi_error(e)),
        }
        self.compensate(txid, &mut log, version + 1).await?;
        Ok(true)
    }
}

/// A transaction id: a UUIDv7 (its first 48 bits are the Unix time in ms, so [`Coordinator::outcome`]
/// can tell a forgotten transaction from one never decided), as 32 hex digits.
fn new_txid() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// The creation time (ms since the epoch, by the creating machine's clock) of a txid.
fn txid_millis(txid: &str) -> Option<i64> {
    i64::from_str_radix(txid.get(..12)?, 16).ok()
}

/// The shortest age [`Coordinator::prune`] accepts, and the margin for the creating machine's
/// clock when a txid's time is compared with the prune horizon.
pub const MIN_PRUNE_AGE: Duration = Duration::from_secs(3600);

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::zk("SYSTEMERROR", e))
}

fn multi_error(err: crate::txn::MultiError) -> Error {
    match err {
        crate::txn::MultiError::Op(_, e) => Error::from(e),
        crate::txn::MultiError::Request(e) => e,
    }
}

/// One distributed transaction in progress (see [`Coordinator::begin`]).
pub struct Run {
    coord: Coordinator,
    txid: String,
    enlisted: Mutex<Vec<String>>,
    ended: AtomicBool,
    /// The write of the active node, until awaited.
    begun: tokio::sync::Mutex<Option<tokio::task::JoinHandle<Result<()>>>>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run").field("txid", &self.txid).finish()
    }
}

impl Run {
    /// The transaction id.
    pub fn txid(&self) -> &str {
        &self.txid
    }

    fn enlisted(&self) -> Vec<String> {
        self.enlisted.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Enlists `participant` (its branch will be prepared and committed) and returns its gid.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for an unregistered participant or a run already ended.
    pub fn enlist(&self, participant: &str) -> Result<String> {
        self.coord.participant(participant)?;
        if self.ended.load(Ordering::Acquire) {
            return Err(Error::invalid(format!("transaction {} has already ended", self.txid)));
        }
        let mut enlisted = self.enlisted.lock().map_err(|_| Error::zk("SYSTEMERROR", "poisoned"))?;
        if !enlisted.iter().any(|p| p == participant) {
            enlisted.push(participant.to_string());
        }
        Ok(self.coord.gid(&self.txid, participant))
    }

    fn end(&self) -> Result<()> {
        if self.ended.swap(true, Ordering::AcqRel) {
            return Err(Error::invalid(format!("transaction {} has already ended", self.txid)));
        }
        Ok(())
    }

    /// Prepares every branch, records the commit decision (with `store_tx`'s checks and
    /// writes, if any, in the same `multi`) and commits every branch.
    ///
    /// # Errors
    /// `ROLLED_BACK` when a branch could not prepare or recovery had aborted the transaction
    /// (every branch rolled back, or left to recovery to roll back); `CONFLICT` when a key
    /// `store_tx` read or writes changed (rolled back as well); `IN_DOUBT` when this process
    /// could not learn whether the decision was recorded (look it up with
    /// [`Coordinator::outcome`]).
    pub async fn commit(&self, store_tx: Option<&mut Transaction>) -> Result<Committed> {
        self.end()?;
        let coord = &self.coord;
        let enlisted = self.enlisted();
        if let Err(err) = self.begun().await {
            // Not recorded as active (or unknown): it must not commit.
            self.abort_now(&enlisted).await;
            return Err(Error::rolled_back(format!("transaction {} rolled back: it could not be recorded as active ({err})", self.txid), err));
        }
        // Phase 1.
        let prepared = join_all(enlisted.iter().map(|p| async move { coord.participant(p)?.prepare(&coord.gid(&self.txid, p)).await })).await;
        if let Some((p, err)) = enlisted.iter().zip(&prepared).find_map(|(p, r)| r.as_ref().err().map(|e| (p, e))) {
            self.abort_now(&enlisted).await;
            // Not kept as the cause: the facade makes the participant's own JS error `err.cause`.
            return Err(Error::RolledBack(format!("transaction {} rolled back: participant {p} could not prepare: {err}", self.txid)));
        }
        // The decision.
        let record = to_json(&Record { decision: Decision::Commit, branches: enlisted.clone(), done: enlisted.is_empty() })?;
        let active = coord.path("active", &self.txid);
        let decision_path = coord.path("decisions", &self.txid);
        let decided = match store_tx {
            Some(tx) if !tx.is_empty() => {
                let mut ops = vec![Op::Delete(active.clone(), None), Op::Create(decision_path, record)];
                if !enlisted.is_empty() {
                    ops.push(Op::Create(coord.path("committing", &self.txid), Vec::new()));
                }
                tx.commit_deciding(&coord.inner.store, Isolation::Serializable, ops).await.map(|r| (r.zxid, r.versions))
            },
            _ => {
                let (client, rt) = match coord.client().await {
                    Ok(c) => c,
                    Err(err) => {
                        // Nothing was sent: the transaction can only abort.
                        self.abort_now(&enlisted).await;
                        return Err(Error::rolled_back(format!("transaction {} rolled back: its decision could not be sent ({err})", self.txid), err));
                    },
                };
                let acls = coord.inner.store.session().acls();
                let mut writer = client.new_multi_writer();
                writer.add_delete(&active, None)?;
                writer.add_create(&decision_path, &record, &persistent(acls))?;
                if !enlisted.is_empty() {
                    writer.add_create(&coord.path("committing", &self.txid), b"", &persistent(acls))?;
                }
                match crate::txn::commit_multi(rt, &mut writer, "record commit decision").await {
                    Ok(results) => Ok((zxid_of(&results), Vec::new())),
                    Err(crate::txn::MultiError::Op(_, zk::Error::NoNode | zk::Error::NodeExists)) => {
                        Err(Error::RolledBack("the transaction was already ended (aborted by recovery, or its coordinator's session expired): nothing was committed".into()))
                    },
                    Err(e) => Err(multi_error(e)),
                }
            },
        };
        let (zxid, versions) = match decided {
            Ok(done) => done,
            // A session that expired around the decision write is not "not applied" for us: the
            // client fails a request it had queued or sent with SESSIONEXPIRED, and rolling the
            // branches back on that word alone would be wrong if the multi did reach the server.
            // Read what stands instead (the active node is gone with the session: the decision
            // is recorded, or never will be), and tell ROLLED_BACK or commit.
            // Likewise for every failure that is not the server's refusal of the multi (or a
            // check before sending): a closed client, a lost connection, a deadline.
            Err(err) if !refused(&err) => match self.learn_decision().await {
                Ok(Decision::Commit) => (None, Vec::new()),
                Ok(Decision::Abort) => {
                    self.abort_now(&enlisted).await;
                    return Err(Error::rolled_back(format!("transaction {} rolled back: its commit decision did not reach ZooKeeper ({err})", self.txid), err));
                },
                Err(e) => return Err(Error::InDoubt { txid: self.txid.clone(), message: format!("transaction {}: whether it committed is unknown ({err}; then {e}); every branch is prepared, and recovery resolves them: look the outcome up by id", self.txid) }),
            },
            Err(err) => {
                self.abort_now(&enlisted).await;
                return Err(match err {
                    Error::RolledBack(m) => Error::RolledBack(format!("transaction {} {m}", self.txid)),
                    Error::RolledBackBecause { message, cause } => Error::RolledBackBecause { message: format!("transaction {} {message}", self.txid), cause },
                    other => other,
                });
            },
        };
        // Phase 2.
        let failed = coord.resolve_all(Decision::Commit, &enlisted, &self.txid).await;
        if failed.is_empty() && !enlisted.is_empty() {
            // The decision node was created at version 0 (one round trip, no read).
            // Off the caller's path: until it lands, recovery may commit the branches again
            // (idempotent).
            let record = Record { decision: Decision::Commit, branches: enlisted.clone(), done: false };
            let (coord, txid) = (coord.clone(), self.txid.clone());
            tokio::spawn(async move {
                if let Err(e) = coord.write_done(&txid, record, 0).await {
                    tracing::warn!(%txid, error = %e, "could not mark the transaction done; recovery will");
                }
            });
        }
        for (p, e) in &failed {
            tracing::warn!(txid = %self.txid, participant = %p, error = %e, "a committed branch failed to commit; recovery will retry it");
        }
        Ok(Committed { txid: self.txid.clone(), pending: failed.into_iter().map(|(p, _)| p).collect(), zxid, versions })
    }

    /// Waits for the active node's write (once).
    async fn begun(&self) -> Result<()> {
        match self.begun.lock().await.take() {
            None => Ok(()),
            Some(handle) => handle.await.map_err(|e| Error::zk("SYSTEMERROR", format!("begin task failed: {e}")))?,
        }
    }

    /// After an unknown-outcome decision write: reads what stands. The decision is recorded,
    /// or it never will be once the active node is gone; while it exists our write did not
    /// apply (a later request of the same session is ordered after it), so abort it now.
    async fn learn_decision(&self) -> Result<Decision> {
        let coord = &self.coord;
        let mut last = None;
        let mut expired = false;
        for attempt in 0..8u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(4))).await;
            }
            let step = async {
                if let Some((r, _)) = coord.read::<Record>("decisions", &self.txid).await? {
                    return Ok(r.decision);
                }
                if coord.is_active(&self.txid).await? {
                    // Fence it: delete the active node (a recoverer's abort does the same).
                    let (client, rt) = coord.client().await?;
                    match deadline(rt, "abort transaction", client.delete(&coord.path("active", &self.txid), None)).await {
                        Ok(()) | Err(Error::ZooKeeper { code: "NONODE", .. }) => {},
                        Err(e) => return Err(e),
                    }
                }
                // Inactive: decided by now, or never.
                Ok(coord.read::<Record>("decisions", &self.txid).await?.map_or(Decision::Abort, |(r, _)| r.decision))
            };
            match step.await {
                Ok(d) => return Ok(d),
                // The session that sent the decision expired: the next attempt reads on a new one
                // (the active node is gone with the old, so what it reads is final). A second
                // expiry means this client opens no new session: give up.
                Err(Error::SessionExpired) if !expired => {
                    expired = true;
                    last = Some(Error::SessionExpired);
                },
                Err(e @ (Error::SessionExpired | Error::ClientClosed)) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(Error::ClientClosed))
    }

    /// Ends the transaction without committing: rolls back every enlisted branch.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` when already ended. Branch rollbacks that fail are left to recovery.
    pub async fn rollback(&self) -> Result<()> {
        self.end()?;
        // Let the active node's write land first, so the delete below removes it.
        let _ = self.begun().await;
        self.abort_now(&self.enlisted()).await;
        Ok(())
    }

    /// Fences the transaction (deletes its active node: it can no longer commit), then rolls
    /// back its branches; failures are left to recovery.
    async fn abort_now(&self, enlisted: &[String]) {
        let coord = &self.coord;
        let fenced = async {
            let (client, rt) = coord.client().await?;
            match deadline(rt, "abort transaction", client.delete(&coord.path("active", &self.txid), None)).await {
                Ok(()) | Err(Error::ZooKeeper { code: "NONODE", .. }) => Ok(()),
                Err(e) => Err(e),
            }
        };
        if let Err(e) = fenced.await {
            // The node is ephemeral: it goes with the session anyway.
            tracing::debug!(txid = %self.txid, error = %e, "could not delete the active node");
        }
        for (p, e) in coord.resolve_all(Decision::Abort, enlisted, &self.txid).await {
            tracing::warn!(txid = %self.txid, participant = %p, error = %e, "rollback failed; recovery will retry it");
        }
    }
}

/// Whether a failed decision write certainly did not apply: the server refused an operation of
/// the multi, or it was refused before sending. Anything else (connection lost, deadline, session
/// expired, client closed) may have applied.
fn refused(err: &Error) -> bool {
    match err {
        Error::Conflict(_) | Error::RolledBack(_) | Error::RolledBackBecause { .. } | Error::LockLost(_) | Error::TooLarge(_) | Error::InvalidArgument(_) => true,
        Error::ZooKeeper { code, .. } => *code != "SYSTEMERROR",
        _ => false,
    }
}

fn zxid_of(results: &[zk::MultiWriteResult]) -> Option<i64> {
    results.iter().filter_map(|r| match r {
        zk::MultiWriteResult::SetData { stat } if stat.mzxid > 0 => Some(stat.mzxid),
        _ => None,
    }).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txids_carry_their_time() {
        let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let t = txid_millis(&new_txid()).unwrap_or(0);
        assert!((t - before).abs() < 5_000, "{t} vs {before}");
    }

    /// Needs a server (ZK_CONNECT), like the store's compaction test.
    #[tokio::test]
    async fn pruned_records_are_forgotten_not_presumed_aborted() {
        let Ok(connect) = std::env::var("ZK_CONNECT") else { return };
        let store = Arc::new(Store::new(crate::SessionOptions::new(connect)).unwrap());
        let name = format!("prune-{}", uuid::Uuid::new_v4().simple());
        let c = Coordinator::new(store.clone(), &name, Vec::new(), None).unwrap();
        let run = c.begin().await.unwrap();
        run.commit(None).await.unwrap();
        assert!(matches!(c.outcome(run.txid()).await.unwrap(), TxOutcome::Committed(_)));
        assert_eq!(c.prune(Duration::from_secs(60)).await.unwrap_err().code(), "INVALID_ARGUMENT");
        assert_eq!(c.prune_now(Duration::ZERO).await.unwrap(), 1);
        assert_eq!(c.outcome(run.txid()).await.unwrap(), TxOutcome::Forgotten);
        store.close().await;
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("n", "bank-1.a_b").is_ok());
        assert_eq!(validate_name("n", "").unwrap_err().code(), "INVALID_ARGUMENT");
        assert_eq!(validate_name("n", "a:b").unwrap_err().code(), "INVALID_ARGUMENT");
        assert_eq!(validate_name("n", &"x".repeat(65)).unwrap_err().code(), "INVALID_ARGUMENT");
    }
}
