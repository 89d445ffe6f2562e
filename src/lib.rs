//! The Node.js binding of zktx: converts arguments, calls `zktx-core`, maps errors.
//!
//! No recipe logic lives here. Errors cross into JS as `Error("CODE|outcome|message")`; the JS
//! facade (`index.js`) turns that into a `ZktxError` with `err.code` and `err.outcome`. That is
//! the one place the encoding is made ([`to_js_error`]) and the one place it is read
//! (`index.js`'s `fromNative`).

#![deny(clippy::unwrap_used)]

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use zktx_core::kv::JsonValue;
use zktx_core::recipe::{AcquireOptions, Lock};
use zktx_core::transaction::{CommitOptions, CommitReport, Isolation, Transaction, Write};
use zktx_core::txn::{Committed, KeyTransaction};
use zktx_core::{CancellationToken, LockKind, SessionOptions, Store};

fn to_js_error(err: zktx_core::Error) -> napi::Error {
    napi::Error::new(Status::GenericFailure, format!("{}|{}|{}", err.code(), err.outcome().as_str(), err))
}

fn invalid(msg: impl std::fmt::Display) -> napi::Error {
    to_js_error(zktx_core::Error::InvalidArgument(msg.to_string()))
}

/// Runs a synchronous body, turning a panic into an error instead of aborting Node.
fn no_panic<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(napi::Error::new(Status::GenericFailure, "INTERNAL|not_applied|zktx panicked")))
}

