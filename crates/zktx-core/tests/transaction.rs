//! Multi-key transactions against a real server.

mod common;

use common::*;
use zktx_core::kv::JsonValue;
use zktx_core::transaction::{CommitOptions, Isolation, Transaction, Write};

fn json(v: i64) -> JsonValue {
    JsonValue::from_serialize(&v).unwrap()
}

#[tokio::test]
async fn transfer_commits_atomically_and_conflicts_are_detected() {
    let s = store();
    let (a, b) = (unique("a"), unique("b"));
    s.set(&a, &json(100), &[]).await.unwrap();
    s.set(&b, &json(0), &[]).await.unwrap();

    let mut t1 = Transaction::new();
    let mut t2 = Transaction::new();
    let v1 = t1.get_many(&s, &[&a, &b]).await.unwrap();
    let v2 = t2.get_many(&s, &[&a, &b]).await.unwrap();
    assert_eq!(v1, v2);
    t1.write(&s, &a, Write::Set(json(90))).unwrap();
    t1.write(&s, &b, Write::Set(json(10))).unwrap();
    t2.write(&s, &a, Write::Set(json(50))).unwrap();
    t2.write(&s, &b, Write::Set(json(50))).unwrap();

    let r1 = t1.commit(&s, &CommitOptions::default()).await.unwrap();
    assert_eq!(r1.writes, 2);
    assert_eq!(r1.round_trips, 1);
    let err = t2.commit(&s, &CommitOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), "CONFLICT");
    assert_eq!(s.get(&a).await.unwrap().unwrap().value, json(90));
    assert_eq!(s.get(&b).await.unwrap().unwrap().value, json(10));
}

#[tokio::test]
async fn snapshot_allows_write_skew_and_serializable_refuses_it() {
    let s = store();
    let (x, y) = (unique("x"), unique("y"));
    s.set(&x, &json(1), &[]).await.unwrap();
    s.set(&y, &json(1), &[]).await.unwrap();
    for (isolation, ok) in [(Isolation::Serializable, false), (Isolation::Snapshot, true), (Isolation::ReadCommitted, true)] {
        let mut t = Transaction::new();
        t.get_many(&s, &[&x, &y]).await.unwrap();
        s.set(&x, &json(2), &[]).await.unwrap(); // concurrent change of a key only read
        t.write(&s, &y, Write::Set(json(0))).unwrap();
        let r = t.commit(&s, &CommitOptions { isolation, ..Default::default() }).await;
        assert_eq!(r.is_ok(), ok, "{isolation:?}: {r:?}");
    }
}

#[tokio::test]
async fn read_only_transactions_write_nothing_and_validate_split_reads() {
    let s = store();
    let (x, y) = (unique("x"), unique("y"));
    s.set(&x, &json(1), &[]).await.unwrap();
    let mut t = Transaction::new();
    t.get_many(&s, &[&x]).await.unwrap();
    t.get_many(&s, &[&y]).await.unwrap();
    s.set(&y, &json(5), &[]).await.unwrap(); // y appeared after we read it as absent
    let err = t.commit(&s, &CommitOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), "CONFLICT");
    let mut t = Transaction::new();
    t.get_many(&s, &[&x, &y]).await.unwrap();
    let r = t.commit(&s, &CommitOptions::default()).await.unwrap();
    assert_eq!((r.writes, r.round_trips, r.zxid), (0, 0, None));
}

#[tokio::test]
async fn the_same_id_applies_at_most_once() {
    let s = store();
    let k = unique("idem");
    let id = unique("txid");
    let mut t = Transaction::new();
    t.write(&s, &k, Write::Set(json(1))).unwrap();
    assert!(!t.commit(&s, &CommitOptions { id: Some(&id), ..Default::default() }).await.unwrap().already_applied);
    let mut again = Transaction::new();
    again.write(&s, &k, Write::Set(json(2))).unwrap();
    assert!(again.commit(&s, &CommitOptions { id: Some(&id), ..Default::default() }).await.unwrap().already_applied);
    assert_eq!(s.get(&k).await.unwrap().unwrap().value, json(1));
}

/// Commits one transaction made of `write` on `key` (fresh reads, serializable).
async fn commit_write(s: &zktx_core::Store, key: &str, write: Write) {
    let mut t = Transaction::new();
    t.get_many(s, &[key]).await.unwrap();
    t.write(s, key, write).unwrap();
    t.commit(s, &CommitOptions::default()).await.unwrap();
}

#[tokio::test]
async fn a_delete_and_re_create_between_read_and_commit_is_a_conflict_not_a_lost_update() {
    // ZooKeeper restarts a znode's version at 0 when it is deleted and created again; a commit
    // checking "k at version 0" must still see that k changed under it.
    let s = store();
    for isolation in [Isolation::Serializable, Isolation::Snapshot] {
        let k = unique("aba");
        s.set(&k, &json(1), &[]).await.unwrap();
        let mut t1 = Transaction::new();
        let read = t1.get_many(&s, &[&k]).await.unwrap();
        let n: i64 = read[0].as_ref().unwrap().parse().unwrap();
        commit_write(&s, &k, Write::Delete).await;
        commit_write(&s, &k, Write::Create(json(100))).await;
        t1.write(&s, &k, Write::Set(json(n + 10))).unwrap();
        let err = t1.commit(&s, &CommitOptions { isolation, ..Default::default() }).await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT", "{isolation:?}");
        assert_eq!(s.get(&k).await.unwrap().unwrap().value, json(100), "{isolation:?}: lost update");
    }
}

