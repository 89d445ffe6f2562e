//! Leader election against a real server: one leader, handover, observation, cancellation.

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use zktx_core::recipe::{AcquireOptions, Election};
use zktx_core::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sessions_never_lead_at_once_and_tokens_increase() {
    let path = format!("/zktx-test/{}", unique("election"));
    let leading = Arc::new(AtomicBool::new(false));
    let last_token = Arc::new(AtomicI64::new(0));
    let mut tasks = Vec::new();
    for i in 0..3 {
        let (path, leading, last_token) = (path.clone(), leading.clone(), last_token.clone());
        tasks.push(tokio::spawn(async move {
            let session = session();
            let election = Election::new(&path, format!("p{i}").into_bytes()).unwrap();
            for _ in 0..10 {
                let l = election.lead(&session, &AcquireOptions::default()).await.unwrap();
                assert!(!leading.swap(true, Ordering::SeqCst), "two leaders at once");
                let prev = last_token.swap(l.token(), Ordering::SeqCst);
                assert!(l.token() > prev, "token {} not above the previous leader's {prev}", l.token());
                let leader = election.leader(&session).await.unwrap().unwrap();
                assert_eq!((leader.id, leader.node.as_str()), (format!("p{i}").into_bytes(), l.node_path().rsplit('/').next().unwrap()));
                tokio::task::yield_now().await;
                leading.store(false, Ordering::SeqCst);
                l.release().await.unwrap();
            }
            session.close().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(store().children(&path).await.unwrap().is_empty());
}

#[tokio::test]
async fn participants_in_order_with_ids_and_changed_wakes_on_a_change() {
    let path = format!("/zktx-test/{}", unique("observe"));
    let (a, b, watcher) = (session(), session(), session());
    let observer = Election::new(&path, Vec::new()).unwrap();
    assert!(observer.participants(&watcher).await.unwrap().is_empty());
    let ea = Election::new(&path, b"a".to_vec()).unwrap();
    let eb = Election::new(&path, b"b".to_vec()).unwrap();
    let la = ea.lead(&a, &AcquireOptions::default()).await.unwrap();
    let waiting = tokio::spawn(async move {
        let l = eb.lead(&b, &AcquireOptions::default()).await;
        (l, b)
    });
    let mut known: Vec<String> = Vec::new();
    loop {
        let ps = observer.changed(&watcher, &known, None).await.unwrap();
        known = ps.iter().map(|p| p.node.clone()).collect();
        if ps.len() == 2 {
            assert_eq!(ps.iter().map(|p| (p.id.clone(), p.is_leader)).collect::<Vec<_>>(), vec![(b"a".to_vec(), true), (b"b".to_vec(), false)]);
            break;
        }
    }
    // Nothing changes: changed() waits, and a cancel ends it with ABORTED.
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        c2.cancel();
    });
    assert_eq!(observer.changed(&watcher, &known, Some(cancel)).await.unwrap_err().code(), "ABORTED");
    la.release().await.unwrap();
    let ps = observer.changed(&watcher, &known, None).await.unwrap();
    assert_eq!(ps.len(), 1);
    assert_eq!((ps[0].id.as_slice(), ps[0].is_leader), (&b"b"[..], true));
    let (lb, b) = waiting.await.unwrap();
    let lb = lb.unwrap();
    assert!(lb.token() > la.token());
    lb.release().await.unwrap();
    b.close().await;
}

#[tokio::test]
async fn a_timed_out_candidate_leaves_no_node_and_the_latch_node_carries_the_id() {
    let path = format!("/zktx-test/{}", unique("latch-data"));
    let (a, b) = (session(), session());
    let la = Election::new(&path, b"first".to_vec()).unwrap().lead(&a, &AcquireOptions::default()).await.unwrap();
    let name = la.node_path().rsplit('/').next().unwrap().to_string();
    assert!(name.starts_with("_c_") && name.contains("-latch-"), "{name}");
    let err = Election::new(&path, b"second".to_vec())
        .unwrap()
        .lead(&b, &AcquireOptions { wait: Some(Duration::from_millis(100)), cancel: None })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "TIMEOUT");
    assert_eq!(store().children(&path).await.unwrap(), vec![name]);
    la.release().await.unwrap();
}
