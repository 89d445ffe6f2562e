//! The JS thread wakes when an answer reaches a ZooKeeper socket, at the same time as `zktx-io`.
//!
//! A call made alone used to wait for two wake-ups one after the other: the answer woke
//! `zktx-io` (asleep in its reactor), which read and settled it and then woke the JS thread
//! through the completion function's eventfd. node-zookeeper-client's answer wakes the JS thread
//! once, directly (its socket is on the JS thread). Here each JS thread that makes ZooKeeper
//! calls has an epoll set of the sockets its calls went out on ([`Sockets`], filled on `zktx-io`
//! as requests are sent: [`zookeeper_client::ON_REQUEST`]), and its event loop polls that set
//! (a libuv poll handle on the epoll fd). An answer's arrival then wakes both threads together;
//! the JS thread waits, awake and bounded by the window, for `zktx-io` to queue the completion,
//! and its event loop's next turn settles it without sleeping. The JS thread never reads a
//! socket: it only learns that bytes arrived.
//!
//! The sockets are registered edge-triggered, and each wake-up takes the edges (`epoll_wait`
//! with no timeout), so bytes left unread do not wake the JS thread again. A socket closed by
//! its session leaves the set by itself (epoll drops a file on its last close); a number reused
//! for another file meanwhile can at worst be watched by mistake until its session's next
//! connection replaces it: spurious wake-ups, each one a bounded wait only while calls are
//! pending, never a read. With no call pending, bytes on the set are no answer (a ping's, watch
//! events): after two such wake-ups in a row the handle stops, and the next call polls again
//! ([`Watch::resume`]). Waits that catch nothing back off (see `wait_for_answer` in bridge.rs).
//! Linux only; elsewhere, and when anything here fails, the completion function alone wakes the
//! JS thread, as before.

#[cfg(target_os = "linux")]
use std::ffi::c_void;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use napi::sys;
use zookeeper_client::SocketSlot;

/// How long the JS thread waits, awake, for `zktx-io` to queue the completion after an answer
/// reached a socket (or anything else did: a ping's answer, a watch event). `zktx-io` woke at
/// the same time and settles an answer within some µs; past the window the completion
/// function's wake-up settles it as before.
const WINDOW: Duration = Duration::from_micros(60);

/// [`WINDOW`], or `ZKTX_ANSWER_WAIT_US` microseconds (0: no watch at all) when set to a number
/// up to 1,000, read once per process.
pub(crate) fn window() -> Duration {
    static W: OnceLock<Duration> = OnceLock::new();
    *W.get_or_init(|| match std::env::var("ZKTX_ANSWER_WAIT_US").ok().and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(us) if us <= 1_000 => Duration::from_micros(us),
        _ => WINDOW,
    })
}

/// One JS thread's epoll set of session sockets, and which ones are in it.
pub(crate) struct Sockets {
    efd: i32,
    /// Each session's slot and the slot's value when its socket was added (touched on `zktx-io`).
    added: Mutex<Vec<(Weak<SocketSlot>, u64)>>,
}

impl Sockets {
    /// A new, empty set; None when epoll is not available.
    pub(crate) fn new() -> Option<Sockets> {
        #[cfg(target_os = "linux")]
        {
            let efd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            (efd >= 0).then(|| Sockets { efd, added: Mutex::new(Vec::new()) })
        }
        #[cfg(not(target_os = "linux"))]
        None
    }

