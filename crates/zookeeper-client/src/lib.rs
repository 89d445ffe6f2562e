//! `zookeeper-client` is an async Rust client library for Apache ZooKeeper.
//!
//! ## Opinionated API
//! This library is written from scratch. Its API is pretty different from Java counterpart or even
//! other Rust clients. Some of them are listed here for a glance.
//!
//! * No callbacks.
//! * No catch-all watcher.
//! * [StateWatcher] tracks session state updates.
//! * [OneshotWatcher] tracks oneshot ZooKeeper node event.
//! * [PersistentWatcher] tracks persistent and recursive persistent ZooKeeper node events.
//! * No event type `XyzWatchRemoved` as Rust has [Drop].
//! * Most data operations are ordered at future creation time but not polling time.
//! * [Client::chroot] and [Client::clone] enable session sharing cross multiple different rooted clients.
//!
//! ## Feature flags
//! * `tls`: Toggle TLS support.
//! * `fips`: Toggle TLS FIPS mode support. See also [TlsOptions::with_fips].
//! * `fips-only`: Force TLS FIPS mode. This should be considered as an application only feature to
//!   fulfill security requirement at global level.
//! * `sasl`: Toggle SASL support.
//! * `sasl-gssapi`: Toggle only GSSAPI SASL support. This relies on binding package `libgssapi-sys`.
//! * `sasl-digest-md5`: Toggle only DIGEST-MD5 SASL support.
//!
//! ## Async runtime support
//! This library uses [asyncs](https://docs.rs/asyncs) and [spawns](https://docs.rs/spawns) to
//! spawn asynchronous tasks. It exposes runtime feature flags for handy. Please refer their docs
//! for references.
//! * `tokio`: Toggle support for [tokio](https://docs.rs/tokio).
//! * `smol`: Toggle support for [smol](https://docs.rs/smol) builtin global executor.
//! * `async-global-executor`: Toggle support for [async-global-executor](https://docs.rs/async-global-executor).

#![cfg_attr(docsrs, feature(doc_cfg))]

mod acl;
mod chroot;
mod client;
mod deadline;
mod endpoint;
mod error;
mod proto;
mod record;
#[cfg(any(feature = "sasl-digest-md5", feature = "sasl-gssapi"))]
mod sasl;
mod session;
#[cfg(feature = "tls")]
mod tls;
mod util;

pub use self::acl::{Acl, Acls, AuthId, AuthUser, Permission};
pub use self::error::Error;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use self::tls::{TlsCa, TlsCerts, TlsCertsBuilder, TlsCertsOptions, TlsDynamicCerts, TlsIdentity, TlsOptions};
pub use crate::client::*;
#[cfg(feature = "sasl-digest-md5")]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sasl", feature = "sasl-digest-md5"))))]
pub use crate::sasl::DigestMd5SaslOptions;
#[cfg(feature = "sasl-gssapi")]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sasl", feature = "sasl-gssapi"))))]
pub use crate::sasl::GssapiSaslOptions;
#[cfg(any(feature = "sasl-digest-md5", feature = "sasl-gssapi"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sasl", feature = "sasl-gssapi", feature = "sasl-digest-md5"))))]
pub use crate::sasl::SaslOptions;

/// zktx: the socket a client's session is connected on, so that a caller can watch it for
/// readability (zktx's JS thread wakes on an answer's arrival in parallel with the thread that
/// reads it). Holds `generation << 32 | fd`; the fd half is `u32::MAX` while no connection is
/// served. The session sets it before serving a connection and clears it before closing it, so
/// a reader that sees an fd raced at worst with its close (it must tolerate a closed or reused
/// number: watch only, never read or write it).
///
/// It also keeps when the session was last shown alive ([`SocketSlot::last_heard`]).
#[derive(Debug)]
pub struct SocketSlot(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64);

impl Default for SocketSlot {
    fn default() -> Self {
        let _ = heard_origin(); // before any request of the client is made
        SocketSlot(std::sync::atomic::AtomicU64::new(u32::MAX as u64), std::sync::atomic::AtomicU64::new(0), std::sync::atomic::AtomicU64::new(u64::MAX))
    }
}

/// zktx: the origin of [`SocketSlot::last_heard`]'s clock.
fn heard_origin() -> std::time::Instant {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(std::time::Instant::now)
}

impl SocketSlot {
    /// zktx: when the latest request its server answered was made (any connection, any session
    /// of the client: compare session ids), if any was. The server answers only a live session,
    /// and expires it no sooner than the session timeout after receiving its last request, so
    /// the session lives until at least that instant plus the timeout. Not when the answer was
    /// read: an answer read late (the process stopped with it in its socket buffer) was sent
    /// before the pause, and the session may have expired since.
    pub fn last_heard(&self) -> Option<std::time::Instant> {
        match self.1.load(std::sync::atomic::Ordering::Acquire) {
            0 => None,
            micros => heard_origin().checked_add(std::time::Duration::from_micros(micros)),
        }
    }

    /// zktx: the shortest session timeout a server granted this client's sessions so far (each
    /// connect response negotiates it again: a server restarted with a lower
    /// `maxSessionTimeout` expires the same session sooner), if one was granted.
    pub fn min_session_timeout(&self) -> Option<std::time::Duration> {
        match self.2.load(std::sync::atomic::Ordering::Acquire) {
            u64::MAX => None,
            ms => Some(std::time::Duration::from_millis(ms)),
        }
    }

    pub(crate) fn granted(&self, timeout: std::time::Duration) {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX - 1).min(u64::MAX - 1);
        self.2.fetch_min(ms, std::sync::atomic::Ordering::AcqRel);
    }

    pub(crate) fn alive_at(&self, sent: std::time::Instant) {
        let micros = u64::try_from(sent.saturating_duration_since(heard_origin()).as_micros()).unwrap_or(u64::MAX).max(1);
        self.1.fetch_max(micros, std::sync::atomic::Ordering::AcqRel);
    }

    /// The generation and fd of the connection being served, if one is.
    pub fn get(&self) -> Option<(u32, i32)> {
        let v = self.0.load(std::sync::atomic::Ordering::SeqCst);
        let fd = v as u32;
        (fd != u32::MAX && fd <= i32::MAX as u32).then_some(((v >> 32) as u32, fd as i32))
    }

    /// The raw value, to compare two readings.
    pub fn raw(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn set(&self, fd: i32) {
        let generation = (self.0.load(std::sync::atomic::Ordering::SeqCst) >> 32).wrapping_add(1) & 0xffff_ffff;
        self.0.store(generation << 32 | (fd as u32 as u64), std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn clear(&self) {
        let generation = (self.0.load(std::sync::atomic::Ordering::SeqCst) >> 32).wrapping_add(1) & 0xffff_ffff;
        self.0.store(generation << 32 | u32::MAX as u64, std::sync::atomic::Ordering::SeqCst);
    }
}

/// zktx: called on the thread that sends each request, with its client's [`SocketSlot`], right
/// after the request is queued for the session task (so before it is written).
pub static ON_REQUEST: std::sync::OnceLock<fn(&std::sync::Arc<SocketSlot>)> = std::sync::OnceLock::new();
