//! The coordinator's records on etcd: keys under `/zktx/coordinators/<name>/`, written
//! atomically by one `Txn` (see [`crate::coordinator::records`]).
//!
//! A condition is a compare (exists: `create_revision > 0`; absent: `create_revision == 0`; at a
//! version: `mod_revision == version`), versions are mod revisions, and a session record is a key
//! on the session's lease. The tree's birth stamp (which the coordinator's id is bound to) is
//! the cluster's id and the create revisions of the `<base>` key and of its twin `<base>/born`,
//! put together in one Txn when the tree is first used (a key-by-key copy cannot reproduce it).

use std::sync::Arc;
use std::time::Duration;

use etcd_client as etcd;
use futures_util::future::BoxFuture;

use super::txn::{range_end, unix_millis, Decision};
use super::{within, EtcdSession};
use crate::backend::{retry_transient, AnyLock, AnyTransaction};
use crate::coordinator::records::{Applied, Cond, Decided, Horizon, Put, Records};
use crate::error::{Error, Result};
use crate::kv::Layout;
use crate::recipe::AcquireOptions;
use crate::LockKind;

/// How many prune marks a tree keeps (one per `prune()` call, thinned out: see `thin`). Fewer
/// in tests, so that going over takes a few calls.
pub(crate) const MAX_PRUNE_MARKS: usize = if cfg!(test) { 16 } else { 1024 };

/// The prune clock lease's TTL: twice the longest prune age, so it outlives any wait between
/// two prunes (etcd accepts up to 9e9 s).
const CLOCK_TTL_SECS: i64 = 2 * crate::store::MAX_PRUNE_AGE.as_secs() as i64;

/// How much two readings of the prune clock may overstate the time between them: etcd answers
/// a lease's remaining TTL in whole seconds, rounded down.
const CLOCK_ROUNDING_MS: i64 = 1000;

/// What `<base>/prune-marks` holds: `{"cluster":…,"lease":…,"marks":[{"wall":…,"revision":…,"clock":…},…]}`.
/// Marks of another cluster or clock (a tree copied key by key, a version before the clock)
/// are dropped: their revisions or times mean nothing here.
#[derive(serde::Serialize, serde::Deserialize)]
struct Marks {
    cluster: u64,
    lease: i64,
    /// Oldest first (the order of the writes).
    marks: Vec<Mark>,
}

/// One `prune()` call: the store's revision, then the server's clock (ms, see
/// `EtcdRecords::server_clock`) and the pruning machine's wall clock (ms since the epoch) read
/// after it.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy)]
struct Mark {
    wall: i64,
    revision: i64,
    clock: i64,
}

/// Drops marks down to `cap` ([`MAX_PRUNE_MARKS`]), each time the inner one whose neighbours are
/// closest on the clock for their age: the marks thin out with age rather than end, so a prune
/// of any age finds one near its horizon (a few percent of the age behind it). Dropping marks
/// only ever moves a horizon back: safe whichever goes. The first and the last stay.
fn thin(marks: &mut Vec<Mark>, cap: usize) {
    while marks.len() > cap.max(2) {
        let newest = marks.last().map_or(0, |m| m.clock);
        let crowded = |i: usize| {
            let (before, after) = (marks[i - 1].clock, marks[i + 1].clock);
            (after.saturating_sub(before)) as f64 / (newest.saturating_sub(after) as f64 + 1.0)
        };
        let drop = (1..marks.len() - 1).min_by(|&a, &b| crowded(a).total_cmp(&crowded(b))).unwrap_or(1);
        marks.remove(drop);
    }
}

