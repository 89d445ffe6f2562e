//! Losing a lock is noticed in time: at most the session timeout after the connection drops
//! (Curator's default), earlier with `lost_after`, so a holder cut off from the server stops
//! believing it holds the lock before the server can hand it to someone else.

mod common;

use std::time::Duration;

use common::*;
use tokio::time::Instant;
use zktx_core::recipe::{AcquireOptions, LockLoss};
use zktx_core::{SessionEvent, SessionOptions, Store};

fn proxied(proxy: &Proxy, session_timeout: Duration, lost_after: f64) -> Store {
    Store::new(SessionOptions { session_timeout, lost_after, ..SessionOptions::new(proxy.addr.clone()) }).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_is_lost_at_most_one_session_timeout_after_the_connection_drops() {
    let proxy = Proxy::start().await;
    let timeout = Duration::from_secs(5);
    let s = proxied(&proxy, timeout, 1.0);
    let path = format!("/zktx-test/{}", unique("lost-at-timeout"));
    let l = std::sync::Arc::new(s.lock(&path, &AcquireOptions::default()).await.unwrap());
    let mut events = s.session().subscribe();
    let l2 = l.clone();
    let lost = tokio::spawn(async move {
        let loss = l2.lost().await;
        (loss, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.partition();
    while events.recv().await.unwrap() != SessionEvent::Suspended {}
    let suspended = Instant::now();
    let (loss, at) = tokio::time::timeout(Duration::from_secs(20), lost).await.expect("loss is signalled").unwrap();
    let after = at - suspended;
    eprintln!("lock declared lost {after:?} after SUSPENDED (session timeout {timeout:?})");
    // Declared lost by the client's clock (lost_after 1) or by the client's own expiry, whichever
    // comes first: both end the lock.
    assert!(matches!(loss, LockLoss::SessionEnded | LockLoss::DisconnectedTooLong(_)), "{loss:?}");
    // zookeeper-client's own expiry comes at 7/5 of the timeout; the server's at about 1x.
    assert!(after <= timeout + Duration::from_millis(700), "lost only {after:?} after SUSPENDED");
    assert!(after >= timeout - Duration::from_millis(500), "lost too early: {after:?}");
    proxy.heal();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_lost_after_a_silently_cut_off_holder_knows_before_the_next_holder_gets_the_lock() {
    let proxy = Proxy::start().await;
    let s = proxied(&proxy, Duration::from_secs(4), 0.25);
    let path = format!("/zktx-test/{}", unique("lost-after"));
    let l = std::sync::Arc::new(s.lock(&path, &AcquireOptions::default()).await.unwrap());
    let l2 = l.clone();
    let lost = tokio::spawn(async move {
        let loss = l2.lost().await;
        (loss, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A silent network: nothing moves either way, the connection stays open.
    let stalled = Instant::now();
    proxy.drop_requests();
    proxy.drop_answers();
    let next = store();
    let acquired = next.lock(&path, &AcquireOptions { wait: Some(Duration::from_secs(30)), cancel: None }).await.unwrap();
    let acquired_at = Instant::now();
    let (loss, lost_at) = tokio::time::timeout(Duration::from_secs(10), lost).await.expect("loss is signalled").unwrap();
    eprintln!("stall -> holder knows it lost: {:?}; stall -> next holder acquires: {:?}", lost_at - stalled, acquired_at - stalled);
    assert!(matches!(loss, LockLoss::DisconnectedTooLong(d) if d >= Duration::from_millis(900)), "{loss:?}");
    assert!(lost_at < acquired_at, "two holders believed they held the lock for {:?}", lost_at - acquired_at);
    acquired.release().await.unwrap();
    proxy.heal();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_declared_lost_leaves_the_server_when_its_session_reconnects() {
    let proxy = Proxy::start().await;
    // Declared lost 1 s after the drop; the server keeps the session 4 s.
    let s = proxied(&proxy, Duration::from_secs(4), 0.25);
    let path = format!("/zktx-test/{}", unique("declared-lost"));
    let l = std::sync::Arc::new(s.lock(&path, &AcquireOptions::default()).await.unwrap());
    let l2 = l.clone();
    let lost = tokio::spawn(async move { l2.lost().await });
    let mut events = s.session().subscribe();
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.partition();
    let loss = tokio::time::timeout(Duration::from_secs(3), lost).await.expect("declared lost within lost_after").unwrap();
    assert!(matches!(loss, LockLoss::DisconnectedTooLong(_)), "{loss:?}");
    proxy.heal();
    loop {
        match events.recv().await.unwrap() {
            SessionEvent::Reconnected => break,
            SessionEvent::Expired => panic!("the session was meant to survive the partition"),
            _ => {},
        }
    }
    let healed = Instant::now();
    let next = store();
    let taken = next.lock(&path, &AcquireOptions { wait: Some(Duration::from_secs(2)), cancel: None }).await.expect("the declared-lost holder's node is gone");
    eprintln!("heal -> another client acquires: {:?}", healed.elapsed());
    assert!(!l.is_held().await.unwrap());
    taken.release().await.unwrap();
    // The same client is not blocked by its own old node either.
    s.lock(&path, &AcquireOptions { wait: Some(Duration::from_secs(2)), cancel: None }).await.unwrap().release().await.unwrap();
}
