//! The Node.js binding of zktx: converts arguments, calls `zktx-core`, maps errors.
//!
//! No recipe logic lives here. Errors cross into JS as `Error("CODE|outcome|message")`; the JS
//! facade (`index.js`) turns that into a `ZktxError` with `err.code` and `err.outcome`. That is
//! the one place the encoding is made ([`to_js_error`]) and the one place it is read
//! (`index.js`'s `fromNative`). Every binding body runs in `no_panic` (sync) or `guarded`
//! (async), so a panic becomes an `INTERNAL` error instead of aborting Node or escaping the format.

#![deny(clippy::unwrap_used)]

mod answers;
mod bridge;
mod coordinator;
mod election;
mod etcd;
mod logging;
mod znode;

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::FutureExt;
use tracing::Instrument as _;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use zktx_core::kv::JsonValue;
use zktx_core::backend::{AnyKeyTransaction, AnyLock, AnyStore, AnyTransaction};
use zktx_core::recipe::{AcquireOptions, Lock};
use zktx_core::transaction::{CommitReport, Isolation, Write};
use zktx_core::txn::Committed;
use zktx_core::store::MAX_PRUNE_AGE;
use zktx_core::{CancellationToken, LockKind, Outcome, SessionOptions, Store};

/// `CODE|outcome|message`, then its cause chain, each link after `\u{1f}`: a zktx error it wraps
/// as `CODE|outcome|message` again (`ROLLED_BACK` because of a `CONNECTIONLOSS`), a socket or TLS
/// failure as `CAUSE_CODE|cause message` (index.js's `fromNative` reads them all).
fn to_js_error(err: zktx_core::Error) -> napi::Error {
    napi::Error::new(Status::GenericFailure, encode_error(&err))
}

fn encode_error(err: &zktx_core::Error) -> String {
    let mut text = format!("{}|{}|{}", err.code(), err.outcome().as_str(), err);
    if let Some(inner) = err.caused_by() {
        text.push('\u{1f}');
        text.push_str(&encode_error(inner));
    } else if let Some((code, cause)) = err.cause() {
        text.push_str(&format!("\u{1f}{code}|{cause}"));
    }
    text
}

fn invalid(msg: impl std::fmt::Display) -> napi::Error {
    to_js_error(zktx_core::Error::InvalidArgument(msg.to_string()))
}

/// The `INTERNAL` error a caught panic becomes, with the panic's message.
fn panicked(outcome: Outcome, payload: &(dyn Any + Send)) -> napi::Error {
    let msg = payload.downcast_ref::<&str>().copied().or_else(|| payload.downcast_ref::<String>().map(String::as_str)).unwrap_or("(no message)");
    napi::Error::new(Status::GenericFailure, format!("INTERNAL|{}|zktx panicked: {msg}", outcome.as_str()))
}

/// Runs a synchronous body, turning a panic into an error instead of aborting Node.
fn no_panic<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(panicked(Outcome::NotApplied, p.as_ref())))
}

/// Runs an async binding body, turning a panic into `INTERNAL|unknown|...`: napi would report it
/// as a bare GenericFailure ("Panic in async function"), outside our error format. The outcome is
/// unknown because the body may have sent a write before it panicked.
async fn guarded<T>(body: impl Future<Output = Result<T>>) -> Result<T> {
    AssertUnwindSafe(body).catch_unwind().await.unwrap_or_else(|p| Err(panicked(Outcome::Unknown, p.as_ref())))
}

/// Longest wait or timeout accepted: setTimeout's limit, 2^31 - 1 ms (about 24.8 days). Longer
/// ones would overflow `Instant` arithmetic deep in the core; ZooKeeper clamps sessions far lower.
const MAX_WAIT: Duration = Duration::from_millis(i32::MAX as u64);

