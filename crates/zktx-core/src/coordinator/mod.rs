//! Atomic commit across resources outside the coordination service: two-phase commit with
//! presumed abort, and sagas, with ZooKeeper or etcd holding every decision.
//!
//! The protocol is written once, here, over [`records::Records`]: records under the
//! coordinator's base path, read with versions and written atomically (ZooKeeper: znodes and one
//! `multi`; etcd: keys and one `Txn`). A *session record* lives only as long as the client's
//! session (ZooKeeper: an ephemeral znode; etcd: a key on the lease).
//!
//! # Two-phase commit
//!
//! A [`Coordinator`] has a name and registered [`Participant`]s (a PostgreSQL database, any
//! resource that can *prepare*). A transaction ([`Run`]) goes:
//!
//! 1. [`Coordinator::begin`] creates `active/<txid>`, a **session record** of the coordinator.
//!    Its existence is the transaction's "may still commit".
//! 2. The caller does its work on the participants it enlists ([`Run::enlist`] gives each its
//!    branch id, the *gid* `zktx:<coordinator>:<id>:<txid>:<participant>`, where `<id>` is the
//!    coordinator's own id: see [Ownership](#ownership)).
//! 3. [`Run::commit`] prepares every enlisted branch. If one fails, the transaction aborts.
//! 4. The decision is **one atomic write**: delete `active/<txid>` (it must exist) and create
//!    `decisions/<txid>` (`commit`, with the branch list; it must not exist), plus the checks and
//!    writes of zktx's own store when the run wrote keys. It applies entirely or not at all.
//! 5. Every branch commits; the record is marked done (the decision also created
//!    `committing/<txid>`, which recovery lists; marking done removes it).
//!
//! Presumed abort: a transaction without a `decisions/<txid>` record never committed, and once
//! its `active/<txid>` record is gone it never can — the only way to commit deletes that record
//! in the same write. So a recoverer that sees neither aborts safely, and a slow coordinator
//! (partitioned, its session expired meanwhile) and a recoverer can never record different
//! decisions: the recoverer records its abort on the condition that `active/<txid>` and
//! `decisions/<txid>` are both absent, in one atomic write.
//!
//! # Recovery
//!
//! [`Coordinator::recover`] (one process at a time, under a zktx lock) commits every branch of
//! a commit decision not yet done, and, for each branch a participant lists as prepared
//! ([`Participant::in_doubt`]): commit decided → commit; abort decided → roll back; no decision
//! and no active node → record abort, roll back; still active → leave it to its coordinator.
//!
//! # Ownership
//!
//! Two applications may each run a coordinator of the same name (in their own chroots, or on
//! other ensembles) over one database. A gid must then say whose branch it is, or one's recovery
//! would record an abort for the other's transaction and roll its branch back. So each
//! coordinator tree holds an id (`<base>/id`: 16 random hex digits, created once with
//! create-if-absent, read before the first gid is made, bound to the tree's birth), every gid carries it, and recovery
//! resolves only gids with its own id. Gids of the old format (`zktx:<name>:<txid>:<p>`, without
//! an id) are never touched by recovery: see the CHANGELOG.
//!
//! # Deadlines
//!
//! Every participant call has a deadline ([`Coordinator::with_participant_timeout`], default
//! [`DEFAULT_PARTICIPANT_TIMEOUT`]); a call past it counts as failed (its outcome unknown),
//! never as done. A recovery pass lists every participant's prepared branches at once and, once
//! a participant missed a deadline, calls it no more in that pass: a frozen database costs a pass
//! one deadline, and the other participants' branches are still resolved.
//!
//! # Sagas
//!
//! For participants that cannot prepare: steps with compensations ([`SagaSteps`]). The log
//! `sagas/<txid>` records how many steps were started, each record fenced on the saga's active
//! node. On a failed step the started steps are compensated in reverse (each retried until it
//! succeeds, at least once); a saga whose coordinator died is compensated by recovery. Steps get
//! idempotency keys; duplicated actions, null compensations and hanging actions are the steps'
//! business (see the PostgreSQL barrier in the JS package).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};

pub(crate) mod records;

use crate::backend::{AnyStore, AnyTransaction};
use crate::error::{Error, Outcome, Result};
use crate::kv::encode_key;
use records::{Applied, Cond, Put, Records};

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

/// How long a participant call may take before it counts as failed (see the module's
/// [Deadlines](self#deadlines)). Generous: a `PREPARE TRANSACTION` of a large transaction
/// flushes WAL, and a false timeout only delays (recovery retries), while a missing one hangs.
pub const DEFAULT_PARTICIPANT_TIMEOUT: Duration = Duration::from_secs(30);

/// The clock difference allowed between the machine that made a txid (its time is in it) and
/// ZooKeeper's, when [`Coordinator::outcome`] decides whether a missing record may be pruned.
const CLOCK_SKEW_MARGIN: Duration = Duration::from_secs(300);

/// Hex digits of a coordinator's id (64 random bits: two coordinators sharing a database never
/// draw the same), short enough that the longest gid fits PostgreSQL's 199 bytes.
const ID_DIGITS: usize = 16;

/// The directories of a coordinator's tree.
const DIRS: [&str; 4] = ["active", "decisions", "committing", "sagas"];

/// Why a decision could not be recorded because the run had ended.
pub(crate) const ALREADY_ENDED: &str = "the transaction was already ended (aborted by recovery, or its coordinator's session expired): nothing was committed";

/// Where a transaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Committed (every branch commits, now or by recovery).
    Commit,
    /// Aborted (every branch rolls back).
    Abort,
}

/// A decision record (`decisions/<txid>`).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    decision: Decision,
    /// Participants enlisted (every one prepared before a commit decision).
    branches: Vec<String>,
    /// Every branch is resolved.
    #[serde(default)]
    done: bool,
    /// The coordinator id in the branches' gids; absent in records of versions before gids
    /// carried one (their branches' gids are of the old format: see `recover_locked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
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
    pub versions: Vec<(String, i64)>,
}

