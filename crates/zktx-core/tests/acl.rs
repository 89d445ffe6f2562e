//! Authentication and ACLs: what zktx creates carries the session's ACL, other identities are
//! refused with NOAUTH and change nothing, and the identity survives a reconnect.
//!
//! Digest authentication needs no server configuration (ZooKeeper accepts any `user:password`
//! and grants that identity), so these run against the shared test server. Parents are created
//! open first: a creator-only `/zktx` would lock every other test out.

mod common;

use std::time::{Duration, Instant};

use common::*;
use zktx_core::kv::JsonValue;
use zktx_core::recipe::AcquireOptions;
use zktx_core::session::{Acl, Auth, Sasl, Tls};
use zktx_core::{SessionEvent, SessionOptions, Store};

fn digest(user_password: &str) -> Vec<Auth> {
    vec![Auth { scheme: "digest".into(), credentials: user_password.as_bytes().to_vec() }]
}

fn creator_all() -> Vec<Acl> {
    zookeeper_client::Acls::creator_all().to_vec()
}

fn secured(connect: String, user_password: &str) -> Store {
    Store::new(SessionOptions { auth: digest(user_password), acl: creator_all(), ..SessionOptions { connect, ..options() } }).unwrap()
}

fn json(v: &str) -> JsonValue {
    JsonValue::from_serialize(v).unwrap()
}

/// Makes sure `/zktx/kv`, `/zktx/clock` and `/zktx-test` exist with the default open ACL.
async fn open_parents() {
    let open = store();
    open.set(&unique("acl-parent"), &json("x"), &[]).await.unwrap();
    let _ = open.lock(&format!("/zktx-test/{}", unique("acl-parent")), &AcquireOptions::default()).await.unwrap().release().await;
    open.session().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_identity_cannot_read_write_or_join_the_lock_of_creator_only_nodes() {
    open_parents().await;
    let alice = secured(connect_string(), "alice:secret");
    let bob = secured(connect_string(), "bob:secret");
    let key = unique("acl-key");
    alice.set(&key, &json("alice's"), &[]).await.unwrap();

    let err = bob.set(&key, &json("bob's"), &[]).await.unwrap_err();
    assert_eq!(err.code(), "NOAUTH", "{err}");
    assert_eq!(bob.get(&key).await.unwrap_err().code(), "NOAUTH");
    // A wrong password is just another identity to ZooKeeper's digest provider: NOAUTH too.
    let mallory = secured(connect_string(), "alice:guess");
    assert_eq!(mallory.set(&key, &json("mallory's"), &[]).await.unwrap_err().code(), "NOAUTH");

    let path = format!("/zktx-test/{}", unique("acl-lock"));
    let held = alice.lock(&path, &AcquireOptions::default()).await.unwrap();
    let refused = bob.lock(&path, &AcquireOptions { wait: Some(Duration::from_millis(500)), cancel: None }).await.unwrap_err();
    assert_eq!(refused.code(), "NOAUTH", "{refused}");

    // Nothing changed: alice still reads her value and still holds her lock.
    assert_eq!(alice.get(&key).await.unwrap().unwrap().value, json("alice's"));
    alice.set(&key, &json("fenced"), &[&held]).await.unwrap();
    held.release().await.unwrap();
    for s in [alice, bob, mallory] {
        s.session().close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_is_restored_after_a_reconnect() {
    // ZooKeeper keeps auth per connection, not per session: without a replay after the
    // reconnect, the next write to a creator-only node would be NOAUTH.
    open_parents().await;
    let proxy = Proxy::start().await;
    let alice = secured(proxy.addr.clone(), "alice:secret");
    let key = unique("acl-reconnect");
    alice.set(&key, &json("before"), &[]).await.unwrap();
    let mut events = alice.session().subscribe();
    proxy.cut();
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout(until - Instant::now(), events.recv()).await {
            Ok(Ok(SessionEvent::Reconnected)) => break,
            Ok(Ok(_)) => continue,
            other => panic!("no RECONNECTED within 10 s: {other:?}"),
        }
    }
    alice.set(&key, &json("after"), &[]).await.unwrap();
    assert_eq!(alice.get(&key).await.unwrap().unwrap().value, json("after"));
    alice.session().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_auth_scheme_fails_the_connect_with_authfailed_at_once() {
    let s = Store::new(SessionOptions { auth: vec![Auth { scheme: "nosuch".into(), credentials: b"x".to_vec() }], ..options() }).unwrap();
    let t0 = Instant::now();
    let err = s.session().connect().await.unwrap_err();
    assert_eq!(err.code(), "AUTHFAILED", "{err}");
    assert!(t0.elapsed() < Duration::from_secs(2), "took {:?}", t0.elapsed());
    assert!(err.to_string().contains("nosuch"), "{err}");
}

#[test]
fn creator_all_without_auth_and_malformed_digests_are_refused_before_sending() {
    let no_auth = Store::new(SessionOptions { acl: creator_all(), ..options() }).unwrap_err();
    assert_eq!(no_auth.code(), "INVALID_ARGUMENT");
    let bad = Store::new(SessionOptions { auth: digest("no-colon-secret"), ..options() }).unwrap_err();
    assert_eq!(bad.code(), "INVALID_ARGUMENT");
    assert!(!bad.to_string().contains("no-colon-secret"), "{bad}");
    let empty = Store::new(SessionOptions { acl: vec![], ..options() }).unwrap_err();
    assert_eq!(empty.code(), "INVALID_ARGUMENT");
    let tls = |ca: &str, key: Option<&str>| Tls { ca: ca.into(), cert: key.map(|_| "x".into()), key: key.map(Into::into), verify_hostname: true };
    for bad in [tls("not pem", None), tls("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", Some("SECRET-KEY"))] {
        let err = Store::new(SessionOptions { tls: Some(bad), ..options() }).unwrap_err();
        assert_eq!(err.code(), "INVALID_ARGUMENT");
        assert!(!err.to_string().contains("SECRET-KEY"), "{err}");
    }
}

#[test]
fn options_never_show_credentials() {
    let sasl = Sasl::DigestMd5 { username: "alice".into(), password: "sasl-hunter2".into() };
    let tls = Tls { ca: "CA".into(), cert: Some("CERT".into()), key: Some("key-hunter2".into()), verify_hostname: true };
    let o = SessionOptions { auth: digest("alice:hunter2"), sasl: Some(sasl), tls: Some(tls), ..options() };
    let shown = format!("{o:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("digest") && shown.contains("alice"), "{shown}");
}