/// A JS number of milliseconds as a Duration in `0..=max`, else `INVALID_ARGUMENT` (never a panic:
/// `Duration::from_secs_f64` panics on values too large).
fn millis(name: &str, ms: f64, max: Duration) -> Result<Duration> {
    let refuse = || invalid(format!("{name} must be a number of milliseconds from 0 to {}, got {ms}", max.as_millis()));
    if ms.is_nan() || ms < 0.0 {
        return Err(refuse());
    }
    if ms == 0.0 {
        return Ok(Duration::ZERO); // also -0, which try_from_secs_f64 may call negative
    }
    match Duration::try_from_secs_f64(ms / 1000.0) {
        Ok(d) if d <= max => Ok(d),
        _ => Err(refuse()),
    }
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

/// This JS thread's answer watch (src/answers.rs), for tests and benchmarks only.
#[napi(object)]
pub struct NativeAnswerStats {
    /// Its epoll fd (`/proc/self/fdinfo/<fd>` lists the sockets in it), -1 when there is none.
    pub epoll_fd: i32,
    /// Wake-ups by a watched socket while a few calls were pending.
    pub woken: f64,
    /// Of those, how many waited for an answer (the others were let pass by the back-off).
    pub waits: f64,
    /// Of those, how many found a completion queued within the window.
    pub awake: f64,
    /// How long those waits took, in all (µs).
    pub awake_wait_us: f64,
    /// Wake-ups by a watched socket while no call was pending.
    pub idle: f64,
    /// Wake-ups by a watched socket with more calls pending than a wait is made for.
    pub busy: f64,
    /// Times the calls of a turn after its first were sent together (at a microtask).
    pub bursts: f64,
    /// Calls sent that way.
    pub burst_calls: f64,
}

/// See [`NativeAnswerStats`].
#[napi]
pub fn answer_stats() -> Result<NativeAnswerStats> {
    no_panic(|| {
        let s = bridge::answer_stats();
        Ok(NativeAnswerStats { epoll_fd: s.epoll_fd, woken: s.woken as f64, waits: s.waits as f64, awake: s.awake as f64, awake_wait_us: s.waited_ns as f64 / 1000.0, idle: s.idle as f64, busy: s.busy as f64, bursts: s.bursts as f64, burst_calls: s.burst_calls as f64 })
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
    let wait = timeout_ms.map(|t| millis("timeout", t, MAX_WAIT)).transpose()?;
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
pub(crate) type WeakCallback = ThreadsafeFunction<String, Unknown<'static>, String, Status, false, true>;

/// Calls `callback(event)` for every session event (`CONNECTED`, `SUSPENDED`, ...) of either
/// backend, until the session's sender is gone.
pub(crate) fn forward_session_events(mut events: tokio::sync::broadcast::Receiver<zktx_core::SessionEvent>, callback: WeakCallback) {
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
}

/// Calls `callback("NODE_DELETED" | "SESSION_ENDED" | "DISCONNECTED_TOO_LONG:<ms>")` once when
/// `lost` says the lock was lost (nothing after a plain release). For both backends' locks.
pub(crate) fn report_loss(lost: impl Future<Output = zktx_core::recipe::LockLoss> + Send + 'static, callback: WeakCallback) {
    napi::bindgen_prelude::spawn(async move {
        let reason = match lost.await {
            zktx_core::recipe::LockLoss::Released => return,
            zktx_core::recipe::LockLoss::NodeDeleted => "NODE_DELETED".to_string(),
            zktx_core::recipe::LockLoss::SessionEnded => "SESSION_ENDED".to_string(),
            zktx_core::recipe::LockLoss::DisconnectedTooLong(d) => format!("DISCONNECTED_TOO_LONG:{}", d.as_millis()),
        };
        callback.call(reason, ThreadsafeFunctionCallMode::NonBlocking);
    });
}

/// A promise for an async binding body: it runs on zktx's I/O thread ([`bridge`]), guarded,
/// inside its client's span (the core's log records, and those of the tasks it spawns, go to that
/// client's logger or level, see `logging.rs`).
fn in_span<T, F>(env: Env, span: &tracing::Span, body: F) -> Result<PromiseRaw<'static, T>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    bridge::spawn(&env, span, body)
}

/// As [`in_span`], on the runtime of the call's backend: etcd calls run where tonic's connection
/// lives ([`bridge::spawn_on_timers`]).
pub(crate) fn spawn_for<T, F>(env: &Env, span: &tracing::Span, etcd: bool, body: F) -> Result<PromiseRaw<'static, T>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    if etcd {
        bridge::spawn_on_timers(env, span, body)
    } else {
        bridge::spawn(env, span, body)
    }
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
    /// Checked by the facade: schemes are non-empty strings. Absent: no auth.
    pub auth: Option<Vec<NativeAuth>>,
    /// Resolved by the facade from a preset or a list; absent or empty: the default (`open`).
    pub acl: Option<Vec<NativeAcl>>,
    /// Checked by the facade: mechanism `DIGEST-MD5`, non-empty username.
    pub sasl: Option<NativeSasl>,
    /// PEM text, checked by the facade for shape and by the core for content.
    pub tls: Option<NativeTls>,
    /// A session to resume (`session` option): its id in hex and its password, checked by the facade.
    pub resume: Option<NativeResume>,
}

/// The `session` option: `{ id, password }` of a session to resume.
#[napi(object)]
pub struct NativeResume {
    /// Hex, at most 16 digits.
    pub id: String,
    pub password: Buffer,
}

/// The `tls` option.
#[napi(object)]
pub struct NativeTls {
    pub ca: String,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub reject_unauthorized: Option<bool>,
}

/// The `sasl` option.
#[napi(object)]
pub struct NativeSasl {
    pub mechanism: String,
    pub username: String,
    pub password: String,
}

/// One `auth` entry; the credentials are bytes (a JS string arrives UTF-8 encoded).
#[napi(object)]
pub struct NativeAuth {
    pub scheme: String,
    pub credentials: Buffer,
}

/// One ACL entry, permissions as ZooKeeper's bit mask (r=1, w=2, c=4, d=8, a=16).
#[napi(object)]
pub struct NativeAcl {
    pub perms: u32,
    pub scheme: String,
    pub id: String,
}

fn acl_of(entries: Vec<NativeAcl>) -> Result<Vec<zktx_core::session::Acl>> {
    if entries.is_empty() {
        return Ok(SessionOptions::default().acl);
    }
    znode::acl_list(entries)
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
    /// ZooKeeper: the znode version; etcd: the mod revision.
    pub version: f64,
    pub token: f64,
    pub zxid: Option<f64>,
}

impl From<Committed> for NativeCommitted {
    fn from(c: Committed) -> Self {
        NativeCommitted {
            key: c.key,
            json: c.value.into_string(),
            previous_json: c.previous.map(JsonValue::into_string),
            version: c.version as f64,
            token: c.token as f64,
            zxid: c.zxid.map(|z| z as f64),
        }
    }
}

/// One ZooKeeper session with the key-value layout.
#[napi]
pub struct NativeClient {
    store: Arc<Store>,
    /// This client's id in `logging`, and the span its calls run in.
    log_id: u64,
    span: tracing::Span,
}

impl Drop for NativeClient {
    fn drop(&mut self) {
        logging::unregister(self.log_id);
        if let Ok(mut open) = open_stores().lock() {
            open.remove(&self.log_id);
        }
    }
}

/// Every live client's store by its id (its `log_id`), for [`close_all_sync`]: the exit hook
/// names the clients to close, and they must all close at once, not one after another.
fn open_stores() -> &'static Mutex<HashMap<u64, std::sync::Weak<Store>>> {
    static OPEN: OnceLock<Mutex<HashMap<u64, std::sync::Weak<Store>>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

/// How long a synchronous close may block the exiting thread, however many clients close:
/// connected, a close takes a round trip; a frozen or unreachable server never answers, and the
/// process is leaving anyway (its CloseSession requests are already on their way).
const EXIT_CLOSE_BOUND: Duration = Duration::from_secs(2);

/// How long the exit hook waits for `zktx-io` to start the calls made before the exit (some µs
/// when it is not stuck), before it closes the sessions.
const EXIT_START_BOUND: Duration = Duration::from_millis(100);

/// Closes the sessions of the clients with these ids, all at once, blocking the calling thread
/// for at most [`EXIT_CLOSE_BOUND`] in total: for `process.on('exit')`, where nothing
/// asynchronous runs any more. Pending calls are cancelled and every CloseSession is sent at
/// once; waiting for a server-side expiry (what `close()` does when disconnected) is pointless
/// for a process about to exit. Unknown ids (clients already gone) are skipped.
#[napi]
pub fn close_all_sync(ids: Vec<f64>) -> Result<()> {
    no_panic(|| {
        // calls made before the exit go first: they are sent before the sessions close
        bridge::start_submitted(EXIT_START_BOUND);
        let stores: Vec<(Arc<Store>, tracing::Span)> = {
            let open = open_stores().lock().map_err(|_| invalid("client registry poisoned"))?;
            ids.iter().filter_map(|id| open.get(&(*id as u64)).and_then(std::sync::Weak::upgrade)).map(|s| (s, tracing::Span::current())).collect()
        };
        close_stores_blocking(stores);
        Ok(())
    })
}

/// Closes every store concurrently, blocking until all closed or [`EXIT_CLOSE_BOUND`] passed.
fn close_stores_blocking(stores: Vec<(Arc<Store>, tracing::Span)>) {
    if stores.is_empty() {
        return;
    }
    napi::bindgen_prelude::block_on(async move {
        let closes = stores.into_iter().map(|(store, span)| async move { store.close().await }.instrument(span));
        let _ = tokio::time::timeout(EXIT_CLOSE_BOUND, futures_util::future::join_all(closes)).await;
    });
}

#[napi]
impl NativeClient {
    #[napi(constructor)]
    pub fn new(options: NativeOptions) -> Result<Self> {
        no_panic(|| {
            let opts = SessionOptions {
                connect: options.connect,
                session_timeout: millis("timeout", options.timeout_ms, MAX_WAIT)?,
                connect_timeout: options.connect_timeout_ms.map(|t| millis("connectTimeout", t, MAX_WAIT)).transpose()?,
                request_timeout: options.request_timeout_ms.map(|t| millis("requestTimeout", t, MAX_WAIT)).transpose()?,
                host_order_deterministic: options.host_order_deterministic,
                reconnect_after_expiry: options.reconnect_after_expiry,
                lost_after: options.lost_after.unwrap_or(1.0),
                auth: options.auth.unwrap_or_default().into_iter().map(|a| zktx_core::session::Auth { scheme: a.scheme, credentials: a.credentials.to_vec() }).collect(),
                acl: acl_of(options.acl.unwrap_or_default())?,
                tls: options.tls.map(|t| zktx_core::session::Tls { ca: t.ca, cert: t.cert, key: t.key, verify_hostname: t.reject_unauthorized != Some(false) }),
                resume: match options.resume {
                    None => None,
                    Some(r) => Some(zktx_core::session::Resume {
                        id: u64::from_str_radix(&r.id, 16).map_err(|_| invalid(format!("session.id must be a session id in hex (at most 16 digits), got {:?}", r.id)))? as i64,
                        password: r.password.to_vec(),
                    }),
                },
                sasl: match options.sasl {
                    None => None,
                    Some(s) if s.mechanism == "DIGEST-MD5" => Some(zktx_core::session::Sasl::DigestMd5 { username: s.username, password: s.password }),
                    Some(s) => return Err(invalid(format!("sasl: unsupported mechanism {:?} (supported: DIGEST-MD5)", s.mechanism))),
                },
            };
            let store = Arc::new(Store::new(opts).map_err(to_js_error)?);
            let (log_id, span) = logging::register(options.log_level);
            open_stores().lock().map_err(|_| invalid("client registry poisoned"))?.insert(log_id, Arc::downgrade(&store));
            Ok(NativeClient { store, log_id, span })
        })
    }

    /// The most recent session event (`CONNECTED`, `SUSPENDED`, ...), or `NOT_CONNECTED`.
    #[napi(getter)]
    pub fn state(&self) -> Result<String> {
        no_panic(|| Ok(self.store.session().last_event().map_or("NOT_CONNECTED", |e| e.as_str()).to_string()))
    }

    /// Sends this client's log records to `callback(json)` (`{"level","message","fields"}`)
    /// instead of stderr, at the same level. The callback does not keep Node alive.
    #[napi]
    pub fn set_logger(&self, callback: WeakCallback) -> Result<()> {
        no_panic(|| {
            logging::set_logger(self.log_id, callback);
            Ok(())
        })
    }

    /// Calls `callback(event)` on every session event. The callback does not keep Node alive.
    #[napi]
    pub fn on_state(&self, callback: WeakCallback) -> Result<()> {
        no_panic(|| {
            forward_session_events(self.store.session().subscribe(), callback);
            Ok(())
        })
    }

    #[napi]
    pub fn connect(&self, env: Env) -> Result<PromiseRaw<'static, ()>> {
        no_panic(|| {
            let store = self.store.clone();
            in_span(env, &self.span, async move {
                store.session().connect().await.map_err(to_js_error)
            })
        })
    }

    #[napi]
    pub fn close(&self, env: Env) -> Result<PromiseRaw<'static, ()>> {
        no_panic(|| {
            let store = self.store.clone();
            in_span(env, &self.span, async move {
                store.close().await;
                Ok(())
            })
        })
    }

    /// This client's id, for [`close_all_sync`].
    #[napi(getter)]
    pub fn id(&self) -> Result<f64> {
        no_panic(|| Ok(self.log_id as f64))
    }

    /// Closes the session, blocking the calling thread (a round trip when connected, at most
    /// 2 s). To close several clients, [`close_all_sync`] closes them together in that bound.
    #[napi]
    pub fn close_sync(&self) -> Result<()> {
        no_panic(|| {
            // this turn's calls first, as `close_all_sync` does
            bridge::start_submitted(EXIT_START_BOUND);
            close_stores_blocking(vec![(self.store.clone(), self.span.clone())]);
            Ok(())
        })
    }

    /// Acquires a lock: kind is "exclusive", "read", "write" or "lease" (with `permits`).
    #[napi]
    pub fn acquire(&self, env: Env, kind: String, path: String, permits: Option<u32>, timeout_ms: Option<f64>, cancel_id: Option<u32>) -> Result<PromiseRaw<'static, NativeLock>> {
        no_panic(|| {
            let store = self.store.clone();
            in_span(env, &self.span, async move {
                let kind = lock_kind(&kind, permits)?;
                let opts = acquire_options(timeout_ms, cancel_id)?;
                let lock = store.acquire(kind, &path, &opts).await.map_err(to_js_error)?;
                Ok(NativeLock::zookeeper(lock))
            })
        })
    }

    /// Acquires exclusive locks on all paths, all or nothing.
    #[napi]
    pub fn multi_lock(&self, env: Env, paths: Vec<String>, timeout_ms: Option<f64>, cancel_id: Option<u32>) -> Result<PromiseRaw<'static, Vec<NativeLock>>> {
        no_panic(|| {
            let store = self.store.clone();
            in_span(env, &self.span, async move {
                let opts = acquire_options(timeout_ms, cancel_id)?;
                let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
                let locks = store.multi_lock(&refs, &opts).await.map_err(to_js_error)?;
                Ok(locks.into_iter().map(NativeLock::zookeeper).collect())
            })
        })
    }

    /// A leader election at `path` in which this client takes part as `id` (`zk.election`).
    #[napi]
    pub fn election(&self, path: String, id: String) -> Result<election::NativeElection> {
        no_panic(|| election::new_election(self.store.clone(), self.span.clone(), path, id))
    }

    /// The raw ZooKeeper API on this client's session (`zk.znodes`).
    #[napi]
    pub fn znodes(&self) -> Result<znode::NativeZnodes> {
        no_panic(|| Ok(znode::NativeZnodes { store: self.store.clone(), span: self.span.clone() }))
    }

    /// A writer fenced on locks added with `add`.
    #[napi]
    pub fn fence(&self) -> Result<NativeFence> {
        no_panic(|| Ok(NativeFence::new(AnyStore::ZooKeeper(self.store.clone()), self.span.clone())))
    }

    #[napi]
    pub fn get(&self, env: Env, key: String) -> Result<PromiseRaw<'static, Option<NativeVersioned>>> {
        no_panic(|| {
            let store = self.store.clone();
            in_span(env, &self.span, async move {
                let v = store.get(&key).await.map_err(to_js_error)?;
                Ok(v.map(|v| NativeVersioned { json: v.value.into_string(), version: v.version }))
            })
        })
    }

    #[napi]
    pub fn set(&self, env: Env, key: String, json: String) -> Result<PromiseRaw<'static, i32>> {
        no_panic(|| {
            let store = self.store.clone();
            in_span(env, &self.span, async move {
                let value = JsonValue::from_text(json).map_err(to_js_error)?;
                store.set(&key, &value, &[]).await.map_err(to_js_error)
            })
        })
    }

    #[napi]
    pub fn execute_transaction(&self, env: Env, key: String, json: String, timeout_ms: Option<f64>, cancel_id: Option<u32>) -> Result<PromiseRaw<'static, NativeCommitted>> {
        no_panic(|| {
            let store = self.store.clone();
            in_span(env, &self.span, async move {
                let value = JsonValue::from_text(json).map_err(to_js_error)?;
                let opts = acquire_options(timeout_ms, cancel_id)?;
                store.execute_transaction(&key, value, &opts).await.map(Into::into).map_err(to_js_error)
            })
        })
    }

    #[napi]
    pub fn children(&self, env: Env, path: String) -> Result<PromiseRaw<'static, Vec<String>>> {
        no_panic(|| {
            let store = self.store.clone();
            in_span(env, &self.span, async move {
                store.children(&path).await.map_err(to_js_error)
            })
        })
    }


    /// Deletes transaction-id markers older than `older_than_ms`; resolves how many.
    #[napi]
    pub fn prune_transaction_ids(&self, env: Env, older_than_ms: f64) -> Result<PromiseRaw<'static, u32>> {
        no_panic(|| {
            let store = self.store.clone();
            in_span(env, &self.span, async move {
                let older_than = millis("olderThanMs", older_than_ms, MAX_PRUNE_AGE)?;
                store.prune_transaction_ids(older_than).await.map(|n| n as u32).map_err(to_js_error)
            })
        })
    }

    /// Removes tombstones of keys deleted more than `older_than_ms` ago; resolves how many.
    #[napi]
    pub fn compact_tombstones(&self, env: Env, older_than_ms: f64) -> Result<PromiseRaw<'static, NativeCompaction>> {
        no_panic(|| {
            let store = self.store.clone();
            in_span(env, &self.span, async move {
                let older_than = millis("olderThanMs", older_than_ms, MAX_PRUNE_AGE)?;
                let c = store.compact_tombstones(older_than).await.map_err(to_js_error)?;
                Ok(NativeCompaction {
                    marked: c.marked as u32,
                    removed: c.removed as u32,
                    skipped: c.skipped.into_iter().map(|(key, reason)| NativeSkipped { key, reason }).collect(),
                })
            })
        })
    }

    /// Whether a transaction with id `id` committed: `{ applied, resultJson }`.
    #[napi]
    pub fn transaction_record(&self, env: Env, id: String) -> Result<PromiseRaw<'static, NativeRecord>> {
        no_panic(|| {
            let store = self.store.clone();
            in_span(env, &self.span, async move {
                let r = zktx_core::transaction::recorded(&store, Some(&id)).await.map_err(to_js_error)?;
                Ok(NativeRecord { applied: r.is_some(), result_json: r.flatten() })
            })
        })
    }

    /// Moves this client's clock forward (tests only: `zktx/testing`'s `advanceClock`).
    #[napi]
    pub fn advance_clock_for_testing(&self, ms: f64) -> Result<()> {
        no_panic(|| {
            self.store.clock().advance(millis("ms", ms, MAX_PRUNE_AGE)?);
            Ok(())
        })
    }

    /// A transaction coordinator named `name` with these participants and sagas; `dispatch`
    /// calls them (see `coordinator.rs`).
    #[napi]
    pub fn coordinator(&self, name: String, participants: Vec<String>, sagas: Vec<coordinator::NativeSagaDefinition>, dispatch: coordinator::Dispatch, participant_timeout_ms: Option<f64>) -> Result<coordinator::NativeCoordinator> {
        no_panic(|| coordinator::new_coordinator(AnyStore::ZooKeeper(self.store.clone()), self.span.clone(), name, participants, sagas, dispatch, participant_timeout_ms))
    }

    /// A new multi-key transaction attempt.
    #[napi]
    pub fn transaction(&self) -> Result<NativeTransaction> {
        no_panic(|| Ok(NativeTransaction::new(AnyStore::ZooKeeper(self.store.clone()), self.span.clone())))
    }

    #[napi]
    pub fn begin(&self, env: Env, key: String, timeout_ms: Option<f64>, cancel_id: Option<u32>) -> Result<PromiseRaw<'static, NativeKeyTransaction>> {
        no_panic(|| {
            let store = self.store.clone();
            in_span(env, &self.span, async move {
                let opts = acquire_options(timeout_ms, cancel_id)?;
                let tx = store.begin(&key, &opts).await.map_err(to_js_error)?;
                Ok(NativeKeyTransaction::new(AnyKeyTransaction::ZooKeeper(tx)))
            })
        })
    }
}

