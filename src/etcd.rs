//! The etcd backend's binding: `NativeEtcdClient` and its locks. Thin: checks numbers, converts,
//! delegates to `zktx_core::backend::etcd`. Its lock has the surface of `NativeLock`, so the JS
//! facade's `Lock` wraps either.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use zktx_core::backend::etcd::{EtcdLock, EtcdOptions, EtcdSession, EtcdTls, WeakEtcdSession};
use zktx_core::LockKind;

use crate::{acquire_options, invalid, logging, millis, no_panic, to_js_error, WeakCallback, MAX_WAIT};

/// Options already checked by the JS facade (unknown keys refused there).
#[napi(object)]
pub struct NativeEtcdOptions {
    pub endpoints: Vec<String>,
    pub timeout_ms: f64,
    pub request_timeout_ms: Option<f64>,
    pub connect_timeout_ms: Option<f64>,
    pub lost_after: Option<f64>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// PEM texts, checked for shape by the facade.
    pub tls: Option<NativeEtcdTls>,
    pub log_level: u32,
}

/// TLS to etcd's client URLs.
#[napi(object)]
pub struct NativeEtcdTls {
    pub ca: String,
    pub cert: Option<String>,
    pub key: Option<String>,
}

/// A session on etcd (a lease with its keep-alive).
#[napi]
pub struct NativeEtcdClient {
    session: EtcdSession,
    id: u64,
    span: tracing::Span,
}

/// The etcd clients not closed yet, by id, for [`close_etcd_sync`] (weak: a registry entry never
/// keeps a session, and its lease, alive).
fn open_sessions() -> &'static Mutex<HashMap<u64, WeakEtcdSession>> {
    static OPEN: OnceLock<Mutex<HashMap<u64, WeakEtcdSession>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

/// Closes the etcd clients with these ids (revokes their leases) all at once, blocking the
/// calling thread at most 2 s in all: for the exit hook, where nothing asynchronous runs any more.
#[napi]
pub fn close_etcd_sync(ids: Vec<f64>) -> Result<()> {
    no_panic(|| {
        let sessions: Vec<EtcdSession> = {
            let open = open_sessions().lock().map_err(|_| invalid("etcd client registry poisoned"))?;
            ids.iter().filter_map(|id| open.get(&(*id as u64)).and_then(WeakEtcdSession::upgrade)).collect()
        };
        if sessions.is_empty() {
            return Ok(());
        }
        crate::bridge::block_on_io(async move {
            let closes = sessions.iter().map(|s| s.close());
            let _ = tokio::time::timeout(Duration::from_secs(2), futures_util::future::join_all(closes)).await;
        });
        Ok(())
    })
}

#[napi]
impl NativeEtcdClient {
    #[napi(constructor)]
    pub fn new(options: NativeEtcdOptions) -> Result<Self> {
        no_panic(|| {
            let user = match (options.user, options.password) {
                (Some(u), Some(p)) => Some((u, p)),
                (None, None) => None,
                _ => return Err(invalid("etcd auth needs both user and password")),
            };
            let opts = EtcdOptions {
                endpoints: options.endpoints,
                session_timeout: millis("timeout", options.timeout_ms, MAX_WAIT)?,
                request_timeout: options.request_timeout_ms.map(|t| millis("requestTimeout", t, MAX_WAIT)).transpose()?,
                connect_timeout: options.connect_timeout_ms.map(|t| millis("connectTimeout", t, MAX_WAIT)).transpose()?,
                lost_after: options.lost_after.unwrap_or(1.0),
                user,
                tls: match options.tls {
                    None => None,
                    Some(t) => Some(EtcdTls {
                        ca: t.ca,
                        identity: match (t.cert, t.key) {
                            (Some(c), Some(k)) => Some((c, k)),
                            (None, None) => None,
                            _ => return Err(invalid("tls: a client certificate needs both cert and key")),
                        },
                    }),
                },
            };
            let session = EtcdSession::new(opts).map_err(to_js_error)?;
            let (id, span) = logging::register(options.log_level);
            open_sessions().lock().map_err(|_| invalid("etcd client registry poisoned"))?.insert(id, session.downgrade());
            Ok(NativeEtcdClient { session, id, span })
        })
    }

    /// The most recent session event, or `NOT_CONNECTED`.
    #[napi(getter)]
    pub fn state(&self) -> Result<String> {
        no_panic(|| Ok(self.session.last_event().map_or("NOT_CONNECTED", |e| e.as_str()).to_string()))
    }

    /// Calls `callback(event)` on every session event. The callback does not keep Node alive.
    #[napi]
    pub fn on_state(&self, callback: WeakCallback) -> Result<()> {
        no_panic(|| {
            crate::forward_session_events(self.session.subscribe(), callback);
            Ok(())
        })
    }

