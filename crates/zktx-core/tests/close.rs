//! `Session::close` against a real server: it cancels what is pending, ends the session for
//! real (the server deletes its lock nodes), and does not wait behind other calls.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use zktx_core::recipe::{lock, AcquireOptions};
use zktx_core::{Session, SessionEvent, SessionOptions};

async fn queue_len(path: &str) -> usize {
    store().children(path).await.unwrap().len()
}

async fn wait_queue(path: &str, n: usize) {
    for _ in 0..200 {
        if queue_len(path).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("queue of {path} never reached {n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_while_lock_waits_rejects_it_client_closed_and_removes_its_node() {
    let path = format!("/zktx-test/{}", unique("close-waiting"));
    let holder = session();
    let held = lock(&holder, &path, &AcquireOptions::default()).await.unwrap();

    let waiter = Arc::new(session());
    let (w, p) = (waiter.clone(), path.clone());
    let acquiring = tokio::spawn(async move { lock(&w, &p, &AcquireOptions::default()).await });
    wait_queue(&path, 2).await;

    let closing = waiter.closing();
    assert!(!closing.is_cancelled());
    tokio::time::timeout(Duration::from_secs(10), waiter.close()).await.expect("close() resolves");
    assert!(closing.is_cancelled(), "closing() is cancelled once close() started");
    assert_eq!(waiter.last_event(), Some(SessionEvent::Closed));

    let err = tokio::time::timeout(Duration::from_secs(5), acquiring).await.expect("the pending lock() settles").unwrap().unwrap_err();
    assert_eq!(err.code(), "CLIENT_CLOSED");
    // Closing the session deleted the waiter's ephemeral node at once (not at session expiry).
    assert_eq!(queue_len(&path).await, 1, "only the holder's node is left");

    // The predecessor leaving must not hand the lock to the closed client.
    held.release().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(queue_len(&path).await, 0);
    assert_eq!(lock(&waiter, &path, &AcquireOptions::default()).await.unwrap_err().code(), "CLIENT_CLOSED");
    waiter.close().await; // idempotent
    holder.close().await;
}

/// A session with a server that is not there: its port accepts connections (the kernel's
/// backlog) and nobody ever answers, so connects wait for the connect timeout. Keep the
/// listener alive as long as the session. (A port nobody listens on refuses at once: see
/// `a_connect_every_host_refuses_fails_at_once_with_the_cause`.)
fn dead_server_session() -> (Session, std::net::TcpListener) {
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port();
    let session = Session::new(SessionOptions {
        connect_timeout: Some(Duration::from_secs(2)),
        session_timeout: Duration::from_secs(10),
        ..SessionOptions::new(format!("127.0.0.1:{port}"))
    })
    .unwrap();
    (session, hole)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_every_host_refuses_fails_at_once_with_the_cause() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let s = Session::new(SessionOptions { connect_timeout: Some(Duration::from_secs(10)), ..SessionOptions::new(format!("127.0.0.1:{port}")) }).unwrap();
    let start = Instant::now();
    let err = s.client().await.map(drop).unwrap_err();
    assert_eq!(err.code(), "CONNECTIONLOSS", "{err:?}");
    assert_eq!(err.cause(), Some(("ECONNREFUSED", format!("connect ECONNREFUSED 127.0.0.1:{port}").as_str())));
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}: the connect timeout is 10 s", start.elapsed());
    let unresolvable = Session::new(SessionOptions::new("zktx-no-such-host.invalid:2181")).unwrap();
    let err = unresolvable.client().await.map(drop).unwrap_err();
    assert_eq!(err.cause().map(|c| c.0), Some("ENOTFOUND"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chroot_that_does_not_exist_fails_the_connect_naming_it() {
    let chroot = format!("/{}", unique("missing-chroot"));
    let s = Session::new(SessionOptions::new(format!("{}{chroot}", connect_string().split('/').next().unwrap()))).unwrap();
    let err = s.client().await.map(drop).unwrap_err();
    assert_eq!(err.code(), "NONODE");
    assert!(err.to_string().contains(&format!("chroot {chroot} ")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_against_a_dead_server_share_one_connect_attempt() {
    let (s, _hole) = dead_server_session();
    let s = Arc::new(s);
    let start = Instant::now();
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { (s.client().await.map(drop), start.elapsed()) })
        })
        .collect();
    for c in calls {
        let (r, took) = c.await.unwrap();
        assert_eq!(r.unwrap_err().code(), "TIMEOUT");
        // One shared 2 s attempt, not five in a row (which ends at 10 s).
        assert!(took < Duration::from_secs(6), "a call waited {took:?}: connect attempts are serialized");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_rejects_pending_calls_client_closed_without_waiting_behind_them() {
    let (s, _hole) = dead_server_session();
    let s = Arc::new(s);
    let path = format!("/zktx-test/{}", unique("close-dead"));
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let (s, p) = (s.clone(), path.clone());
            tokio::spawn(async move { lock(&s, &p, &AcquireOptions::default()).await.map(drop) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    s.close().await;
    let took = start.elapsed();
    eprintln!("close() with 5 pending calls against a dead server took {took:?}");
    assert!(took < Duration::from_secs(2), "close() took {took:?}");
    for c in calls {
        let r = tokio::time::timeout(Duration::from_secs(1), c).await.expect("pending call settles with close()").unwrap();
        assert_eq!(r.unwrap_err().code(), "CLIENT_CLOSED");
    }
    assert_eq!(s.last_event(), Some(SessionEvent::Closed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_while_disconnected_ends_loss_watches_at_once_and_waits_out_the_session() {
    let proxy = Proxy::start().await;
    let timeout = Duration::from_secs(4);
    let s = Arc::new(proxy.store(timeout));
    let path = format!("/zktx-test/{}", unique("close-cut-off"));
    let l = s.lock(&path, &AcquireOptions::default()).await.unwrap();
    let lost = tokio::spawn(l.lost());
    let mut events = s.session().subscribe();
    proxy.partition();
    while events.recv().await.unwrap() != SessionEvent::Suspended {}
    let suspended = Instant::now();
    let (s2, closing) = (s.clone(), Instant::now());
    let close = tokio::spawn(async move { s2.close().await });
    let loss = tokio::time::timeout(Duration::from_secs(1), lost).await.expect("close() ends loss watches at once").unwrap();
    assert_eq!(loss, zktx_core::recipe::LockLoss::SessionEnded);
    close.await.unwrap();
    eprintln!("close() while disconnected took {:?} ({:?} after SUSPENDED)", closing.elapsed(), suspended.elapsed());
    // It resolves once the client gave the session up (7/5 of the timeout): the server has
    // expired it by then, and nothing more of it is sent, so no write of it can apply later.
    assert!(suspended.elapsed() >= timeout, "close() resolved while the session may live on the server");
    assert!(closing.elapsed() < timeout.mul_f64(1.4) + Duration::from_secs(2));
    assert_eq!(s.session().last_event(), Some(SessionEvent::Closed));
    proxy.heal();
    assert!(store().children(&path).await.unwrap().is_empty());
    drop(l);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_after_the_session_expired_resolves_at_once() {
    let proxy = Proxy::start().await;
    let s = proxy.store(Duration::from_secs(2));
    s.session().connect().await.unwrap();
    let mut events = s.session().subscribe();
    proxy.partition();
    while events.recv().await.unwrap() != SessionEvent::Expired {}
    let start = Instant::now();
    s.close().await;
    assert!(start.elapsed() < Duration::from_secs(1), "close() of an expired session took {:?}", start.elapsed());
    assert_eq!(s.session().last_event(), Some(SessionEvent::Closed));
}
