//! `NativeZnodes`: the binding of `zktx_core::znode` (the JS `zk.znodes` object, `znode.js`).
//!
//! Converts arguments, calls the core, maps errors with [`crate::to_js_error`]. Data crosses as
//! a `Buffer`; a `Stat` as plain numbers (zxids and times are exact below 2^53, which a zxid
//! reaches after 2^21 leader epochs), the ephemeral owner as a hex string (session ids use all
//! 64 bits). A one-shot watch calls its callback once with `"kind|path"`; that callback keeps
//! Node alive until it fired or was cancelled, as the `zookeeper` package's watchers do.
//!
//! The hot calls (`getData`, `exists`, `setData`) return one Buffer instead of an object: the
//! data, then the stat packed in [`STAT_BYTES`] (`znode.js` `statAt` reads it back). Issue 19's
//! profile of pipelined getData: building the 11-field stat object through napi
//! (`napi_define_properties`, interned key strings) and an external Buffer with a finalizer per
//! call took ~15 % of the process's CPU; one Buffer copied into V8's heap takes neither.

use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use zktx_core::znode::{self, Acl, AuthId, CreateOptions, Mode, Op, OpResult, PersistentEvent, PersistentWatch, Permission, Stat, Watch};
use zktx_core::{CancellationToken, Store};

use crate::{cancels, in_span, invalid, millis, no_panic, to_js_error, NativeAcl};

/// A JS callback for one watch event (`"kind|path"`). Referenced: it keeps Node alive while the
/// watch is pending (a process waiting for a watch must not exit), released once it fired.
pub type WatchCallback = ThreadsafeFunction<String, Unknown<'static>, String, Status, false, false>;

/// A znode's `Stat`, every field.
#[napi(object)]
pub struct NativeStat {
    pub czxid: f64,
    pub mzxid: f64,
    pub pzxid: f64,
    pub ctime: f64,
    pub mtime: f64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    /// The owning session's id in hex, `"0"` for a node that is not ephemeral.
    pub ephemeral_owner: String,
    pub data_length: i32,
    pub num_children: i32,
}

impl From<Stat> for NativeStat {
    fn from(s: Stat) -> Self {
        NativeStat {
            czxid: s.czxid as f64,
            mzxid: s.mzxid as f64,
            pzxid: s.pzxid as f64,
            ctime: s.ctime as f64,
            mtime: s.mtime as f64,
            version: s.version,
            cversion: s.cversion,
            aversion: s.aversion,
            ephemeral_owner: format!("{:x}", s.ephemeral_owner),
            data_length: s.data_length,
            num_children: s.num_children,
        }
    }
}

/// Bytes of a packed stat: czxid, mzxid, pzxid, ctime, mtime, version, cversion, aversion,
/// dataLength, numChildren as f64 little-endian (10 × 8), then ephemeralOwner as u64
/// little-endian (8). `znode.js` `statAt` is the reader; the two change together.
pub const STAT_BYTES: usize = 88;

/// Appends `s` packed (see [`STAT_BYTES`]).
fn put_stat(out: &mut Vec<u8>, s: &Stat) {
    for v in [s.czxid as f64, s.mzxid as f64, s.pzxid as f64, s.ctime as f64, s.mtime as f64, s.version as f64, s.cversion as f64, s.aversion as f64, s.data_length as f64, s.num_children as f64] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(s.ephemeral_owner as u64).to_le_bytes());
}

/// `data` then `stat` packed, in one Buffer.
fn data_and_stat(mut data: Vec<u8>, stat: &Stat) -> Bytes {
    data.reserve_exact(STAT_BYTES);
    put_stat(&mut data, stat);
    Bytes(data)
}

fn stat_only(stat: &Stat) -> Bytes {
    let mut out = Vec::with_capacity(STAT_BYTES);
    put_stat(&mut out, stat);
    Bytes(out)
}