#[tokio::test]
async fn an_absent_key_created_and_deleted_between_read_and_commit_is_a_conflict() {
    let s = store();
    let (k, other) = (unique("absent"), unique("other"));
    let mut t1 = Transaction::new();
    assert_eq!(t1.get_many(&s, &[&k]).await.unwrap(), vec![None]);
    commit_write(&s, &k, Write::Create(json(5))).await;
    commit_write(&s, &k, Write::Delete).await;
    t1.write(&s, &other, Write::Set(json(1))).unwrap();
    let err = t1.commit(&s, &CommitOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), "CONFLICT");
    assert!(s.get(&other).await.unwrap().is_none());
    assert!(s.get(&k).await.unwrap().is_none(), "a deleted key reads as absent");
}

#[tokio::test]
async fn execute_transaction_is_not_fooled_by_a_delete_and_re_create_through_transactions() {
    let s = store();
    let k = unique("aba-exec");
    s.set(&k, &json(1), &[]).await.unwrap();
    let tx = s.begin(&k, &Default::default()).await.unwrap();
    let n: i64 = tx.current().unwrap().parse().unwrap();
    commit_write(&s, &k, Write::Delete).await;
    commit_write(&s, &k, Write::Create(json(100))).await;
    let err = tx.commit(json(n + 10)).await.unwrap_err();
    assert!(["BADVERSION", "CONFLICT"].contains(&err.code()), "{err:?}");
    assert_eq!(err.outcome(), zktx_core::Outcome::NotApplied);
    assert_eq!(s.get(&k).await.unwrap().unwrap().value, json(100), "lost update");
}

#[tokio::test]
async fn an_attempt_older_than_the_age_limit_is_refused_with_conflict() {
    // Tombstones older than the compaction horizon may be removed and their keys re-created at
    // the version an old attempt read: such an attempt must not commit. The clock is moved
    // forward (tokio's test clock) instead of waiting five minutes.
    let s = store();
    let k = unique("old");
    s.set(&k, &json(1), &[]).await.unwrap();
    let mut t = Transaction::new();
    t.get_many(&s, &[&k]).await.unwrap();
    t.write(&s, &k, Write::Set(json(2))).unwrap();
    tokio::time::pause();
    tokio::time::advance(zktx_core::kv::MAX_TRANSACTION_AGE + std::time::Duration::from_secs(1)).await;
    tokio::time::resume();
    let err = t.commit(&s, &CommitOptions::default()).await.unwrap_err();
    assert_eq!((err.code(), err.outcome()), ("CONFLICT", zktx_core::Outcome::NotApplied));
    assert_eq!(s.get(&k).await.unwrap().unwrap().value, json(1));
    // The same for executeTransaction's read-then-commit.
    let tx = s.begin(&k, &Default::default()).await.unwrap();
    tokio::time::pause();
    tokio::time::advance(zktx_core::kv::MAX_TRANSACTION_AGE + std::time::Duration::from_secs(1)).await;
    tokio::time::resume();
    assert_eq!(tx.commit(json(3)).await.unwrap_err().code(), "CONFLICT");
    assert_eq!(s.get(&k).await.unwrap().unwrap().value, json(1));
    assert!(s.children(&s.layout().lock_path(&k).unwrap()).await.unwrap().is_empty(), "lock released");
}

/// Writes raw bytes to a key's value znode, as another ZooKeeper client would.
async fn write_foreign(s: &zktx_core::Store, key: &str, data: &[u8]) {
    let path = s.layout().value_path(key).unwrap();
    let client = s.session().client().await.unwrap();
    match client.set_data(&path, data, None).await {
        Ok(_) => {},
        Err(_) => {
            client.create(&path, data, &zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all())).await.unwrap();
        },
    }
}

#[tokio::test]
async fn a_replay_with_an_id_gets_the_recorded_result_even_when_it_writes_nothing() {
    let s = store();
    let (k, id) = (unique("k"), unique("id"));
    s.set(&k, &json(1), &[]).await.unwrap();
    let mut first = Transaction::new();
    first.get_many(&s, &[&k]).await.unwrap();
    first.write(&s, &k, Write::Set(json(2))).unwrap();
    let opts = CommitOptions { id: Some(&id), result: Some("\"first\""), ..Default::default() };
    assert!(!first.commit(&s, &opts).await.unwrap().already_applied);
    // The replay's function sees the applied state and writes nothing: the id still decides.
    let mut replay = Transaction::new();
    assert_eq!(replay.get_many(&s, &[&k]).await.unwrap(), vec![Some(json(2))]);
    let r = replay.commit(&s, &CommitOptions { id: Some(&id), result: Some("\"second\""), ..Default::default() }).await.unwrap();
    assert!(r.already_applied);
    assert_eq!(r.recorded_result.as_deref(), Some("\"first\""));
    // A read-only transaction with an id records it: its replay reports the first result.
    let id2 = unique("id");
    let mut ro = Transaction::new();
    ro.get_many(&s, &[&k]).await.unwrap();
    assert!(!ro.commit(&s, &CommitOptions { id: Some(&id2), result: Some("7"), ..Default::default() }).await.unwrap().already_applied);
    assert_eq!(zktx_core::transaction::recorded(&s, Some(&id2)).await.unwrap(), Some(Some("7".to_string())));
}

