//! A certificate revocation list in the CA's PEM that is not valid DER: the vendored
//! zookeeper-client fails the connect instead of panicking on its I/O thread (with the hostname
//! check off it unwrapped the CRL's parse). zktx refuses such a `tls.ca` before connecting
//! (`__test__/tls.test.js`).

use std::time::Duration;

/// A throwaway CA certificate (PEM), made with openssl as testing/tls.js does.
fn ca_pem() -> String {
    let dir = std::env::temp_dir().join(format!("zktx-tls-crl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=zktx test CA"])
        .current_dir(&dir)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "openssl: {}", String::from_utf8_lossy(&made.stderr));
    let pem = std::fs::read_to_string(dir.join("ca.pem")).expect("ca.pem");
    let _ = std::fs::remove_dir_all(&dir);
    pem
}

#[tokio::test]
async fn zookeeper_client_fails_the_connect_instead_of_panicking() {
    let ca = ca_pem();
    for crl in ["MAA=", "bm90IERFUiBhdCBhbGw="] {
        let pem = format!("{ca}-----BEGIN X509 CRL-----\n{crl}\n-----END X509 CRL-----\n");
        let options = zookeeper_client::TlsOptions::default().with_pem_ca(&pem).expect("the CA certificate is fine");
        // SAFETY (of the crate's contract): a test; nothing is sent anywhere.
        let options = unsafe { options.with_no_hostname_verification() };
        let connector = zookeeper_client::Client::connector()
            .with_tls(options)
            .with_connection_timeout(Duration::from_millis(500))
            .with_session_timeout(Duration::from_secs(4))
            .with_fail_eagerly();
        // the task, so that a panic is seen as one (a JoinError), not as this test's own
        let connected = tokio::spawn(async move { connector.secure_connect("127.0.0.1:1").await.map(|_| ()).map_err(|e| e.to_string()) }).await;
        match connected {
            Ok(Err(e)) => assert!(e.contains("crl"), "expected a CRL error, got {e:?}"),
            other => panic!("expected a connect error naming the CRL, got {other:?}"),
        }
    }
}
