//! A TLS host that no certificate can name (`127.1`: it resolves and connects, but is neither a
//! DNS name nor an IP address to rustls): the vendored zookeeper-client fails the connect instead
//! of panicking on its I/O thread (it unwrapped the server name: the panic left every call of the
//! client hanging past its deadlines). zktx refuses such a host before connecting
//! (`__test__/tls.test.js`).

mod common;

use std::time::Duration;

use common::*;

fn port() -> String {
    let first = connect_string().split(',').next().unwrap_or_default().split('/').next().unwrap_or_default().to_string();
    first.rsplit(':').next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn zookeeper_client_fails_the_connect_instead_of_panicking() {
    let connector = zookeeper_client::Client::connector()
        .with_tls(zookeeper_client::TlsOptions::default())
        .with_connection_timeout(Duration::from_millis(500))
        .with_session_timeout(Duration::from_secs(4))
        .with_fail_eagerly();
    let connected = tokio::time::timeout(Duration::from_secs(10), connector.secure_connect(&format!("127.1:{}", port()))).await;
    assert!(matches!(connected, Ok(Err(_))), "expected a connect error within 10 s, got {:?}", connected.map(|r| r.map(|_| "a client")));
}
