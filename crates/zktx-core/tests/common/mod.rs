//! Shared helpers for integration tests against a real ZooKeeper (ZK_CONNECT).
#![allow(dead_code)]

use std::time::Duration;

use zktx_core::{Session, SessionOptions, Store};

/// The server under test: `npm test` starts one through scripts/zk.js and sets ZK_CONNECT.
pub fn connect_string() -> String {
    std::env::var("ZK_CONNECT").expect(
        "ZK_CONNECT is not set: run `npm run test:rust` (starts a local ZooKeeper) or point ZK_CONNECT at a server",
    )
}

pub fn options() -> SessionOptions {
    SessionOptions { session_timeout: Duration::from_secs(10), ..SessionOptions::new(connect_string()) }
}

pub fn session() -> Session {
    Session::new(options()).unwrap()
}

pub fn store() -> Store {
    Store::new(options()).unwrap()
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), uuid_like())
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{nanos:x}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// A TCP proxy in front of the server that can cut the network: a partition, injected for real.
pub struct Proxy {
    pub addr: String,
    blocked: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    /// Listens on a free loopback port, forwarding to the first host of ZK_CONNECT.
    pub async fn start() -> Proxy {
        use std::sync::atomic::Ordering;
        let target = connect_string().split(',').next().unwrap().split('/').next().unwrap().to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let blocked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (b, c) = (blocked.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if b.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused while partitioned
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { addr, blocked, conns }
    }

    /// Cuts every connection and refuses new ones.
    pub fn partition(&self) {
        self.blocked.store(true, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// Lets connections through again.
    pub fn heal(&self) {
        self.blocked.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}