/// Bytes that reach JS as a Buffer copied into V8's heap (`napi_create_buffer_copy`): no
/// external memory and no finalizer to run later, which napi's `Buffer` from a `Vec` costs.
/// Worth it for what ZooKeeper sends (at most `jute.maxbuffer`, 1 MiB; usually bytes).
pub struct Bytes(pub Vec<u8>);

impl TypeName for Bytes {
    fn type_name() -> &'static str {
        "Buffer"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for Bytes {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        let mut data = ptr::null_mut();
        let mut out = ptr::null_mut();
        // SAFETY: `env` is the JS thread's (ToNapiValue's contract); napi copies the bytes.
        let status = unsafe { napi::sys::napi_create_buffer_copy(env, val.0.len(), val.0.as_ptr().cast(), &mut data, &mut out) };
        if status != napi::sys::Status::napi_ok {
            return Err(Error::new(Status::from(status), "zktx: cannot create a Buffer".to_string()));
        }
        Ok(out)
    }
}

/// What `getChildren` read.
#[napi(object)]
pub struct NativeChildren {
    pub children: Vec<String>,
    pub stat: NativeStat,
}

/// A node's ACL and stat.
#[napi(object)]
pub struct NativeAclStat {
    pub acl: Vec<NativeAcl>,
    pub stat: NativeStat,
}

/// How to create a node: `mode` is `persistent`, `persistent_sequential`, `ephemeral`,
/// `ephemeral_sequential` or `container`; `acl` absent: the client's default ACL.
#[napi(object)]
pub struct NativeCreateOptions {
    pub mode: String,
    pub ttl_ms: Option<f64>,
    pub acl: Option<Vec<NativeAcl>>,
}

/// One operation of a raw multi: `op` is `create`, `set`, `delete` or `check`.
#[napi(object)]
pub struct NativeOp {
    pub op: String,
    pub path: String,
    pub data: Option<Buffer>,
    pub version: Option<i32>,
    pub create: Option<NativeCreateOptions>,
}

/// What one operation of a committed multi produced.
#[napi(object)]
pub struct NativeOpResult {
    pub op: String,
    pub path: Option<String>,
    pub stat: Option<NativeStat>,
}

/// ACL entries from JS (`perms` a mask of rwcda bits); `INVALID_ARGUMENT` for an empty or unknown mask.
pub(crate) fn acl_list(entries: Vec<NativeAcl>) -> Result<Vec<Acl>> {
    let bits = [Permission::READ, Permission::WRITE, Permission::CREATE, Permission::DELETE, Permission::ADMIN];
    entries
        .into_iter()
        .map(|e| {
            if e.perms == 0 || e.perms > 31 {
                return Err(invalid(format!("acl: perms must be a non-empty subset of rwcda, got the mask {}", e.perms)));
            }
            let perms = bits.iter().enumerate().filter(|(i, _)| e.perms & (1 << i) != 0).fold(Permission::NONE, |p, (_, b)| p | *b);
            Ok(Acl::new(perms, AuthId::new(&e.scheme, &e.id)))
        })
        .collect()
}

fn native_acl(a: &Acl) -> NativeAcl {
    let p = a.permission();
    let bits = [Permission::READ, Permission::WRITE, Permission::CREATE, Permission::DELETE, Permission::ADMIN];
    let perms = bits.iter().enumerate().filter(|(_, b)| p.has(**b)).fold(0u32, |m, (i, _)| m | (1 << i));
    NativeAcl { perms, scheme: a.scheme().to_string(), id: a.id().to_string() }
}

fn create_options(o: NativeCreateOptions) -> Result<CreateOptions> {
    let mode = match o.mode.as_str() {
        "persistent" => Mode::Persistent,
        "persistent_sequential" => Mode::PersistentSequential,
        "ephemeral" => Mode::Ephemeral,
        "ephemeral_sequential" => Mode::EphemeralSequential,
        "container" => Mode::Container,
        other => return Err(invalid(format!("unknown create mode {other:?}"))),
    };
    let ttl = o.ttl_ms.map(|t| millis("ttl", t, Duration::from_millis(znode::TTL_MAX_MS))).transpose()?;
    let acl = o.acl.map(acl_list).transpose()?;
    Ok(CreateOptions { mode, ttl, acl })
}