    /// Puts the socket `slot` names now in the set, if it is not there yet (a new connection, a
    /// new session). The previous socket of the same slot is taken out unless another slot of
    /// this set has the same number now.
    pub(crate) fn add(&self, slot: &Arc<SocketSlot>) {
        let value = slot.raw();
        let Ok(mut added) = self.added.lock() else { return };
        added.retain(|(w, _)| w.strong_count() > 0);
        let key = Arc::as_ptr(slot);
        let at = added.iter().position(|(w, _)| w.as_ptr() == key);
        if let Some(i) = at {
            if added[i].1 == value {
                return;
            }
        }
        let before = at.map(|i| added[i].1 as u32);
        match at {
            Some(i) => added[i].1 = value,
            None => added.push((Arc::downgrade(slot), value)),
        }
        let now = slot.get().map(|(_, fd)| fd);
        #[cfg(target_os = "linux")]
        unsafe {
            if let Some(old) = before.filter(|&old| old != u32::MAX && Some(old as i32) != now) {
                if !added.iter().any(|(_, v)| *v as u32 == old) {
                    libc::epoll_ctl(self.efd, libc::EPOLL_CTL_DEL, old as i32, std::ptr::null_mut());
                }
            }
            if let Some(fd) = now {
                let mut ev = libc::epoll_event { events: (libc::EPOLLIN | libc::EPOLLET) as u32, u64: 0 };
                if libc::epoll_ctl(self.efd, libc::EPOLL_CTL_ADD, fd, &mut ev) != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EEXIST) {
                    libc::epoll_ctl(self.efd, libc::EPOLL_CTL_MOD, fd, &mut ev);
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (before, now);
    }

    /// The epoll fd (its `/proc/self/fdinfo` lists the sockets in the set).
    pub(crate) fn fd(&self) -> i32 {
        self.efd
    }

    /// Takes the edges that woke the JS thread, so that it sleeps until new bytes arrive.
    #[cfg(target_os = "linux")]
    fn take_edges(&self) {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 32];
        while unsafe { libc::epoll_wait(self.efd, events.as_mut_ptr(), events.len() as i32, 0) } == events.len() as i32 {}
    }
}

impl Drop for Sockets {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        unsafe {
            libc::close(self.efd);
        }
    }
}

// ---- libuv, exported by the node binary that loaded this addon ----
// Linux only: elsewhere nothing polls (Sockets::new is None), and the uv_* symbols are not
// even referenced. On Windows napi-rs links no node.lib (napi-sys loads the N-API symbols at
// run time), so an extern uv_* reference would be an unresolved symbol when linking.

/// `UV_POLL` in libuv's `uv_handle_type` (stable across libuv 1.x).
#[cfg(target_os = "linux")]
const UV_POLL: i32 = 8;
/// `UV_READABLE` in libuv's `uv_poll_event`.
#[cfg(target_os = "linux")]
const UV_READABLE: i32 = 1;

#[cfg(target_os = "linux")]
type PollCb = unsafe extern "C" fn(handle: *mut c_void, status: i32, events: i32);
#[cfg(target_os = "linux")]
type CloseCb = unsafe extern "C" fn(handle: *mut c_void);

#[cfg(target_os = "linux")]
extern "C" {
    fn uv_handle_size(kind: i32) -> usize;
    fn uv_poll_init(event_loop: *mut c_void, handle: *mut c_void, fd: i32) -> i32;
    fn uv_poll_start(handle: *mut c_void, events: i32, cb: PollCb) -> i32;
    fn uv_poll_stop(handle: *mut c_void) -> i32;
    fn uv_unref(handle: *mut c_void);
    fn uv_close(handle: *mut c_void, cb: CloseCb);
}

/// A JS thread's hold on its poll handle, to poll again when a call is made after the handle
/// stopped for idle wake-ups ([`Watch::resume`]). Only ever used on that JS thread.
#[cfg(target_os = "linux")]
pub(crate) struct Watch(std::rc::Rc<Ctl>);
/// See the other `Watch`.
#[cfg(not(target_os = "linux"))]
pub(crate) struct Watch;

/// What the JS thread and the handle's callbacks share. `handle` is used only while `closed` is
/// false: the environment's cleanup hook sets it before closing the handle, whose memory goes
/// in the close callback.
#[cfg(target_os = "linux")]
struct Ctl {
    handle: *mut c_void,
    sockets: Arc<Sockets>,
    closed: std::cell::Cell<bool>,
    polling: std::cell::Cell<bool>,
    /// Wake-ups in a row with no call pending.
    idle: std::cell::Cell<u32>,
}

/// Idle wake-ups in a row (no call pending: a ping's answer, watch events) after which the
/// handle stops until the next call. Two, not one: the last answer of a call made alone can be
/// taken after its completion was settled in the same loop turn.
#[cfg(target_os = "linux")]
const IDLE_STOP: u32 = 2;

impl Watch {
    /// A call is pending again: polls the set again if idle wake-ups stopped the handle (taking
    /// the edges that came meanwhile first: they were no answer to this call).
    pub(crate) fn resume(&self) {
        #[cfg(target_os = "linux")]
        {
            let ctl = &self.0;
            ctl.idle.set(0);
            if ctl.polling.get() || ctl.closed.get() {
                return;
            }
            ctl.sockets.take_edges();
            if unsafe { uv_poll_start(ctl.handle, UV_READABLE, on_readable) } == 0 {
                ctl.polling.set(true);
            }
        }
    }
}

