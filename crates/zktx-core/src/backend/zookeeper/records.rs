//! The coordinator's records on ZooKeeper: znodes under `<root>/coordinators/<name>/`, written
//! atomically by one `multi` (see [`crate::coordinator::records`]).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use zookeeper_client as zk;

use crate::backend::{AnyLock, AnyTransaction};
use crate::coordinator::records::{Applied, Cond, Decided, Horizon, Put, Records};
use crate::error::{Error, Result};
use crate::recipe::{self, AcquireOptions};
use crate::session::deadline;
use crate::store::Store;
use crate::transaction::{Isolation, Op};
use crate::txn::{commit_multi, persistent, MultiError};

/// The coordinator's records in a ZooKeeper store's tree.
pub(crate) struct ZkRecords {
    pub store: Arc<Store>,
}

/// One operation of the multi, with the condition it checks (if any) and which error says that
/// condition failed.
enum Step {
    Check(String, i32),
    Create(String, Vec<u8>, bool),
    Set(String, Vec<u8>, Option<i32>),
    Delete(String, Option<i32>),
}

/// Why a step may fail: it checks condition `.0`; `.1`: the condition is "absent" (so only
/// `NODEEXISTS` says it failed; otherwise `NONODE` / `BADVERSION` do).
type Reason = Option<(usize, bool)>;

fn version(v: i64) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::invalid(format!("znode version {v} out of range")))
}

/// The multi for `conds` and `puts`: a condition on a path that a put writes is checked by that
/// put itself (a create fails if the node exists, a versioned set or delete if it moved), the
/// others by a version check, or a create-then-delete for "absent". Returns the steps with their
/// reasons and, for each put, the index of its step.
fn plan(conds: &[Cond], puts: Vec<Put>) -> Result<(Vec<(Step, Reason)>, Vec<usize>)> {
    let mut folded = vec![false; conds.len()];
    let mut put_steps = Vec::with_capacity(puts.len());
    for put in puts {
        let path = match &put {
            Put::Create { path, .. } | Put::Set(path, _) | Put::Delete(path) => path.clone(),
        };
        let cond = conds.iter().enumerate().find(|(i, c)| !folded[*i] && c.path() == path);
        let (step, reason) = match (put, cond) {
            (Put::Create { path, data, session }, Some((i, Cond::Absent(_)))) => {
                folded[i] = true;
                (Step::Create(path, data, session), Some((i, true)))
            },
            (Put::Create { path, data, session }, _) => (Step::Create(path, data, session), None),
            (Put::Set(path, data), Some((i, Cond::At(_, v)))) => {
                folded[i] = true;
                (Step::Set(path, data, Some(version(*v)?)), Some((i, false)))
            },
            (Put::Set(path, data), Some((i, Cond::Exists(_)))) => {
                folded[i] = true;
                (Step::Set(path, data, None), Some((i, false)))
            },
            (Put::Set(path, data), _) => (Step::Set(path, data, None), None),
            (Put::Delete(path), Some((i, Cond::At(_, v)))) => {
                folded[i] = true;
                (Step::Delete(path, Some(version(*v)?)), Some((i, false)))
            },
            (Put::Delete(path), Some((i, Cond::Exists(_)))) => {
                folded[i] = true;
                (Step::Delete(path, None), Some((i, false)))
            },
            (Put::Delete(path), _) => (Step::Delete(path, None), None),
        };
        put_steps.push((step, reason));
    }
    let mut steps = Vec::new();
    for (i, cond) in conds.iter().enumerate().filter(|(i, _)| !folded[*i]) {
        match cond {
            Cond::Exists(p) => steps.push((Step::Check(p.clone(), -1), Some((i, false)))),
            Cond::At(p, v) => steps.push((Step::Check(p.clone(), version(*v)?), Some((i, false)))),
            Cond::Absent(p) => {
                // "Absent": creating it must succeed; then it goes away again.
                steps.push((Step::Create(p.clone(), Vec::new(), false), Some((i, true))));
                steps.push((Step::Delete(p.clone(), None), Some((i, true))));
            },
        }
    }
    let first_put = steps.len();
    let indexes = (first_put..first_put + put_steps.len()).collect();
    steps.extend(put_steps);
    Ok((steps, indexes))
}

impl ZkRecords {
    fn session(&self) -> &crate::session::Session {
        self.store.session()
    }
}

impl Records for ZkRecords {
    fn base(&self, encoded_name: &str) -> String {
        format!("{}/coordinators/{encoded_name}", self.store.layout().root())
    }