/// The cancellation token registered under `id` (`ABORTED` if it is gone: already cancelled).
fn token(id: Option<u32>) -> Result<Option<CancellationToken>> {
    match id {
        None => Ok(None),
        Some(id) => cancels()
            .lock()
            .map_err(|_| invalid("cancel registry poisoned"))?
            .get(&id)
            .cloned()
            .map(Some)
            .ok_or_else(|| to_js_error(zktx_core::Error::Aborted("operation was aborted".into()))),
    }
}

/// Waits for `watch` on the I/O thread (this runs inside a binding body) and calls `callback`
/// once with `"kind|path"`, or `"aborted|"` when `cancel` fires first (the watch is removed).
fn deliver(watch: Watch, callback: WatchCallback, cancel: Option<CancellationToken>) {
    drop(tokio::task::spawn_local(async move {
        let cancel = cancel.unwrap_or_default();
        let text = tokio::select! {
            biased;
            _ = cancel.cancelled() => "aborted|".to_string(),
            e = watch.changed() => format!("{}|{}", e.kind(), e.path()),
        };
        callback.call(text, ThreadsafeFunctionCallMode::NonBlocking);
    }));
}

/// The raw ZooKeeper API on one client's session.
#[napi]
pub struct NativeZnodes {
    pub(crate) store: Arc<Store>,
    pub(crate) span: tracing::Span,
}