/// What a compaction pass did.
#[napi(object)]
pub struct NativeCompaction {
    pub marked: u32,
    pub removed: u32,
    pub skipped: Vec<NativeSkipped>,
}

/// A tombstone compaction could not remove, and why.
#[napi(object)]
pub struct NativeSkipped {
    pub key: String,
    pub reason: String,
}

/// Whether a transaction id's commit applied, and the result it recorded.
#[napi(object)]
pub struct NativeRecord {
    pub applied: bool,
    pub result_json: Option<String>,
}

/// A held lock, on either backend.
#[napi]
pub struct NativeLock {
    lock: AnyLock,
    span: tracing::Span,
}

impl NativeLock {
    /// A ZooKeeper lock for JS.
    pub(crate) fn zookeeper(lock: Lock) -> Self {
        NativeLock { lock: AnyLock::ZooKeeper(Arc::new(lock)), span: tracing::Span::current() }
    }

    /// An etcd lock for JS.
    pub(crate) fn etcd(lock: zktx_core::backend::etcd::EtcdLock) -> Self {
        NativeLock { lock: AnyLock::Etcd(Arc::new(lock)), span: tracing::Span::current() }
    }
}

/// Writes fenced on a set of locks.
#[napi]
pub struct NativeFence {
    store: AnyStore,
    locks: Mutex<Vec<AnyLock>>,
    span: tracing::Span,
}