/// What a JS thread's poll handle owns: the handle's memory (libuv's `data`, its first field,
/// points back here) and, through `ctl`, the set it polls, kept open until libuv closed the
/// handle.
#[cfg(target_os = "linux")]
struct Poll {
    /// From `Box::into_raw`, freed with the Poll.
    handle: *mut [u64],
    ctl: std::rc::Rc<Ctl>,
    /// Waits, awake, for what woke the JS thread to become a queued completion; false when no
    /// call was pending.
    on_ready: fn() -> bool,
}

/// Polls `sockets` on the event loop of the JS thread `env` belongs to, calling `on_ready` there
/// when bytes arrived on one of them (after taking the edges). The handle does not keep the
/// loop alive and is closed when the environment is torn down; it stops after [`IDLE_STOP`]
/// wake-ups in a row with no call pending, until [`Watch::resume`]. None when it could not start.
#[cfg(not(target_os = "linux"))]
pub(crate) fn poll(_env: sys::napi_env, _sockets: Arc<Sockets>, _on_ready: fn() -> bool) -> Option<Watch> {
    None
}

/// See the other `poll`.
#[cfg(target_os = "linux")]
pub(crate) fn poll(env: sys::napi_env, sockets: Arc<Sockets>, on_ready: fn() -> bool) -> Option<Watch> {
    let mut event_loop = std::ptr::null_mut();
    if unsafe { sys::napi_get_uv_event_loop(env, &mut event_loop) } != sys::Status::napi_ok || event_loop.is_null() {
        return None;
    }
    let size = unsafe { uv_handle_size(UV_POLL) };
    if size == 0 || size > 4096 {
        return None;
    }
    let efd = sockets.efd;
    let handle = Box::into_raw(vec![0u64; size.div_ceil(8)].into_boxed_slice());
    let ctl = std::rc::Rc::new(Ctl {
        handle: handle as *mut u64 as *mut c_void,
        sockets,
        closed: std::cell::Cell::new(false),
        polling: std::cell::Cell::new(true),
        idle: std::cell::Cell::new(0),
    });
    let state = Box::into_raw(Box::new(Poll { handle, ctl: ctl.clone(), on_ready }));
    unsafe {
        let handle = ctl.handle;
        if uv_poll_init(event_loop.cast(), handle, efd) != 0 {
            drop(Box::from_raw(state)); // never initialized: libuv holds nothing of it
            return None;
        }
        *(handle as *mut *mut Poll) = state; // uv_handle_t.data
        if uv_poll_start(handle, UV_READABLE, on_readable) != 0 {
            ctl.closed.set(true);
            uv_close(handle, on_closed);
            return None;
        }
        uv_unref(handle);
        if sys::napi_add_env_cleanup_hook(env, Some(close), handle) != sys::Status::napi_ok {
            // without the hook a worker's loop would be closed with the handle open
            ctl.closed.set(true);
            uv_poll_stop(handle);
            uv_close(handle, on_closed);
            return None;
        }
    }
    Some(Watch(ctl))
}

#[cfg(target_os = "linux")]
impl Drop for Poll {
    fn drop(&mut self) {
        drop(unsafe { Box::from_raw(self.handle) });
    }
}

#[cfg(target_os = "linux")]
unsafe extern "C" fn on_readable(handle: *mut c_void, _status: i32, _events: i32) {
    let state = unsafe { &*(*(handle as *const *const Poll)) };
    let ctl = &state.ctl;
    ctl.sockets.take_edges();
    if (state.on_ready)() {
        ctl.idle.set(0);
        return;
    }
    let idle = ctl.idle.get().saturating_add(1);
    ctl.idle.set(idle);
    if idle >= IDLE_STOP && !ctl.closed.get() {
        unsafe { uv_poll_stop(handle) };
        ctl.polling.set(false);
    }
}

#[cfg(target_os = "linux")]
unsafe extern "C" fn close(handle: *mut c_void) {
    unsafe {
        let state = &*(*(handle as *const *const Poll));
        state.ctl.closed.set(true);
        uv_poll_stop(handle);
        uv_close(handle, on_closed);
    }
}

#[cfg(target_os = "linux")]
unsafe extern "C" fn on_closed(handle: *mut c_void) {
    drop(unsafe { Box::from_raw(*(handle as *const *mut Poll)) });
}
