//! The 2PC coordinator and sagas against a real ZooKeeper and a real etcd (every test runs on
//! both: `<test>::zookeeper` and `<test>::etcd`), with in-process resources that keep prepared
//! branches the way a database does (the PostgreSQL participant is tested from JS).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use etcd_client as etcd;
use zktx_core::backend::etcd::{EtcdOptions, EtcdSession};
use zktx_core::backend::AnyStore;
use zktx_core::coordinator::{BoxFuture, Coordinator, Participant, SagaKey, SagaSteps, TxOutcome};
use zktx_core::kv::JsonValue;
use zktx_core::transaction::Write;
use zktx_core::{Error, Result, SessionOptions, Store};

/// Which backend holds the coordinator's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum B {
    Zk,
    Etcd,
}

/// Runs `$name(B)` as `$name::zookeeper` and `$name::etcd`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn zookeeper() {
                super::$name(super::B::Zk).await
            }
            #[tokio::test]
            async fn etcd() {
                super::$name(super::B::Etcd).await
            }
        }
    )*};
}

fn etcd_session(timeout: Duration) -> EtcdSession {
    let endpoints = std::env::var("ETCD_ENDPOINTS").expect("ETCD_ENDPOINTS is not set: run `npm run test:rust` (starts a local etcd) or point it at one");
    EtcdSession::new(EtcdOptions { endpoints: endpoints.split(',').map(str::to_string).collect(), session_timeout: timeout, ..EtcdOptions::default() }).unwrap()
}

/// A client of backend `b` with a session of `timeout`.
fn store_with(b: B, timeout: Duration) -> AnyStore {
    match b {
        B::Zk => AnyStore::ZooKeeper(Arc::new(Store::new(SessionOptions { session_timeout: timeout, ..options() }).unwrap())),
        B::Etcd => AnyStore::Etcd(etcd_session(timeout)),
    }
}

fn any_store(b: B) -> AnyStore {
    store_with(b, Duration::from_secs(10))
}

fn short_store(b: B) -> AnyStore {
    store_with(b, Duration::from_secs(2))
}

async fn close(store: &AnyStore) {
    match store {
        AnyStore::ZooKeeper(s) => s.close().await,
        AnyStore::Etcd(s) => s.close().await,
    }
}

/// A key of zktx's store, as its JSON text.
async fn get(store: &AnyStore, key: &str) -> Option<String> {
    let mut tx = store.transaction();
    tx.get_many(store, &[key]).await.unwrap().pop().unwrap().map(JsonValue::into_string)
}

fn json(v: i64) -> JsonValue {
    JsonValue::from_serialize(&v).unwrap()
}

/// What an operator (or another program) does to the coordinator's records, bypassing zktx:
/// znodes on ZooKeeper, keys on etcd (the same paths).
enum Admin {
    Zk(Store),
    Etcd(etcd::Client),
}

async fn admin(b: B) -> Admin {
    match b {
        B::Zk => Admin::Zk(store()),
        B::Etcd => {
            let endpoints = std::env::var("ETCD_ENDPOINTS").unwrap();
            Admin::Etcd(etcd::Client::connect(endpoints.split(',').collect::<Vec<_>>(), None).await.unwrap())
        },
    }
}

impl Admin {
    async fn get(&self, path: &str) -> Option<Vec<u8>> {
        match self {
            Admin::Zk(s) => match s.session().client().await.unwrap().get_data(path).await {
                Ok((data, _)) => Some(data),
                Err(zookeeper_client::Error::NoNode) => None,
                Err(e) => panic!("{e}"),
            },
            Admin::Etcd(c) => c.clone().get(path, None).await.unwrap().kvs().first().map(|kv| kv.value().to_vec()),
        }
    }

    async fn create(&self, path: &str, data: &[u8]) {
        match self {
            Admin::Zk(s) => {
                let open = zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
                s.session().client().await.unwrap().create(path, data, &open).await.unwrap();
            },
            Admin::Etcd(c) => {
                c.clone().put(path, data, None).await.unwrap();
            },
        }
    }