impl NativeFence {
    /// A fenced writer on either backend's store.
    pub(crate) fn new(store: AnyStore, span: tracing::Span) -> Self {
        NativeFence { store, locks: Mutex::new(Vec::new()), span }
    }
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

    /// Writes `key` only if every added lock is still held (one multi, or one etcd Txn).
    #[napi]
    pub fn set(&self, env: Env, key: String, json: String) -> Result<PromiseRaw<'static, f64>> {
        no_panic(|| {
            let locks = self.locks.lock().map(|l| l.clone()).map_err(|_| invalid("fence poisoned"));
            let store = self.store.clone();
            spawn_for(&env, &self.span, store.is_etcd(), async move {
                let value = JsonValue::from_text(json).map_err(to_js_error)?;
                store.set(&key, &value, &locks?).await.map(|v| v as f64).map_err(to_js_error)
            })
        })
    }
}

#[napi]
impl NativeLock {
    /// "zookeeper" or "etcd": which client's writes this lock can fence.
    #[napi(getter)]
    pub fn backend(&self) -> Result<String> {
        no_panic(|| Ok(if self.lock.is_etcd() { "etcd" } else { "zookeeper" }.to_string()))
    }

    #[napi(getter)]
    pub fn path(&self) -> Result<String> {
        no_panic(|| Ok(self.lock.path().to_string()))
    }

