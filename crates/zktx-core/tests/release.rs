//! No ghost lock nodes: a node zktx meant to delete is deleted eventually while its session
//! lives, even when the delete itself was lost to a silent network stall.

mod common;

use std::time::Duration;

use common::*;
use zktx_core::recipe::AcquireOptions;
use zktx_core::{CancellationToken, Outcome, SessionOptions, Store};

/// A store through `proxy` whose requests give up (300 ms) long before the client notices a dead
/// connection (2/5 of the 6 s session): a stall looks like a plain timeout.
fn impatient_store(proxy: &Proxy) -> Store {
    Store::new(SessionOptions {
        session_timeout: Duration::from_secs(6),
        request_timeout: Some(Duration::from_millis(300)),
        ..SessionOptions::new(proxy.addr.clone())
    })
    .unwrap()
}

async fn wait_until_empty(path: &str, within: Duration) -> Vec<String> {
    let direct = store();
    let until = tokio::time::Instant::now() + within;
    loop {
        let children = direct.children(path).await.unwrap();
        if children.is_empty() || tokio::time::Instant::now() > until {
            return children;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_whose_delete_was_lost_reports_unknown_and_the_node_still_goes() {
    let proxy = Proxy::start().await;
    let s = impatient_store(&proxy);
    let path = format!("/zktx-test/{}", unique("lost-release"));
    let l = s.lock(&path, &AcquireOptions::default()).await.unwrap();

    proxy.drop_requests();
    let err = l.release().await.unwrap_err();
    assert!(matches!(err.code(), "TIMEOUT" | "CONNECTIONLOSS"), "{err:?}");
    assert_eq!(err.outcome(), Outcome::Unknown, "the delete may or may not have applied");
    assert!(!l.is_released(), "released only once the node is known gone");
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.heal();
    proxy.cut(); // the stream lost bytes: start a clean connection, same session

    let left = wait_until_empty(&path, Duration::from_secs(10)).await;
    assert!(left.is_empty(), "the lock node stays as a ghost: {left:?}");
    // The same client is not queued behind its own ghost.
    let again = s.lock(&path, &AcquireOptions { wait: Some(Duration::from_secs(10)), cancel: None }).await.unwrap();
    again.release().await.unwrap();
    // The background removal confirms the node gone (its own retry may have hit the stall too).
    for _ in 0..200 {
        if l.is_released() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(l.is_released());
    l.release().await.unwrap(); // idempotent
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_acquisition_whose_delete_was_lost_leaves_no_ghost() {
    let proxy = Proxy::start().await;
    let s = impatient_store(&proxy);
    let path = format!("/zktx-test/{}", unique("lost-abort"));
    let direct = store();
    let holder = direct.lock(&path, &AcquireOptions::default()).await.unwrap();

    let cancel = CancellationToken::new();
    let (p, c) = (path.clone(), cancel.clone());
    let acquiring = tokio::spawn(async move {
        let r = s.lock(&p, &AcquireOptions { wait: None, cancel: Some(c) }).await.map(drop);
        (s, r)
    });
    for _ in 0..100 {
        if direct.children(&path).await.unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(direct.children(&path).await.unwrap().len(), 2, "the contender is queued");
    proxy.drop_requests();
    cancel.cancel();
    let (s, r) = acquiring.await.unwrap();
    assert_eq!(r.unwrap_err().code(), "ABORTED");
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.heal();
    proxy.cut();

    holder.release().await.unwrap();
    let left = wait_until_empty(&path, Duration::from_secs(10)).await;
    assert!(left.is_empty(), "the aborted contender's node stays as a ghost: {left:?}");
    s.close().await;
}