    async fn set(&self, path: &str, data: &[u8]) {
        match self {
            Admin::Zk(s) => {
                s.session().client().await.unwrap().set_data(path, data, None).await.unwrap();
            },
            Admin::Etcd(c) => {
                c.clone().put(path, data, None).await.unwrap();
            },
        }
    }

    async fn delete(&self, path: &str) {
        match self {
            Admin::Zk(s) => s.session().client().await.unwrap().delete(path, None).await.unwrap(),
            Admin::Etcd(c) => {
                c.clone().delete(path, None).await.unwrap();
            },
        }
    }

    async fn exists(&self, path: &str) -> bool {
        self.get(path).await.is_some()
    }

    /// The record names in a coordinator directory.
    async fn children(&self, dir: &str) -> Vec<String> {
        match self {
            Admin::Zk(s) => s.children(dir).await.unwrap(),
            Admin::Etcd(c) => {
                let prefix = format!("{dir}/");
                let got = c.clone().get(prefix.as_str(), Some(etcd::GetOptions::new().with_prefix().with_keys_only())).await.unwrap();
                got.kvs().iter().map(|kv| String::from_utf8_lossy(kv.key())[prefix.len()..].to_string()).collect()
            },
        }
    }
}

/// A resource with prepared branches, a committed log, and switches to fail calls.
#[derive(Default)]
struct Resource {
    prepared: Mutex<BTreeSet<String>>,
    committed: Mutex<Vec<String>>,
    rolled_back: Mutex<Vec<String>>,
    fail_prepare: Mutex<bool>,
    fail_commit: Mutex<bool>,
    /// `in_doubt` never answers (a frozen database).
    hang: Mutex<bool>,
}

impl Participant for Resource {
    fn prepare<'a>(&'a self, gid: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if *self.fail_prepare.lock().unwrap() {
                return Err(Error::Participant("prepare refused".into()));
            }
            self.prepared.lock().unwrap().insert(gid.to_string());
            Ok(())
        })
    }
    fn commit<'a>(&'a self, gid: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if *self.fail_commit.lock().unwrap() {
                return Err(Error::Participant("commit failed: resource down".into()));
            }
            if self.prepared.lock().unwrap().remove(gid) {
                self.committed.lock().unwrap().push(gid.to_string());
            }
            Ok(())
        })
    }
    fn rollback<'a>(&'a self, gid: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.prepared.lock().unwrap().remove(gid);
            self.rolled_back.lock().unwrap().push(gid.to_string());
            Ok(())
        })
    }
    fn in_doubt(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            if *self.hang.lock().unwrap() {
                std::future::pending::<()>().await;
            }
            Ok(self.prepared.lock().unwrap().iter().cloned().collect())
        })
    }
}

fn coordinator(store: AnyStore, name: &str, a: &Arc<Resource>, b: &Arc<Resource>) -> Coordinator {
    let parts: Vec<(String, Arc<dyn Participant>)> = vec![("a".into(), a.clone()), ("b".into(), b.clone())];
    Coordinator::new(store, name, parts, None).unwrap()
}