    /// The holder's node (ZooKeeper) or key (etcd).
    #[napi(getter)]
    pub fn node_path(&self) -> Result<String> {
        no_panic(|| Ok(self.lock.node_path().to_string()))
    }

    /// The fencing token: the node's czxid, or the key's create revision.
    #[napi(getter)]
    pub fn token(&self) -> Result<f64> {
        no_panic(|| Ok(self.lock.token() as f64))
    }

    /// Contenders ahead of this one when it joined the queue (0: the lock was free), if known.
    #[napi(getter)]
    pub fn queue_position(&self) -> Result<Option<u32>> {
        no_panic(|| Ok(self.lock.queue_position()))
    }

    /// Whether it provably holds right now (etcd: its lease renewed within `lostAfter` × TTL),
    /// checked by the facade when an acquisition is delivered.
    #[napi(getter)]
    pub fn provably_held(&self) -> Result<bool> {
        no_panic(|| Ok(self.lock.provably_held()))
    }

    #[napi(getter)]
    pub fn released(&self) -> Result<bool> {
        no_panic(|| Ok(self.lock.is_released()))
    }

    #[napi]
    pub fn release(&self, env: Env) -> Result<PromiseRaw<'static, ()>> {
        no_panic(|| {
            let lock = self.lock.clone();
            spawn_for(&env, &self.span, lock.is_etcd(), async move { lock.release().await.map_err(to_js_error) })
        })
    }

    /// Calls `callback("NODE_DELETED" | "SESSION_ENDED" | "DISCONNECTED_TOO_LONG:<ms>")` once if
    /// the lock is lost (not after a release). The callback does not keep Node alive.
    #[napi]
    pub fn on_lost(&self, callback: WeakCallback) -> Result<()> {
        no_panic(|| {
            // The future, not the lock: a lock garbage-collected while watched is still released.
            report_loss(self.lock.lost(), callback);
            Ok(())
        })
    }

    #[napi]
    pub fn is_held(&self, env: Env) -> Result<PromiseRaw<'static, bool>> {
        no_panic(|| {
            let lock = self.lock.clone();
            spawn_for(&env, &self.span, lock.is_etcd(), async move { lock.is_held().await.map_err(to_js_error) })
        })
    }
}

