//! The coordinator's records on etcd: keys under `/zktx/coordinators/<name>/`, written
//! atomically by one `Txn` (see [`crate::coordinator::records`]).
//!
//! A condition is a compare (exists: `create_revision > 0`; absent: `create_revision == 0`; at a
//! version: `mod_revision == version`), versions are mod revisions, and a session record is a key
//! on the session's lease. The tree's birth stamp (which the coordinator's id is bound to) is
//! the create revision of the `<base>` key itself, put once when the tree is first used.

use std::sync::Arc;
use std::time::Duration;

use etcd_client as etcd;
use futures_util::future::BoxFuture;

use super::txn::{range_end, unix_millis, Decision};
use super::{within, EtcdSession};
use crate::backend::{retry_transient, AnyLock, AnyTransaction};
use crate::coordinator::records::{Applied, Cond, Decided, Put, Records};
use crate::error::{Error, Result};
use crate::kv::Layout;
use crate::recipe::AcquireOptions;
use crate::LockKind;

/// The coordinator's records in an etcd session's keyspace.
pub(crate) struct EtcdRecords {
    pub session: EtcdSession,
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
            // The base key, put once: its create revision is the tree's birth.
            let txn = etcd::Txn::new()
                .when([etcd::Compare::create_revision(base, etcd::CompareOp::Equal, 0)])
                .and_then([etcd::TxnOp::put(base, "", None)])
                .or_else([etcd::TxnOp::get(base, None)]);
            // Idempotent (put if absent, else read), so retried on a lost connection: a member
            // down (one of three: the cluster serves) must not fail a fresh process's first call
            // when its client happened to pick that member. Briefly (a second at most): enough
            // for the client to move on to a live member, and an etcd that is down altogether
            // still fails the call at once.
            let client = self.session.client().await?;
            let rt = self.session.request_timeout();
            let done = retry_transient(rt.min(Duration::from_secs(1)), || {
                let (mut client, txn) = (client.clone(), txn.clone());
                async move { within(rt, "create coordinator tree", client.txn(txn)).await }
            })
            .await?;
            let born = if done.succeeded() {
                done.header().map_or(0, |h| h.revision())
            } else {
                done.op_responses()
                    .into_iter()
                    .find_map(|r| match r {
                        etcd::TxnOpResponse::Get(g) => g.kvs().first().map(etcd::KeyValue::create_revision),
                        _ => None,
                    })
                    .unwrap_or(0)
            };
            if born <= 0 {
                return Err(Error::zk("NONODE", format!("coordinator tree {base} vanished while it was being read")));
            }
            Ok(format!("{born:x}"))
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
            let mut client = self.session.client().await?;
            let done = within(self.session.request_timeout(), what, client.txn(txn)).await?;
            let revision = done.header().map_or(0, |h| h.revision());
            if done.succeeded() {
                return Ok(Applied::Done { versions: vec![revision; count], zxid: Some(revision).filter(|r| *r > 0) });
            }
            let seen: std::collections::HashMap<Vec<u8>, (i64, i64)> = done
                .op_responses()
                .into_iter()
                .filter_map(|r| match r {
                    etcd::TxnOpResponse::Get(g) => g.kvs().first().map(|kv| (kv.key().to_vec(), (kv.create_revision(), kv.mod_revision()))),
                    _ => None,
                })
                .collect();
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

    fn cutoff<'a>(&'a self, age: Duration, what: &'a str) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move {
            // etcd keeps no time: this machine's clock, as the records' own times are.
            if age > crate::store::MAX_PRUNE_AGE {
                return Err(Error::invalid(format!("{what}: an age of {} ms is over the limit of {} ms", age.as_millis(), crate::store::MAX_PRUNE_AGE.as_millis())));
            }
            Ok(unix_millis().saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX)))
        })
    }

    fn sweep<'a>(&'a self, dir: &'a str, cutoff: i64, ended: &'a (dyn Fn(&[u8]) -> Option<Option<i64>> + Sync)) -> BoxFuture<'a, Result<usize>> {
        Box::pin(async move {
            let prefix = format!("{dir}/");
            let client = self.session.client().await?;
            let rt = self.session.request_timeout();
            let mut from = prefix.clone();
            let mut removed = 0;
            loop {
                let options = etcd::GetOptions::new().with_range(range_end(&prefix)).with_limit(super::MAX_TXN_OPS as i64);
                let page = retry_transient(rt, || {
                    let (mut client, from, options) = (client.clone(), from.clone(), options.clone());
                    async move { within(rt, "list coordinator records", client.get(from, Some(options))).await }
                })
                .await?;
                // A record says when it ended (this machine's clock when it was written): etcd
                // keeps no time per key.
                for kv in page.kvs().iter().filter(|kv| ended(kv.value()).flatten().is_some_and(|at| at < cutoff)) {
                    // Only if it is still the record read.
                    let txn = etcd::Txn::new().when([etcd::Compare::mod_revision(kv.key(), etcd::CompareOp::Equal, kv.mod_revision())]).and_then([etcd::TxnOp::delete(kv.key(), None)]);
                    let mut client = client.clone();
                    if within(rt, "delete coordinator record", client.txn(txn)).await?.succeeded() {
                        removed += 1;
                    }
                }
                match page.kvs().last() {
                    Some(last) if page.more() => {
                        from = String::from_utf8_lossy(last.key()).into_owned();
                        from.push('\0');
                    },
                    _ => return Ok(removed),
                }
            }
        })
    }
}