async fn commit_prepares_records_and_commits_every_branch_with_store_writes_in_the_decision(be: B) {
    let (a, b) = (Arc::new(Resource::default()), Arc::new(Resource::default()));
    let store = any_store(be);
    let c = coordinator(store.clone(), &unique("c"), &a, &b);
    let run = c.begin().await.unwrap();
    let ga = run.enlist("a").unwrap();
    let gb = run.enlist("b").unwrap();
    assert!(ga.starts_with("zktx:") && ga.ends_with(":a"));
    let key = unique("k");
    let mut tx = store.transaction();
    tx.write(&store, &key, Write::Set(json(7))).unwrap();
    let done = run.commit(Some(&mut tx)).await.unwrap();
    assert!(done.pending.is_empty());
    assert!(matches!(c.outcome(run.txid()).await.unwrap(), TxOutcome::Committed(_)));
    assert_eq!(*a.committed.lock().unwrap(), vec![ga]);
    assert_eq!(*b.committed.lock().unwrap(), vec![gb]);
    assert_eq!(get(&store, &key).await.as_deref(), Some("7"));
    // The done mark is written in the background.
    for _ in 0..50 {
        if c.outcome(run.txid()).await.unwrap() == TxOutcome::Committed(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never marked done");
}

async fn a_failed_prepare_rolls_back_every_branch_and_the_store_writes(be: B) {
    let (a, b) = (Arc::new(Resource::default()), Arc::new(Resource::default()));
    *b.fail_prepare.lock().unwrap() = true;
    let store = any_store(be);
    let c = coordinator(store.clone(), &unique("c"), &a, &b);
    let run = c.begin().await.unwrap();
    run.enlist("a").unwrap();
    run.enlist("b").unwrap();
    let key = unique("k");
    let mut tx = store.transaction();
    tx.write(&store, &key, Write::Set(json(1))).unwrap();
    let err = run.commit(Some(&mut tx)).await.unwrap_err();
    assert_eq!(err.code(), "ROLLED_BACK", "{err}");
    assert!(err.to_string().contains("prepare refused"));
    assert!(a.prepared.lock().unwrap().is_empty() && a.committed.lock().unwrap().is_empty());
    assert_eq!(a.rolled_back.lock().unwrap().len(), 1);
    assert!(get(&store, &key).await.is_none());
    assert_eq!(c.outcome(run.txid()).await.unwrap(), TxOutcome::Aborted);
}

async fn a_store_conflict_aborts_the_decision_and_rolls_back(be: B) {
    let (a, b) = (Arc::new(Resource::default()), Arc::new(Resource::default()));
    let store = any_store(be);
    let c = coordinator(store.clone(), &unique("c"), &a, &b);
    let key = unique("k");
    store.set(&key, &json(1), &[]).await.unwrap();
    let run = c.begin().await.unwrap();
    run.enlist("a").unwrap();
    let mut tx = store.transaction();
    tx.get_many(&store, &[&key]).await.unwrap();
    tx.write(&store, &key, Write::Set(json(2))).unwrap();
    store.set(&key, &json(3), &[]).await.unwrap();
    let err = run.commit(Some(&mut tx)).await.unwrap_err();
    assert_eq!(err.code(), "CONFLICT");
    assert!(a.prepared.lock().unwrap().is_empty() && a.committed.lock().unwrap().is_empty());
    assert_eq!(get(&store, &key).await.as_deref(), Some("3"));
}

async fn recovery_rolls_back_branches_of_a_dead_coordinator_and_fences_it(be: B) {
    let (a, b) = (Arc::new(Resource::default()), Arc::new(Resource::default()));
    let name = unique("c");
    // The coordinator prepares, then "dies" before its decision: its session ends.
    let dead_store = short_store(be);
    let dead = coordinator(dead_store.clone(), &name, &a, &b);
    let run = dead.begin().await.unwrap();
    let ga = run.enlist("a").unwrap();
    a.prepare(&ga).await.unwrap();
    // While it is alive, recovery leaves it alone.
    let recoverer = coordinator(any_store(be), &name, &a, &b);
    let report = recoverer.recover(None).await.unwrap().unwrap();
    assert_eq!(report.active, 1, "{report:?}");
    assert_eq!(a.prepared.lock().unwrap().len(), 1);
    close(&dead_store).await;
    let report = recoverer.recover(None).await.unwrap().unwrap();
    assert_eq!((report.aborted, report.rolled_back), (1, 1), "{report:?}");
    assert!(a.prepared.lock().unwrap().is_empty());
    assert_eq!(recoverer.outcome(run.txid()).await.unwrap(), TxOutcome::Aborted);
}

async fn a_slow_coordinator_cannot_commit_after_recovery_aborted(be: B) {
    let (a, b) = (Arc::new(Resource::default()), Arc::new(Resource::default()));
    let name = unique("c");
    let slow_store = short_store(be);
    let slow = coordinator(slow_store.clone(), &name, &a, &b);
    let run = slow.begin().await.unwrap();
    let ga = run.enlist("a").unwrap();
    a.prepare(&ga).await.unwrap();
    // Its active record goes (as when its session expires); recovery aborts.
    let admin = admin(be).await;
    let active = format!("/zktx/coordinators/{name}/active/{}", run.txid());
    // (begin writes the record in the background)
    while !admin.exists(&active).await {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    admin.delete(&active).await;
    let recoverer = coordinator(any_store(be), &name, &a, &b);
    let report = recoverer.recover(None).await.unwrap().unwrap();
    assert_eq!(report.aborted, 1, "{report:?}");
    // The slow one wakes up and tries to commit: refused, nothing committed anywhere.
    let err = run.commit(None).await.unwrap_err();
    assert_eq!(err.code(), "ROLLED_BACK", "{err}");
    assert!(a.committed.lock().unwrap().is_empty());
    assert_eq!(recoverer.outcome(run.txid()).await.unwrap(), TxOutcome::Aborted);
}

async fn recovery_finishes_a_commit_whose_branch_failed(be: B) {
    let (a, b) = (Arc::new(Resource::default()), Arc::new(Resource::default()));
    let name = unique("c");
    let s = admin(be).await;
    let c = coordinator(any_store(be), &name, &a, &b);
    let run = c.begin().await.unwrap();
    run.enlist("a").unwrap();
    let gb = run.enlist("b").unwrap();
    *b.fail_commit.lock().unwrap() = true;
    let done = run.commit(None).await.unwrap();
    assert_eq!(done.pending, vec!["b".to_string()]);
    assert_eq!(c.outcome(run.txid()).await.unwrap(), TxOutcome::Committed(false));
    // Recovery finds it through its committing marker (it lists only those, not every decision).
    let committing = format!("/zktx/coordinators/{name}/committing");
    assert_eq!(s.children(&committing).await, vec![run.txid().to_string()]);
    *b.fail_commit.lock().unwrap() = false;
    let report = c.recover(None).await.unwrap().unwrap();
    assert!(report.committed >= 1, "{report:?}");
    assert_eq!(*b.committed.lock().unwrap(), vec![gb]);
    assert_eq!(c.outcome(run.txid()).await.unwrap(), TxOutcome::Committed(true));
    assert!(s.children(&committing).await.is_empty());
    // A run whose branches all commit removes its marker itself (in the background).
    let run = c.begin().await.unwrap();
    run.enlist("a").unwrap();
    run.commit(None).await.unwrap();
    for _ in 0..100 {
        if s.children(&committing).await.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the committing marker stayed");
}

/// Saga steps over an in-process ledger with a barrier keyed like DTM's.
#[derive(Default)]
struct Ledger {
    balance: Mutex<i64>,
    barrier: Mutex<BTreeMap<(String, String, &'static str), ()>>,
    fail_step: Mutex<Option<usize>>,
}

impl Ledger {
    /// Inserts a barrier row; false if it was there.
    fn insert(&self, key: &SagaKey, op: &'static str) -> bool {
        self.barrier.lock().unwrap().insert((key.transaction.clone(), key.branch.clone(), op), ()).is_none()
    }
}

impl SagaSteps for Ledger {
    fn action<'a>(&'a self, _saga: &'a str, step: usize, key: &'a SagaKey, _input: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if *self.fail_step.lock().unwrap() == Some(step) {
                return Err(Error::Participant(format!("step {step} failed")));
            }
            if self.insert(key, "action") {
                *self.balance.lock().unwrap() += 10;
            }
            Ok(())
        })
    }
    fn compensate<'a>(&'a self, _saga: &'a str, _step: usize, key: &'a SagaKey, _input: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            // Null compensation: the action never ran (and now never will).
            let never_ran = self.insert(key, "action");
            if self.insert(key, "compensate") && !never_ran {
                *self.balance.lock().unwrap() -= 10;
            }
            Ok(())
        })
    }
    fn steps(&self, _saga: &str) -> Option<usize> {
        Some(3)
    }
}

