//! executeTransaction against a real server: exact counters, fencing, nothing written on failure.

mod common;

use common::*;
use zktx_core::kv::JsonValue;
use zktx_core::recipe::AcquireOptions;
use zktx_core::txn::execute_transaction;
use zktx_core::Error;

async fn incr(cur: Option<JsonValue>) -> zktx_core::Result<JsonValue> {
    let n: i64 = match cur {
        Some(v) => v.parse()?,
        None => 0,
    };
    JsonValue::from_serialize(&(n + 1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_are_never_lost() {
    let key = unique("counter");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let s = store();
            for _ in 0..25 {
                execute_transaction(s.session(), s.layout(), &key, &AcquireOptions::default(), incr).await.unwrap();
            }
            s.close().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let s = store();
    let v = s.get(&key).await.unwrap().unwrap();
    assert_eq!(v.value.parse::<i64>().unwrap(), 100);
    assert_eq!(v.version, 99, "one write per transaction");
}

#[tokio::test]
async fn a_failing_update_writes_nothing_and_releases_the_lock() {
    let s = store();
    let key = unique("fails");
    s.set(&key, &JsonValue::from_serialize(&1).unwrap(), &[]).await.unwrap();
    let err = execute_transaction(s.session(), s.layout(), &key, &AcquireOptions::default(), |_| async {
        Err::<JsonValue, _>(Error::Aborted("update refused".into()))
    })
    .await
    .unwrap_err();
    assert_eq!(err.code(), "ABORTED");
    assert_eq!(s.get(&key).await.unwrap().unwrap().value.parse::<i64>().unwrap(), 1);
    assert!(s.children(&s.layout().lock_path(&key).unwrap()).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_transaction_whose_lock_was_deleted_commits_nothing() {
    let s = store();
    let key = unique("lost");
    let tx = s.begin(&key, &AcquireOptions::default()).await.unwrap();
    assert!(tx.current().is_none());
    session().client().await.unwrap().delete(tx.lock().node_path(), None).await.unwrap();
    let err = tx.commit(JsonValue::from_serialize("late").unwrap()).await.unwrap_err();
    assert_eq!(err.code(), "LOCK_LOST");
    assert!(s.get(&key).await.unwrap().is_none());
}

#[tokio::test]
async fn commit_writes_value_and_releases_lock_in_one_multi() {
    let s = store();
    let key = unique("commit");
    let done = s.execute_transaction(&key, JsonValue::from_serialize(&"v1").unwrap(), &AcquireOptions::default()).await.unwrap();
    assert_eq!((done.version, done.previous.clone()), (0, None));
    let done2 = s.execute_transaction(&key, JsonValue::from_serialize(&"v2").unwrap(), &AcquireOptions::default()).await.unwrap();
    assert_eq!(done2.version, 1);
    assert_eq!(done2.previous.unwrap().as_str(), "\"v1\"");
    assert!(done2.token > done.token);
    assert!(s.children(&s.layout().lock_path(&key).unwrap()).await.unwrap().is_empty());
}

mod lost_answers {
    use std::time::Duration;

    use super::common::*;
    use zktx_core::kv::JsonValue;
    use zktx_core::recipe::AcquireOptions;
    use zktx_core::Outcome;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_whose_answer_was_lost_is_found_to_have_applied() {
        let proxy = Proxy::start().await;
        let s = proxy.store(Duration::from_secs(6));
        let key = unique("lost-answer");
        s.set(&key, &JsonValue::from_serialize(&1).unwrap(), &[]).await.unwrap();
        let tx = s.begin(&key, &AcquireOptions::default()).await.unwrap();
        proxy.drop_answers();
        let commit = tokio::spawn(async move { tx.commit(JsonValue::from_serialize(&2).unwrap()).await });
        tokio::time::sleep(Duration::from_millis(300)).await; // the multi arrives and applies
        proxy.heal();
        proxy.cut(); // the answer is gone with the connection; the session lives on
        let done = commit.await.unwrap().expect("resolved as applied");
        assert_eq!(done.version, 1);
        let direct = store();
        assert_eq!(direct.get(&key).await.unwrap().unwrap().value.parse::<i64>().unwrap(), 2);
        assert!(direct.children(&direct.layout().lock_path(&key).unwrap()).await.unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_that_never_arrived_is_found_not_applied_and_can_never_apply() {
        let proxy = Proxy::start().await;
        let s = proxy.store(Duration::from_secs(6));
        let key = unique("lost-request");
        s.set(&key, &JsonValue::from_serialize(&1).unwrap(), &[]).await.unwrap();
        let tx = s.begin(&key, &AcquireOptions::default()).await.unwrap();
        proxy.drop_requests();
        let commit = tokio::spawn(async move { tx.commit(JsonValue::from_serialize(&2).unwrap()).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.heal();
        proxy.cut();
        let err = commit.await.unwrap().unwrap_err();
        assert_eq!(err.code(), "CONNECTIONLOSS");
        assert_eq!(err.outcome(), Outcome::NotApplied, "{err}");
        let direct = store();
        assert_eq!(direct.get(&key).await.unwrap().unwrap().value.parse::<i64>().unwrap(), 1);
        assert!(direct.children(&direct.layout().lock_path(&key).unwrap()).await.unwrap().is_empty());
    }
}
