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

/// A store in a chroot of its own (created here): its `/zktx` tree is nobody else's. For tests
/// whose compaction passes, on a clock moved hours ahead, would mark and remove the tombstones of
/// tests running beside them.
pub async fn isolated_store(prefix: &str) -> Store {
    let root = unique(prefix);
    let plain = store();
    let client = plain.session().client().await.unwrap();
    client.create(&format!("/{root}"), b"", &zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all())).await.unwrap();
    drop(client); // close() waits for whoever still holds the client
    plain.close().await;
    Store::new(SessionOptions { session_timeout: Duration::from_secs(10), ..SessionOptions::new(format!("{}/{root}", connect_string())) }).unwrap()
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

/// A TCP proxy in front of the server that can cut the network or silently drop one direction:
/// partitions and lost answers, injected for real.
pub struct Proxy {
    pub addr: String,
    blocked: Arc<AtomicBool>,
    drop_to_client: Arc<AtomicBool>,
    drop_to_server: Arc<AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

async fn pump(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, drop: Arc<AtomicBool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if !drop.load(Ordering::SeqCst) && to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            },
        }
    }
}

impl Proxy {
    /// Listens on a free loopback port, forwarding to the first host of ZK_CONNECT.
    pub async fn start() -> Proxy {
        let target = connect_string().split(',').next().unwrap().split('/').next().unwrap().to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let proxy = Proxy {
            addr,
            blocked: Arc::default(),
            drop_to_client: Arc::default(),
            drop_to_server: Arc::default(),
            conns: Arc::default(),
        };
        let (blocked, to_client, to_server, conns) =
            (proxy.blocked.clone(), proxy.drop_to_client.clone(), proxy.drop_to_server.clone(), proxy.conns.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if blocked.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused while partitioned
                }
                let (target, to_client, to_server) = (target.clone(), to_client.clone(), to_server.clone());
                let task = tokio::spawn(async move {
                    if let Ok(outbound) = tokio::net::TcpStream::connect(&target).await {
                        let (ci, co) = inbound.into_split();
                        let (si, so) = outbound.into_split();
                        tokio::select! {
                            _ = pump(ci, so, to_server) => {},
                            _ = pump(si, co, to_client) => {},
                        }
                    }
                });
                conns.lock().unwrap().push(task.abort_handle());
            }
        });
        proxy
    }

    /// A store whose session reaches the server through this proxy.
    pub fn store(&self, session_timeout: Duration) -> Store {
        Store::new(SessionOptions { session_timeout, ..SessionOptions::new(self.addr.clone()) }).unwrap()
    }

    /// Cuts every connection and refuses new ones.
    pub fn partition(&self) {
        self.blocked.store(true, Ordering::SeqCst);
        self.cut();
    }

    /// Cuts every connection (the client reconnects at once unless partitioned).
    pub fn cut(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// Lets connections through again, in both directions.
    pub fn heal(&self) {
        self.drop_to_client.store(false, Ordering::SeqCst);
        self.drop_to_server.store(false, Ordering::SeqCst);
        self.blocked.store(false, Ordering::SeqCst);
    }

    /// Silently drops the server's answers (requests still arrive and apply).
    pub fn drop_answers(&self) {
        self.drop_to_client.store(true, Ordering::SeqCst);
    }

    /// Silently drops the client's requests (they never reach the server).
    pub fn drop_requests(&self) {
        self.drop_to_server.store(true, Ordering::SeqCst);
    }
}