/// A key locked for update (the updater form of `executeTransaction`).
#[napi]
pub struct NativeKeyTransaction {
    tx: Arc<AnyKeyTransaction>,
    span: tracing::Span,
}

impl NativeKeyTransaction {
    /// A key transaction of either backend for JS.
    pub(crate) fn new(tx: AnyKeyTransaction) -> Self {
        NativeKeyTransaction { tx: Arc::new(tx), span: tracing::Span::current() }
    }
}

#[napi]
impl NativeKeyTransaction {
    /// The current value as JSON text, `null` when the key is absent; `INVALID_ARGUMENT` for data
    /// another client wrote that is not JSON.
    #[napi(getter)]
    pub fn current_json(&self) -> Result<Option<String>> {
        no_panic(|| Ok(self.tx.decoded().map_err(to_js_error)?.map(|v| v.as_str().to_string())))
    }

    #[napi(getter)]
    pub fn token(&self) -> Result<f64> {
        no_panic(|| Ok(self.tx.token() as f64))
    }

    #[napi]
    pub fn commit(&self, env: Env, json: String) -> Result<PromiseRaw<'static, NativeCommitted>> {
        no_panic(|| {
            let txm = self.tx.clone();
            spawn_for(&env, &self.span, txm.is_etcd(), async move {
                let value = match JsonValue::from_text(json) {
                    Ok(v) => v,
                    Err(e) => {
                        let _ = txm.abort().await;
                        return Err(to_js_error(e));
                    },
                };
                txm.commit(value).await.map(Into::into).map_err(to_js_error)
            })
        })
    }

    #[napi]
    pub fn abort(&self, env: Env) -> Result<PromiseRaw<'static, ()>> {
        no_panic(|| {
            let txm = self.tx.clone();
            spawn_for(&env, &self.span, txm.is_etcd(), async move { txm.abort().await.map_err(to_js_error) })
        })
    }
}

