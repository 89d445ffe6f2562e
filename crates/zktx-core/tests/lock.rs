//! The exclusive lock against a real server: exclusion, fencing, cancellation, expiry.

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use zktx_core::kv::JsonValue;
use zktx_core::recipe::{lock, AcquireOptions};
use zktx_core::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_sessions_never_hold_at_once_and_tokens_increase() {
    let path = format!("/zktx-test/{}", unique("mutex"));
    let held = Arc::new(AtomicBool::new(false));
    let last_token = Arc::new(AtomicI64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (path, held, last_token) = (path.clone(), held.clone(), last_token.clone());
        tasks.push(tokio::spawn(async move {
            let session = session();
            for _ in 0..25 {
                let l = lock(&session, &path, &AcquireOptions::default()).await.unwrap();
                assert!(!held.swap(true, Ordering::SeqCst), "two holders at once");
                let prev = last_token.swap(l.token(), Ordering::SeqCst);
                assert!(l.token() > prev, "token {} not above previous holder's {prev}", l.token());
                tokio::task::yield_now().await;
                held.store(false, Ordering::SeqCst);
                l.release().await.unwrap();
            }
            session.close().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let s = store();
    assert!(s.children(&path).await.unwrap().is_empty());
}

#[tokio::test]
async fn timeout_and_cancel_leave_no_node_behind() {
    let path = format!("/zktx-test/{}", unique("cancel"));
    let (a, b) = (session(), session());
    let held = lock(&a, &path, &AcquireOptions::default()).await.unwrap();

    let err = lock(&b, &path, &AcquireOptions { wait: Some(Duration::from_millis(100)), cancel: None }).await.unwrap_err();
    assert_eq!(err.code(), "TIMEOUT");
    let err = lock(&b, &path, &AcquireOptions { wait: Some(Duration::ZERO), cancel: None }).await.unwrap_err();
    assert_eq!(err.code(), "TIMEOUT");

    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        c2.cancel();
    });
    let err = lock(&b, &path, &AcquireOptions { wait: None, cancel: Some(cancel) }).await.unwrap_err();
    assert_eq!(err.code(), "ABORTED");

    let s = store();
    let children = s.children(&path).await.unwrap();
    assert_eq!(children.len(), 1, "only the holder's node remains: {children:?}");
    assert!(held.node_path().ends_with(&children[0]));
    held.release().await.unwrap();
    assert!(s.children(&path).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_write_fenced_on_a_deleted_lock_node_is_refused() {
    let s = store();
    let key = unique("fenced");
    let path = format!("/zktx-test/{}", unique("fenced"));
    let l = s.lock(&path, &AcquireOptions::default()).await.unwrap();
    s.set(&key, &JsonValue::from_serialize("held").unwrap(), &[&l]).await.unwrap();

    // Someone else (an operator, a buggy peer) deletes the lock node.
    let other = session();
    other.client().await.unwrap().delete(l.node_path(), None).await.unwrap();

    let err = s.set(&key, &JsonValue::from_serialize("stale").unwrap(), &[&l]).await.unwrap_err();
    assert_eq!(err.code(), "LOCK_LOST");
    assert_eq!(s.get(&key).await.unwrap().unwrap().value.as_str(), "\"held\"");
    assert!(!l.is_held().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_holder_cannot_write_and_the_next_contender_gets_the_lock() {
    // The holder reaches the server through a proxy; cutting it longer than the session timeout
    // makes the server expire the session (and delete the lock node).
    let proxy = Proxy::start().await;
    let s = proxy.store(Duration::from_secs(2));
    let key = unique("expired");
    let path = format!("/zktx-test/{}", unique("expired"));
    let l = s.lock(&path, &AcquireOptions::default()).await.unwrap();

    proxy.partition();
    let contender = store();
    let next = contender.lock(&path, &AcquireOptions { wait: Some(Duration::from_secs(30)), cancel: None }).await.unwrap();
    assert!(next.token() > l.token());
    proxy.heal();

    let err = s.set(&key, &JsonValue::from_serialize("stale").unwrap(), &[&l]).await.unwrap_err();
    assert!(matches!(err.code(), "SESSIONEXPIRED" | "LOCK_LOST"), "{err:?}");
    assert!(contender.get(&key).await.unwrap().is_none(), "nothing written");
    // New work gets a new session by itself.
    s.set(&key, &JsonValue::from_serialize("fresh").unwrap(), &[]).await.unwrap();
    assert_eq!(contender.get(&key).await.unwrap().unwrap().value.as_str(), "\"fresh\"");
    next.release().await.unwrap();
    l.release().await.unwrap(); // idempotent on a lost lock
}

#[tokio::test]
async fn bad_paths_are_invalid_arguments_and_touch_nothing() {
    let s = session();
    for p in ["", "relative", "/", "/a/", "/a//b", "/a/./b", "/zookeeper", "/a\0b"] {
        let err = lock(&s, p, &AcquireOptions::default()).await.unwrap_err();
        assert_eq!(err.code(), "INVALID_ARGUMENT", "{p:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_is_recovered_by_its_protected_name_not_duplicated() {
    let proxy = Proxy::start().await;
    let s = proxy.store(Duration::from_secs(6));
    s.session().connect().await.unwrap();
    let path = format!("/zktx-test/{}", unique("ghost"));
    let direct = store();
    // A holder, so that our contender's create is followed by a wait, not an instant win.
    let holder = direct.lock(&path, &AcquireOptions::default()).await.unwrap();

    proxy.drop_answers();
    let p2 = path.clone();
    let acquiring = tokio::spawn(async move {
        let l = s.lock(&p2, &AcquireOptions { wait: Some(Duration::from_secs(20)), cancel: None }).await;
        (s, l)
    });
    // The create arrives and applies; its answer is lost with the connection.
    let mut queued = Vec::new();
    for _ in 0..50 {
        queued = direct.children(&path).await.unwrap();
        if queued.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(queued.len(), 2, "the contender's create reached the server");
    proxy.heal();
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(direct.children(&path).await.unwrap().len(), 2, "no second (ghost) node was created");

    holder.release().await.unwrap();
    let (s, l) = acquiring.await.unwrap();
    let l = l.expect("the contender acquired with its recovered node");
    assert!(queued.iter().any(|n| l.node_path().ends_with(n.as_str())), "it is the node created before the loss");
    l.release().await.unwrap();
    assert!(direct.children(&path).await.unwrap().is_empty());
    s.close().await;
}

#[tokio::test]
async fn a_foreign_digits_only_child_neither_panics_nor_blocks_and_leaves_no_node() {
    // What `create(dir + "/", SEQUENTIAL)` by another client makes: a name of digits only.
    let path = format!("/zktx-test/{}", unique("foreign"));
    let other = session();
    let c = other.client().await.unwrap();
    let persistent = zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
    c.mkdir(&path, &persistent).await.unwrap();
    c.create(&format!("{path}/"), &[], &zookeeper_client::CreateMode::PersistentSequential.with_acls(zookeeper_client::Acls::anyone_all()))
        .await
        .unwrap();
    c.create(&format!("{path}/x-lock-"), &[], &zookeeper_client::CreateMode::PersistentSequential.with_acls(zookeeper_client::Acls::anyone_all()))
        .await
        .unwrap();
    let s = session();
    let acquiring = tokio::spawn(async move {
        let r = lock(&s, &path, &AcquireOptions { wait: Some(Duration::from_secs(5)), cancel: None }).await;
        (s, path, r)
    });
    let (s, path, r) = acquiring.await.expect("lock() must not panic on a foreign child");
    let l = r.expect("foreign children do not block");
    l.release().await.unwrap();
    let children = store().children(&path).await.unwrap();
    assert!(children.iter().all(|n| !n.starts_with("_c_")), "no lock node left: {children:?}");
    s.close().await;
}

#[tokio::test]
async fn an_oversized_lock_path_is_an_invalid_argument() {
    let s = session();
    let long = format!("/zktx-test/{}", "a".repeat(2100));
    let err = lock(&s, &long, &AcquireOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), "INVALID_ARGUMENT");
    assert!(s.last_event().is_none(), "nothing was sent: not even connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_dropped_without_release_is_released_in_the_background() {
    let s = store();
    let path = format!("/zktx-test/{}", unique("dropped"));
    drop(s.lock(&path, &AcquireOptions::default()).await.unwrap());
    // The same client does not wait on its own forgotten lock.
    let again = s.lock(&path, &AcquireOptions { wait: Some(Duration::from_secs(5)), cancel: None }).await.unwrap();
    again.release().await.unwrap();
    assert!(s.children(&path).await.unwrap().is_empty());
    s.close().await;
}
