//! The key-value store and transactions on a real etcd (ETCD_ENDPOINTS: `npm run test:rust`
//! starts one).

use std::time::Duration;

use zktx_core::backend::etcd::{EtcdOptions, EtcdSession, EtcdTransaction};
use zktx_core::kv::{JsonValue, Layout};
use zktx_core::recipe::AcquireOptions;
use zktx_core::transaction::{CommitOptions, Isolation, Write};
use zktx_core::LockKind;

fn session() -> EtcdSession {
    let endpoints = std::env::var("ETCD_ENDPOINTS").expect("ETCD_ENDPOINTS is not set: run `npm run test:rust` (starts a local etcd) or point it at one");
    EtcdSession::new(EtcdOptions { endpoints: endpoints.split(',').map(str::to_string).collect(), session_timeout: Duration::from_secs(4), ..EtcdOptions::default() }).unwrap()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple())
}

fn json(v: i64) -> JsonValue {
    JsonValue::from_serialize(&v).unwrap()
}

#[tokio::test]
async fn transfer_commits_atomically_and_a_concurrent_one_conflicts() {
    let (s, layout) = (session(), Layout::default());
    let (a, b) = (unique("a"), unique("b"));
    s.set_value(&layout, &a, &json(100), &[]).await.unwrap();
    s.set_value(&layout, &b, &json(0), &[]).await.unwrap();
    let (mut t1, mut t2) = (EtcdTransaction::new(), EtcdTransaction::new());
    assert_eq!(t1.get_many(&s, &layout, &[&a, &b]).await.unwrap(), t2.get_many(&s, &layout, &[&a, &b]).await.unwrap());
    t1.write(&layout, &a, Write::Set(json(90))).unwrap();
    t1.write(&layout, &b, Write::Set(json(10))).unwrap();
    t2.write(&layout, &a, Write::Set(json(50))).unwrap();
    t2.write(&layout, &b, Write::Set(json(50))).unwrap();
    let r1 = t1.commit(&s, &layout, &CommitOptions::default()).await.unwrap();
    let rev = r1.zxid.unwrap();
    assert_eq!(r1.versions, vec![(a.clone(), rev), (b.clone(), rev)]);
    assert_eq!(t2.commit(&s, &layout, &CommitOptions::default()).await.unwrap_err().code(), "CONFLICT");
    assert_eq!(s.get_value(&layout, &a).await.unwrap().unwrap().value, json(90));
    assert_eq!(s.get_value(&layout, &b).await.unwrap().unwrap().version, rev);
    s.close().await;
}

#[tokio::test]
async fn a_delete_and_re_create_between_read_and_commit_is_a_conflict() {
    let (s, layout) = (session(), Layout::default());
    let k = unique("recreated");
    s.set_value(&layout, &k, &json(1), &[]).await.unwrap();
    let mut t = EtcdTransaction::new();
    t.get_many(&s, &layout, &[&k]).await.unwrap();
    // delete and re-create at the same value: a per-key version counter would restart at 1
    let mut d = EtcdTransaction::new();
    d.write(&layout, &k, Write::Delete).unwrap();
    d.commit(&s, &layout, &CommitOptions::default()).await.unwrap();
    s.set_value(&layout, &k, &json(1), &[]).await.unwrap();
    t.write(&layout, &k, Write::Set(json(2))).unwrap();
    assert_eq!(t.commit(&s, &layout, &CommitOptions::default()).await.unwrap_err().code(), "CONFLICT");
    assert_eq!(s.get_value(&layout, &k).await.unwrap().unwrap().value, json(1));
    s.close().await;
}

#[tokio::test]
async fn an_id_applies_once_and_reports_its_recorded_result() {
    let (s, layout) = (session(), Layout::default());
    let (k, id) = (unique("idem"), unique("id"));
    let opts = CommitOptions { id: Some(&id), result: Some("\"first\""), ..CommitOptions::default() };
    let mut t = EtcdTransaction::new();
    t.write(&layout, &k, Write::Set(json(1))).unwrap();
    assert!(!t.commit(&s, &layout, &opts).await.unwrap().already_applied);
    let mut again = EtcdTransaction::new();
    again.write(&layout, &k, Write::Set(json(2))).unwrap();
    let r = again.commit(&s, &layout, &CommitOptions { result: Some("\"second\""), ..opts }).await.unwrap();
    assert!(r.already_applied);
    assert_eq!(r.recorded_result.as_deref(), Some("\"first\""));
    assert_eq!(s.get_value(&layout, &k).await.unwrap().unwrap().value, json(1));
    assert_eq!(s.recorded(&layout, Some(&id)).await.unwrap(), Some(Some("\"first\"".to_string())));
    s.close().await;
}