/// Backoff before retry `attempt` of a conflicting transaction, in ms (jittered).
#[napi]
pub fn retry_delay_ms(attempt: u32) -> Result<f64> {
    no_panic(|| Ok(zktx_core::transaction::retry_delay(attempt).as_secs_f64() * 1000.0))
}

/// A lock kind as the facade names it: "exclusive", "read", "write" or "lease" (with `permits`).
pub(crate) fn lock_kind(kind: &str, permits: Option<u32>) -> Result<LockKind> {
    Ok(match (kind, permits) {
        ("exclusive", _) => LockKind::Exclusive,
        ("read", _) => LockKind::Read,
        ("write", _) => LockKind::Write,
        ("lease", Some(p)) => LockKind::Lease(p),
        (other, _) => return Err(invalid(format!("unknown lock kind {other:?}"))),
    })
}

/// Reads `keys` into a transaction attempt (a multi-key transaction's, or a coordinator run's):
/// JSON text or null per key.
pub(crate) fn read_keys(env: &Env, span: &tracing::Span, store: AnyStore, txm: Arc<tokio::sync::Mutex<AnyTransaction>>, keys: Vec<String>) -> Result<PromiseRaw<'static, Vec<Option<String>>>> {
    spawn_for(env, span, store.is_etcd(), async move {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let values = txm.lock().await.get_many(&store, &keys).await.map_err(to_js_error)?;
        Ok(values.into_iter().map(|v| v.map(JsonValue::into_string)).collect())
    })
}

/// The writes a JS transaction buffered, as the core's (either backend).
pub(crate) fn parse_writes(writes: Vec<NativeWrite>) -> Result<Vec<(String, Write)>> {
    writes
        .into_iter()
        .map(|w| {
            let write = match (w.kind.as_str(), w.json) {
                ("set", Some(j)) => Write::Set(JsonValue::from_text(j).map_err(to_js_error)?),
                ("create", Some(j)) => Write::Create(JsonValue::from_text(j).map_err(to_js_error)?),
                ("delete", _) => Write::Delete,
                ("absent", _) => Write::Absent,
                (kind, _) => return Err(invalid(format!("unknown write kind {kind:?}"))),
            };
            Ok((w.key, write))
        })
        .collect()
}

/// One buffered write of a transaction: kind is "set", "create", "delete" or "absent" (a create
/// then a delete: the key must be absent and stays so).
#[napi(object)]
pub struct NativeWrite {
    pub kind: String,
    pub key: String,
    pub json: Option<String>,
}

#[napi(object)]
pub struct NativeKeyVersion {
    pub key: String,
    /// ZooKeeper: a znode version; etcd: a mod revision; -1: read as absent.
    pub version: f64,
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

impl NativeCommitReport {
    /// A commit's report, with the versions read (`None`: read as absent, -1 in JS).
    pub(crate) fn new<'a>(report: CommitReport, reads: impl Iterator<Item = (&'a str, Option<i64>)>) -> Self {
        NativeCommitReport {
            writes: report.writes as u32,
            zxid: report.zxid.map(|z| z as f64),
            versions: report.versions.into_iter().map(|(key, version)| NativeKeyVersion { key, version: version as f64 }).collect(),
            already_applied: report.already_applied,
            recorded_result: report.recorded_result,
            round_trips: report.round_trips,
            reads: reads.map(|(k, v)| NativeKeyVersion { key: k.to_string(), version: v.map_or(-1.0, |v| v as f64) }).collect(),
        }
    }
}

/// One attempt of a multi-key transaction on either backend (the retry loop is in index.js).
#[napi]
pub struct NativeTransaction {
    store: AnyStore,
    tx: Arc<tokio::sync::Mutex<AnyTransaction>>,
    locks: Mutex<Vec<AnyLock>>,
    span: tracing::Span,
}