async fn a_failed_saga_step_compensates_the_started_steps_in_reverse(be: B) {
    let ledger = Arc::new(Ledger::default());
    let c = Coordinator::new(any_store(be), &unique("s"), Vec::new(), Some(ledger.clone())).unwrap();
    let txid = c.run_saga("transfer", "{}").await.unwrap();
    assert_eq!(*ledger.balance.lock().unwrap(), 30);
    assert_eq!(c.outcome(&txid).await.unwrap(), TxOutcome::Saga("done"));
    *ledger.fail_step.lock().unwrap() = Some(2);
    let err = c.run_saga("transfer", "{}").await.unwrap_err();
    assert_eq!(err.code(), "ROLLED_BACK", "{err}");
    assert_eq!(*ledger.balance.lock().unwrap(), 30, "the failed saga's two steps were compensated");
}

/// A branch of `name`'s transaction that recovery must abort: prepared after its run rolled back
/// (a prepare that outlived its deadline), no decision, no active node.
async fn abandoned_branch(c: &Coordinator, r: &Arc<Resource>, participant: &str) -> String {
    let run = c.begin().await.unwrap();
    let gid = run.enlist(participant).unwrap();
    run.rollback().await.unwrap();
    r.prepared.lock().unwrap().insert(gid.clone());
    gid
}

