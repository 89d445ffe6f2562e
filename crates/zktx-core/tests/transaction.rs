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