impl NativeTransaction {
    /// A new attempt on either backend's store.
    pub(crate) fn new(store: AnyStore, span: tracing::Span) -> Self {
        let tx = Arc::new(tokio::sync::Mutex::new(store.transaction()));
        NativeTransaction { store, tx, locks: Mutex::new(Vec::new()), span }
    }
}

#[napi]
impl NativeTransaction {
    /// Reads keys (one round trip for those not read yet); JSON text or null per key.
    #[napi]
    pub fn get_many(&self, env: Env, keys: Vec<String>) -> Result<PromiseRaw<'static, Vec<Option<String>>>> {
        no_panic(|| read_keys(&env, &self.span, self.store.clone(), self.tx.clone(), keys))
    }

    /// Fences the commit on a lock (may be called for several).
    #[napi]
    pub fn add_lock(&self, lock: &NativeLock) -> Result<()> {
        no_panic(|| {
            self.locks.lock().map_err(|_| invalid("transaction poisoned"))?.push(lock.lock.clone());
            Ok(())
        })
    }

    /// Applies the buffered writes and commits them in one multi (or one etcd Txn).
    #[napi]
    pub fn commit(&self, env: Env, writes: Vec<NativeWrite>, isolation: String, id: Option<String>, result_json: Option<String>) -> Result<PromiseRaw<'static, NativeCommitReport>> {
        no_panic(|| {
            let locks = self.locks.lock().map(|l| l.clone()).map_err(|_| invalid("transaction poisoned"));
            let (store, txm) = (self.store.clone(), self.tx.clone());
            spawn_for(&env, &self.span, store.is_etcd(), async move {
                let isolation: Isolation = isolation.parse().map_err(to_js_error)?;
                let locks = locks?;
                let mut tx = txm.lock().await;
                for (key, write) in parse_writes(writes)? {
                    tx.write(&store, &key, write).map_err(to_js_error)?;
                }
                let report: CommitReport = tx.commit(&store, isolation, &locks, id.as_deref(), result_json.as_deref()).await.map_err(to_js_error)?;
                let reads = tx.read_versions();
                Ok(NativeCommitReport::new(report, reads.iter().map(|(k, v)| (k.as_str(), *v))))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A test executable has no Node to resolve napi's symbols against; these are the ones still
    // referenced after dead-code removal (dropping a napi::Error that holds a JS reference). The
    // tests below never get there: they only build plain napi::Errors.
    #[no_mangle]
    extern "C" fn napi_reference_unref() -> i32 {
        unreachable!("unit tests do not call into Node")
    }
    #[no_mangle]
    extern "C" fn napi_delete_reference() -> i32 {
        unreachable!("unit tests do not call into Node")
    }
    #[no_mangle]
    extern "C" fn napi_call_threadsafe_function() -> i32 {
        unreachable!("unit tests do not call into Node")
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime")
    }

    #[test]
    fn guarded_turns_a_panic_in_an_async_body_into_internal_with_unknown_outcome() {
        let rt = runtime();
        let err = rt.block_on(guarded::<()>(async { panic!("boom {}", 1) })).expect_err("a panic must become an error");
        assert_eq!(err.reason, "INTERNAL|unknown|zktx panicked: boom 1");
        let err = rt.block_on(guarded::<()>(async { std::panic::panic_any(7u8) })).expect_err("any payload");
        assert_eq!(err.reason, "INTERNAL|unknown|zktx panicked: (no message)");
        assert_eq!(rt.block_on(guarded(async { Ok(7) })).ok(), Some(7));
        let ours = rt.block_on(guarded::<()>(async { Err(invalid("bad")) })).expect_err("errors pass through");
        assert_eq!(ours.reason, "INVALID_ARGUMENT|not_applied|bad");
    }

    #[test]
    fn no_panic_turns_a_panic_in_a_sync_body_into_internal() {
        let err = no_panic::<()>(|| panic!("static")).expect_err("a panic must become an error");
        assert_eq!(err.reason, "INTERNAL|not_applied|zktx panicked: static");
        assert_eq!(no_panic(|| Ok(3)).ok(), Some(3));
    }

    #[test]
    fn millis_refuses_what_from_secs_f64_would_panic_on() {
        for ms in [f64::NAN, -1.0, f64::INFINITY, 1e300, f64::MAX, 1e22, i32::MAX as f64 + 1.0] {
            let err = millis("t", ms, MAX_WAIT).expect_err("out of range");
            assert!(err.reason.starts_with("INVALID_ARGUMENT|not_applied|t must be"), "{ms}: {}", err.reason);
        }
        assert_eq!(millis("t", -0.0, MAX_WAIT).ok(), Some(Duration::ZERO));
        assert_eq!(millis("t", 1.5, MAX_WAIT).ok(), Some(Duration::from_micros(1500)));
        assert_eq!(millis("t", i32::MAX as f64, MAX_WAIT).ok(), Some(MAX_WAIT));
        assert_eq!(millis("t", 315_360_000_000.0, MAX_PRUNE_AGE).ok(), Some(MAX_PRUNE_AGE));
        assert!(millis("t", 315_360_000_001.0, MAX_PRUNE_AGE).is_err());
    }
}