#[napi]
impl NativeZnodes {
    /// Creates a node; resolves the created path.
    #[napi]
    pub fn create(&self, env: Env, path: String, data: Buffer, options: NativeCreateOptions) -> Result<PromiseRaw<'static, String>> {
        no_panic(|| {
            let store = self.store.clone();
            let data = data.to_vec();
            let options = create_options(options)?;
            in_span(env, &self.span, async move {
                let c = znode::create(store.session(), &path, &data, &options).await.map_err(to_js_error)?;
                Ok(c.path)
            })
        })
    }

    /// Reads data and stat (one Buffer: the data, then the packed stat); with `watch`, a
    /// one-shot data watch set by the same read.
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn get_data(&self, env: Env, path: String, watch: Option<WatchCallback>, cancel_id: Option<u32>) -> Result<PromiseRaw<'static, Bytes>> {
        no_panic(|| {
            let store = self.store.clone();
            let cancel = token(cancel_id)?;
            in_span(env, &self.span, async move {
                let s = store.session();
                let (data, stat) = match watch {
                    None => znode::get_data(s, &path).await.map_err(to_js_error)?,
                    Some(cb) => {
                        let (data, stat, w) = znode::get_data_watch(s, &path).await.map_err(to_js_error)?;
                        deliver(w, cb, cancel);
                        (data, stat)
                    },
                };
                Ok(data_and_stat(data, &stat))
            })
        })
    }

    /// The node's stat packed if it exists, else null; with `watch`, a one-shot exists watch
    /// (set either way).
    #[napi(ts_return_type = "Promise<Buffer | null>")]
    pub fn exists(&self, env: Env, path: String, watch: Option<WatchCallback>, cancel_id: Option<u32>) -> Result<PromiseRaw<'static, Option<Bytes>>> {
        no_panic(|| {
            let store = self.store.clone();
            let cancel = token(cancel_id)?;
            in_span(env, &self.span, async move {
                let s = store.session();
                let stat = match watch {
                    None => znode::exists(s, &path).await.map_err(to_js_error)?,
                    Some(cb) => {
                        let (stat, w) = znode::exists_watch(s, &path).await.map_err(to_js_error)?;
                        deliver(w, cb, cancel);
                        stat
                    },
                };
                Ok(stat.as_ref().map(stat_only))
            })
        })
    }

    /// Children and stat; with `watch`, a one-shot children watch.
    #[napi]
    pub fn get_children(&self, env: Env, path: String, watch: Option<WatchCallback>, cancel_id: Option<u32>) -> Result<PromiseRaw<'static, NativeChildren>> {
        no_panic(|| {
            let store = self.store.clone();
            let cancel = token(cancel_id)?;
            in_span(env, &self.span, async move {
                let s = store.session();
                let (children, stat) = match watch {
                    None => znode::children(s, &path).await.map_err(to_js_error)?,
                    Some(cb) => {
                        let (children, stat, w) = znode::children_watch(s, &path).await.map_err(to_js_error)?;
                        deliver(w, cb, cancel);
                        (children, stat)
                    },
                };
                Ok(NativeChildren { children, stat: stat.into() })
            })
        })
    }

    /// Replaces data (at `version` unless -1 / absent); resolves the new stat, packed.
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn set_data(&self, env: Env, path: String, data: Buffer, version: Option<i32>) -> Result<PromiseRaw<'static, Bytes>> {
        no_panic(|| {
            let store = self.store.clone();
            let data = data.to_vec();
            in_span(env, &self.span, async move {
                let version = version.filter(|v| *v != -1);
                znode::set_data(store.session(), &path, &data, version).await.map(|s| stat_only(&s)).map_err(to_js_error)
            })
        })
    }

    /// Deletes a node (at `version` unless -1 / absent).
    #[napi]
    pub fn delete(&self, env: Env, path: String, version: Option<i32>) -> Result<PromiseRaw<'static, ()>> {
        no_panic(|| {
            let store = self.store.clone();
            in_span(env, &self.span, async move {
                let version = version.filter(|v| *v != -1);
                znode::delete(store.session(), &path, version).await.map_err(to_js_error)
            })
        })
    }

    /// The node's ACL and stat.
    #[napi]
    pub fn get_acl(&self, env: Env, path: String) -> Result<PromiseRaw<'static, NativeAclStat>> {
        no_panic(|| {
            let store = self.store.clone();
            in_span(env, &self.span, async move {
                let (acl, stat) = znode::get_acl(store.session(), &path).await.map_err(to_js_error)?;
                Ok(NativeAclStat { acl: acl.iter().map(native_acl).collect(), stat: stat.into() })
            })
        })
    }

    /// Replaces the node's ACL (at ACL version `version` unless -1 / absent).
    #[napi]
    pub fn set_acl(&self, env: Env, path: String, acl: Vec<NativeAcl>, version: Option<i32>) -> Result<PromiseRaw<'static, NativeStat>> {
        no_panic(|| {
            let store = self.store.clone();
            let acl = acl_list(acl)?;
            in_span(env, &self.span, async move {
                let version = version.filter(|v| *v != -1);
                znode::set_acl(store.session(), &path, &acl, version).await.map(Into::into).map_err(to_js_error)
            })
        })
    }

    /// Commits `ops` all or nothing.
    #[napi]
    pub fn multi(&self, env: Env, ops: Vec<NativeOp>) -> Result<PromiseRaw<'static, Vec<NativeOpResult>>> {
        no_panic(|| {
            let store = self.store.clone();
            let ops = ops
                .into_iter()
                .enumerate()
                .map(|(i, o)| {
                    let data = o.data.map(|d| d.to_vec()).unwrap_or_default();
                    let version = o.version.filter(|v| *v != -1);
                    Ok(match o.op.as_str() {
                        "create" => Op::Create { path: o.path, data, options: create_options(o.create.ok_or_else(|| invalid(format!("multi op {i}: create without options")))?)? },
                        "set" => Op::SetData { path: o.path, data, version },
                        "delete" => Op::Delete { path: o.path, version },
                        "check" => Op::Check { path: o.path, version: o.version.ok_or_else(|| invalid(format!("multi op {i}: check needs a version")))? },
                        other => return Err(invalid(format!("multi op {i}: unknown op {other:?}"))),
                    })
                })
                .collect::<Result<Vec<Op>>>()?;
            in_span(env, &self.span, async move {
                let results = znode::multi(store.session(), &ops).await.map_err(to_js_error)?;
                Ok(results
                    .into_iter()
                    .map(|r| match r {
                        OpResult::Create { path, stat } => NativeOpResult { op: "create".into(), path: Some(path), stat: Some(stat.into()) },
                        OpResult::SetData(stat) => NativeOpResult { op: "set".into(), path: None, stat: Some(stat.into()) },
                        OpResult::Delete => NativeOpResult { op: "delete".into(), path: None, stat: None },
                        OpResult::Check => NativeOpResult { op: "check".into(), path: None, stat: None },
                    })
                    .collect())
            })
        })
    }

    /// Waits until the connected server caught up with the leader (for `path`).
    #[napi]
    pub fn sync(&self, env: Env, path: String) -> Result<PromiseRaw<'static, ()>> {
        no_panic(|| {
            let store = self.store.clone();
            in_span(env, &self.span, async move { znode::sync(store.session(), &path).await.map_err(to_js_error) })
        })
    }

    /// Adds an identity to the session (`addAuthInfo`).
    #[napi]
    pub fn add_auth(&self, env: Env, scheme: String, credentials: Buffer) -> Result<PromiseRaw<'static, ()>> {
        no_panic(|| {
            let store = self.store.clone();
            let credentials = credentials.to_vec();
            in_span(env, &self.span, async move { znode::add_auth(store.session(), &scheme, &credentials).await.map_err(to_js_error) })
        })
    }

    /// Sets a persistent (`recursive`: persistent-recursive) watch; resolves once it is set, then
    /// calls `callback` with `"kind|path"` for every event, `"resync|reconnected"` /
    /// `"resync|expired"` after it was set again, and last `"closed|"`, `"ended|"` or `"aborted|"`.
    #[napi]
    pub fn add_watch(&self, env: Env, path: String, recursive: bool, callback: WatchCallback, cancel_id: u32) -> Result<PromiseRaw<'static, ()>> {
        no_panic(|| {
            let store = self.store.clone();
            let cancel = token(Some(cancel_id))?.unwrap_or_default();
            in_span(env, &self.span, async move {
                let mut watch = PersistentWatch::add(store.session(), &path, recursive).await.map_err(to_js_error)?;
                drop(tokio::task::spawn_local(async move {
                    loop {
                        let event = tokio::select! {
                            biased;
                            _ = cancel.cancelled() => None,
                            e = watch.next(store.session()) => Some(e),
                        };
                        let (text, last) = match event {
                            None => ("aborted|".to_string(), true),
                            Some(PersistentEvent::Node(e)) => (format!("{}|{}", e.kind(), e.path()), false),
                            Some(PersistentEvent::Resync(why)) => (format!("resync|{why}"), false),
                            Some(PersistentEvent::Ended) => ("ended|".to_string(), true),
                            Some(PersistentEvent::Closed) => ("closed|".to_string(), true),
                        };
                        callback.call(text, ThreadsafeFunctionCallMode::NonBlocking);
                        if last {
                            break;
                        }
                    }
                }));
                Ok(())
            })
        })
    }

    /// The current session's password in hex (connects first if needed).
    #[napi]
    pub fn session_password(&self, env: Env) -> Result<PromiseRaw<'static, String>> {
        no_panic(|| {
            let store = self.store.clone();
            in_span(env, &self.span, async move { znode::session_password(store.session()).await.map_err(to_js_error) })
        })
    }

    /// The current session's id in hex (connects first if needed).
    #[napi]
    pub fn session_id(&self, env: Env) -> Result<PromiseRaw<'static, String>> {
        no_panic(|| {
            let store = self.store.clone();
            in_span(env, &self.span, async move { znode::session_id(store.session()).await.map_err(to_js_error) })
        })
    }
}