    #[napi]
    pub fn connect(&self, env: Env) -> Result<PromiseRaw<'static, ()>> {
        no_panic(|| {
            let session = self.session.clone();
            crate::bridge::spawn_on_timers(&env, &self.span, async move { session.connect().await.map_err(to_js_error) })
        })
    }

    #[napi]
    pub fn close(&self, env: Env) -> Result<PromiseRaw<'static, ()>> {
        no_panic(|| {
            let session = self.session.clone();
            let id = self.id;
            crate::bridge::spawn_on_timers(&env, &self.span, async move {
                session.close().await;
                if let Ok(mut open) = open_sessions().lock() {
                    open.remove(&id);
                }
                Ok(())
            })
        })
    }

    /// This client's id, for [`close_etcd_sync`].
    #[napi(getter)]
    pub fn id(&self) -> Result<f64> {
        no_panic(|| Ok(self.id as f64))
    }

    /// Acquires a lock: kind is "exclusive", "read", "write" or "lease" (with `permits`).
    #[napi]
    pub fn acquire(&self, env: Env, kind: String, path: String, permits: Option<u32>, timeout_ms: Option<f64>, cancel_id: Option<u32>) -> Result<PromiseRaw<'static, NativeEtcdLock>> {
        no_panic(|| {
            let session = self.session.clone();
            crate::bridge::spawn_on_timers(&env, &self.span, async move {
                let kind = match (kind.as_str(), permits) {
                    ("exclusive", _) => LockKind::Exclusive,
                    ("read", _) => LockKind::Read,
                    ("write", _) => LockKind::Write,
                    ("lease", Some(p)) => LockKind::Lease(p),
                    (other, _) => return Err(invalid(format!("unknown lock kind {other:?}"))),
                };
                let opts = acquire_options(timeout_ms, cancel_id)?;
                let lock = session.acquire(kind, &path, &opts).await.map_err(to_js_error)?;
                Ok(NativeEtcdLock { lock: Arc::new(lock), span: tracing::Span::current() })
            })
        })
    }
}

#[napi]
impl NativeEtcdClient {
    /// Acquires exclusive locks on all paths, all or nothing.
    #[napi]
    pub fn multi_lock(&self, env: Env, paths: Vec<String>, timeout_ms: Option<f64>, cancel_id: Option<u32>) -> Result<PromiseRaw<'static, Vec<NativeEtcdLock>>> {
        no_panic(|| {
            let session = self.session.clone();
            crate::bridge::spawn_on_timers(&env, &self.span, async move {
                let opts = acquire_options(timeout_ms, cancel_id)?;
                let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
                let locks = session.multi_lock(&refs, &opts).await.map_err(to_js_error)?;
                Ok(locks.into_iter().map(|l| NativeEtcdLock { lock: Arc::new(l), span: tracing::Span::current() }).collect())
            })
        })
    }
}

/// A held etcd lock (the surface of `NativeLock`).
#[napi]
pub struct NativeEtcdLock {
    lock: Arc<EtcdLock>,
    span: tracing::Span,
}

#[napi]
impl NativeEtcdLock {
    #[napi(getter)]
    pub fn path(&self) -> Result<String> {
        no_panic(|| Ok(self.lock.path().to_string()))
    }

    /// This holder's key (the lock's "node").
    #[napi(getter)]
    pub fn node_path(&self) -> Result<String> {
        no_panic(|| Ok(self.lock.key().to_string()))
    }

    /// The key's create revision.
    #[napi(getter)]
    pub fn token(&self) -> Result<f64> {
        no_panic(|| Ok(self.lock.token() as f64))
    }

    #[napi(getter)]
    pub fn queue_position(&self) -> Result<Option<u32>> {
        no_panic(|| Ok(self.lock.queue_position()))
    }

    #[napi(getter)]
    pub fn released(&self) -> Result<bool> {
        no_panic(|| Ok(self.lock.is_released()))
    }

    #[napi]
    pub fn release(&self, env: Env) -> Result<PromiseRaw<'static, ()>> {
        no_panic(|| {
            let lock = self.lock.clone();
            crate::bridge::spawn_on_timers(&env, &self.span, async move { lock.release().await.map_err(to_js_error) })
        })
    }

    /// As `NativeLock.onLost`: `NODE_DELETED`, `SESSION_ENDED` or `DISCONNECTED_TOO_LONG:<ms>`.
    #[napi]
    pub fn on_lost(&self, callback: WeakCallback) -> Result<()> {
        no_panic(|| {
            crate::report_loss(self.lock.lost(), callback);
            Ok(())
        })
    }

    #[napi]
    pub fn is_held(&self, env: Env) -> Result<PromiseRaw<'static, bool>> {
        no_panic(|| {
            let lock = self.lock.clone();
            crate::bridge::spawn_on_timers(&env, &self.span, async move { lock.is_held().await.map_err(to_js_error) })
        })
    }
}