#[tokio::test]
async fn an_id_over_the_limit_is_refused_before_anything_is_sent() {
    let s = store();
    let id = "i".repeat(zktx_core::kv::MAX_KEY_BYTES + 1);
    let mut t = Transaction::new();
    let err = t.commit(&s, &CommitOptions { id: Some(&id), ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), "INVALID_ARGUMENT");
    assert!(err.to_string().starts_with("transaction id is"), "{err}");
}

#[tokio::test]
async fn delete_then_create_in_one_transaction_is_a_set() {
    let s = store();
    let k = unique("k");
    s.set(&k, &json(1), &[]).await.unwrap();
    let mut t = Transaction::new();
    t.write(&s, &k, Write::Delete).unwrap();
    t.write(&s, &k, Write::Create(json(2))).unwrap();
    assert_eq!(t.write(&s, &k, Write::Create(json(3))).unwrap_err().code(), "NODEEXISTS");
    t.commit(&s, &CommitOptions::default()).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap().unwrap().value, json(2));
}

#[tokio::test]
async fn a_foreign_value_is_replaced_or_deleted_but_never_read_as_json() {
    let s = store();
    let (a, b) = (unique("a"), unique("b"));
    write_foreign(&s, &a, b"not json").await;
    write_foreign(&s, &b, &[0xff, 0x00]).await;
    assert_eq!(s.get(&a).await.unwrap_err().code(), "INVALID_ARGUMENT");
    let mut t = Transaction::new();
    assert_eq!(t.get_many(&s, &[&a]).await.unwrap_err().code(), "INVALID_ARGUMENT");
    let mut t = Transaction::new();
    t.write(&s, &a, Write::Set(json(5))).unwrap();
    t.write(&s, &b, Write::Delete).unwrap();
    t.commit(&s, &CommitOptions::default()).await.unwrap();
    assert_eq!(s.get(&a).await.unwrap().unwrap().value, json(5));
    assert_eq!(s.get(&b).await.unwrap(), None);
    // Create refuses a key that holds foreign data: it exists.
    let c = unique("c");
    write_foreign(&s, &c, b"x").await;
    let mut t = Transaction::new();
    t.write(&s, &c, Write::Create(json(1))).unwrap();
    assert_eq!(t.commit(&s, &CommitOptions::default()).await.unwrap_err().code(), "NODEEXISTS");
    // executeTransaction with a value replaces it too.
    let done = s.execute_transaction(&c, json(9), &Default::default()).await.unwrap();
    assert_eq!(done.value, json(9));
    assert_eq!(s.get(&c).await.unwrap().unwrap().value, json(9));
}

#[tokio::test]
async fn compaction_skips_and_reports_a_tombstone_with_a_foreign_child() {
    let s = isolated_store("compaction").await;
    let (a, b) = (unique("a"), unique("b"));
    for k in [&a, &b] {
        s.set(k, &json(1), &[]).await.unwrap();
        let mut t = Transaction::new();
        t.write(&s, k, Write::Delete).unwrap();
        t.commit(&s, &CommitOptions::default()).await.unwrap();
    }
    let client = s.session().client().await.unwrap();
    let child = format!("{}/child", s.layout().value_path(&a).unwrap());
    client.create(&child, b"", &zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all())).await.unwrap();
    let age = zktx_core::kv::MIN_COMPACTION_AGE;
    s.clock().advance(age + std::time::Duration::from_secs(1));
    s.compact_tombstones(age).await.unwrap();
    s.clock().advance(age + std::time::Duration::from_secs(1));
    let pass = s.compact_tombstones(age).await.unwrap();
    assert!(pass.skipped.iter().any(|(k, why)| k == &a && why.contains("NOTEMPTY")), "{pass:?}");
    assert!(!pass.skipped.iter().any(|(k, _)| k == &b), "{pass:?}");
    assert_eq!(s.read(&b).await.unwrap(), zktx_core::kv::Stored::Missing);
    // It is reported again on every pass until someone removes the child; nothing fails.
    client.delete(&child, None).await.unwrap();
    s.clock().advance(age + std::time::Duration::from_secs(1));
    s.compact_tombstones(age).await.unwrap();
    assert_eq!(s.read(&a).await.unwrap(), zktx_core::kv::Stored::Missing);
}
