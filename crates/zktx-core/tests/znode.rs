//! The raw ZooKeeper API (`zktx_core::znode`) against a real server: data, versions, modes,
//! multi all or nothing, one-shot watches, and what a watch sees across a connection loss.

mod common;

use std::time::Duration;

use common::*;
use zktx_core::znode::{self, CreateOptions, Mode, Op, OpResult, WatchEvent};

fn persistent() -> CreateOptions {
    CreateOptions { mode: Mode::Persistent, ttl: None, acl: None }
}

#[tokio::test]
async fn create_get_set_delete_with_versions() {
    let s = session();
    let root = format!("/{}", unique("znode-rs"));
    let created = znode::create(&s, &root, b"v0", &persistent()).await.unwrap();
    assert_eq!(created.path, root);
    assert_eq!(created.stat.version, 0);
    let (data, stat) = znode::get_data(&s, &root).await.unwrap();
    assert_eq!((data.as_slice(), stat.data_length), (&b"v0"[..], 2));
    let stat = znode::set_data(&s, &root, b"v1", Some(0)).await.unwrap();
    assert_eq!(stat.version, 1);
    let stale = znode::set_data(&s, &root, b"lost", Some(0)).await.unwrap_err();
    assert_eq!((stale.code(), stale.outcome().as_str()), ("BADVERSION", "not_applied"));
    assert_eq!(znode::create(&s, &root, b"", &persistent()).await.unwrap_err().code(), "NODEEXISTS");
    let seq = CreateOptions { mode: Mode::EphemeralSequential, ttl: None, acl: None };
    let child = znode::create(&s, &format!("{root}/n-"), b"", &seq).await.unwrap();
    assert!(child.path.starts_with(&format!("{root}/n-")) && child.path.len() == root.len() + 3 + 10, "{}", child.path);
    assert_eq!(znode::delete(&s, &root, None).await.unwrap_err().code(), "NOTEMPTY");
    let (children, parent) = znode::children(&s, &root).await.unwrap();
    assert_eq!((children.len(), parent.num_children), (1, 1));
    znode::delete(&s, &child.path, None).await.unwrap();
    znode::delete(&s, &root, Some(1)).await.unwrap();
    assert!(znode::exists(&s, &root).await.unwrap().is_none());
    assert_eq!(znode::get_data(&s, &root).await.unwrap_err().code(), "NONODE");
    s.close().await;
}

#[tokio::test]
async fn multi_is_all_or_nothing_and_names_the_failing_op() {
    let s = session();
    let root = format!("/{}", unique("znode-multi"));
    znode::create(&s, &root, b"keep", &persistent()).await.unwrap();
    let err = znode::multi(&s, &[
        Op::SetData { path: root.clone(), data: b"lost".to_vec(), version: None },
        Op::Create { path: format!("{root}/new"), data: vec![], options: persistent() },
        Op::Check { path: root.clone(), version: 7 },
    ])
    .await
    .unwrap_err();
    assert_eq!(err.code(), "BADVERSION");
    assert!(err.to_string().contains("multi op 2 failed"), "{err}");
    assert_eq!(znode::get_data(&s, &root).await.unwrap().0, b"keep");
    assert!(znode::exists(&s, &format!("{root}/new")).await.unwrap().is_none());
    let ok = znode::multi(&s, &[Op::Check { path: root.clone(), version: 0 }, Op::Delete { path: root.clone(), version: Some(0) }]).await.unwrap();
    assert!(matches!(ok.as_slice(), [OpResult::Check, OpResult::Delete]));
    s.close().await;
}

#[tokio::test]
async fn bad_paths_are_invalid_argument_without_a_server() {
    let s = zktx_core::Session::new(zktx_core::SessionOptions::new("127.0.0.1:1")).unwrap();
    for bad in ["relative", "/a//b", "/a/", "/a/../b"] {
        assert_eq!(znode::get_data(&s, bad).await.unwrap_err().code(), "INVALID_ARGUMENT", "{bad}");
        assert_eq!(znode::create(&s, bad, b"", &persistent()).await.unwrap_err().code(), "INVALID_ARGUMENT", "{bad}");
    }
    assert_eq!(znode::multi(&s, &[]).await.unwrap_err().code(), "INVALID_ARGUMENT");
}

#[tokio::test]
async fn a_watch_set_before_a_connection_loss_fires_for_a_change_made_during_it() {
    let proxy = Proxy::start().await;
    let watcher = proxy.store(Duration::from_secs(10));
    let writer = session();
    let path = format!("/{}", unique("znode-watch"));
    znode::create(&writer, &path, b"before", &persistent()).await.unwrap();
    let (_, _, watch) = znode::get_data_watch(watcher.session(), &path).await.unwrap();
    proxy.partition();
    znode::set_data(&writer, &path, b"during", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.heal();
    let event = tokio::time::timeout(Duration::from_secs(10), watch.changed()).await.expect("the watch fires after the reconnect");
    assert_eq!(event, WatchEvent::DataChanged(path.clone()));
    znode::delete(&writer, &path, None).await.unwrap();
    watcher.close().await;
    writer.close().await;
}

/// Why `PersistentWatch` sets itself again: zookeeper-client 0.11 alone does not, so a change
/// made after the reconnect never reaches a persistent watcher. If this starts failing, the
/// client restores persistent watches now and the re-add (and its resync event) can go.
#[tokio::test]
async fn zookeeper_client_alone_loses_a_persistent_watch_across_a_reconnect() {
    let proxy = Proxy::start().await;
    let watcher = proxy.store(Duration::from_secs(10));
    let writer = session();
    let path = format!("/{}", unique("znode-pw-raw"));
    znode::create(&writer, &path, b"v0", &persistent()).await.unwrap();
    let client = watcher.session().client().await.unwrap();
    let mut raw = client.watch(&path, zookeeper_client::AddWatchMode::Persistent).await.unwrap();
    proxy.partition();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.heal();
    // The session events of the reconnect, then nothing for a change made after it.
    let node_event = async {
        loop {
            let e = raw.changed().await;
            if e.event_type != zookeeper_client::EventType::Session {
                return e;
            }
        }
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    znode::set_data(&writer, &path, b"after", None).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(2), node_event).await.is_err(), "zookeeper-client restored the persistent watch");
    drop(raw);
    drop(client);
    watcher.close().await;
    writer.close().await;
}