#[tokio::test]
async fn creates_snapshot_write_skew_and_fences() {
    let (s, layout) = (session(), Layout::default());
    let (x, y, c) = (unique("x"), unique("y"), unique("c"));
    s.set_value(&layout, &x, &json(1), &[]).await.unwrap();
    // a blind create of an existing key is NODEEXISTS; of an absent one, applies
    let mut t = EtcdTransaction::new();
    t.write(&layout, &x, Write::Create(json(5))).unwrap();
    assert_eq!(t.commit(&s, &layout, &CommitOptions::default()).await.unwrap_err().code(), "NODEEXISTS");
    let mut t = EtcdTransaction::new();
    t.write(&layout, &c, Write::Create(json(5))).unwrap();
    t.commit(&s, &layout, &CommitOptions::default()).await.unwrap();
    // snapshot checks written keys only: x changed after the read, y is still written
    let mut t = EtcdTransaction::new();
    t.get_many(&s, &layout, &[&x]).await.unwrap();
    s.set_value(&layout, &x, &json(2), &[]).await.unwrap();
    t.write(&layout, &y, Write::Set(json(7))).unwrap();
    t.commit(&s, &layout, &CommitOptions { isolation: Isolation::Snapshot, ..CommitOptions::default() }).await.unwrap();
    assert_eq!(s.get_value(&layout, &y).await.unwrap().unwrap().value, json(7));
    // fenced on a released lock: LOCK_LOST, nothing written
    let lock = s.acquire(LockKind::Exclusive, &format!("/zktx-test/{}", unique("fence")), &AcquireOptions::default()).await.unwrap();
    lock.release().await.unwrap();
    let mut t = EtcdTransaction::new();
    t.write(&layout, &y, Write::Set(json(8))).unwrap();
    let locks = [&lock];
    assert_eq!(t.commit(&s, &layout, &CommitOptions { locks: &locks, ..CommitOptions::default() }).await.unwrap_err().code(), "LOCK_LOST");
    assert_eq!(s.get_value(&layout, &y).await.unwrap().unwrap().value, json(7));
    s.close().await;
}

#[tokio::test]
async fn key_transactions_serialize_writers_and_refuse_a_writer_that_skipped_the_lock() {
    let (s, layout) = (session(), Layout::default());
    let k = unique("keytx");
    let tx = s.begin(&layout, &k, &AcquireOptions::default()).await.unwrap();
    assert_eq!(tx.decoded().unwrap(), None);
    let done = tx.commit(json(1)).await.unwrap();
    assert_eq!(done.zxid, Some(done.version));
    let tx = s.begin(&layout, &k, &AcquireOptions::default()).await.unwrap();
    s.set_value(&layout, &k, &json(99), &[]).await.unwrap(); // no lock
    assert_eq!(tx.commit(json(2)).await.unwrap_err().code(), "BADVERSION");
    assert_eq!(s.get_value(&layout, &k).await.unwrap().unwrap().value, json(99));
    // the lock was released: the next one gets in at once
    let next = s.begin(&layout, &k, &AcquireOptions { wait: Some(Duration::from_secs(2)), ..AcquireOptions::default() }).await.unwrap();
    assert_eq!(next.commit(json(100)).await.unwrap().previous, Some(json(99)));
    s.close().await;
}