/// The id of the lease that serves as `base`'s prune clock in cluster `cluster`: the same for
/// every pruner (so concurrent ones share one and a crash leaks none), never 0 (no lease), and
/// positive. FNV-1a, stable across builds.
pub(crate) fn clock_lease(cluster: u64, base: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in cluster.to_be_bytes().iter().chain(b"zktx prune clock:").chain(base.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::try_from(h >> 1).unwrap_or(i64::MAX).max(1)
}

/// The coordinator's records in an etcd session's keyspace.
pub(crate) struct EtcdRecords {
    pub session: EtcdSession,
    /// Added to this machine's wall clock: 0, but in tests that play a pruning machine whose
    /// clock is off.
    pub wall_offset_ms: i64,
}

/// The compare that checks `cond`.
pub(super) fn compare(cond: &Cond) -> etcd::Compare {
    match cond {
        Cond::Exists(p) => etcd::Compare::create_revision(p.as_str(), etcd::CompareOp::Greater, 0),
        Cond::Absent(p) => etcd::Compare::create_revision(p.as_str(), etcd::CompareOp::Equal, 0),
        Cond::At(p, v) => etcd::Compare::mod_revision(p.as_str(), etcd::CompareOp::Equal, *v),
    }
}

/// Whether `cond` holds of a key at `create` / `modified` revision (0 / 0: absent).
pub(super) fn holds(cond: &Cond, create: i64, modified: i64) -> bool {
    match cond {
        Cond::Exists(_) => create > 0,
        Cond::Absent(_) => create == 0,
        Cond::At(_, v) => modified == *v,
    }
}

impl EtcdRecords {
    /// The `Txn` operations of `puts` and their size in bytes.
    async fn ops(&self, puts: Vec<Put>) -> Result<(Vec<etcd::TxnOp>, usize)> {
        let mut lease = None;
        let mut bytes = 0;
        let mut ops = Vec::with_capacity(puts.len());
        for put in puts {
            ops.push(match put {
                Put::Create { path, data, session } => {
                    bytes += path.len() + data.len();
                    let options = if session {
                        let id = match lease {
                            Some(id) => id,
                            None => *lease.insert(self.session.lease().await?.id),
                        };
                        Some(etcd::PutOptions::new().with_lease(id))
                    } else {
                        None
                    };
                    etcd::TxnOp::put(path, data, options)
                },
                Put::Set(path, data) => {
                    bytes += path.len() + data.len();
                    etcd::TxnOp::put(path, data, None)
                },
                Put::Delete(path) => {
                    bytes += path.len();
                    etcd::TxnOp::delete(path, None)
                },
            });
        }
        Ok((ops, bytes))
    }

    /// One key's value, create and mod revision, and lease (a read: retried on a lost
    /// connection within the request timeout).
    async fn get(&self, path: &str, what: &str) -> Result<Option<etcd::KeyValue>> {
        let client = self.session.client().await?;
        let rt = self.session.request_timeout();
        let got = retry_transient(rt, || {
            let mut client = client.clone();
            async move { within(rt, what, client.get(path, None)).await }
        })
        .await?;
        Ok(got.kvs().first().cloned())
    }

    /// The server's clock for prune marks: ms counted down so far by lease `id` (granted now
    /// with [`CLOCK_TTL_SECS`] when absent), never below 0. It only ever runs at the leader's
    /// pace or falls back (a new leader restarts every lease's countdown; a revoked lease is
    /// granted again from 0), so the difference of two readings never exceeds the time between
    /// them, give or take the whole seconds etcd answers in ([`CLOCK_ROUNDING_MS`]).
    ///
    /// Only a leader of raft term `term` or later is asked: a leader cut off from the others
    /// answers lease questions until it steps down, from a countdown the new leader restarted.
    async fn server_clock(&self, id: i64, term: u64) -> Result<i64> {
        let client = self.session.client().await?;
        let rt = self.session.request_timeout();
        let ask = || {
            retry_transient(rt, || {
                let mut client = client.clone();
                async move { within(rt, "read prune clock", client.lease_time_to_live(id, None)).await }
            })
        };
        let mut left = ask().await?;
        if left.ttl() < 0 {
            // Absent (first use, or revoked): grant it. A concurrent pruner may grant it first
            // ("lease already exists"): either way, it is there when asked again.
            let mut c = client.clone();
            let granted = within(rt, "grant prune clock", c.lease_grant(CLOCK_TTL_SECS, Some(etcd::LeaseGrantOptions::new().with_id(id)))).await;
            left = ask().await?;
            if left.ttl() < 0 {
                return Err(granted.err().unwrap_or_else(|| Error::zk("SYSTEMERROR", format!("prune clock lease {id:x} vanished as soon as it was granted"))));
            }
        }
        let answered = left.header().map_or(0, |h| h.raft_term());
        if answered < term {
            return Err(Error::ConnectionLoss { message: format!("read prune clock: answered by a leader of raft term {answered}, and the term is {term} (a leader cut off from the others); try again"), outcome: crate::error::Outcome::NotApplied });
        }
        Ok(left.granted_ttl().saturating_sub(left.ttl()).max(0).saturating_mul(1000))
    }
}

impl Records for EtcdRecords {
    fn base(&self, encoded_name: &str) -> String {
        format!("{}/coordinators/{encoded_name}", Layout::default().root())
    }

    fn is_closed(&self) -> BoxFuture<'_, bool> {
        let closed = self.session.is_closed();
        Box::pin(async move { closed })
    }

    fn prepare<'a>(&'a self, base: &'a str, _dirs: &'a [&'a str]) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            // The base key and its twin `<base>/born`, put once in one Txn: the same create
            // revision. A copy of the tree made key by key (a dump replayed into another
            // cluster, even a fresh one where the base lands at the same revision as the
            // original's) puts them in separate requests: another pair. The cluster's id tells a
            // copy into another cluster even if it was replayed in one Txn.
            let twin = format!("{base}/born");
            let txn = etcd::Txn::new()
                .when([etcd::Compare::create_revision(base, etcd::CompareOp::Equal, 0)])
                .and_then([etcd::TxnOp::put(base, "", None), etcd::TxnOp::put(twin.as_str(), "", None)])
                .or_else([etcd::TxnOp::get(base, None), etcd::TxnOp::get(twin.as_str(), None)]);
            // Idempotent (put if absent, else read), so retried on a lost connection: a member
            // down (one of three: the cluster serves) must not fail a fresh process's first call
            // when its client happened to pick that member. Briefly (a second at most): enough
            // for the client to move on to a live member, and an etcd that is down altogether
            // still fails the call at once, saying why (the coordinator's first request).
            let client = self.session.client().await?;
            let rt = self.session.request_timeout();
            // A write like any other: close() waits for it, and none starts once close() began
            // (the guard only around the write: a second guard taken while close() waits would
            // wait behind it).
            let writing = self.session.writing().await?;
            let sent = retry_transient(rt.min(Duration::from_secs(1)), || {
                let (mut client, txn) = (client.clone(), txn.clone());
                async move { within(rt, "create coordinator tree", client.txn(txn)).await }
            })
            .await;
            drop(writing);
            let done = match sent {
                Ok(done) => done,
                Err(err) => return Err(self.session.explained(err).await),
            };
            let cluster = done.header().map_or(0, |h| h.cluster_id());
            let (born, twin_born) = if done.succeeded() {
                let r = done.header().map_or(0, |h| h.revision());
                (r, r)
            } else {
                let created = |key: &str| {
                    done.op_responses()
                        .into_iter()
                        .find_map(|r| match r {
                            etcd::TxnOpResponse::Get(g) => g.kvs().first().filter(|kv| kv.key() == key.as_bytes()).map(etcd::KeyValue::create_revision),
                            _ => None,
                        })
                        .unwrap_or(0)
                };
                (created(base), created(&twin))
            };
            if born <= 0 {
                return Err(Error::zk("NONODE", format!("coordinator tree {base} vanished while it was being read")));
            }
            Ok(format!("{cluster:x}.{born:x}.{twin_born:x}"))
        })
    }

    fn read<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Option<(Vec<u8>, i64)>>> {
        Box::pin(async move { Ok(self.get(path, "read transaction record").await?.map(|kv| (kv.value().to_vec(), kv.mod_revision()))) })
    }

    fn exists<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { Ok(self.get(path, "check transaction").await?.is_some()) })
    }

    fn owned<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Option<i64>>> {
        Box::pin(async move {
            let Some(kv) = self.get(path, "check transaction").await? else { return Ok(None) };
            let ours = self.session.current_lease().await;
            Ok((kv.lease() != 0 && Some(kv.lease()) == ours).then_some(kv.mod_revision()))
        })
    }

    fn list<'a>(&'a self, dir: &'a str) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(async move {
            let prefix = format!("{dir}/");
            let client = self.session.client().await?;
            let rt = self.session.request_timeout();
            let options = etcd::GetOptions::new().with_range(range_end(&prefix)).with_keys_only();
            let got = retry_transient(rt, || {
                let (mut client, prefix, options) = (client.clone(), prefix.clone(), options.clone());
                async move { within(rt, "list coordinator records", client.get(prefix, Some(options))).await }
            })
            .await?;
            let mut names: Vec<String> = got
                .kvs()
                .iter()
                .filter_map(|kv| std::str::from_utf8(kv.key()).ok()?.strip_prefix(prefix.as_str()).filter(|n| !n.is_empty() && !n.contains('/')).map(str::to_string))
                .collect();
            names.sort();
            Ok(names)
        })
    }

    fn apply<'a>(&'a self, conds: Vec<Cond>, puts: Vec<Put>, what: &'a str) -> BoxFuture<'a, Result<Applied>> {
        Box::pin(async move {
            if self.session.is_closed() {
                return Err(Error::ClientClosed);
            }
            let count = puts.len();
            let (ops, _) = self.ops(puts).await?;
            let mut keys: Vec<String> = conds.iter().map(|c| c.path().to_string()).collect();
            keys.sort();
            keys.dedup();
            // On failure, read the conditions' keys (in the same revision) to say which failed.
            let explain: Vec<etcd::TxnOp> = keys.iter().map(|k| etcd::TxnOp::get(k.as_str(), Some(etcd::GetOptions::new().with_keys_only()))).collect();
            let txn = etcd::Txn::new().when(conds.iter().map(compare).collect::<Vec<_>>()).and_then(ops).or_else(explain);
            let client = self.session.client().await?;
            let _writing = self.session.writing().await?;
            let done = super::send_txn(&client, &self.session.inner.closing, self.session.request_timeout(), what, txn).await?;
            let revision = done.header().map_or(0, |h| h.revision());
            if done.succeeded() {
                return Ok(Applied::Done { versions: vec![revision; count], zxid: Some(revision).filter(|r| *r > 0) });
            }
            let seen = super::txn::revisions_read(&done);
            let failed = conds.iter().position(|c| {
                let (create, modified) = seen.get(c.path().as_bytes()).copied().unwrap_or((0, 0));
                !holds(c, create, modified)
            });
            // Every compare held in the answer's revision, yet the Txn failed: impossible.
            failed.map(Applied::Failed).ok_or_else(|| Error::zk("SYSTEMERROR", format!("{what}: etcd refused the Txn, but every condition holds")))
        })
    }

    fn decide_with<'a>(&'a self, tx: &'a mut AnyTransaction, conds: Vec<Cond>, puts: Vec<Put>) -> BoxFuture<'a, Result<Decided>> {
        Box::pin(async move {
            let AnyTransaction::Etcd(tx) = tx else { return Err(Error::invalid("a ZooKeeper transaction used with an etcd coordinator")) };
            if self.session.is_closed() {
                return Err(Error::ClientClosed);
            }
            let count = puts.len();
            let (ops, bytes) = self.ops(puts).await?;
            let report = tx.commit_deciding(&self.session, &Layout::default(), &Decision { conds, ops, bytes }).await?;
            // Every put of the Txn is at its revision.
            Ok((vec![report.zxid.unwrap_or(0); count], report.zxid, report.versions))
        })
    }

    fn lock<'a>(&'a self, path: &'a str, wait: Option<Duration>) -> BoxFuture<'a, Result<Option<AnyLock>>> {
        Box::pin(async move {
            match self.session.acquire_checked(LockKind::Exclusive, path, &AcquireOptions { wait, cancel: None }).await {
                Ok(lock) => Ok(Some(AnyLock::Etcd(Arc::new(lock)))),
                Err(Error::Timeout { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn horizon<'a>(&'a self, base: &'a str, age: Duration, what: &'a str) -> BoxFuture<'a, Result<Option<Horizon>>> {
        Box::pin(async move {
            if age > crate::store::MAX_PRUNE_AGE {
                return Err(Error::invalid(format!("{what}: an age of {} ms is over the limit of {} ms", age.as_millis(), crate::store::MAX_PRUNE_AGE.as_millis())));
            }
            let age = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
            let path = format!("{base}/prune-marks");
            // Named in errors: a role without read and write on it is refused (`NOAUTH`).
            let (reading, recording) = (format!("read prune marks {path}"), format!("record prune mark {path}"));
            loop {
                // The marks as read, and the store's revision at that read: a record written
                // after it has a larger mod revision.
                let client = self.session.client().await?;
                let rt = self.session.request_timeout();
                let got = retry_transient(rt, || {
                    let (mut client, path, reading) = (client.clone(), path.clone(), reading.as_str());
                    async move { within(rt, reading, client.get(path, None)).await }
                })
                .await?;
                let (revision, cluster, term) = got.header().map_or((0, 0, 0), |h| (h.revision(), h.cluster_id(), h.raft_term()));
                let kv = got.kvs().first();
                // The server's clock, read after the revision: what it counts from this mark on
                // never exceeds the time since the revision.
                let lease = clock_lease(cluster, base);
                let clock = self.server_clock(lease, term).await?;
                let now = unix_millis().saturating_add(self.wall_offset_ms);
                let mut marks = kv.and_then(|kv| serde_json::from_slice::<Marks>(kv.value()).ok()).filter(|m| m.cluster == cluster && m.lease == lease).unwrap_or(Marks { cluster, lease, marks: Vec::new() });
                // The clock went back (a leader change restarts a lease's countdown, or the lease
                // was revoked and granted again): the time between the marks and now is
                // unknown beyond "they are older than the restart". Keep the latest, as of the
                // restart: later readings are then never more than the time since it.
                if let Some(&last) = marks.marks.last().filter(|m| m.clock > clock) {
                    marks.marks = vec![Mark { clock: 0, ..last }];
                }
                marks.marks.push(Mark { wall: now, revision, clock });
                let horizon = if age == 0 {
                    marks.marks.last()
                } else {
                    // The latest mark at least `age` old by the server's clock, counting a
                    // reading's rounding (whole seconds) against it.
                    marks.marks.iter().rev().find(|m| m.clock.saturating_add(age).saturating_add(CLOCK_ROUNDING_MS) <= clock)
                }
                // Its time for `outcome()`, which answers `forgotten` for txids before it and
                // presumes the abort of later ones with no record: never earlier than the mark by
                // this machine's clock (the server's clock says at least that much time passed
                // since), nor by the clock of the machine that made it. Too early, a pruned
                // commit would be presumed aborted; too late, a young txid with no record is
                // `forgotten` instead (no answer, never a wrong one).
                .map(|m| Horizon { at: m.wall.max(now.saturating_sub(clock.saturating_sub(m.clock))), revision: Some(m.revision) });
                thin(&mut marks.marks, MAX_PRUNE_MARKS);
                let data = serde_json::to_vec(&marks).map_err(|e| Error::zk("SYSTEMERROR", e))?;
                let (cond, put) = match kv {
                    Some(kv) => (Cond::At(path.clone(), kv.mod_revision()), Put::Set(path.clone(), data)),
                    None => (Cond::Absent(path.clone()), Put::Create { path: path.clone(), data, session: false }),
                };
                if let Applied::Done { .. } = self.apply(vec![cond], vec![put], &recording).await? {
                    return Ok(horizon);
                }
            }
        })
    }

    fn sweep<'a>(&'a self, dir: &'a str, horizon: &'a Horizon, ended: &'a (dyn Fn(&str, &[u8]) -> bool + Sync)) -> BoxFuture<'a, Result<usize>> {
        // Last written at or before the horizon's revision, and ended.
        let before = horizon.revision.unwrap_or(0);
        Box::pin(async move {
            let prefix = format!("{dir}/");
            self.session
                .sweep_prefix(&prefix, "coordinator records", true, |kv| {
                    let name = kv.key().strip_prefix(prefix.as_bytes()).and_then(|n| std::str::from_utf8(n).ok()).unwrap_or_default();
                    kv.mod_revision() <= before && ended(name, kv.value())
                })
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A prune every second for 30,000 s, 1024 marks kept: for every age, the latest mark at
    /// least that old is less than 1 % of the age older still (dropping the oldest kept no
    /// mark older than 1024 s), and the first mark stays.
    #[test]
    fn thinned_marks_keep_every_age_close() {
        let mut marks = Vec::new();
        for s in 0..30_000i64 {
            marks.push(Mark { wall: 0, revision: s, clock: s * 1000 });
            thin(&mut marks, 1024);
        }
        assert_eq!(marks.len(), 1024);
        assert_eq!(marks[0].clock, 0);
        let now = 29_999_000;
        for age in (1..30_000i64).map(|a| a * 1000) {
            let Some(m) = marks.iter().rev().find(|m| m.clock <= now - age) else { panic!("no mark {age} ms old") };
            assert!((now - age - m.clock) * 100 < age, "age {age}: the mark is {} ms older", now - age - m.clock);
        }
    }
}