#[tokio::test]
async fn a_persistent_watch_sets_itself_again_after_a_reconnect_and_says_so() {
    let proxy = Proxy::start().await;
    let watcher = proxy.store(Duration::from_secs(10));
    let writer = session();
    let path = format!("/{}", unique("znode-pw"));
    znode::create(&writer, &path, b"v0", &persistent()).await.unwrap();
    let mut watch = znode::PersistentWatch::add(watcher.session(), &path, false).await.unwrap();
    znode::set_data(&writer, &path, b"v1", None).await.unwrap();
    assert_eq!(watch.next(watcher.session()).await, znode::PersistentEvent::Node(WatchEvent::DataChanged(path.clone())));
    proxy.partition();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.heal();
    let resync = tokio::time::timeout(Duration::from_secs(10), watch.next(watcher.session())).await.expect("a resync");
    assert_eq!(resync, znode::PersistentEvent::Resync("reconnected"));
    znode::set_data(&writer, &path, b"v2", None).await.unwrap();
    let after = tokio::time::timeout(Duration::from_secs(5), watch.next(watcher.session())).await.expect("the change after the reconnect");
    assert_eq!(after, znode::PersistentEvent::Node(WatchEvent::DataChanged(path.clone())));
    drop(watch);
    watcher.close().await;
    writer.close().await;
}

#[tokio::test]
async fn a_request_over_the_server_limit_is_too_large_and_nothing_is_sent() {
    let s = session();
    let path = format!("/{}", unique("znode-big"));
    let big = vec![1u8; 2 * 1024 * 1024];
    assert_eq!(znode::create(&s, &path, &big, &persistent()).await.unwrap_err().code(), "TOO_LARGE");
    znode::create(&s, &path, b"small", &persistent()).await.unwrap();
    assert_eq!(znode::set_data(&s, &path, &big, None).await.unwrap_err().code(), "TOO_LARGE");
    let half = vec![1u8; 600 * 1024];
    let ops = [Op::SetData { path: path.clone(), data: half.clone(), version: None }, Op::Create { path: format!("{path}/c"), data: half, options: persistent() }];
    assert_eq!(znode::multi(&s, &ops).await.unwrap_err().code(), "TOO_LARGE");
    // The connection was never dropped: the same client reads on, and nothing was written.
    assert_eq!(znode::get_data(&s, &path).await.unwrap().0, b"small");
    assert!(znode::exists(&s, &format!("{path}/c")).await.unwrap().is_none());
    s.close().await;
}

/// Where break 3 comes from: the server, not zookeeper-client. With zookeeper-client alone, a
/// one-shot data watch set on a path that has a persistent watch (same session) turns the
/// server's watch into a one-shot (ZooKeeper 3.8 keeps one mode per session and path:
/// ZOOKEEPER-4466); zookeeper-client still holds its persistent watcher, which hears the first
/// change and then nothing.
#[tokio::test]
async fn zookeeper_3_8_ends_a_persistent_watch_when_a_one_shot_on_its_path_fires() {
    let watcher = session();
    let writer = session();
    let path = format!("/{}", unique("znode-4466"));
    znode::create(&writer, &path, b"v0", &persistent()).await.unwrap();
    let client = watcher.client().await.unwrap();
    let mut raw = client.watch(&path, zookeeper_client::AddWatchMode::Persistent).await.unwrap();
    let (_, _, oneshot) = client.get_and_watch_data(&path).await.unwrap();
    znode::set_data(&writer, &path, b"v1", None).await.unwrap();
    oneshot.changed().await;
    assert_eq!(raw.changed().await.event_type, zookeeper_client::EventType::NodeDataChanged);
    znode::set_data(&writer, &path, b"v2", None).await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(2), raw.changed()).await;
    assert!(second.is_err(), "this server keeps a persistent and a one-shot watch on one path apart (3.9+?): {second:?}");
    drop(raw);
    drop(client);
    watcher.close().await;
    writer.close().await;
}

#[tokio::test]
async fn a_one_shot_read_beside_a_persistent_watch_keeps_it() {
    let watcher = session();
    let writer = session();
    let path = format!("/{}", unique("znode-overlap"));
    znode::create(&writer, &path, b"v0", &persistent()).await.unwrap();
    let mut watch = znode::PersistentWatch::add(&watcher, &path, false).await.unwrap();
    let (_, _, oneshot) = znode::get_data_watch(&watcher, &path).await.unwrap();
    znode::set_data(&writer, &path, b"v1", None).await.unwrap();
    assert_eq!(oneshot.changed().await, WatchEvent::DataChanged(path.clone()));
    for v in [&b"v1"[..], b"v2", b"v3"] {
        if v != b"v1" {
            znode::set_data(&writer, &path, v, None).await.unwrap();
        }
        let e = tokio::time::timeout(Duration::from_secs(5), watch.next(&watcher)).await.expect("every change");
        assert_eq!(e, znode::PersistentEvent::Node(WatchEvent::DataChanged(path.clone())));
    }
    drop(watch);
    watcher.close().await;
    writer.close().await;
}