async fn recovery_resolves_only_gids_with_its_own_id(be: B) {
    let (a, b) = (Arc::new(Resource::default()), Arc::new(Resource::default()));
    let name = unique("c");
    let c = coordinator(any_store(be), &name, &a, &b);
    let ours = abandoned_branch(&c, &a, "a").await;
    let parts: Vec<&str> = ours.split(':').collect();
    assert_eq!(parts.len(), 5, "{ours}");
    assert_eq!((parts[0], parts[1], parts[2].len(), parts[3].len(), parts[4]), ("zktx", name.as_str(), 16, 32, "a"));
    // The same name in another namespace (another id), and the old format without an id.
    let txid = parts[3];
    let foreign = format!("zktx:{name}:0123456789abcdef:{txid}:a");
    let old_format = format!("zktx:{name}:{txid}:a");
    a.prepared.lock().unwrap().extend([foreign.clone(), old_format.clone()]);
    let report = c.recover(None).await.unwrap().unwrap();
    assert_eq!((report.aborted, report.rolled_back), (1, 1), "{report:?}");
    assert_eq!(*a.prepared.lock().unwrap(), BTreeSet::from([foreign, old_format]));
    // A second coordinator object of the same tree reads the same id.
    let again = coordinator(any_store(be), &name, &a, &b);
    let run = again.begin().await.unwrap();
    assert!(run.enlist("b").unwrap().starts_with(&format!("zktx:{name}:{}:", parts[2])));
}

async fn a_participant_that_never_answers_costs_recovery_one_deadline_and_the_others_are_recovered(be: B) {
    let (a, b) = (Arc::new(Resource::default()), Arc::new(Resource::default()));
    let name = unique("c");
    let c = coordinator(any_store(be), &name, &a, &b).with_participant_timeout(Duration::from_millis(300)).unwrap();
    let gid = abandoned_branch(&c, &b, "b").await;
    *a.hang.lock().unwrap() = true;
    let started = std::time::Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(5), c.recover(None)).await.expect("recovery hung").unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!((report.aborted, report.rolled_back), (1, 1), "{report:?}");
    assert!(report.errors.iter().any(|e| e.contains("participant a") && e.contains("TIMEOUT")), "{report:?}");
    assert!(b.prepared.lock().unwrap().is_empty());
    assert_eq!(*b.rolled_back.lock().unwrap(), vec![gid.clone(), gid]);
    assert_eq!(Coordinator::new(any_store(be), &name, Vec::new(), None).unwrap().with_participant_timeout(Duration::ZERO).unwrap_err().code(), "INVALID_ARGUMENT");
}