fn millis(name: &str, ms: f64) -> Result<Duration> {
    if !ms.is_finite() || ms < 0.0 {
        return Err(invalid(format!("{name} must be a finite number of milliseconds >= 0, got {ms}")));
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

// ---- cancellation: AbortSignal -> CancellationToken, keyed by a small integer ----

fn cancels() -> &'static Mutex<HashMap<u32, CancellationToken>> {
    static CANCELS: OnceLock<Mutex<HashMap<u32, CancellationToken>>> = OnceLock::new();
    CANCELS.get_or_init(Default::default)
}

/// Registers a cancellation handle for one call; pass its id to the call, and to `cancel`.
#[napi]
pub fn new_cancel() -> Result<u32> {
    no_panic(|| {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        cancels().lock().map_err(|_| invalid("cancel registry poisoned"))?.insert(id, CancellationToken::new());
        Ok(id)
    })
}

/// Cancels the call registered under `id` (no-op if it already finished).
#[napi]
pub fn cancel(id: u32) -> Result<()> {
    no_panic(|| {
        if let Some(t) = cancels().lock().map_err(|_| invalid("cancel registry poisoned"))?.remove(&id) {
            t.cancel();
        }
        Ok(())
    })
}

/// Forgets a cancellation handle once its call finished.
#[napi]
pub fn drop_cancel(id: u32) -> Result<()> {
    no_panic(|| {
        cancels().lock().map_err(|_| invalid("cancel registry poisoned"))?.remove(&id);
        Ok(())
    })
}

fn acquire_options(timeout_ms: Option<f64>, cancel_id: Option<u32>) -> Result<AcquireOptions> {
    let wait = timeout_ms.map(|t| millis("timeout", t)).transpose()?;
    let cancel = match cancel_id {
        Some(id) => Some(
            cancels()
                .lock()
                .map_err(|_| invalid("cancel registry poisoned"))?
                .get(&id)
                .cloned()
                .ok_or_else(|| to_js_error(zktx_core::Error::Aborted("operation was aborted".into())))?,
        ),
        None => None,
    };
    Ok(AcquireOptions { wait, cancel })
}

/// A JS callback taking one string, callable from any thread, that does not keep Node alive.
type WeakCallback = ThreadsafeFunction<String, Unknown<'static>, String, Status, false, true>;

// ---- logging ----

fn init_logging(level: u32) {
    let filter = match level {
        0 => return,
        1 => tracing::Level::ERROR,
        2 => tracing::Level::WARN,
        3 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    // Process-wide: the first client's level wins (a tracing subscriber is global).
    let _ = tracing_subscriber::fmt().with_max_level(filter).with_writer(std::io::stderr).with_target(false).try_init();
}

// ---- classes ----

/// Options already validated by the JS facade (unknown keys rejected there).
#[napi(object)]
pub struct NativeOptions {
    pub connect: String,
    pub timeout_ms: f64,
    pub connect_timeout_ms: Option<f64>,
    pub request_timeout_ms: Option<f64>,
    pub host_order_deterministic: bool,
    pub reconnect_after_expiry: bool,
    pub lost_after: Option<f64>,
    pub log_level: u32,
}

/// A stored value and its znode version.
#[napi(object)]
pub struct NativeVersioned {
    pub json: String,
    pub version: i32,
}

/// The result of a committed key transaction.
#[napi(object)]
pub struct NativeCommitted {
    pub key: String,
    pub json: String,
    pub previous_json: Option<String>,
    pub version: i32,
    pub token: f64,
    pub zxid: Option<f64>,
}

impl From<Committed> for NativeCommitted {
    fn from(c: Committed) -> Self {
        NativeCommitted {
            key: c.key,
            json: c.value.into_string(),
            previous_json: c.previous.map(JsonValue::into_string),
            version: c.version,
            token: c.token as f64,
            zxid: c.zxid.map(|z| z as f64),
        }
    }
}

/// One ZooKeeper session with the key-value layout.
#[napi]
pub struct NativeClient {
    store: Arc<Store>,
}

#[napi]
impl NativeClient {
    #[napi(constructor)]
    pub fn new(options: NativeOptions) -> Result<Self> {
        no_panic(|| {
            init_logging(options.log_level);
            let opts = SessionOptions {
                connect: options.connect,
                session_timeout: millis("timeout", options.timeout_ms)?,
                connect_timeout: options.connect_timeout_ms.map(|t| millis("connectTimeout", t)).transpose()?,
                request_timeout: options.request_timeout_ms.map(|t| millis("requestTimeout", t)).transpose()?,
                host_order_deterministic: options.host_order_deterministic,
                reconnect_after_expiry: options.reconnect_after_expiry,
                lost_after: options.lost_after.unwrap_or(1.0),
            };
            Ok(NativeClient { store: Arc::new(Store::new(opts).map_err(to_js_error)?) })
        })
    }

    /// The most recent session event (`CONNECTED`, `SUSPENDED`, ...), or `NOT_CONNECTED`.
    #[napi(getter)]
    pub fn state(&self) -> String {
        self.store.session().last_event().map_or("NOT_CONNECTED", |e| e.as_str()).to_string()
    }

    /// Calls `callback(event)` on every session event. The callback does not keep Node alive.
    #[napi]
    pub fn on_state(&self, callback: WeakCallback) -> Result<()> {
        no_panic(|| {
            let mut events = self.store.session().subscribe();
            napi::bindgen_prelude::spawn(async move {
                loop {
                    match events.recv().await {
                        Ok(e) => {
                            callback.call(e.as_str().to_string(), ThreadsafeFunctionCallMode::NonBlocking);
                        },
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    }
                }
            });
            Ok(())
        })
    }

    #[napi]
    pub async fn connect(&self) -> Result<()> {
        self.store.session().connect().await.map_err(to_js_error)
    }

    #[napi]
    pub async fn close(&self) -> Result<()> {
        self.store.close().await;
        Ok(())
    }

    /// Closes the session, blocking the calling thread (a round trip when connected, at most
    /// 2 s): for `process.on('exit')`, where nothing asynchronous runs any more. Pending calls are
    /// cancelled and CloseSession is sent at once; waiting for a server-side expiry (what `close()`
    /// does when disconnected) is pointless for a process about to exit.
    #[napi]
    pub fn close_sync(&self) -> Result<()> {
        no_panic(|| {
            let store = self.store.clone();
            napi::bindgen_prelude::block_on(async move {
                let _ = tokio::time::timeout(Duration::from_secs(2), store.close()).await;
            });
            Ok(())
        })
    }

    /// Acquires a lock: kind is "exclusive", "read", "write" or "lease" (with `permits`).
    #[napi]
    pub async fn acquire(&self, kind: String, path: String, permits: Option<u32>, timeout_ms: Option<f64>, cancel_id: Option<u32>) -> Result<NativeLock> {
        let kind = match (kind.as_str(), permits) {
            ("exclusive", _) => LockKind::Exclusive,
            ("read", _) => LockKind::Read,
            ("write", _) => LockKind::Write,
            ("lease", Some(p)) => LockKind::Lease(p),
            (other, _) => return Err(invalid(format!("unknown lock kind {other:?}"))),
        };
        let opts = acquire_options(timeout_ms, cancel_id)?;
        let lock = self.store.acquire(kind, &path, &opts).await.map_err(to_js_error)?;
        Ok(NativeLock { lock: Arc::new(lock) })
    }

    /// Acquires exclusive locks on all paths, all or nothing.
    #[napi]
    pub async fn multi_lock(&self, paths: Vec<String>, timeout_ms: Option<f64>, cancel_id: Option<u32>) -> Result<Vec<NativeLock>> {
        let opts = acquire_options(timeout_ms, cancel_id)?;
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let locks = self.store.multi_lock(&refs, &opts).await.map_err(to_js_error)?;
        Ok(locks.into_iter().map(|l| NativeLock { lock: Arc::new(l) }).collect())
    }

    /// A writer fenced on locks added with `add`.
    #[napi]
    pub fn fence(&self) -> NativeFence {
        NativeFence { store: self.store.clone(), locks: Mutex::new(Vec::new()) }
    }

    #[napi]
    pub async fn get(&self, key: String) -> Result<Option<NativeVersioned>> {
        let v = self.store.get(&key).await.map_err(to_js_error)?;
        Ok(v.map(|v| NativeVersioned { json: v.value.into_string(), version: v.version }))
    }

    #[napi]
    pub async fn set(&self, key: String, json: String) -> Result<i32> {
        let value = JsonValue::from_text(json).map_err(to_js_error)?;
        self.store.set(&key, &value, &[]).await.map_err(to_js_error)
    }

    #[napi]
    pub async fn execute_transaction(&self, key: String, json: String, timeout_ms: Option<f64>, cancel_id: Option<u32>) -> Result<NativeCommitted> {
        let value = JsonValue::from_text(json).map_err(to_js_error)?;
        let opts = acquire_options(timeout_ms, cancel_id)?;
        self.store.execute_transaction(&key, value, &opts).await.map(Into::into).map_err(to_js_error)
    }

    #[napi]
    pub async fn children(&self, path: String) -> Result<Vec<String>> {
        self.store.children(&path).await.map_err(to_js_error)
    }

    /// Deletes transaction-id markers older than `older_than_ms`; resolves how many.
    #[napi]
    pub async fn prune_transaction_ids(&self, older_than_ms: f64) -> Result<u32> {
        let older_than = millis("olderThan", older_than_ms)?;
        self.store.prune_transaction_ids(older_than).await.map(|n| n as u32).map_err(to_js_error)
    }

    /// Removes tombstones of keys deleted more than `older_than_ms` ago; resolves how many.
    #[napi]
    pub async fn compact_tombstones(&self, older_than_ms: f64) -> Result<u32> {
        let older_than = millis("olderThan", older_than_ms)?;
        self.store.compact_tombstones(older_than).await.map(|n| n as u32).map_err(to_js_error)
    }

    /// A new multi-key transaction attempt.
    #[napi]
    pub fn transaction(&self) -> NativeTransaction {
        NativeTransaction { store: self.store.clone(), tx: tokio::sync::Mutex::new(Transaction::new()), locks: Mutex::new(Vec::new()) }
    }

    #[napi]
    pub async fn begin(&self, key: String, timeout_ms: Option<f64>, cancel_id: Option<u32>) -> Result<NativeKeyTransaction> {
        let opts = acquire_options(timeout_ms, cancel_id)?;
        let tx = self.store.begin(&key, &opts).await.map_err(to_js_error)?;
        Ok(NativeKeyTransaction { tx: Arc::new(tx) })
    }
}

/// A held lock.
#[napi]
pub struct NativeLock {
    lock: Arc<Lock>,
}

/// Writes fenced on a set of locks.
#[napi]
pub struct NativeFence {
    store: Arc<Store>,
    locks: Mutex<Vec<Arc<Lock>>>,
}

#[napi]
impl NativeFence {
    #[napi]
    pub fn add(&self, lock: &NativeLock) -> Result<()> {
        no_panic(|| {
            self.locks.lock().map_err(|_| invalid("fence poisoned"))?.push(lock.lock.clone());
            Ok(())
        })
    }

    /// Writes `key` only if every added lock is still held (one multi).
    #[napi]
    pub async fn set(&self, key: String, json: String) -> Result<i32> {
        let value = JsonValue::from_text(json).map_err(to_js_error)?;
        let locks = self.locks.lock().map_err(|_| invalid("fence poisoned"))?.clone();
        let refs: Vec<&Lock> = locks.iter().map(Arc::as_ref).collect();
        self.store.set(&key, &value, &refs).await.map_err(to_js_error)
    }
}

#[napi]
impl NativeLock {
    #[napi(getter)]
    pub fn path(&self) -> String {
        self.lock.path().to_string()
    }

    #[napi(getter)]
    pub fn node_path(&self) -> String {
        self.lock.node_path().to_string()
    }

    #[napi(getter)]
    pub fn token(&self) -> f64 {
        self.lock.token() as f64
    }

    #[napi(getter)]
    pub fn released(&self) -> bool {
        self.lock.is_released()
    }

    #[napi]
    pub async fn release(&self) -> Result<()> {
        self.lock.release().await.map_err(to_js_error)
    }

    /// Calls `callback("NODE_DELETED" | "SESSION_ENDED")` once if the lock is lost (not after a
    /// release). The callback does not keep Node alive.
    #[napi]
    pub fn on_lost(&self, callback: WeakCallback) -> Result<()> {
        no_panic(|| {
            // The future, not the lock: a lock garbage-collected while watched is still released.
            let lost = self.lock.lost();
            napi::bindgen_prelude::spawn(async move {
                let reason = match lost.await {
                    zktx_core::recipe::LockLoss::Released => return,
                    zktx_core::recipe::LockLoss::NodeDeleted => "NODE_DELETED",
                    zktx_core::recipe::LockLoss::SessionEnded => "SESSION_ENDED",
                };
                callback.call(reason.to_string(), ThreadsafeFunctionCallMode::NonBlocking);
            });
            Ok(())
        })
    }

    #[napi]
    pub async fn is_held(&self) -> Result<bool> {
        self.lock.is_held().await.map_err(to_js_error)
    }
}

/// A key locked for update (the updater form of `executeTransaction`).
#[napi]
pub struct NativeKeyTransaction {
    tx: Arc<KeyTransaction>,
}

#[napi]
impl NativeKeyTransaction {
    /// The current value as JSON text, `null` when the key is absent.
    #[napi(getter)]
    pub fn current_json(&self) -> Option<String> {
        self.tx.current().map(|v| v.as_str().to_string())
    }

    #[napi(getter)]
    pub fn token(&self) -> f64 {
        self.tx.lock().token() as f64
    }

    #[napi]
    pub async fn commit(&self, json: String) -> Result<NativeCommitted> {
        let value = match JsonValue::from_text(json) {
            Ok(v) => v,
            Err(e) => {
                let _ = self.tx.abort().await;
                return Err(to_js_error(e));
            },
        };
        self.tx.commit(value).await.map(Into::into).map_err(to_js_error)
    }

    #[napi]
    pub async fn abort(&self) -> Result<()> {
        self.tx.abort().await.map_err(to_js_error)
    }
}

/// Backoff before retry `attempt` of a conflicting transaction, in ms (jittered).
#[napi]
pub fn retry_delay_ms(attempt: u32) -> f64 {
    zktx_core::transaction::retry_delay(attempt).as_secs_f64() * 1000.0
}

/// One buffered write of a transaction: kind is "set", "create" or "delete".
#[napi(object)]
pub struct NativeWrite {
    pub kind: String,
    pub key: String,
    pub json: Option<String>,
}

#[napi(object)]
pub struct NativeKeyVersion {
    pub key: String,
    pub version: i32,
}

#[napi(object)]
pub struct NativeCommitReport {
    pub writes: u32,
    pub zxid: Option<f64>,
    pub versions: Vec<NativeKeyVersion>,
    pub already_applied: bool,
    /// With `already_applied`: the result the applied commit recorded (JSON text).
    pub recorded_result: Option<String>,
    pub round_trips: u32,
    pub reads: Vec<NativeKeyVersion>,
}

/// One attempt of a multi-key transaction (the retry loop is in index.js).
#[napi]
pub struct NativeTransaction {
    store: Arc<Store>,
    tx: tokio::sync::Mutex<Transaction>,
    locks: Mutex<Vec<Arc<Lock>>>,
}

#[napi]
impl NativeTransaction {
    /// Reads keys (one round trip for those not read yet); JSON text or null per key.
    #[napi]
    pub async fn get_many(&self, keys: Vec<String>) -> Result<Vec<Option<String>>> {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut tx = self.tx.lock().await;
        let values = tx.get_many(&self.store, &keys).await.map_err(to_js_error)?;
        Ok(values.into_iter().map(|v| v.map(JsonValue::into_string)).collect())
    }

    /// Fences the commit on a lock (may be called for several).
    #[napi]
    pub fn add_lock(&self, lock: &NativeLock) -> Result<()> {
        no_panic(|| {
            self.locks.lock().map_err(|_| invalid("transaction poisoned"))?.push(lock.lock.clone());
            Ok(())
        })
    }

    /// Applies the buffered writes and commits them in one multi.
    #[napi]
    pub async fn commit(&self, writes: Vec<NativeWrite>, isolation: String, id: Option<String>, result_json: Option<String>) -> Result<NativeCommitReport> {
        let isolation: Isolation = isolation.parse().map_err(to_js_error)?;
        let locks = self.locks.lock().map_err(|_| invalid("transaction poisoned"))?.clone();
        let lock_refs: Vec<&Lock> = locks.iter().map(Arc::as_ref).collect();
        let mut tx = self.tx.lock().await;
        for w in writes {
            let write = match (w.kind.as_str(), w.json) {
                ("set", Some(j)) => Write::Set(JsonValue::from_text(j).map_err(to_js_error)?),
                ("create", Some(j)) => Write::Create(JsonValue::from_text(j).map_err(to_js_error)?),
                ("delete", _) => Write::Delete,
                (kind, _) => return Err(invalid(format!("unknown write kind {kind:?}"))),
            };
            tx.write(&self.store, &w.key, write).map_err(to_js_error)?;
        }
        let opts = CommitOptions { isolation, locks: &lock_refs, id: id.as_deref(), result: result_json.as_deref() };
        let report: CommitReport = tx.commit(&self.store, &opts).await.map_err(to_js_error)?;
        let reads = tx.read_versions().map(|(k, v)| NativeKeyVersion { key: k.to_string(), version: v.unwrap_or(-1) }).collect();
        Ok(NativeCommitReport {
            writes: report.writes as u32,
            zxid: report.zxid.map(|z| z as f64),
            versions: report.versions.into_iter().map(|(key, version)| NativeKeyVersion { key, version }).collect(),
            already_applied: report.already_applied,
            recorded_result: report.recorded_result,
            round_trips: report.round_trips,
            reads,
        })
    }
}
