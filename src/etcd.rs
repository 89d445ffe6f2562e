//! The etcd backend's binding: `NativeEtcdClient` and its locks. Thin: checks numbers, converts,
//! delegates to `zktx_core::backend::etcd`. Its locks are `NativeLock`s (either backend's), so
//! the JS facade's `Lock` wraps both.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use zktx_core::backend::{AnyKeyTransaction, AnyStore};
use zktx_core::backend::etcd::{EtcdOptions, EtcdSession, EtcdTls, WeakEtcdSession};
use zktx_core::kv::{JsonValue, Layout};

use crate::{acquire_options, invalid, logging, millis, no_panic, to_js_error, NativeCommitted, NativeFence, NativeKeyTransaction, NativeLock, NativeRecord, NativeTransaction, WeakCallback, MAX_WAIT};

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
    pub fn acquire(&self, env: Env, kind: String, path: String, permits: Option<u32>, timeout_ms: Option<f64>, cancel_id: Option<u32>) -> Result<PromiseRaw<'static, NativeLock>> {
        no_panic(|| {
            let session = self.session.clone();
            crate::bridge::spawn_on_timers(&env, &self.span, async move {
                let kind = crate::lock_kind(&kind, permits)?;
                let opts = acquire_options(timeout_ms, cancel_id)?;
                let lock = session.acquire(kind, &path, &opts).await.map_err(to_js_error)?;
                Ok(NativeLock::etcd(lock))
            })
        })
    }
}

#[napi]
impl NativeEtcdClient {
    /// Acquires exclusive locks on all paths, all or nothing.
    #[napi]
    pub fn multi_lock(&self, env: Env, paths: Vec<String>, timeout_ms: Option<f64>, cancel_id: Option<u32>) -> Result<PromiseRaw<'static, Vec<NativeLock>>> {
        no_panic(|| {
            let session = self.session.clone();
            crate::bridge::spawn_on_timers(&env, &self.span, async move {
                let opts = acquire_options(timeout_ms, cancel_id)?;
                let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
                let locks = session.multi_lock(&refs, &opts).await.map_err(to_js_error)?;
                Ok(locks.into_iter().map(NativeLock::etcd).collect())
            })
        })
    }
}

/// The key-value store on etcd: the surface of `NativeClient`'s (`get`, `set`, `fence`,
/// `executeTransaction`, `begin`), over `zktx_core::backend::etcd`'s store. Versions are mod
/// revisions (numbers up to 2^53 in JS).
#[napi]
impl NativeEtcdClient {
    #[napi]
    pub fn get(&self, env: Env, key: String) -> Result<PromiseRaw<'static, Option<NativeEtcdVersioned>>> {
        no_panic(|| {
            let session = self.session.clone();
            crate::bridge::spawn_on_timers(&env, &self.span, async move {
                let v = session.get_value(&Layout::default(), &key).await.map_err(to_js_error)?;
                Ok(v.map(|v| NativeEtcdVersioned { json: v.value.into_string(), version: v.version as f64 }))
            })
        })
    }

    #[napi]
    pub fn set(&self, env: Env, key: String, json: String) -> Result<PromiseRaw<'static, f64>> {
        no_panic(|| {
            let session = self.session.clone();
            crate::bridge::spawn_on_timers(&env, &self.span, async move {
                let value = JsonValue::from_text(json).map_err(to_js_error)?;
                session.set_value(&Layout::default(), &key, &value, &[]).await.map(|v| v as f64).map_err(to_js_error)
            })
        })
    }

    /// A writer fenced on the etcd locks added with `add`.
    #[napi]
    pub fn fence(&self) -> Result<NativeFence> {
        no_panic(|| Ok(NativeFence::new(AnyStore::Etcd(self.session.clone()), self.span.clone())))
    }

    #[napi]
    pub fn execute_transaction(&self, env: Env, key: String, json: String, timeout_ms: Option<f64>, cancel_id: Option<u32>) -> Result<PromiseRaw<'static, NativeCommitted>> {
        no_panic(|| {
            let session = self.session.clone();
            crate::bridge::spawn_on_timers(&env, &self.span, async move {
                let value = JsonValue::from_text(json).map_err(to_js_error)?;
                let opts = acquire_options(timeout_ms, cancel_id)?;
                session.execute_transaction(&Layout::default(), &key, value, &opts).await.map(Into::into).map_err(to_js_error)
            })
        })
    }

    /// Locks `key` and reads it, for an updater: `commit(json)` or `abort()` follows.
    #[napi]
    pub fn begin(&self, env: Env, key: String, timeout_ms: Option<f64>, cancel_id: Option<u32>) -> Result<PromiseRaw<'static, NativeKeyTransaction>> {
        no_panic(|| {
            let session = self.session.clone();
            crate::bridge::spawn_on_timers(&env, &self.span, async move {
                let opts = acquire_options(timeout_ms, cancel_id)?;
                let tx = session.begin(&Layout::default(), &key, &opts).await.map_err(to_js_error)?;
                Ok(NativeKeyTransaction::new(AnyKeyTransaction::Etcd(tx)))
            })
        })
    }
}

/// A value and its mod revision.
#[napi(object)]
pub struct NativeEtcdVersioned {
    pub json: String,
    pub version: f64,
}

/// Multi-key transactions on etcd: the surface of `NativeClient`'s (`transaction`,
/// `transactionRecord`); the retry loop is index.js's.
#[napi]
impl NativeEtcdClient {
    /// A transaction coordinator named `name` with these participants and sagas, its records in
    /// etcd; `dispatch` calls them (see `coordinator.rs`).
    #[napi]
    pub fn coordinator(&self, name: String, participants: Vec<String>, sagas: Vec<crate::coordinator::NativeSagaDefinition>, dispatch: crate::coordinator::Dispatch, participant_timeout_ms: Option<f64>) -> Result<crate::coordinator::NativeCoordinator> {
        no_panic(|| crate::coordinator::new_coordinator(AnyStore::Etcd(self.session.clone()), self.span.clone(), name, participants, sagas, dispatch, participant_timeout_ms))
    }

    /// A new transaction attempt.
    #[napi]
    pub fn transaction(&self) -> Result<NativeTransaction> {
        no_panic(|| Ok(NativeTransaction::new(AnyStore::Etcd(self.session.clone()), self.span.clone())))
    }

    /// Deletes transaction-id markers committed more than `older_than_ms` ago; resolves how many.
    #[napi]
    pub fn prune_transaction_ids(&self, env: Env, older_than_ms: f64) -> Result<PromiseRaw<'static, u32>> {
        no_panic(|| {
            let session = self.session.clone();
            crate::bridge::spawn_on_timers(&env, &self.span, async move {
                let older_than = millis("olderThanMs", older_than_ms, zktx_core::store::MAX_PRUNE_AGE)?;
                session.prune_transaction_ids(&Layout::default(), older_than).await.map(|n| n as u32).map_err(to_js_error)
            })
        })
    }

    /// Whether the transaction with this id committed, and the result it recorded.
    #[napi]
    pub fn transaction_record(&self, env: Env, id: String) -> Result<PromiseRaw<'static, NativeRecord>> {
        no_panic(|| {
            let session = self.session.clone();
            crate::bridge::spawn_on_timers(&env, &self.span, async move {
                let r = session.recorded(&Layout::default(), Some(&id)).await.map_err(to_js_error)?;
                Ok(NativeRecord { applied: r.is_some(), result_json: r.flatten() })
            })
        })
    }
}