#[tokio::test]
async fn prune_pages_through_more_markers_than_one_txn_and_keeps_fresh_ones() {
    let (s, layout) = (session(), Layout::default());
    let old: Vec<String> = (0..150).map(|i| unique(&format!("old{i}"))).collect();
    for id in &old {
        let mut t = EtcdTransaction::new();
        t.write(&layout, &unique("p"), Write::Set(json(1))).unwrap();
        t.commit(&s, &layout, &CommitOptions { id: Some(id), ..CommitOptions::default() }).await.unwrap();
    }
    // Ages go by the server's clock, between calls: the first call marks the store's revision
    // (after the old markers), the next one, the age (plus etcd's whole-second rounding) later,
    // deletes what was committed up to that mark.
    s.prune_transaction_ids(&layout, Duration::from_millis(200)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let fresh = unique("fresh");
    let mut t = EtcdTransaction::new();
    t.write(&layout, &unique("p"), Write::Set(json(1))).unwrap();
    t.commit(&s, &layout, &CommitOptions { id: Some(&fresh), result: Some("7"), ..CommitOptions::default() }).await.unwrap();
    assert!(s.prune_transaction_ids(&layout, Duration::from_millis(200)).await.unwrap() >= old.len());
    for id in &old {
        assert_eq!(s.recorded(&layout, Some(id)).await.unwrap(), None, "{id} was not pruned");
    }
    assert_eq!(s.recorded(&layout, Some(&fresh)).await.unwrap(), Some(Some("7".to_string())));
    assert_eq!(s.prune_transaction_ids(&layout, zktx_core::store::MAX_PRUNE_AGE + Duration::from_secs(1)).await.unwrap_err().code(), "INVALID_ARGUMENT");
    s.close().await;
}

#[tokio::test]
async fn a_commit_that_changes_nothing_reports_the_revision_its_compares_held_at() {
    let (s, layout) = (session(), Layout::default());
    let (gone, set) = (unique("gone"), unique("set"));
    s.set_value(&layout, &set, &json(1), &[]).await.unwrap();
    let before = s.get_value(&layout, &set).await.unwrap().unwrap().version;
    let mut t = EtcdTransaction::new();
    t.get_many(&s, &layout, &[&set]).await.unwrap();
    t.write(&layout, &gone, Write::Delete).unwrap();
    let report = t.commit(&s, &layout, &CommitOptions::default()).await.unwrap();
    // Nothing changed: its place in the serial order is the store's revision when its compares
    // held, at or after the write it read.
    assert!(report.zxid.is_some_and(|r| r >= before), "{report:?}");
    assert_eq!(s.get_value(&layout, &set).await.unwrap().unwrap().version, before);
    s.close().await;
}

/// A committer whose clock is an hour behind stamps its markers an hour old. Pruning went by
/// that stamp: `prune_transaction_ids(10 min)` deleted the marker of an id committed a moment
/// before, and a retry of that id would have applied again. Ages go by the server's clock now.
#[tokio::test]
async fn a_committer_an_hour_behind_has_its_fresh_markers_kept() {
    let (s, layout) = (session(), Layout::default());
    let id = unique("skewed");
    let mut t = EtcdTransaction::new();
    t.write(&layout, &unique("p"), Write::Set(json(1))).unwrap();
    t.commit(&s, &layout, &CommitOptions { id: Some(&id), result: Some("1"), ..CommitOptions::default() }).await.unwrap();
    // The marker as that committer writes it: its clock's time, an hour ago.
    let endpoints = std::env::var("ETCD_ENDPOINTS").unwrap();
    let mut raw = etcd_client::Client::connect(endpoints.split(',').collect::<Vec<_>>(), None).await.unwrap();
    let listed = raw.get(format!("{}/", layout.root_child("txn-ids")), Some(etcd_client::GetOptions::new().with_prefix())).await.unwrap();
    let key = listed.kvs().iter().map(|kv| kv.key_str().unwrap().to_string()).find(|k| k.ends_with(&id)).expect("the marker");
    let hour_ago = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 3_600_000;
    raw.put(key, format!("{{\"at\":{hour_ago},\"result\":\"1\"}}"), None).await.unwrap();
    for _ in 0..2 {
        s.prune_transaction_ids(&layout, Duration::from_secs(600)).await.unwrap();
        assert_eq!(s.recorded(&layout, Some(&id)).await.unwrap(), Some(Some("1".to_string())), "a marker written a moment ago was pruned");
    }
    s.close().await;
}

/// A marker holds its commit's recorded result (up to 64 KiB). The sweep listed markers with
/// their values, 128 a page: 70 markers of 60 KiB made a page over the client's 4 MiB answer
/// limit, and every prune failed on that page, forever (no marker after it could ever go).
/// Pruning needs the markers' revisions only.
#[tokio::test]
async fn prune_goes_through_markers_with_large_recorded_results() {
    let (s, layout) = (session(), Layout::new(&format!("/{}", unique("zktx-large-results"))));
    let result = serde_json::to_string(&"r".repeat(60 * 1024)).unwrap();
    let ids: Vec<String> = (0..70).map(|i| unique(&format!("large{i}"))).collect();
    for id in &ids {
        let mut t = EtcdTransaction::new();
        t.write(&layout, &unique("p"), Write::Set(json(1))).unwrap();
        t.commit(&s, &layout, &CommitOptions { id: Some(id), result: Some(&result), ..CommitOptions::default() }).await.unwrap();
    }
    assert_eq!(s.prune_transaction_ids(&layout, Duration::ZERO).await.unwrap(), ids.len());
    for id in &ids {
        assert_eq!(s.recorded(&layout, Some(id)).await.unwrap(), None, "{id} was not pruned");
    }
    s.close().await;
}

/// A retry of an id whose marker exists reports the result that marker recorded. The commit
/// found the marker (its compare failed) and then read the marker again for the result: a prune
/// between the two deleted it, and the retry reported `already_applied` with no result (JS: the
/// transaction resolved `undefined` instead of what the first commit returned). The result is
/// read with the compare, in the same revision.
#[tokio::test]
async fn a_retry_racing_a_prune_reports_the_recorded_result_or_applies_anew() {
    let (s, layout) = (session(), Layout::new(&format!("/{}", unique("zktx-retry-race"))));
    let pruner = session();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pruning = {
        let (pruner, layout, stop) = (pruner.clone(), layout.clone(), stop.clone());
        tokio::spawn(async move {
            let mut pruned = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                pruned += pruner.prune_transaction_ids(&layout, Duration::ZERO).await.unwrap();
            }
            pruned
        })
    };
    let id = unique("raced");
    let (mut applied, mut found, mut without_result) = (0, 0, 0);
    for _ in 0..400 {
        let mut t = EtcdTransaction::new();
        t.write(&layout, &unique("p"), Write::Set(json(1))).unwrap();
        let report = t.commit(&s, &layout, &CommitOptions { id: Some(&id), result: Some("\"r\""), ..CommitOptions::default() }).await.unwrap();
        match (report.already_applied, report.recorded_result.as_deref()) {
            (false, _) => applied += 1,
            (true, Some("\"r\"")) => found += 1,
            (true, _) => without_result += 1,
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let pruned = pruning.await.unwrap();
    assert!(applied > 1 && found > 0, "no race: {applied} applied, {found} found the marker");
    assert_eq!(without_result, 0, "{without_result} retries reported the id applied with no result ({applied} applied, {found} found the marker, {pruned} pruned)");
    s.close().await;
    pruner.close().await;
}

/// Ids committed while a prune pages through 300 old markers (their keys before, among and
/// after the pages' boundaries) are kept: their markers' revisions are after the horizon's.
#[tokio::test]
async fn ids_committed_while_a_prune_pages_are_kept() {
    let (s, layout) = (session(), Layout::new(&format!("/{}", unique("zktx-sweep-race"))));
    let commit = |s: EtcdSession, layout: Layout, id: String| async move {
        let mut t = EtcdTransaction::new();
        t.write(&layout, &unique("p"), Write::Set(json(1))).unwrap();
        t.commit(&s, &layout, &CommitOptions { id: Some(&id), result: Some("1"), ..CommitOptions::default() }).await.unwrap();
    };
    // Names spread over the key range, so that new ones land on every page.
    let old: Vec<String> = (0..300).map(|i| format!("{:03}-{}", i, unique("old"))).collect();
    for id in &old {
        commit(s.clone(), layout.clone(), id.clone()).await;
    }
    s.prune_transaction_ids(&layout, Duration::from_millis(200)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let fresh: Vec<String> = (0..60).map(|i| format!("{:03}-{}", i * 5, unique("fresh"))).collect();
    let committing = {
        let (s, layout, fresh) = (s.clone(), layout.clone(), fresh.clone());
        tokio::spawn(async move {
            for id in fresh {
                commit(s.clone(), layout.clone(), id).await;
            }
        })
    };
    let pruned = s.prune_transaction_ids(&layout, Duration::from_millis(200)).await.unwrap();
    committing.await.unwrap();
    assert_eq!(pruned, old.len());
    for id in &fresh {
        assert_eq!(s.recorded(&layout, Some(id)).await.unwrap(), Some(Some("1".to_string())), "{id}, committed during the prune, was pruned");
    }
    for id in &old {
        assert_eq!(s.recorded(&layout, Some(id)).await.unwrap(), None, "{id} was not pruned");
    }
    s.close().await;
}