/// A transaction's outcome as its records say ([`Coordinator::outcome`]).
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
    /// Asked by bare txid: this coordinator has no record of it, it is not active here, and
    /// this coordinator did not make it (its tag is another's: another coordinator's txid, or
    /// one made by a version before txids were tagged). Says nothing about its outcome: ask its
    /// own coordinator, by gid.
    Unknown,
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
    /// Where the records are: ZooKeeper or etcd ([`records`]).
    records: Arc<dyn Records>,
    name: String,
    base: String,
    participants: BTreeMap<String, Arc<dyn Participant>>,
    steps: Option<Arc<dyn SagaSteps>>,
    /// This coordinator tree's id (in every gid), read once from `<base>/id`.
    id: tokio::sync::OnceCell<String>,
    participant_timeout: Duration,
    /// Transactions begun in this process and not yet ended: their active node may still be in
    /// flight, so [`Coordinator::outcome`] answers `Active` for them instead of recording an abort.
    live: Mutex<HashSet<String>>,
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
    /// A coordinator named `name` on `store`'s session (ZooKeeper or etcd), with its
    /// participants and saga steps.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a bad name.
    pub fn new(store: AnyStore, name: &str, participants: Vec<(String, Arc<dyn Participant>)>, steps: Option<Arc<dyn SagaSteps>>) -> Result<Coordinator> {
        validate_name("coordinator name", name)?;
        let mut map = BTreeMap::new();
        for (n, p) in participants {
            validate_name("participant name", &n)?;
            if map.insert(n.clone(), p).is_some() {
                return Err(Error::invalid(format!("participant {n:?} is registered twice")));
            }
        }
        let records: Arc<dyn Records> = match store {
            AnyStore::ZooKeeper(store) => Arc::new(crate::backend::zookeeper::records::ZkRecords { store }),
            AnyStore::Etcd(session) => Arc::new(crate::backend::etcd::records::EtcdRecords { session, wall_offset_ms: 0 }),
        };
        let base = records.base(&encode_key(name)?);
        Ok(Coordinator {
            inner: Arc::new(Inner {
                records,
                name: name.to_string(),
                base,
                participants: map,
                steps,
                id: tokio::sync::OnceCell::new(),
                participant_timeout: DEFAULT_PARTICIPANT_TIMEOUT,
                live: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// Sets the deadline of every participant call (default [`DEFAULT_PARTICIPANT_TIMEOUT`]).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for zero, or once the coordinator has been cloned.
    pub fn with_participant_timeout(mut self, timeout: Duration) -> Result<Coordinator> {
        if timeout.is_zero() {
            return Err(Error::invalid("participantTimeoutMs must be more than 0"));
        }
        Arc::get_mut(&mut self.inner).ok_or_else(|| Error::invalid("set the participant timeout before using the coordinator"))?.participant_timeout = timeout;
        Ok(self)
    }

    /// Runs one participant call under the participant deadline: past it, `TIMEOUT` (outcome
    /// unknown: the call may still complete), never success.
    async fn call<T>(&self, participant: &str, op: &str, call: BoxFuture<'_, Result<T>>) -> Result<T> {
        let limit = self.inner.participant_timeout;
        match tokio::time::timeout(limit, call).await {
            Ok(done) => done,
            Err(_) => Err(Error::Timeout { message: format!("participant {participant} {op}: TIMEOUT, no answer within {} ms (counted as failed; it may still complete)", limit.as_millis()), outcome: Outcome::Unknown }),
        }
    }

    /// The coordinator's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    fn path(&self, dir: &str, txid: &str) -> String {
        format!("{}/{dir}/{txid}", self.inner.base)
    }

    /// The gid of `participant`'s branch of `txid`: `zktx:<name>:<id>:<txid>:<participant>`.
    /// The id is read with the coordinator's first call to its records (every path to a gid makes one
    /// first: [`Coordinator::begin`], recovery); before that, `<id>` would be unknown, so this
    /// is `INVALID_ARGUMENT`.
    pub fn gid(&self, txid: &str, participant: &str) -> Result<String> {
        Ok(self.gid_of(self.id()?, txid, participant))
    }

    /// The gid of a branch made under coordinator id `id` (a commit decision records its own:
    /// the tree's id may have been re-keyed since).
    fn gid_of(&self, id: &str, txid: &str, participant: &str) -> String {
        format!("zktx:{}:{id}:{txid}:{participant}", self.inner.name)
    }

    fn id(&self) -> Result<&str> {
        self.inner.id.get().map(String::as_str).ok_or_else(|| Error::invalid("the coordinator's id is not known yet"))
    }

    /// `(txid, participant)` of one of this coordinator's gids; `None` for anyone else's (another
    /// coordinator, the same name in another namespace, the old format without an id).
    fn parse_gid<'g>(&self, gid: &'g str) -> Option<(&'g str, &'g str)> {
        let id = self.inner.id.get()?;
        let rest = gid.strip_prefix("zktx:")?.strip_prefix(self.inner.name.as_str())?.strip_prefix(':')?.strip_prefix(id.as_str())?.strip_prefix(':')?;
        let (txid, participant) = rest.split_once(':')?;
        (txid.len() == 32 && txid.bytes().all(|b| b.is_ascii_hexdigit())).then_some((txid, participant))
    }

    /// Reads this tree's id, creating it if absent (the first process to ask wins the create;
    /// every other reads its value).
    ///
    /// The id record holds `<id> <birth stamp of the tree, hex>` (ZooKeeper: the czxid of
    /// `<base>`; etcd: the create revision of the `<base>` key): the id *bound to its tree*. A
    /// copy of the tree (restored from a backup into another chroot or prefix, cloned for
    /// staging, restored in place after a loss) is written record by record, so its base has
    /// another stamp: the copy keeps the id of the tree it copies, and two trees sharing an id
    /// would roll back each other's branches (each one's recovery takes the other's gids for its
    /// own). So a binding that does not match is refused (`COORDINATOR_ID`) until an operator
    /// writes the id record again: the id alone (`<id>`) is bound to the tree that finds it. A
    /// record without a binding (written by an operator, or by a version before bindings) is
    /// bound at the first load.
    ///
    /// An id record that is absent from a tree holding transaction records was lost: a fresh id
    /// would orphan every prepared branch of the old one (recovery resolves only its own id's
    /// gids), so that too is `COORDINATOR_ID`, naming the record to restore and the old id as
    /// the records give it.
    async fn load_id(&self, born: &str) -> Result<String> {
        let records = &self.inner.records;
        let base = &self.inner.base;
        let path = format!("{base}/id");
        let mut lost_creates = 0u32;
        loop {
            match records.read(&path).await? {
                Some((data, version)) => {
                    let text = String::from_utf8_lossy(&data).trim().to_string();
                    let (id, bound) = match text.split_once(' ') {
                        Some((id, bound)) => (id.to_string(), Some(bound.to_string())),
                        None => (text.clone(), None),
                    };
                    if id.len() != ID_DIGITS || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(Error::zk("SYSTEMERROR", format!("unreadable coordinator id in {path}: {text:?}")));
                    }
                    match bound {
                        Some(b) if b == born => return Ok(id),
                        Some(b) => {
                            return Err(Error::CoordinatorId(format!(
                                "{path} holds id {id} bound to another tree (its base was created at 0x{b}, this one at 0x{born}): this tree is a copy (restored from a backup, cloned) of the tree that owns that id, and sharing it would let each one's recovery roll back the other's branches. No gid is made and no branch resolved here until an operator rewrites {path}: with 16 new random hex digits if the original tree still runs (re-key), or with {id} alone if this tree replaces it for good (rebind)"
                            )))
                        },
                        None => {
                            let bind = records.apply(vec![Cond::At(path.clone(), version)], vec![Put::Set(path.clone(), format!("{id} {born}").into_bytes())], "bind coordinator id").await?;
                            if let Applied::Done { .. } = bind {
                                return Ok(id);
                            }
                        },
                    }
                },
                None => {
                    if let Some(lost) = self.lost_id().await? {
                        // Records, and no id when it was read: lost, or another process of a
                        // new tree created the id and its first records between that read and
                        // the listing (several processes starting at once). Those records were
                        // written under an id that existed before the listing: one still absent
                        // now was deleted, one present now is read on the next turn.
                        if records.exists(&path).await? {
                            continue;
                        }
                        return Err(Error::CoordinatorId(format!(
                            "coordinator tree {base} holds transaction records but no id record {path}: its id was lost, and a new one would orphan every branch its records decide or leave prepared. Restore {path} with the old id alone ({lost}); the next start binds it to this tree"
                        )));
                    }
                    let fresh = uuid::Uuid::new_v4().simple().to_string()[..ID_DIGITS].to_string();
                    let create = Put::Create { path: path.clone(), data: format!("{fresh} {born}").into_bytes(), session: false };
                    match records.apply(vec![Cond::Absent(path.clone())], vec![create], "create coordinator id").await {
                        Ok(Applied::Done { .. }) => return Ok(fresh),
                        Ok(Applied::Failed(_)) => {},
                        // Lost on its way (a member down, a dropped connection): applied or not,
                        // the next turn reads what stands (created only if absent: a retry never
                        // makes a second id).
                        Err(e) if e.is_transient() && lost_creates < 4 => {
                            lost_creates += 1;
                            tokio::time::sleep(Duration::from_millis(100 << lost_creates)).await;
                        },
                        Err(e) => return Err(e),
                    }
                },
            }
        }
    }

    /// For a tree without an id record: `None` if it holds no transaction records (a new
    /// tree), else what its records say the lost id was.
    async fn lost_id(&self) -> Result<Option<String>> {
        let mut found = false;
        for dir in ["committing", "decisions", "active"] {
            let path = format!("{}/{dir}", self.inner.base);
            let children = self.inner.records.list(&path).await?;
            found |= !children.is_empty();
            if dir == "active" {
                continue;
            }
            for txid in children.iter().take(8) {
                if let Ok(Some((data, _))) = self.inner.records.read(&format!("{path}/{txid}")).await {
                    if let Some(id) = serde_json::from_slice::<Record>(&data).ok().and_then(|r| r.id) {
                        return Ok(Some(format!("{id}, as {dir}/{txid} records it")));
                    }
                }
            }
        }
        Ok(found.then(|| "the records read carry none: find it in a participant's prepared gids, zktx:<name>:<id>:...".to_string()))
    }

    /// Prepares the tree and reads the id, once: every gid carries the id.
    async fn ready(&self) -> Result<()> {
        if self.inner.id.get().is_none() {
            self.inner
                .id
                .get_or_try_init(|| async {
                    let born = self.inner.records.prepare(&self.inner.base, &DIRS).await?;
                    self.load_id(&born).await
                })
                .await?;
        }
        Ok(())
    }

    /// Starts a transaction: records it as active (a record of this session: an ephemeral
    /// znode, an etcd key on the lease). The record is written in the background, while the
    /// caller works on its participants; the commit waits for it before it prepares anything.
    ///
    /// # Errors
    /// `CLIENT_CLOSED`; the connection errors of reading the coordinator's id (its first call
    /// only); a failed record fails the commit later (nothing is left behind: the record goes
    /// with the session).
    pub async fn begin(&self) -> Result<Run> {
        if self.inner.records.is_closed().await {
            return Err(Error::ClientClosed);
        }
        // Once per coordinator: the gids the caller is about to get carry the id.
        self.ready().await?;
        let txid = new_txid(&self.inner.name, self.inner.id.get().map(String::as_str));
        if let Ok(mut live) = self.inner.live.lock() {
            live.insert(txid.clone());
        }
        let coord = self.clone();
        let path = self.path("active", &txid);
        let begun = tokio::spawn(async move {
            let create = Put::Create { path: path.clone(), data: Vec::new(), session: true };
            match coord.inner.records.apply(vec![Cond::Absent(path.clone())], vec![create], "begin transaction").await.map_err(Error::for_write)? {
                Applied::Done { .. } => Ok(()),
                Applied::Failed(_) => Err(Error::zk("NODEEXISTS", format!("{path} exists already"))),
            }
        });
        Ok(Run { coord: self.clone(), txid, enlisted: Mutex::new(Vec::new()), ended: AtomicBool::new(false), begun: tokio::sync::Mutex::new(Some(begun)) })
    }

    fn participant(&self, name: &str) -> Result<&Arc<dyn Participant>> {
        self.inner.participants.get(name).ok_or_else(|| Error::invalid(format!("coordinator {:?} has no participant {name:?}", self.inner.name)))
    }

    async fn read<T: serde::de::DeserializeOwned>(&self, dir: &str, txid: &str) -> Result<Option<(T, i64)>> {
        self.ready().await?;
        let Some((data, version)) = self.inner.records.read(&self.path(dir, txid)).await? else { return Ok(None) };
        let record = serde_json::from_slice(&data).map_err(|e| Error::zk("SYSTEMERROR", format!("unreadable coordinator record {dir}/{txid}: {e}")))?;
        Ok(Some((record, version)))
    }

    async fn is_active(&self, txid: &str) -> Result<bool> {
        self.ready().await?;
        self.inner.records.exists(&self.path("active", txid)).await
    }

    /// Deletes `txid`'s active record if it exists: the transaction can no longer commit.
    async fn fence(&self, txid: &str) -> Result<()> {
        let active = self.path("active", txid);
        self.inner.records.apply(vec![Cond::Exists(active.clone())], vec![Put::Delete(active)], "abort transaction").await.map(drop)
    }

    /// The outcome of a transaction, asked by the gid of one of its branches
    /// (`zktx:<name>:<id>:<txid>:<participant>`, what a participant lists as prepared) or by its
    /// txid (32 hex digits, either case).
    ///
    /// # Guarantees
    /// `Aborted` only once the transaction can no longer commit: for a transaction with no
    /// record and no active node, this records the abort itself (as recovery does), since its
    /// active node may still be on its way (the run writes it in the background). A transaction
    /// begun in this process and not ended is `Active`. `Forgotten` only for txids older than
    /// the prune horizon (by their own clock, with a margin for clock skew; the horizon covers
    /// every pruned record's txid time, so a pruned commit is never presumed aborted).
    ///
    /// Only this coordinator's transactions are presumed aborted: a gid of another name or of
    /// another id (another tree: another chroot, another ensemble, a re-keyed copy) is
    /// `INVALID_ARGUMENT`, unless a decision of this tree records that id (it was this tree's id
    /// before a re-key). A bare txid says nothing of its coordinator; one with no record here
    /// whose tag is not this coordinator's (see `new_txid`: another coordinator made it, or a
    /// version before tags) is `Unknown`, and nothing is written: that answer licenses no
    /// rollback anywhere.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a malformed txid or gid, or another coordinator's gid;
    /// `COORDINATOR_ID` (see the README) for a tree whose id is lost or copied; connection errors.
    pub async fn outcome(&self, asked: &str) -> Result<TxOutcome> {
        let is_txid = |t: &str| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit());
        let (txid, gid_id) = match asked.strip_prefix("zktx:") {
            Some(rest) => {
                let parts: Vec<&str> = rest.splitn(4, ':').collect();
                let [name, id, txid, participant] = parts[..] else {
                    return Err(Error::invalid(format!("not a gid (zktx:<coordinator>:<id>:<txid>:<participant>): {asked:?}")));
                };
                if id.len() != ID_DIGITS || !id.bytes().all(|b| b.is_ascii_hexdigit()) || !is_txid(txid) || participant.is_empty() {
                    return Err(Error::invalid(format!("not a gid (zktx:<coordinator>:<id>:<txid>:<participant>): {asked:?}")));
                }
                if name != self.inner.name {
                    return Err(Error::invalid(format!("{asked} is a branch of coordinator {name:?}, not of {:?}: ask that coordinator", self.inner.name)));
                }
                (txid.to_ascii_lowercase(), Some(id.to_ascii_lowercase()))
            },
            None if is_txid(asked) => (asked.to_ascii_lowercase(), None),
            None => return Err(Error::invalid(format!("not a transaction id (32 hex digits) or a gid: {asked:?}"))),
        };
        let txid = &txid;
        self.ready().await?;
        let own = self.id()?.to_string();
        if let Some(id) = gid_id.as_deref().filter(|id| *id != own) {
            // A branch of another tree, unless this tree decided it under an id it had before.
            return match self.read::<Record>("decisions", txid).await? {
                Some((record, _)) if record.id.as_deref() == Some(id) => Ok(match record.decision {
                    Decision::Commit => TxOutcome::Committed(record.done),
                    Decision::Abort => TxOutcome::Aborted,
                }),
                _ => Err(Error::invalid(format!("{asked} carries coordinator id {id}, and this coordinator tree's id is {own}: it is a branch of another tree of the name {:?} (another chroot or ensemble, or a copy); ask the coordinator whose tree has id {id}", self.inner.name))),
            };
        }
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
        if self.inner.live.lock().is_ok_and(|live| live.contains(txid)) || self.is_active(txid).await? {
            return Ok(TxOutcome::Active);
        }
        if self.maybe_pruned(txid).await? {
            return Ok(TxOutcome::Forgotten);
        }
        // A txid not made here (and not proved ours by a gid): presuming its abort would record
        // a decision that fences nothing (its active node is in another tree) and say `aborted`
        // of what may yet commit there.
        if gid_id.is_none() && txid.get(20..) != Some(tag_txid(&self.inner.name, &own, &txid[..20]).as_str()) {
            return Ok(TxOutcome::Unknown);
        }
        // Not active now, but the run may not have written its active node yet: make sure it
        // never can commit before saying aborted (its decision write then fails).
        Ok(match self.record_abort(txid).await? {
            Some(Decision::Abort) => TxOutcome::Aborted,
            Some(Decision::Commit) => TxOutcome::Committed(false),
            None => TxOutcome::Active,
        })
    }

    /// Whether `txid`'s records may have been pruned: asked once a read found none (the
    /// horizon is moved before the deletes, so it covers any record found missing). Pruning
    /// deletes records whose last write is before the horizon and moves the horizon past their
    /// txids' times; a record is written after its txid was made: only a txid older than the
    /// horizon (plus the skew of the clock that made it) may have lost its record. Then a
    /// missing decision says nothing: it may have been a commit, pruned once done.
    async fn maybe_pruned(&self, txid: &str) -> Result<bool> {
        let Some(horizon) = self.pruned_before().await? else { return Ok(false) };
        let margin = CLOCK_SKEW_MARGIN.as_millis() as i64;
        Ok(txid_millis(txid).is_none_or(|t| t < horizon.saturating_add(margin)))
    }

    /// The prune horizon (server ms): records of transactions ended before it may be gone.
    async fn pruned_before(&self) -> Result<Option<i64>> {
        self.ready().await?;
        let horizon = self.inner.records.read(&format!("{}/pruned", self.inner.base)).await?;
        Ok(horizon.and_then(|(data, _)| std::str::from_utf8(&data).ok().and_then(|s| s.trim().parse().ok())))
    }

    /// Deletes the records of transactions that ended more than `older_than` ago (ZooKeeper: by
    /// the server's clock; etcd, which keeps no time per key: records last written before the
    /// store's revision at an earlier `prune` at least `older_than` ago by the server's clock (a
    /// lease's countdown), so call it periodically; neither a writer's nor a pruner's clock
    /// matters): commit decisions whose branches are all committed, abort decisions,
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
        self.ready().await?;
        let records = &self.inner.records;
        let Some(horizon) = records.horizon(&self.inner.base, older_than, "prune").await? else { return Ok(0) };
        let ended_decision = |_: &str, data: &[u8]| serde_json::from_slice::<Record>(data).is_ok_and(|r| r.decision == Decision::Abort || r.done);
        let ended_saga = |_: &str, data: &[u8]| serde_json::from_slice::<SagaLog>(data).is_ok_and(|l| matches!(l.state, SagaState::Done | SagaState::Compensated));
        let (decisions_dir, sagas_dir) = (format!("{}/decisions", self.inner.base), format!("{}/sagas", self.inner.base));
        // `outcome()` answers `forgotten` for txids before the horizon (plus a margin) and
        // presumes the abort of later ones with no record; a txid carries its maker's clock. So
        // the horizon also covers the latest txid time among the records about to go (a
        // machine whose clock ran ahead made it): a first pass lists them and deletes nothing,
        // and the second deletes only those it counted (a record that became old enough in
        // between, were a server's clock to step back, waits for the next prune).
        let latest = std::sync::atomic::AtomicI64::new(i64::MIN);
        let counted = std::sync::Mutex::new(std::collections::HashSet::<(bool, String)>::new());
        let note = |saga: bool, name: &str| {
            latest.fetch_max(txid_millis(name).unwrap_or(i64::MIN), std::sync::atomic::Ordering::Relaxed);
            if let Ok(mut counted) = counted.lock() {
                counted.insert((saga, name.to_string()));
            }
            false
        };
        records.sweep(&decisions_dir, &horizon, &|name, data| ended_decision(name, data) && note(false, name)).await?;
        records.sweep(&sagas_dir, &horizon, &|name, data| ended_saga(name, data) && note(true, name)).await?;
        let cutoff = horizon.at.max(latest.into_inner().saturating_add(1));
        // First the horizon (only ever moved forward), then the deletes: a reader never finds a
        // record missing without a horizon that says it may be.
        let horizon_path = format!("{}/pruned", self.inner.base);
        let text = cutoff.to_string().into_bytes();
        loop {
            let moved = match records.read(&horizon_path).await? {
                Some((data, version)) => {
                    let old: i64 = std::str::from_utf8(&data).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(i64::MIN);
                    if old >= cutoff {
                        break;
                    }
                    records.apply(vec![Cond::At(horizon_path.clone(), version)], vec![Put::Set(horizon_path.clone(), text.clone())], "move prune horizon").await?
                },
                None => records.apply(vec![Cond::Absent(horizon_path.clone())], vec![Put::Create { path: horizon_path.clone(), data: text.clone(), session: false }], "create prune horizon").await?,
            };
            if let Applied::Done { .. } = moved {
                break;
            }
        }
        let was_counted = |saga: bool, name: &str| counted.lock().is_ok_and(|c| c.contains(&(saga, name.to_string())));
        let decisions = records.sweep(&decisions_dir, &horizon, &|name, data| ended_decision(name, data) && was_counted(false, name)).await?;
        let sagas = records.sweep(&sagas_dir, &horizon, &|name, data| ended_saga(name, data) && was_counted(true, name)).await?;
        Ok(decisions + sagas)
    }

    /// Commits (or rolls back) one branch of `txid` made under coordinator id `id`, retrying a
    /// few times.
    async fn resolve_branch(&self, decision: Decision, participant: &str, txid: &str, id: &str) -> Result<()> {
        let p = self.participant(participant)?;
        let gid = self.gid_of(id, txid, participant);
        let mut last = None;
        for attempt in 0..BRANCH_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            let done = match decision {
                Decision::Commit => self.call(participant, "commit", p.commit(&gid)).await,
                Decision::Abort => self.call(participant, "rollback", p.rollback(&gid)).await,
            };
            match done {
                Ok(()) => return Ok(()),
                // A participant that missed its deadline is sick: asking again at once would
                // only multiply the wait; recovery retries later.
                Err(e @ Error::Timeout { .. }) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Participant("no attempt made".into())))
    }

    /// Resolves every branch; returns the participants whose branch is still unresolved.
    async fn resolve_all(&self, decision: Decision, participants: &[String], txid: &str, id: &str) -> Vec<(String, Error)> {
        let results = join_all(participants.iter().map(|p| self.resolve_branch(decision, p, txid, id))).await;
        participants.iter().zip(results).filter_map(|(p, r)| r.err().map(|e| (p.clone(), e))).collect()
    }

    /// Records that every branch of a committed `txid` is committed.
    async fn mark_done(&self, txid: &str) -> Result<()> {
        let Some((record, version)) = self.read::<Record>("decisions", txid).await? else { return Ok(()) };
        self.write_done(txid, record, version).await
    }

    /// Writes `record` as done at `version` (a concurrent writer did it already if it moved).
    /// One atomic write: the record says done, and the `committing/<txid>` marker (what
    /// recovery lists) goes. A record already done only loses its marker.
    async fn write_done(&self, txid: &str, mut record: Record, version: i64) -> Result<()> {
        let marker = self.path("committing", txid);
        let mut conds = vec![Cond::Exists(marker.clone())];
        let mut puts = vec![Put::Delete(marker)];
        if !record.done {
            record.done = true;
            let path = self.path("decisions", txid);
            conds.push(Cond::At(path.clone(), version));
            puts.push(Put::Set(path, to_json(&record)?));
        }
        // Failed: marked by another process meanwhile (its write removed the marker too).
        self.inner.records.apply(conds, puts, "mark transaction done").await.map(drop)
    }

    /// Records `abort` for a transaction that is no longer active and has no decision; returns
    /// the decision that stands (a concurrent commit decision wins), `None` if still active.
    async fn record_abort(&self, txid: &str) -> Result<Option<Decision>> {
        self.ready().await?;
        let record = to_json(&Record { decision: Decision::Abort, branches: Vec::new(), done: false, id: self.inner.id.get().cloned() })?;
        let decision = self.path("decisions", txid);
        let conds = vec![Cond::Absent(self.path("active", txid)), Cond::Absent(decision.clone())];
        match self.inner.records.apply(conds, vec![Put::Create { path: decision, data: record, session: false }], "record abort").await? {
            Applied::Done { .. } => Ok(Some(Decision::Abort)),
            Applied::Failed(0) => Ok(None),
            Applied::Failed(_) => Ok(self.read::<Record>("decisions", txid).await?.map(|(r, _)| r.decision)),
        }
    }

    /// Runs a recovery pass, waiting up to `wait` for the recovery lock (`None`: forever);
    /// `Ok(None)` if another process holds it that long.
    ///
    /// # Errors
    /// Connection errors; participant failures are in the report.
    pub async fn recover(&self, wait: Option<Duration>) -> Result<Option<RecoveryReport>> {
        self.ready().await?;
        let Some(lock) = self.inner.records.lock(&format!("{}/recovery", self.inner.base), wait).await? else { return Ok(None) };
        let report = self.recover_locked().await;
        let released = lock.release().await;
        let report = report?;
        released?;
        Ok(Some(report))
    }

    async fn recover_locked(&self) -> Result<RecoveryReport> {
        let mut report = RecoveryReport::default();
        let records = &self.inner.records;
        // Participants that missed a deadline in this pass: not called again until the next
        // one, so a frozen database costs the pass one deadline, not one per branch.
        let mut sick: HashSet<String> = HashSet::new();
        let note = |sick: &mut HashSet<String>, participant: &str, err: &Error| {
            if matches!(err, Error::Timeout { .. }) {
                sick.insert(participant.to_string());
            }
        };
        // 1. Commit decisions whose branches are not all committed: those still marked in
        // `committing/` (a pass reads only those, not every decision ever recorded).
        for txid in records.list(&format!("{}/committing", self.inner.base)).await? {
            // One record that cannot be read (unreadable data a foreign writer put there) is that
            // transaction's error, not the pass's: the others are still resolved.
            let (record, version) = match self.read::<Record>("decisions", &txid).await {
                Ok(Some(found)) => found,
                Ok(None) => continue,
                Err(e @ Error::ZooKeeper { code: "SYSTEMERROR", .. }) => {
                    report.errors.push(format!("commit {txid}: {e}"));
                    continue;
                },
                Err(e) => return Err(e),
            };
            if record.decision != Decision::Commit || record.done {
                self.write_done(&txid, record, version).await?;
                continue;
            }
            let Some(id) = record.id.clone() else {
                // Decided by a version whose gids carried no id: committing `zktx:<name>:<id>:..`
                // would find nothing, and a branch of the old format that is gone cannot be told
                // committed from rolled back (it left no commit record). Left to the operator.
                report.errors.push(format!("commit {txid}: decided by a zktx version before gids carried the coordinator id; commit its branches (zktx:{}:{txid}:<participant>) by hand (CHANGELOG)", self.inner.name));
                continue;
            };
            // The branches' gids carry the id the decision recorded, which is not the tree's
            // id of now if it was re-keyed since.
            let (healthy, skipped): (Vec<String>, Vec<String>) = record.branches.iter().cloned().partition(|p| !sick.contains(p));
            let failed = self.resolve_all(Decision::Commit, &healthy, &txid, &id).await;
            report.committed += healthy.len() - failed.len();
            if failed.is_empty() && skipped.is_empty() {
                self.mark_done(&txid).await?;
            }
            for (p, e) in failed {
                note(&mut sick, &p, &e);
                report.errors.push(format!("commit {}: {e}", self.gid_of(&id, &txid, &p)));
            }
            for p in skipped {
                report.errors.push(format!("commit {}: skipped, participant {p} missed a deadline earlier in this pass", self.gid_of(&id, &txid, &p)));
            }
        }
        // 2. Branches the participants list as prepared: every list asked at once, each under
        // its deadline.
        let lists = join_all(self.inner.participants.iter().map(|(name, p)| async move { (name, self.call(name, "inDoubt", p.in_doubt()).await) })).await;
        let mut decided: HashMap<String, Option<Decision>> = HashMap::new();
        for (name, listed) in lists {
            let gids = match listed {
                Ok(gids) => gids,
                Err(e) => {
                    note(&mut sick, name, &e);
                    report.errors.push(format!("participant {name}: listing prepared branches failed: {e}"));
                    continue;
                },
            };
            for gid in gids {
                let Some((txid, participant)) = self.parse_gid(&gid) else { continue };
                if participant != name {
                    continue;
                }
                if sick.contains(name) {
                    report.errors.push(format!("{gid}: skipped, participant {name} missed a deadline earlier in this pass"));
                    continue;
                }
                let decision = match decided.get(txid) {
                    Some(d) => *d,
                    None => {
                        let read = match self.read::<Record>("decisions", txid).await {
                            Err(e @ Error::ZooKeeper { code: "SYSTEMERROR", .. }) => {
                                // Unreadable: neither commit nor abort is known; left prepared.
                                report.errors.push(format!("{gid}: {e}"));
                                continue;
                            },
                            other => other?,
                        };
                        let d = match read {
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
                match self.resolve_branch(decision, participant, txid, self.id()?).await {
                    Ok(()) if decision == Decision::Commit => report.committed += 1,
                    Ok(()) => report.rolled_back += 1,
                    Err(e) => {
                        note(&mut sick, name, &e);
                        report.errors.push(format!("{} {gid}: {e}", if decision == Decision::Commit { "commit" } else { "rollback" }));
                    },
                }
            }
        }
        // 3. Sagas whose coordinator is gone.
        for txid in records.list(&format!("{}/sagas", self.inner.base)).await? {
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

    /// Deletes saga `txid`'s active record if this session owns it (never a recoverer's), so
    /// that the next recovery pass, in any process, finishes the saga.
    async fn release_saga(&self, txid: &str) {
        let released = async {
            let active = self.path("active", txid);
            let Some(version) = self.inner.records.owned(&active).await? else { return Ok(()) };
            self.inner.records.apply(vec![Cond::At(active.clone(), version)], vec![Put::Delete(active)], "release saga").await.map(drop)
        };
        if let Err(e) = released.await {
            tracing::warn!(%txid, error = %e, "could not hand the unfinished saga to recovery; it waits for this session to end");
        }
    }

    async fn run_saga_steps(&self, saga: &str, input: &str, begun: &mut Option<String>) -> Result<String> {
        let steps = self.steps()?;
        let count = steps.steps(saga).ok_or_else(|| Error::invalid(format!("no saga named {saga:?}")))?;
        self.ready().await?;
        let txid = new_txid(&self.inner.name, self.inner.id.get().map(String::as_str));
        let log_path = self.path("sagas", &txid);
        let active = self.path("active", &txid);
        let mut log = SagaLog { saga: saga.to_string(), input: input.to_string(), started: 0, state: SagaState::Running };
        let conds = vec![Cond::Absent(active.clone()), Cond::Absent(log_path.clone())];
        let puts = vec![Put::Create { path: active.clone(), data: Vec::new(), session: true }, Put::Create { path: log_path.clone(), data: to_json(&log)?, session: false }];
        let applied = self.inner.records.apply(conds, puts, "begin saga").await?;
        if let Applied::Failed(_) = applied {
            return Err(Error::zk("NODEEXISTS", format!("saga {txid} exists already")));
        }
        *begun = Some(txid.clone());
        let mut version = applied.version(1);
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
        self.end_saga(&active, &log_path, &log, version, "finish saga").await.map_err(|e| self.saga_error(&txid, e))?;
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
    async fn write_log(&self, active: &str, log_path: &str, log: &SagaLog, version: i64) -> Result<i64> {
        let conds = vec![Cond::Exists(active.to_string()), Cond::At(log_path.to_string(), version)];
        match self.inner.records.apply(conds, vec![Put::Set(log_path.to_string(), to_json(log)?)], "record saga step").await? {
            applied @ Applied::Done { .. } => Ok(applied.version(0)),
            Applied::Failed(_) => Err(taken_over(log_path)),
        }
    }

    /// Writes the saga's last log at `version` and deletes its active record, if it still
    /// exists.
    async fn end_saga(&self, active: &str, log_path: &str, log: &SagaLog, version: i64, what: &str) -> Result<()> {
        let conds = vec![Cond::Exists(active.to_string()), Cond::At(log_path.to_string(), version)];
        let puts = vec![Put::Delete(active.to_string()), Put::Set(log_path.to_string(), to_json(log)?)];
        match self.inner.records.apply(conds, puts, what).await? {
            Applied::Done { .. } => Ok(()),
            Applied::Failed(_) => Err(taken_over(log_path)),
        }
    }

    /// Compensates every started step in reverse (each retried until it succeeds, within a
    /// bound), then records the saga compensated and ends it.
    async fn compensate(&self, txid: &str, log: &mut SagaLog, mut version: i64) -> Result<()> {
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
        self.end_saga(&active, &log_path, log, version, "finish compensation").await
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
        // Take it over: our own session's active record, created only if the owner's is gone.
        let active = self.path("active", txid);
        log.state = SagaState::Compensating;
        let conds = vec![Cond::Absent(active.clone()), Cond::At(self.path("sagas", txid), version)];
        let puts = vec![Put::Create { path: active, data: Vec::new(), session: true }, Put::Set(self.path("sagas", txid), to_json(&log)?)];
        let applied = self.inner.records.apply(conds, puts, "take over saga").await?;
        if let Applied::Failed(_) = applied {
            return Ok(false);
        }
        self.compensate(txid, &mut log, applied.version(1)).await?;
        Ok(true)
    }
}

/// A transaction id, 32 hex digits: 12 of the Unix time in ms (so [`Coordinator::outcome`] can
/// tell a forgotten transaction from one never decided), 8 random, and 12 of a tag: SipHash-2-4
/// of the coordinator's name and the rest, keyed by the coordinator's id (`tag_txid`). The tag
/// lets `outcome(txid)` tell a txid this coordinator made from anyone else's without a write.
/// `id` is `None` only before the id is known (a saga's first step); such a txid has no tag.
fn new_txid(name: &str, id: Option<&str>) -> String {
    let uuid = uuid::Uuid::now_v7().simple().to_string();
    let head = &uuid[..12];
    let random = format!("{:08x}", fastrand::u32(..));
    match id {
        Some(id) => format!("{head}{random}{}", tag_txid(name, id, &format!("{head}{random}"))),
        None => format!("{head}{random}{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff),
    }
}

/// The 12-hex-digit tag of a txid's first 20 digits under coordinator `name` with id `id`.
#[allow(deprecated)] // std's SipHasher is the one stable, specified keyed hash in std.
fn tag_txid(name: &str, id: &str, head: &str) -> String {
    use std::hash::Hasher;
    let key = u64::from_str_radix(id, 16).unwrap_or(0);
    let mut h = std::hash::SipHasher::new_with_keys(key, 0x7a6b_7478_7469_6421);
    h.write(name.as_bytes());
    h.write(b":");
    h.write(head.to_ascii_lowercase().as_bytes());
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
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

/// A saga write refused because its active record or log moved: recovery took the saga over.
fn taken_over(log_path: &str) -> Error {
    Error::zk("BADVERSION", format!("{log_path}: the saga was taken over by recovery"))
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
        self.coord.gid(&self.txid, participant)
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
    pub async fn commit(&self, store_tx: Option<&mut AnyTransaction>) -> Result<Committed> {
        self.end()?;
        let committed = self.commit_ended(store_tx).await;
        self.coord.forget_live(&self.txid);
        committed
    }

    async fn commit_ended(&self, store_tx: Option<&mut AnyTransaction>) -> Result<Committed> {
        let coord = &self.coord;
        let enlisted = self.enlisted();
        if let Err(err) = self.begun().await {
            // Not recorded as active (or unknown): it must not commit.
            self.abort_now(&enlisted).await;
            return Err(Error::rolled_back(format!("transaction {} rolled back: it could not be recorded as active ({err})", self.txid), err));
        }
        // Phase 1.
        let prepared = join_all(enlisted.iter().map(|p| async move {
            let gid = coord.gid(&self.txid, p)?;
            coord.call(p, "prepare", coord.participant(p)?.prepare(&gid)).await
        }))
        .await;
        if let Some((p, err)) = enlisted.iter().zip(&prepared).find_map(|(p, r)| r.as_ref().err().map(|e| (p, e))) {
            self.abort_now(&enlisted).await;
            // Not kept as the cause: the facade makes the participant's own JS error `err.cause`.
            return Err(Error::RolledBack(format!("transaction {} rolled back: participant {p} could not prepare: {err}", self.txid)));
        }
        // The decision.
        let id = coord.inner.id.get().cloned();
        let record = to_json(&Record { decision: Decision::Commit, branches: enlisted.clone(), done: enlisted.is_empty(), id: id.clone() })?;
        let active = coord.path("active", &self.txid);
        let decision_path = coord.path("decisions", &self.txid);
        // One atomic write: the active record goes (it must still be there: recovery and
        // `outcome()` abort by deleting it), the decision appears (it must not exist yet), and so
        // does the `committing/` marker recovery lists.
        let mut conds = vec![Cond::Exists(active.clone()), Cond::Absent(decision_path.clone())];
        let mut puts = vec![Put::Delete(active), Put::Create { path: decision_path, data: record, session: false }];
        if !enlisted.is_empty() {
            let marker = coord.path("committing", &self.txid);
            conds.push(Cond::Absent(marker.clone()));
            puts.push(Put::Create { path: marker, data: Vec::new(), session: false });
        }
        let decided = match store_tx {
            Some(tx) if !tx.is_empty() => coord.inner.records.decide_with(tx, conds, puts).await,
            _ => match coord.ready().await {
                Err(err) => {
                    // Nothing was sent: the transaction can only abort.
                    self.abort_now(&enlisted).await;
                    return Err(Error::rolled_back(format!("transaction {} rolled back: its decision could not be sent ({err})", self.txid), err));
                },
                Ok(()) => match coord.inner.records.apply(conds, puts, "record commit decision").await {
                    Ok(Applied::Done { versions, zxid }) => Ok((versions, zxid, Vec::new())),
                    Ok(Applied::Failed(_)) => Err(Error::RolledBack(ALREADY_ENDED.into())),
                    Err(e) => Err(e),
                },
            },
        };
        let (decision_version, zxid, versions) = match decided {
            Ok((puts, zxid, versions)) => (puts.get(1).copied(), zxid, versions),
            // A session that expired around the decision write is not "not applied" for us: the
            // client fails a request it had queued or sent with SESSIONEXPIRED, and rolling the
            // branches back on that word alone would be wrong if the multi did reach the server.
            // Read what stands instead (the active node is gone with the session: the decision
            // is recorded, or never will be), and tell ROLLED_BACK or commit.
            // Likewise for every failure that is not the server's refusal of the multi (or a
            // check before sending): a closed client, a lost connection, a deadline.
            Err(err) if !refused(&err) => match self.learn_decision().await {
                Ok(Decision::Commit) => (None, None, Vec::new()),
                Ok(Decision::Abort) => {
                    self.abort_now(&enlisted).await;
                    return Err(Error::rolled_back(format!("transaction {} rolled back: its commit decision was not recorded ({err})", self.txid), err));
                },
                Err(e) => {
                    // Its branches hold their locks until someone decides: keep at it in the
                    // background (and fence the transaction, so that any process's recovery can
                    // abort it too) until the answer is known.
                    drop(coord.resolve_in_background(self.txid.clone(), enlisted.clone()));
                    return Err(Error::InDoubt { txid: self.txid.clone(), message: format!("transaction {}: whether it committed is unknown ({err}; then {e}); every branch is prepared, and this process keeps resolving it in the background (as does any process's recovery): look the outcome up by id", self.txid) });
                },
            },
            Err(err) => {
                self.abort_now(&enlisted).await;
                return Err(match err {
                    Error::ClientClosed => Error::rolled_back(format!("transaction {} rolled back: the client was closed before its decision was sent", self.txid), Error::ClientClosed),
                    Error::RolledBack(m) => Error::RolledBack(format!("transaction {} {m}", self.txid)),
                    Error::RolledBackBecause { message, cause } => Error::RolledBackBecause { message: format!("transaction {} {message}", self.txid), cause },
                    other => other,
                });
            },
        };
        // Phase 2.
        let failed = coord.resolve_all(Decision::Commit, &enlisted, &self.txid, id.as_deref().unwrap_or_default()).await;
        if failed.is_empty() && !enlisted.is_empty() {
            // Marked at the version the decision was written at (no read), or, when that is not
            // known (learned after a lost answer), at the version read. Off the caller's path:
            // until it lands, recovery may commit the branches again (idempotent).
            let record = Record { decision: Decision::Commit, branches: enlisted.clone(), done: false, id };
            let (coord, txid) = (coord.clone(), self.txid.clone());
            tokio::spawn(async move {
                let marked = match decision_version {
                    Some(version) => coord.write_done(&txid, record, version).await,
                    None => coord.mark_done(&txid).await,
                };
                if let Err(e) = marked {
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
    /// or it never will be once the active record is gone; while it exists our write has not
    /// applied, so fence it now (see [`Coordinator::learn_once`]).
    async fn learn_decision(&self) -> Result<Decision> {
        let coord = &self.coord;
        let mut last = None;
        let mut expired = false;
        for attempt in 0..8u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(4))).await;
            }
            match coord.learn_once(&self.txid).await {
                Ok(Some(d)) => return Ok(d),
                // Not a connection error: asking again changes nothing.
                Ok(None) => return Err(Error::zk("NONODE", format!("transaction {}: no decision record, and the prune horizon covers it (a decision pruned once ended, or none ever written); recovery resolves any branch left prepared", self.txid))),
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
        self.coord.forget_live(&self.txid);
        Ok(())
    }

    /// Fences the transaction (deletes its active node: it can no longer commit), then rolls
    /// back its branches; failures are left to recovery.
    async fn abort_now(&self, enlisted: &[String]) {
        let coord = &self.coord;
        if let Err(e) = coord.fence(&self.txid).await {
            // A session record: it goes with the session anyway.
            tracing::debug!(txid = %self.txid, error = %e, "could not delete the active record");
        }
        // No branch was enlisted before the id was known (every gid carries it).
        let id = coord.inner.id.get().cloned().unwrap_or_default();
        for (p, e) in coord.resolve_all(Decision::Abort, enlisted, &self.txid, &id).await {
            tracing::warn!(txid = %self.txid, participant = %p, error = %e, "rollback failed; recovery will retry it");
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // A run dropped without commit or rollback is no longer in progress here.
        self.coord.forget_live(&self.txid);
    }
}

impl Coordinator {
    fn forget_live(&self, txid: &str) {
        if let Ok(mut live) = self.inner.live.lock() {
            live.remove(txid);
        }
    }

    /// One look at what stands for `txid`, after a decision write of this process whose outcome
    /// is unknown: the decision if recorded; otherwise the transaction is fenced (its active
    /// record deleted: a decision write still on its way then fails its condition that the
    /// record exists — on ZooKeeper it could not even be on its way, a later request of the same
    /// session being ordered after it; etcd orders nothing per client) and, being inactive, it is
    /// decided by now or never. `None`: no decision, and the prune horizon covers the txid, so
    /// one may have been pruned (a commit, once every branch committed: this process may have
    /// been away longer than the prune age while another's recovery finished it): neither
    /// commit nor abort is known, and presuming the abort would record one of a committed
    /// transaction.
    async fn learn_once(&self, txid: &str) -> Result<Option<Decision>> {
        if let Some((r, _)) = self.read::<Record>("decisions", txid).await? {
            return Ok(Some(r.decision));
        }
        if self.is_active(txid).await? {
            self.fence(txid).await?;
        }
        if let Some((r, _)) = self.read::<Record>("decisions", txid).await? {
            return Ok(Some(r.decision));
        }
        Ok((!self.maybe_pruned(txid).await?).then_some(Decision::Abort))
    }

    /// After `IN_DOUBT`: keeps asking the coordination service (backing off to 2 s) until the decision is
    /// known, then commits every branch, or records the abort and rolls every branch back.
    /// Stops when the client is closed, or when no decision is found and the prune horizon
    /// covers the txid (see [`Coordinator::learn_once`]: recovery presumes the abort of any
    /// branch left prepared); branches it cannot resolve are left to recovery (the decision is
    /// known by then, so any process's recovery resolves them).
    fn resolve_in_background(&self, txid: String, enlisted: Vec<String>) -> tokio::task::JoinHandle<()> {
        let coord = self.clone();
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(250);
            loop {
                if coord.inner.records.is_closed().await {
                    tracing::warn!(%txid, "client closed while the transaction was in doubt: recovery resolves it");
                    return;
                }
                let known = match coord.learn_once(&txid).await {
                    // Record it, so that outcome() and recovery find an answer, not a guess.
                    // `None` (active again) cannot happen once fenced; if it did, acting on a
                    // guess would be wrong: look again.
                    Ok(Some(Decision::Abort)) => coord.record_abort(&txid).await.and_then(|d| d.ok_or_else(|| Error::zk("SYSTEMERROR", "the transaction is active again"))),
                    Ok(Some(decision)) => Ok(decision),
                    // Pruned once ended, or never decided: every branch is committed, or
                    // recovery presumes the abort of those left prepared. Nothing to do here.
                    Ok(None) => {
                        tracing::warn!(%txid, "transaction that was in doubt: no decision record, and the prune horizon covers it (pruned once ended, or never decided): left to recovery");
                        return;
                    },
                    Err(e) => Err(e),
                };
                match known {
                    Ok(decision) => {
                        let id = coord.inner.id.get().cloned().unwrap_or_default();
                        let failed = coord.resolve_all(decision, &enlisted, &txid, &id).await;
                        if decision == Decision::Commit && failed.is_empty() {
                            if let Err(e) = coord.mark_done(&txid).await {
                                tracing::warn!(%txid, error = %e, "could not mark the transaction done; recovery will");
                            }
                        }
                        for (p, e) in &failed {
                            tracing::warn!(%txid, participant = %p, error = %e, "branch of a transaction that was in doubt not resolved; recovery will");
                        }
                        tracing::info!(%txid, ?decision, "transaction that was in doubt resolved");
                        return;
                    },
                    Err(Error::ClientClosed) => return,
                    Err(e) => tracing::debug!(%txid, error = %e, "transaction still in doubt"),
                }
                tokio::time::sleep(pause).await;
                // Short: the branches hold their locks until this succeeds, and a look costs
                // three reads (each under the request deadline while ZooKeeper is away).
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        })
    }
}

/// Whether a failed decision write certainly did not apply: the server refused an operation of
/// the write, or it was refused before sending (`CLIENT_CLOSED`: the client was closed before it
/// was sent). Anything else (connection lost, deadline, session expired, a close while the write
/// was in flight) may have applied.
fn refused(err: &Error) -> bool {
    match err {
        Error::Conflict(_) | Error::RolledBack(_) | Error::RolledBackBecause { .. } | Error::LockLost(_) | Error::TooLarge(_) | Error::InvalidArgument(_) | Error::ClientClosed => true,
        Error::ZooKeeper { code, .. } => *code != "SYSTEMERROR",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txids_carry_their_time() {
        let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let t = txid_millis(&new_txid("bank", Some("0123456789abcdef"))).unwrap_or(0);
        assert!((t - before).abs() < 5_000, "{t} vs {before}");
    }

    #[test]
    fn txids_are_tagged_by_their_coordinator() {
        let t = new_txid("bank", Some("0123456789abcdef"));
        assert_eq!(t.len(), 32);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(&t[20..], tag_txid("bank", "0123456789abcdef", &t[..20]));
        assert_eq!(t.to_ascii_uppercase()[20..].to_ascii_lowercase(), tag_txid("bank", "0123456789abcdef", &t.to_ascii_uppercase()[..20]));
        assert_ne!(&t[20..], tag_txid("bank2", "0123456789abcdef", &t[..20]));
        assert_ne!(&t[20..], tag_txid("bank", "0123456789abcdee", &t[..20]));
    }

    /// Needs the servers (ZK_CONNECT, ETCD_ENDPOINTS), like the store's compaction test.
    async fn pruned_records_are_forgotten(store: AnyStore) {
        let name = format!("prune-{}", uuid::Uuid::new_v4().simple());
        let c = Coordinator::new(store, &name, Vec::new(), None).unwrap();
        let run = c.begin().await.unwrap();
        run.commit(None).await.unwrap();
        let aborted = c.begin().await.unwrap();
        aborted.rollback().await.unwrap();
        assert_eq!(c.outcome(aborted.txid()).await.unwrap(), TxOutcome::Aborted);
        assert!(matches!(c.outcome(run.txid()).await.unwrap(), TxOutcome::Committed(_)));
        assert_eq!(c.prune(Duration::from_secs(60)).await.unwrap_err().code(), "INVALID_ARGUMENT");
        // Nothing ended before an hour ago.
        assert_eq!(c.prune_now(Duration::from_secs(3600)).await.unwrap(), 0);
        assert!(matches!(c.outcome(run.txid()).await.unwrap(), TxOutcome::Committed(_)));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(c.prune_now(Duration::ZERO).await.unwrap(), 2);
        assert_eq!(c.outcome(run.txid()).await.unwrap(), TxOutcome::Forgotten);
        assert_eq!(c.outcome(aborted.txid()).await.unwrap(), TxOutcome::Forgotten);
    }

    #[tokio::test]
    async fn pruned_records_are_forgotten_not_presumed_aborted_zookeeper() {
        let Ok(connect) = std::env::var("ZK_CONNECT") else { return };
        let store = Arc::new(crate::store::Store::new(crate::SessionOptions::new(connect)).unwrap());
        pruned_records_are_forgotten(AnyStore::ZooKeeper(store.clone())).await;
        store.close().await;
    }

    #[tokio::test]
    async fn pruned_records_are_forgotten_not_presumed_aborted_etcd() {
        let Ok(endpoints) = std::env::var("ETCD_ENDPOINTS") else { return };
        let options = crate::backend::etcd::EtcdOptions { endpoints: endpoints.split(',').map(str::to_string).collect(), ..Default::default() };
        let session = crate::backend::etcd::EtcdSession::new(options).unwrap();
        pruned_records_are_forgotten(AnyStore::Etcd(session.clone())).await;
        session.close().await;
    }

    /// Attack: a transaction begun on a machine whose clock ran two hours ahead carries a txid
    /// two hours "young". Once prune deleted its commit decision, `outcome()` found no record,
    /// compared the txid's time with the horizon (plus 5 minutes), took it for a run that never
    /// decided, recorded an abort and answered `aborted` of a committed transaction. The
    /// horizon now covers the latest txid time among the records a prune deletes.
    async fn a_pruned_commit_of_a_machine_ahead_is_forgotten(store: AnyStore) {
        let name = format!("prune-ahead-{}", uuid::Uuid::new_v4().simple());
        let c = Coordinator::new(store, &name, Vec::new(), None).unwrap();
        let first = c.begin().await.unwrap();
        first.commit(None).await.unwrap(); // the tree and its id
        let own = c.id().unwrap().to_string();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        let head = format!("{:012x}{:08x}", now + 2 * 3_600_000, fastrand::u32(..));
        let txid = format!("{head}{}", tag_txid(&name, &own, &head));
        // Its decision as that machine's run writes it: committed, every branch done.
        let record = Record { decision: Decision::Commit, branches: Vec::new(), done: true, id: Some(own) };
        let path = c.path("decisions", &txid);
        let written = c.inner.records.apply(vec![Cond::Absent(path.clone())], vec![Put::Create { path, data: to_json(&record).unwrap(), session: false }], "test decision").await.unwrap();
        assert!(matches!(written, Applied::Done { .. }));
        assert!(matches!(c.outcome(&txid).await.unwrap(), TxOutcome::Committed(_)));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(c.prune_now(Duration::ZERO).await.unwrap(), 2);
        assert_eq!(c.outcome(&txid).await.unwrap(), TxOutcome::Forgotten, "a committed transaction, pruned");
        assert_eq!(c.outcome(first.txid()).await.unwrap(), TxOutcome::Forgotten);
        // The price, until the present passes that txid's time: a txid made now here with no
        // record is `forgotten` (no answer) rather than presumed aborted. Recovery does not ask
        // the horizon: it still presumes the abort of a run that never decided and rolls its
        // branches back.
        let own = c.id().unwrap().to_string();
        assert_eq!(c.outcome(&new_txid(&name, Some(&own))).await.unwrap(), TxOutcome::Forgotten);
    }

    #[tokio::test]
    async fn a_pruned_commit_of_a_machine_ahead_is_forgotten_zookeeper() {
        let Ok(connect) = std::env::var("ZK_CONNECT") else { return };
        let store = Arc::new(crate::store::Store::new(crate::SessionOptions::new(connect)).unwrap());
        a_pruned_commit_of_a_machine_ahead_is_forgotten(AnyStore::ZooKeeper(store.clone())).await;
        store.close().await;
    }

    #[tokio::test]
    async fn a_pruned_commit_of_a_machine_ahead_is_forgotten_etcd() {
        let Some(session) = etcd_session() else { return };
        a_pruned_commit_of_a_machine_ahead_is_forgotten(AnyStore::Etcd(session.clone())).await;
        session.close().await;
    }

    /// Attack (the transaction-id prune breaker's, carried over): saga logs keep the saga's
    /// input, and etcd's sweep listed 128 records with their values per page: 130 finished
    /// sagas with 40 KiB inputs made a page over the client's 4 MiB answer, and every prune
    /// failed at it ("decoded message length too large"), for good.
    async fn prune_goes_through_large_saga_logs(store: AnyStore) {
        let name = format!("prune-large-{}", uuid::Uuid::new_v4().simple());
        let c = Coordinator::new(store, &name, Vec::new(), None).unwrap();
        let first = c.begin().await.unwrap();
        first.commit(None).await.unwrap(); // the tree and its id
        let own = c.id().unwrap().to_string();
        let input = "x".repeat(40 * 1024);
        for _ in 0..130 {
            let txid = new_txid(&name, Some(&own));
            let log = SagaLog { saga: "big".into(), input: input.clone(), started: 1, state: SagaState::Done };
            let path = c.path("sagas", &txid);
            let written = c.inner.records.apply(vec![Cond::Absent(path.clone())], vec![Put::Create { path, data: to_json(&log).unwrap(), session: false }], "test saga log").await.unwrap();
            assert!(matches!(written, Applied::Done { .. }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(c.prune_now(Duration::ZERO).await.unwrap(), 131);
    }

    #[tokio::test]
    async fn prune_goes_through_large_saga_logs_zookeeper() {
        let Ok(connect) = std::env::var("ZK_CONNECT") else { return };
        let store = Arc::new(crate::store::Store::new(crate::SessionOptions::new(connect)).unwrap());
        prune_goes_through_large_saga_logs(AnyStore::ZooKeeper(store.clone())).await;
        store.close().await;
    }

    #[tokio::test]
    async fn prune_goes_through_large_saga_logs_etcd() {
        let Some(session) = etcd_session() else { return };
        prune_goes_through_large_saga_logs(AnyStore::Etcd(session.clone())).await;
        session.close().await;
    }

    /// A coordinator on etcd whose machine's wall clock is `offset_ms` off.
    fn with_clock_off(session: &crate::backend::etcd::EtcdSession, name: &str, offset_ms: i64) -> Coordinator {
        let mut c = Coordinator::new(AnyStore::Etcd(session.clone()), name, Vec::new(), None).unwrap();
        Arc::get_mut(&mut c.inner).unwrap().records = Arc::new(crate::backend::etcd::records::EtcdRecords { session: session.clone(), wall_offset_ms: offset_ms });
        c
    }

    fn etcd_session() -> Option<crate::backend::etcd::EtcdSession> {
        let endpoints = std::env::var("ETCD_ENDPOINTS").ok()?;
        let options = crate::backend::etcd::EtcdOptions { endpoints: endpoints.split(',').map(str::to_string).collect(), ..Default::default() };
        Some(crate::backend::etcd::EtcdSession::new(options).unwrap())
    }

    const HOUR: Duration = Duration::from_secs(3600);
    const HOUR_MS: i64 = 3_600_000;

    /// Attack: a pruning machine whose clock is an hour behind records a mark that says "an
    /// hour ago" of the store's current revision; another machine, whose clock is right, then
    /// took it for an hour-old mark and deleted a decision written a moment before it.
    #[tokio::test]
    async fn a_pruner_an_hour_behind_lets_no_prune_delete_fresh_records_etcd() {
        let Some(session) = etcd_session() else { return };
        let name = format!("prune-skew-{}", uuid::Uuid::new_v4().simple());
        let right = with_clock_off(&session, &name, 0);
        let behind = with_clock_off(&session, &name, -HOUR_MS);
        let run = right.begin().await.unwrap();
        run.commit(None).await.unwrap();
        assert_eq!(behind.prune(HOUR).await.unwrap(), 0);
        assert_eq!(right.prune(HOUR).await.unwrap(), 0, "the decision was written a moment ago");
        assert!(matches!(right.outcome(run.txid()).await.unwrap(), TxOutcome::Committed(_)));
        assert_eq!(behind.prune(HOUR).await.unwrap(), 0);
        assert!(matches!(right.outcome(run.txid()).await.unwrap(), TxOutcome::Committed(_)));
        session.close().await;
    }

    /// Attack: a pruning machine whose clock is an hour ahead took another machine's mark made a
    /// moment ago for an hour-old one.
    #[tokio::test]
    async fn a_pruner_an_hour_ahead_deletes_no_fresh_records_etcd() {
        let Some(session) = etcd_session() else { return };
        let name = format!("prune-skew-{}", uuid::Uuid::new_v4().simple());
        let right = with_clock_off(&session, &name, 0);
        let ahead = with_clock_off(&session, &name, HOUR_MS);
        let run = right.begin().await.unwrap();
        run.commit(None).await.unwrap();
        assert_eq!(right.prune(HOUR).await.unwrap(), 0);
        assert_eq!(ahead.prune(HOUR).await.unwrap(), 0, "the decision was written a moment ago");
        assert!(matches!(right.outcome(run.txid()).await.unwrap(), TxOutcome::Committed(_)));
        session.close().await;
    }

    /// A plain etcd client beside the coordinator's (to play an operator or a copy).
    async fn etcd_client() -> etcd_client::Client {
        let endpoints = std::env::var("ETCD_ENDPOINTS").unwrap();
        etcd_client::Client::connect(endpoints.split(',').collect::<Vec<_>>(), None).await.unwrap()
    }

    /// Lets more than `secs` seconds of the server's clock pass: enough for a mark to be
    /// `secs - 1` old by it (the clock is read in whole seconds, one counted against the age).
    async fn pass(secs: u64) {
        tokio::time::sleep(Duration::from_millis(secs * 1000 + 200)).await;
    }

    /// Records age by the server's clock whatever the pruners' wall clocks say, and the
    /// horizon `outcome()` uses is never before the mark by the pruning machine's clock. Before:
    /// a mark made by a machine an hour behind let a machine whose clock is right delete a
    /// commit decision, and `outcome()` then presumed that committed transaction aborted (its
    /// txid was an hour younger than the horizon).
    #[tokio::test]
    async fn records_age_by_the_servers_clock_and_pruned_commits_are_forgotten_etcd() {
        let Some(session) = etcd_session() else { return };
        let name = format!("prune-skew-{}", uuid::Uuid::new_v4().simple());
        let right = with_clock_off(&session, &name, 0);
        let behind = with_clock_off(&session, &name, -HOUR_MS);
        let ahead = with_clock_off(&session, &name, HOUR_MS);
        let old = right.begin().await.unwrap();
        old.commit(None).await.unwrap();
        assert_eq!(behind.prune_now(Duration::from_secs(1)).await.unwrap(), 0);
        // Ages of a minute where a test stall must not make a mark old enough by the server.
        assert_eq!(ahead.prune_now(Duration::from_secs(60)).await.unwrap(), 0, "no mark is a minute old by the server's clock");
        pass(2).await;
        let young = right.begin().await.unwrap();
        young.commit(None).await.unwrap();
        assert_eq!(right.prune_now(Duration::from_secs(1)).await.unwrap(), 1, "the decision written before the marks");
        assert_eq!(ahead.prune_now(Duration::from_secs(60)).await.unwrap(), 0, "the one written since is seconds old");
        assert_eq!(right.outcome(old.txid()).await.unwrap(), TxOutcome::Forgotten);
        assert!(matches!(right.outcome(young.txid()).await.unwrap(), TxOutcome::Committed(_)));
        session.close().await;
    }

    /// The prune clock restarts (an operator revokes its lease; a new etcd leader restarts every
    /// lease's countdown the same way): nothing written since is pruned early, and pruning
    /// resumes once the restarted clock has counted the age.
    #[tokio::test]
    async fn a_restarted_prune_clock_prunes_nothing_early_etcd() {
        let Some(session) = etcd_session() else { return };
        let name = format!("prune-clock-{}", uuid::Uuid::new_v4().simple());
        let c = with_clock_off(&session, &name, 0);
        let mut client = etcd_client().await;
        assert_eq!(c.prune_now(Duration::from_secs(1)).await.unwrap(), 0);
        pass(2).await;
        assert_eq!(c.prune_now(Duration::from_secs(1)).await.unwrap(), 0);
        let got = client.get(format!("{}/prune-marks", c.inner.base), None).await.unwrap();
        let cluster = got.header().unwrap().cluster_id();
        client.lease_revoke(crate::backend::etcd::records::clock_lease(cluster, &c.inner.base)).await.unwrap();
        let run = c.begin().await.unwrap();
        run.commit(None).await.unwrap();
        assert_eq!(c.prune_now(Duration::from_secs(1)).await.unwrap(), 0, "written a moment ago");
        assert!(matches!(c.outcome(run.txid()).await.unwrap(), TxOutcome::Committed(_)));
        pass(2).await;
        assert_eq!(c.prune_now(Duration::from_secs(1)).await.unwrap(), 1);
        session.close().await;
    }

    /// A tree copied key by key from another cluster (then re-keyed) carries that cluster's
    /// marks, whose revisions mean nothing here: they are dropped, never compared with this
    /// cluster's records.
    #[tokio::test]
    async fn marks_of_another_cluster_are_dropped_etcd() {
        let Some(session) = etcd_session() else { return };
        let name = format!("prune-copy-{}", uuid::Uuid::new_v4().simple());
        let c = with_clock_off(&session, &name, 0);
        let mut client = etcd_client().await;
        assert_eq!(c.prune_now(Duration::from_secs(1)).await.unwrap(), 0);
        let run = c.begin().await.unwrap();
        run.commit(None).await.unwrap();
        // The copy: the other cluster was a billion revisions further on.
        let path = format!("{}/prune-marks", c.inner.base);
        let got = client.get(path.as_str(), None).await.unwrap();
        let mut marks: serde_json::Value = serde_json::from_slice(got.kvs()[0].value()).unwrap();
        marks["cluster"] = serde_json::json!(marks["cluster"].as_u64().unwrap() ^ 1);
        for m in marks["marks"].as_array_mut().unwrap() {
            m["revision"] = serde_json::json!(m["revision"].as_i64().unwrap() + 1_000_000_000);
        }
        client.put(path.as_str(), serde_json::to_vec(&marks).unwrap(), None).await.unwrap();
        pass(2).await;
        assert_eq!(c.prune_now(Duration::from_secs(1)).await.unwrap(), 0, "the decision came after every mark made here");
        assert!(matches!(c.outcome(run.txid()).await.unwrap(), TxOutcome::Committed(_)));
        session.close().await;
    }

    /// Attack: prunes with a short age, called often, pushed the oldest marks out (one mark a
    /// call, the oldest dropped past the cap), and a prune with a longer age then never found a
    /// mark old enough: it pruned nothing, for as long as the short prunes ran. The marks are
    /// thinned instead, keeping them spread over the tree's past.
    #[tokio::test]
    async fn frequent_short_prunes_leave_a_longer_prune_its_mark_etcd() {
        let Some(session) = etcd_session() else { return };
        let name = format!("prune-thin-{}", uuid::Uuid::new_v4().simple());
        let c = with_clock_off(&session, &name, 0);
        let run = c.begin().await.unwrap();
        run.commit(None).await.unwrap();
        assert_eq!(c.prune_now(Duration::from_secs(60)).await.unwrap(), 0);
        pass(5).await;
        // Many more than the marks kept, in well under the longer age (4 s) here.
        for _ in 0..2 * crate::backend::etcd::records::MAX_PRUNE_MARKS {
            assert_eq!(c.prune_now(Duration::from_secs(60)).await.unwrap(), 0);
        }
        assert_eq!(c.prune_now(Duration::from_secs(4)).await.unwrap(), 1, "the decision written before the first mark, 4 s ago");
        session.close().await;
    }

    /// A participant whose branches prepare and never commit (a database down after prepare).
    struct CommitFails;

    impl Participant for CommitFails {
        fn prepare<'a>(&'a self, _gid: &'a str) -> BoxFuture<'a, Result<()>> {
            Box::pin(async { Ok(()) })
        }
        fn commit<'a>(&'a self, _gid: &'a str) -> BoxFuture<'a, Result<()>> {
            Box::pin(async { Err(Error::Participant("commit failed: down".into())) })
        }
        fn rollback<'a>(&'a self, _gid: &'a str) -> BoxFuture<'a, Result<()>> {
            Box::pin(async { Ok(()) })
        }
        fn in_doubt(&self) -> BoxFuture<'_, Result<Vec<String>>> {
            Box::pin(async { Ok(Vec::new()) })
        }
    }

    /// Attack (held): a transaction not ended, however old its record: a commit decision whose
    /// branch never committed is not pruned, even with an age of 0 (recovery still needs it).
    async fn a_commit_not_done_is_never_pruned(store: AnyStore) {
        let name = format!("prune-pending-{}", uuid::Uuid::new_v4().simple());
        let c = Coordinator::new(store, &name, vec![("db".to_string(), Arc::new(CommitFails) as Arc<dyn Participant>)], None).unwrap();
        let run = c.begin().await.unwrap();
        run.enlist("db").unwrap();
        let _ = run.commit(None).await;
        assert_eq!(c.outcome(run.txid()).await.unwrap(), TxOutcome::Committed(false));
        assert_eq!(c.prune_now(Duration::ZERO).await.unwrap(), 0);
        assert_eq!(c.outcome(run.txid()).await.unwrap(), TxOutcome::Committed(false));
    }

    #[tokio::test]
    async fn a_commit_not_done_is_never_pruned_zookeeper() {
        let Ok(connect) = std::env::var("ZK_CONNECT") else { return };
        let store = Arc::new(crate::store::Store::new(crate::SessionOptions::new(connect)).unwrap());
        a_commit_not_done_is_never_pruned(AnyStore::ZooKeeper(store.clone())).await;
        store.close().await;
    }

    #[tokio::test]
    async fn a_commit_not_done_is_never_pruned_etcd() {
        let Some(session) = etcd_session() else { return };
        a_commit_not_done_is_never_pruned(AnyStore::Etcd(session.clone())).await;
        session.close().await;
    }

    /// A participant whose branches prepare and commit, counting the rollbacks asked of it.
    #[derive(Default)]
    struct CountsRollbacks(std::sync::atomic::AtomicUsize);

    impl Participant for CountsRollbacks {
        fn prepare<'a>(&'a self, _gid: &'a str) -> BoxFuture<'a, Result<()>> {
            Box::pin(async { Ok(()) })
        }
        fn commit<'a>(&'a self, _gid: &'a str) -> BoxFuture<'a, Result<()>> {
            Box::pin(async { Ok(()) })
        }
        fn rollback<'a>(&'a self, _gid: &'a str) -> BoxFuture<'a, Result<()>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        }
        fn in_doubt(&self) -> BoxFuture<'_, Result<Vec<String>>> {
            Box::pin(async { Ok(Vec::new()) })
        }
    }

    /// Attack: a commit whose decision write lost its answer leaves a resolver looking in the
    /// background until the decision is known. Cut off from the coordination service for longer
    /// than the prune age (a partition, a suspended VM), it looks again after another
    /// process's recovery committed the branches and marked the decision done, and a prune
    /// deleted it: it found no decision and no active node, took the run for one whose decision
    /// never landed, recorded an abort and rolled the branches back; `outcome()` then answered
    /// `aborted` of a committed transaction (and the run itself, learning its decision,
    /// `ROLLED_BACK`). Whether the decision was pruned is the prune horizon's to say.
    async fn a_resolver_back_after_a_prune_records_no_abort(store: AnyStore) {
        let name = format!("prune-resolver-{}", uuid::Uuid::new_v4().simple());
        let db = Arc::new(CountsRollbacks::default());
        let c = Coordinator::new(store, &name, vec![("db".to_string(), db.clone() as Arc<dyn Participant>)], None).unwrap();
        let run = c.begin().await.unwrap();
        run.enlist("db").unwrap();
        run.commit(None).await.unwrap();
        // Marked done in the background.
        for _ in 0..200 {
            if c.outcome(run.txid()).await.unwrap() == TxOutcome::Committed(true) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(c.outcome(run.txid()).await.unwrap(), TxOutcome::Committed(true));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(c.prune_now(Duration::ZERO).await.unwrap(), 1);
        // The resolver's next look, and the run's own.
        tokio::time::timeout(Duration::from_secs(60), c.resolve_in_background(run.txid().to_string(), vec!["db".to_string()])).await.unwrap().unwrap();
        assert_eq!(c.outcome(run.txid()).await.unwrap(), TxOutcome::Forgotten, "a committed transaction, pruned");
        assert_eq!(db.0.load(Ordering::SeqCst), 0, "no rollback of a committed branch");
        assert!(run.learn_decision().await.is_err(), "neither commit nor abort is known of a pruned decision");
    }

    #[tokio::test]
    async fn a_resolver_back_after_a_prune_records_no_abort_zookeeper() {
        let Ok(connect) = std::env::var("ZK_CONNECT") else { return };
        let store = Arc::new(crate::store::Store::new(crate::SessionOptions::new(connect)).unwrap());
        a_resolver_back_after_a_prune_records_no_abort(AnyStore::ZooKeeper(store.clone())).await;
        store.close().await;
    }

    #[tokio::test]
    async fn a_resolver_back_after_a_prune_records_no_abort_etcd() {
        let Some(session) = etcd_session() else { return };
        a_resolver_back_after_a_prune_records_no_abort(AnyStore::Etcd(session.clone())).await;
        session.close().await;
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("n", "bank-1.a_b").is_ok());
        assert_eq!(validate_name("n", "").unwrap_err().code(), "INVALID_ARGUMENT");
        assert_eq!(validate_name("n", "a:b").unwrap_err().code(), "INVALID_ARGUMENT");
        assert_eq!(validate_name("n", &"x".repeat(65)).unwrap_err().code(), "INVALID_ARGUMENT");
    }
}