    fn is_closed(&self) -> BoxFuture<'_, bool> {
        Box::pin(self.session().is_closed())
    }

    fn prepare<'a>(&'a self, base: &'a str, dirs: &'a [&'a str]) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let session = self.session();
            let client = session.client().await?;
            let rt = session.request_timeout(&client);
            for dir in dirs {
                match deadline(rt, "create coordinator directory", client.mkdir(&format!("{base}/{dir}"), &persistent(session.acls()))).await {
                    Ok(()) | Err(Error::ZooKeeper { code: "NODEEXISTS", .. }) => {},
                    Err(e) => return Err(e),
                }
            }
            match deadline(rt, "read coordinator tree", client.check_stat(base)).await? {
                Some(stat) => Ok(format!("{:x}", stat.czxid)),
                None => Err(Error::zk("NONODE", format!("coordinator tree {base} vanished while it was being read"))),
            }
        })
    }

    fn read<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Option<(Vec<u8>, i64)>>> {
        Box::pin(async move {
            let client = self.session().client().await?;
            match deadline(self.session().request_timeout(&client), "read transaction record", client.get_data(path)).await {
                Ok((data, stat)) => Ok(Some((data, i64::from(stat.version)))),
                Err(Error::ZooKeeper { code: "NONODE", .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn exists<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let client = self.session().client().await?;
            Ok(deadline(self.session().request_timeout(&client), "check transaction", client.check_stat(path)).await?.is_some())
        })
    }

    fn owned<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Option<i64>>> {
        Box::pin(async move {
            let client = self.session().client().await?;
            let stat = deadline(self.session().request_timeout(&client), "check transaction", client.check_stat(path)).await?;
            Ok(stat.filter(|s| s.ephemeral_owner == client.session_id().0).map(|s| i64::from(s.version)))
        })
    }

    fn list<'a>(&'a self, dir: &'a str) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(self.store.children(dir))
    }

    fn apply<'a>(&'a self, conds: Vec<Cond>, puts: Vec<Put>, what: &'a str) -> BoxFuture<'a, Result<Applied>> {
        // `CLIENT_CLOSED` only when nothing was sent; a close while the multi may be on its way is
        // `ClosedDuringWrite` (outcome unknown).
        Box::pin(self.session().unless_closed(true, async move {
            let (steps, put_steps) = plan(&conds, puts)?;
            let session = self.session();
            let client = session.client().await?;
            let rt = session.request_timeout(&client);
            let acls = session.acls();
            let mut writer = client.new_multi_writer();
            for (step, _) in &steps {
                match step {
                    Step::Check(p, v) => writer.add_check_version(p, *v)?,
                    Step::Create(p, data, true) => writer.add_create(p, data, &zk::CreateMode::Ephemeral.with_acls(acls))?,
                    Step::Create(p, data, false) => writer.add_create(p, data, &persistent(acls))?,
                    Step::Set(p, data, v) => writer.add_set_data(p, data, *v)?,
                    Step::Delete(p, v) => writer.add_delete(p, *v)?,
                }
            }
            match commit_multi(rt, &mut writer, what).await {
                Ok(results) => {
                    let mut zxid = None;
                    let versions = put_steps
                        .iter()
                        .map(|&i| match results.get(i) {
                            Some(zk::MultiWriteResult::SetData { stat }) => {
                                if stat.mzxid > 0 {
                                    zxid = Some(zxid.map_or(stat.mzxid, |z: i64| z.max(stat.mzxid)));
                                }
                                i64::from(stat.version)
                            },
                            // A created znode is at version 0 (its stat may be invalid: ZOOKEEPER-4026).
                            _ => 0,
                        })
                        .collect();
                    Ok(Applied::Done { versions, zxid })
                },
                Err(MultiError::Op(i, err)) => match (steps.get(i).and_then(|(_, r)| *r), err) {
                    (Some((cond, true)), zk::Error::NodeExists) => Ok(Applied::Failed(cond)),
                    (Some((cond, false)), zk::Error::NoNode | zk::Error::BadVersion) => Ok(Applied::Failed(cond)),
                    (_, err) => Err(Error::from(err)),
                },
                Err(MultiError::Request(Error::ClientClosed)) => Err(Error::ClosedDuringWrite(format!("{what}: the client was closed while the write was in flight: it may have applied"))),
                Err(MultiError::Request(e)) => Err(e),
            }
        }))
    }

    fn decide_with<'a>(&'a self, tx: &'a mut AnyTransaction, conds: Vec<Cond>, puts: Vec<Put>) -> BoxFuture<'a, Result<Decided>> {
        Box::pin(async move {
            let AnyTransaction::ZooKeeper(tx) = tx else { return Err(Error::invalid("an etcd transaction used with a ZooKeeper coordinator")) };
            let count = puts.len();
            let (steps, _) = plan(&conds, puts)?;
            let ops = steps
                .into_iter()
                .map(|(step, _)| match step {
                    Step::Check(p, v) => Ok(Op::Check(p, v)),
                    Step::Create(p, data, false) => Ok(Op::Create(p, data)),
                    Step::Create(p, _, true) => Err(Error::invalid(format!("{p}: a session record cannot be written with a store transaction"))),
                    Step::Set(p, data, v) => Ok(Op::Set(p, data, v)),
                    Step::Delete(p, v) => Ok(Op::Delete(p, v)),
                })
                .collect::<Result<Vec<_>>>()?;
            let report = tx.commit_deciding(&self.store, Isolation::Serializable, ops).await?;
            // Created znodes are at version 0.
            Ok((vec![0; count], report.zxid, report.versions))
        })
    }

    fn lock<'a>(&'a self, path: &'a str, wait: Option<Duration>) -> BoxFuture<'a, Result<Option<AnyLock>>> {
        Box::pin(async move {
            match recipe::lock(self.session(), path, &AcquireOptions { wait, cancel: None }).await {
                Ok(lock) => Ok(Some(AnyLock::ZooKeeper(Arc::new(lock)))),
                Err(Error::Timeout { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn horizon<'a>(&'a self, _base: &'a str, age: Duration, what: &'a str) -> BoxFuture<'a, Result<Option<Horizon>>> {
        Box::pin(async move {
            let at = self.store.server_cutoff(age, crate::store::MAX_PRUNE_AGE, what).await?;
            Ok(Some(Horizon { at, revision: None }))
        })
    }

    fn sweep<'a>(&'a self, dir: &'a str, horizon: &'a Horizon, ended: &'a (dyn Fn(&str, &[u8]) -> bool + Sync)) -> BoxFuture<'a, Result<usize>> {
        // ZooKeeper keeps each node's modification time by its own clock.
        Box::pin(self.store.sweep(dir, "coordinator records", move |name, data, stat| (stat.mtime < horizon.at && ended(name, data)).then_some(Some(stat.version))))
    }
}