async fn an_unfinished_commit_decided_by_a_version_without_coordinator_ids_is_reported_not_guessed(be: B) {
    let (a, b) = (Arc::new(Resource::default()), Arc::new(Resource::default()));
    let name = unique("c");
    let c = coordinator(any_store(be), &name, &a, &b);
    c.recover(None).await.unwrap(); // creates the tree
    // What the old version left: a commit decision (no id in it), its marker, a branch of the
    // old gid format still prepared.
    let txid = "01a24d0000007000800000000000abcd";
    let old_gid = format!("zktx:{name}:{txid}:a");
    a.prepared.lock().unwrap().insert(old_gid.clone());
    let admin = admin(be).await;
    let base = format!("/zktx/coordinators/{name}");
    admin.create(&format!("{base}/decisions/{txid}"), br#"{"decision":"commit","branches":["a"]}"#).await;
    admin.create(&format!("{base}/committing/{txid}"), b"").await;
    let report = c.recover(None).await.unwrap().unwrap();
    assert_eq!(report.committed, 0, "{report:?}");
    assert!(report.errors.iter().any(|e| e.contains(txid) && e.contains("by hand")), "{report:?}");
    assert!(a.committed.lock().unwrap().is_empty() && a.rolled_back.lock().unwrap().is_empty());
    assert_eq!(*a.prepared.lock().unwrap(), BTreeSet::from([old_gid]));
    assert_eq!(c.outcome(txid).await.unwrap(), TxOutcome::Committed(false));
}

/// A commit decision of `txid` recorded by hand under coordinator id `id`, its marker, and its
/// branch on `a` still prepared (a run whose commit of `a` failed).
async fn unfinished_commit(be: B, name: &str, txid: &str, id: &str, a: &Resource) -> String {
    let gid = format!("zktx:{name}:{id}:{txid}:a");
    a.prepared.lock().unwrap().insert(gid.clone());
    let admin = admin(be).await;
    let base = format!("/zktx/coordinators/{name}");
    let record = format!(r#"{{"decision":"commit","branches":["a"],"id":"{id}"}}"#);
    admin.create(&format!("{base}/decisions/{txid}"), record.as_bytes()).await;
    admin.create(&format!("{base}/committing/{txid}"), b"").await;
    gid
}

async fn a_commit_decision_is_committed_by_the_id_it_recorded_not_the_trees_id_of_now(be: B) {
    let (a, b) = (Arc::new(Resource::default()), Arc::new(Resource::default()));
    let name = unique("c");
    let c = coordinator(any_store(be), &name, &a, &b);
    c.recover(None).await.unwrap(); // the tree, and its id (not the decision's)
    let gid = unfinished_commit(be, &name, "01a24d0000007000800000000000abcd", "0123456789abcdef", &a).await;
    let report = c.recover(None).await.unwrap().unwrap();
    assert_eq!((report.committed, report.errors.len()), (1, 0), "{report:?}");
    assert_eq!(*a.committed.lock().unwrap(), vec![gid]);
    assert_eq!(c.outcome("01a24d0000007000800000000000abcd").await.unwrap(), TxOutcome::Committed(true));
}

async fn a_tree_whose_id_was_lost_or_is_a_copy_makes_no_gid_until_restored_or_re_keyed(be: B) {
    let (a, b) = (Arc::new(Resource::default()), Arc::new(Resource::default()));
    let name = unique("c");
    let c = coordinator(any_store(be), &name, &a, &b);
    c.recover(None).await.unwrap();
    let path = format!("/zktx/coordinators/{name}/id");
    let admin = admin(be).await;
    let bound = String::from_utf8(admin.get(&path).await.unwrap()).unwrap();
    let id = bound.split(' ').next().unwrap().to_string();
    assert_eq!((id.len(), bound.len() > id.len() + 1), (16, true), "{bound}");
    unfinished_commit(be, &name, "01a24d0000007000800000000000abce", &id, &a).await;

    // Lost: a new process refuses to draw a fresh id, and names the node and the old id.
    admin.delete(&path).await;
    let fresh = coordinator(any_store(be), &name, &a, &b);
    let err = fresh.recover(None).await.unwrap_err();
    assert_eq!(err.code(), "COORDINATOR_ID", "{err}");
    assert!(err.to_string().contains(&path) && err.to_string().contains(&id), "{err}");
    assert_eq!(fresh.begin().await.unwrap_err().code(), "COORDINATOR_ID");
    assert!(!admin.exists(&path).await);
    // Restored alone: bound again at the next start, and recovery finishes the decision.
    admin.create(&path, id.as_bytes()).await;
    let report = fresh.recover(None).await.unwrap().unwrap();
    assert_eq!((report.committed, report.errors.len()), (1, 0), "{report:?}");
    assert_eq!(String::from_utf8(admin.get(&path).await.unwrap()).unwrap(), bound);

    // A copy: the node says it was bound to another tree.
    admin.set(&path, format!("{id} 1").as_bytes()).await;
    let copy = coordinator(any_store(be), &name, &a, &b);
    let err = copy.recover(None).await.unwrap_err();
    assert_eq!(err.code(), "COORDINATOR_ID", "{err}");
    assert!(err.to_string().contains("copy"), "{err}");
    assert_eq!(copy.outcome("01a24d0000007000800000000000abce").await.unwrap_err().code(), "COORDINATOR_ID");
}

async fn outcome_presumes_the_abort_only_of_its_own_transactions(be: B) {
    let (a, b) = (Arc::new(Resource::default()), Arc::new(Resource::default()));
    let (x, y) = (coordinator(any_store(be), &unique("x"), &a, &b), coordinator(any_store(be), &unique("y"), &a, &b));
    let run = y.begin().await.unwrap();
    let gid = run.enlist("a").unwrap();
    assert_eq!(x.outcome(run.txid()).await.unwrap(), TxOutcome::Unknown);
    assert_eq!(x.outcome(&gid).await.unwrap_err().code(), "INVALID_ARGUMENT");
    assert_eq!(y.outcome(&gid).await.unwrap(), TxOutcome::Active);
    run.commit(None).await.unwrap();
    assert_eq!((x.outcome(run.txid()).await.unwrap(), y.outcome(&gid).await.unwrap()), (TxOutcome::Unknown, TxOutcome::Committed(true)));
    // Its own txid with no record and no active node (a rollback records nothing): presumed
    // aborted, and recorded.
    let own = x.begin().await.unwrap();
    own.rollback().await.unwrap();
    assert_eq!(x.outcome(own.txid()).await.unwrap(), TxOutcome::Aborted);
    assert_eq!(y.outcome(own.txid()).await.unwrap(), TxOutcome::Unknown);
}

on_both!(
    commit_prepares_records_and_commits_every_branch_with_store_writes_in_the_decision,
    a_failed_prepare_rolls_back_every_branch_and_the_store_writes,
    a_store_conflict_aborts_the_decision_and_rolls_back,
    recovery_rolls_back_branches_of_a_dead_coordinator_and_fences_it,
    a_slow_coordinator_cannot_commit_after_recovery_aborted,
    recovery_finishes_a_commit_whose_branch_failed,
    a_failed_saga_step_compensates_the_started_steps_in_reverse,
    recovery_resolves_only_gids_with_its_own_id,
    a_participant_that_never_answers_costs_recovery_one_deadline_and_the_others_are_recovered,
    an_unfinished_commit_decided_by_a_version_without_coordinator_ids_is_reported_not_guessed,
    a_commit_decision_is_committed_by_the_id_it_recorded_not_the_trees_id_of_now,
    a_tree_whose_id_was_lost_or_is_a_copy_makes_no_gid_until_restored_or_re_keyed,
    outcome_presumes_the_abort_only_of_its_own_transactions,
);
