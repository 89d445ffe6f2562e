//! How an async binding call travels: JS thread -> one I/O thread -> JS thread, nothing else.
//!
//! napi's own `async fn` runs each call on a multi-thread tokio runtime and settles it through a
//! thread-safe function created for that call, while zookeeper-client 0.11 drives its socket
//! and timers with `async-io` (its reactor thread) whatever spawner it is given. A request thus
//! crossed JS -> tokio worker -> the session task -> the async-io reactor thread and back
//! (issue 13: four busy threads for one sequential loop, 68 % of the samples in the scheduler).
//!
//! Here instead:
//! - one thread, `zktx-io`, sits in `async_io::block_on`: while idle it waits in the async-io
//!   reactor itself, so a socket event wakes the thread that runs the task waiting for it. On it
//!   a tokio `LocalSet` runs the calls and, through a `spawns` thread-local spawner,
//!   zookeeper-client's session tasks: one thread from the answer on the socket to the
//!   completion. Right after a call that was alone in flight finished, it stays awake up to
//!   100 µs for the next one when the caller has been making calls one at a time, back to back
//!   ([`Linger`]): its next call then does not wake the thread through the reactor.
//! - tokio still provides timers (`tokio::time`, the core's deadlines) and `tokio::spawn`: a
//!   current-thread runtime parked on its own thread, `zktx-timer`, entered by `zktx-io`.
//!   Deadlines far in the future rarely wake it. Its I/O driver serves etcd's gRPC connections
//!   (tonic spawns its connection tasks there).
//! - completions go back through one long-lived thread-safe function per JS thread: the I/O
//!   thread queues `(deferred, value)` and signals only when the queue was empty, the JS thread
//!   settles everything queued in one callback. The function is referenced (keeps Node alive)
//!   only while calls are pending, as napi's per-call functions did.

use std::cell::RefCell;
use std::ffi::c_void;
use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use napi::bindgen_prelude::*;
use napi::sys;
use tracing::Instrument as _;

type Job = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Settles one promise on the JS thread: the value to resolve with, or the error to reject with.
type Settle = Box<dyn FnOnce(sys::napi_env) -> std::result::Result<sys::napi_value, sys::napi_value> + Send>;

/// A raw napi handle moved to the I/O thread and back, only ever used on its JS thread.
struct Raw<T>(T);
// SAFETY: the pointers are opaque tokens to other threads; they are dereferenced by napi calls
// made on the JS thread that created them (napi_call_threadsafe_function is thread-safe).
unsafe impl<T> Send for Raw<T> {}

struct Completion {
    deferred: Raw<sys::napi_deferred>,
    settle: Settle,
}

struct Queue {
    items: Vec<Completion>,
    /// None once Node finalized the function (its environment is going away).
    tsfn: Option<Raw<sys::napi_threadsafe_function>>,
}

/// What the I/O thread shares with one JS thread.
struct Shared {
    queue: Mutex<Queue>,
    /// Completions are queued (set and cleared under the lock; read without it by the JS
    /// thread's wait for an answer, [`wait_for_answer`]).
    queued: AtomicBool,
    /// The sockets this JS thread's ZooKeeper calls went out on, polled by its event loop
    /// ([`crate::answers`]); None when that is off or could not start.
    sockets: Option<Arc<crate::answers::Sockets>>,
}

impl Shared {
    fn complete(&self, c: Completion) {
        let Ok(mut q) = self.queue.lock() else { return };
        let Some(tsfn) = q.tsfn.as_ref().map(|t| t.0) else { return };
        let signal = q.items.is_empty(); // otherwise a drain is already scheduled and will see it
        q.items.push(c);
        if signal {
            // Under the lock: the finalizer cannot run between the check above and this call.
            unsafe { sys::napi_call_threadsafe_function(tsfn, ptr::null_mut(), sys::ThreadsafeFunctionCallMode::nonblocking) };
        }
        // After the signal: a JS thread waiting for an answer that sees this flag returns to its
        // event loop, whose next poll must find the function's eventfd already written, or it
        // sleeps until the write (measured: 2.9 voluntary context switches of the JS thread per
        // sequential getData with the flag set before the signal).
        self.queued.store(true, Ordering::Release);
    }
}

/// The JS thread's side: its function and how many calls are pending.
struct JsSide {
    shared: Arc<Shared>,
    /// Its poll handle of [`Shared::sockets`], polled again when a call is made after idle
    /// wake-ups stopped it.
    watch: Option<crate::answers::Watch>,
    tsfn: sys::napi_threadsafe_function,
    pending: usize,
    /// This turn's calls after its first, sent to `zktx-io` together ([`submit_in_burst`]).
    burst: Burst,
}

/// A JS thread's calls of one turn of its event loop: the first goes to `zktx-io` at once, the
/// ones made after it in the same turn wait in `jobs` for a microtask queued by the first, and
/// go together. A pipelining caller settles a batch of completions and makes its next calls
/// from their continuations, a few µs apart: sent one by one, each found `zktx-io` back asleep
/// and woke it again (`znode_get_pipelined`, 128 in flight: 1.8 context switches, 2.1
/// `epoll_ctl`s and 0.6 `writev`s per call).
struct Burst {
    jobs: Vec<Job>,
    /// A flush is queued: calls join `jobs`.
    open: bool,
    /// A thenable whose `then` is the flush function ([`flush_burst`]); None when it could not be
    /// made (calls then all go at once, as before).
    thenable: Option<sys::napi_ref>,
}

thread_local! {
    static JS: RefCell<Option<JsSide>> = const { RefCell::new(None) };
}

unsafe extern "C" fn drain(env: sys::napi_env, _js_cb: sys::napi_value, context: *mut c_void, _data: *mut c_void) {
    if env.is_null() || context.is_null() {
        return;
    }
    let shared = unsafe { &*(context as *const Shared) };
    let items = match shared.queue.lock() {
        Ok(mut q) => {
            shared.queued.store(false, Ordering::Release);
            std::mem::take(&mut q.items)
        }
        Err(_) => return,
    };
    let n = items.len();
    if n > 0 {
        // completions came: a wait that missed them was late, not woken by bytes that were no
        // answer, and backs off no further (a loaded machine keeps waiting as before)
        let _ = ANSWER_BACKOFF.try_with(|b| b.set((0, 0)));
    }
    for c in items {
        // Each settle in its own handle scope: a large batch does not pile up handles.
        let mut scope = ptr::null_mut();
        unsafe { sys::napi_open_handle_scope(env, &mut scope) };
        match (c.settle)(env) {
            Ok(v) => unsafe { sys::napi_resolve_deferred(env, c.deferred.0, v) },
            Err(e) => unsafe { sys::napi_reject_deferred(env, c.deferred.0, e) },
        };
        unsafe { sys::napi_close_handle_scope(env, scope) };
    }
    JS.with_borrow_mut(|js| {
        if let Some(js) = js.as_mut() {
            js.pending = js.pending.saturating_sub(n);
            if js.pending == 0 {
                unsafe { sys::napi_unref_threadsafe_function(env, js.tsfn) };
            }
        }
    });
}

unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // The environment is being torn down: stop signalling, drop what is queued.
    let shared = unsafe { Arc::from_raw(data as *const Shared) };
    if let Ok(mut q) = shared.queue.lock() {
        q.tsfn = None;
        q.items.clear();
    }
    JS.with_borrow_mut(|js| *js = None);
}

/// This JS thread's shared queue, creating its thread-safe function on first use; counts one
/// more pending call (and references the function when it is the first).
fn enter_call(env: sys::napi_env) -> Result<Arc<Shared>> {
    JS.with_borrow_mut(|js| {
        if js.is_none() {
            let sockets = if crate::answers::window().is_zero() { None } else { crate::answers::Sockets::new().map(Arc::new) };
            let watch = sockets.as_ref().and_then(|s| crate::answers::poll(env, s.clone(), wait_for_answer));
            let sockets = sockets.filter(|_| watch.is_some());
            let shared = Arc::new(Shared { queue: Mutex::new(Queue { items: Vec::new(), tsfn: None }), queued: AtomicBool::new(false), sockets });
            let mut name = ptr::null_mut();
            let label = "zktx";
            check(unsafe { sys::napi_create_string_utf8(env, label.as_ptr().cast(), label.len() as isize, &mut name) })?;
            let context = Arc::into_raw(shared.clone()) as *mut c_void;
            let mut tsfn = ptr::null_mut();
            let status = unsafe {
                sys::napi_create_threadsafe_function(env, ptr::null_mut(), ptr::null_mut(), name, 0, 1, context, Some(finalize), context, Some(drain), &mut tsfn)
            };
            if status != sys::Status::napi_ok {
                drop(unsafe { Arc::from_raw(context as *const Shared) });
                return Err(Error::new(Status::from(status), "zktx: cannot create the completion function".to_string()));
            }
            check(unsafe { sys::napi_unref_threadsafe_function(env, tsfn) })?;
            shared.queue.lock().map_err(|_| Error::from_reason("zktx: completion queue poisoned"))?.tsfn = Some(Raw(tsfn));
            let thenable = burst_thenable(env);
            *js = Some(JsSide { shared, watch, tsfn, pending: 0, burst: Burst { jobs: Vec::new(), open: false, thenable } });
        }
        let Some(side) = js.as_mut() else { return Err(Error::from_reason("zktx: no completion function")) };
        if side.pending == 0 {
            check(unsafe { sys::napi_ref_threadsafe_function(env, side.tsfn) })?;
            if let Some(watch) = side.watch.as_ref() {
                watch.resume();
            }
        }
        side.pending += 1;
        Ok(side.shared.clone())
    })
}

fn check(status: sys::napi_status) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::new(Status::from(status), "zktx: napi call failed".to_string()))
    }
}

/// Runs `body` on the I/O thread (in `span`, panics caught by [`crate::guarded`]) and returns a
/// promise settled with its result on this JS thread.
pub(crate) fn spawn<T, F>(env: &Env, span: &tracing::Span, body: F) -> Result<PromiseRaw<'static, T>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    let raw_env = env.raw();
    spawn_where(env, span, body, true, |io, job| submit_in_burst(raw_env, io, job))
}

/// [`spawn`], but on the `zktx-timer` thread, where tonic's connection tasks run: an etcd call
/// made there crosses no thread between its request and its answer (on `zktx-io`, every
/// request and answer hopped threads: 20 context switches per lock cycle instead of 9).
pub(crate) fn spawn_on_timers<T, F>(env: &Env, span: &tracing::Span, body: F) -> Result<PromiseRaw<'static, T>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    spawn_where(env, span, body, false, |io, job| drop(io.timers.spawn(job)))
}

/// `sockets`: the ZooKeeper requests `body` sends add their session's socket to this JS thread's
/// watched set ([`crate::answers`]).
fn spawn_where<T, F>(env: &Env, span: &tracing::Span, body: F, sockets: bool, run: impl FnOnce(&Io, Job)) -> Result<PromiseRaw<'static, T>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    let io = io()?;
    let raw_env = env.raw();
    let mut deferred = ptr::null_mut();
    let mut promise = ptr::null_mut();
    check(unsafe { sys::napi_create_promise(raw_env, &mut deferred, &mut promise) })?;
    let shared = enter_call(raw_env)?;
    let deferred = Raw(deferred);
    let body = crate::guarded(body).instrument(span.clone());
    let body = ForJsThread { shared: sockets.then(|| shared.clone()), inner: body };
    run(
        io,
        Box::pin(async move {
            let result = body.await;
            let settle: Settle = Box::new(move |env| {
                let value = result.and_then(|v| unsafe { T::to_napi_value(env, v) });
                value.map_err(|e| unsafe { JsError::from(e).into_value(env) })
            });
            shared.complete(Completion { deferred, settle });
        }),
    );
    Ok(PromiseRaw::new(raw_env, promise))
}

/// Sends `job` to `zktx-io` at once when it is the first call of this turn of the JS thread's
/// event loop, queueing a microtask that sends the turn's later calls together ([`Burst`]) when
/// other calls are pending (the first of a turn made with none pending goes alone, and the
/// second then opens the burst).
/// The first call keeps its latency, and a call made right before the thread blocks (a
/// synchronous loop, `Atomics.wait`) is on the wire meanwhile; the later ones wait at most
/// until the microtasks queued before the flush ran.
fn submit_in_burst(env: sys::napi_env, io: &Io, job: Job) {
    // (queued, opens a burst): a call made with none other pending (one call at a time) opens
    // none: calls batch only beside calls in flight, and a caller making one call at a time
    // does not pay a promise and a microtask per call for a flush that sends nothing
    let (job, open) = JS.with_borrow_mut(|js| match js.as_mut() {
        Some(side) if side.burst.open => {
            side.burst.jobs.push(job);
            (None, false)
        }
        Some(side) => (Some(job), side.pending > 1),
        None => (Some(job), false),
    });
    let Some(job) = job else { return };
    io.submit(job);
    if !open {
        return;
    }
    let thenable = JS.with_borrow(|js| js.as_ref().and_then(|side| side.burst.thenable));
    let Some(thenable) = thenable else { return };
    // SAFETY: on the JS thread of `env`, inside a call from JS; the reference was made on it.
    // A promise resolved now with the thenable: V8 reads its own `then` (the flush) and queues
    // the job that calls it, a microtask queued at this point. No `then` of any promise is
    // called: a `Promise.prototype.then` replaced before the first call (one that throws, or
    // defers its callbacks to a fake scheduler) made every call reject, or every call after the
    // first of a turn hang, for the thread's life (__test__/burst-attacks.test.js).
    let queued = unsafe {
        let mut deferred = ptr::null_mut();
        let mut promise = ptr::null_mut();
        let mut value = ptr::null_mut();
        sys::napi_create_promise(env, &mut deferred, &mut promise) == sys::Status::napi_ok
            && sys::napi_get_reference_value(env, thenable, &mut value) == sys::Status::napi_ok
            && !value.is_null()
            && sys::napi_resolve_deferred(env, deferred, value) == sys::Status::napi_ok
    };
    if queued {
        JS.with_borrow_mut(|js| {
            if let Some(side) = js.as_mut() {
                side.burst.open = true;
            }
        });
    }
}

/// A reference to an object whose own `then` is [`flush_burst`], made once per JS thread; None
/// when it cannot be made. Not `queueMicrotask`: fake timers replace it (jest's and sinon's do
/// by default), and the flush would wait for the test to tick them; nor a promise's `then`:
/// user code may replace `Promise.prototype.then`. The object is never seen by JS, and its
/// `then` is defined (not set: no setter of `Object.prototype` runs) read-only.
fn burst_thenable(env: sys::napi_env) -> Option<sys::napi_ref> {
    // SAFETY: on the JS thread of `env`, inside a call from JS.
    unsafe {
        let mut object = ptr::null_mut();
        if sys::napi_create_object(env, &mut object) != sys::Status::napi_ok {
            return None;
        }
        let then = sys::napi_property_descriptor {
            utf8name: c"then".as_ptr(),
            name: ptr::null_mut(),
            method: Some(flush_burst),
            getter: None,
            setter: None,
            value: ptr::null_mut(),
            attributes: sys::PropertyAttributes::default,
            data: ptr::null_mut(),
        };
        if sys::napi_define_properties(env, object, 1, &then) != sys::Status::napi_ok {
            return None;
        }
        let mut reference = ptr::null_mut();
        if sys::napi_create_reference(env, object, 1, &mut reference) != sys::Status::napi_ok {
            return None;
        }
        Some(reference)
    }
}

/// The microtask of [`submit_in_burst`]: sends the turn's later calls to `zktx-io` together.
unsafe extern "C" fn flush_burst(_env: sys::napi_env, _info: sys::napi_callback_info) -> sys::napi_value {
    let jobs = JS.with_borrow_mut(|js| match js.as_mut() {
        Some(side) => {
            side.burst.open = false;
            std::mem::take(&mut side.burst.jobs)
        }
        None => Vec::new(),
    });
    if !jobs.is_empty() {
        let n = jobs.len() as u64;
        let _ = ANSWER_STATS.try_with(|s| s.set(AnswerStats { bursts: s.get().bursts + 1, burst_calls: s.get().burst_calls + n, ..s.get() }));
        if let Ok(io) = io() {
            for job in jobs {
                io.submit(job);
            }
        }
    }
    ptr::null_mut()
}

/// Sends the calls of this JS thread's turn that wait for their flush ([`Burst`]) now: before
/// the thread blocks on `zktx-io` itself, or closes every client at exit.
pub(crate) fn flush_burst_now() {
    // SAFETY: flush_burst reads neither argument.
    unsafe { flush_burst(ptr::null_mut(), ptr::null_mut()) };
}

/// Sends this JS thread's calls that wait for their flush ([`Burst`]), then blocks (at most
/// `bound`) until `zktx-io` has started every call submitted before: `zktx-io` starts its jobs in
/// the order submitted, and a call on a connected session sends its request in its first poll.
/// For the exit hook, before it closes the sessions (on another runtime, at once): the calls of
/// the exit's turn were flushed together with that close and mostly lost to it (32 creates made
/// before `process.exit()`: 1-4 applied in 13 of 15 runs; submitted one by one before the
/// burst, still 1-27 in 5 of 15; __test__/burst-attacks.test.js).
pub(crate) fn start_submitted(bound: Duration) {
    run_blocking(async {}, bound);
}

/// Runs `body` on the I/O thread and blocks the calling thread until it finished (at most
/// 3 s): for the exit hook, where no promise can settle any more.
pub(crate) fn block_on_io(body: impl Future<Output = ()> + Send + 'static) {
    run_blocking(body, Duration::from_secs(3));
}

/// Sends this JS thread's waiting calls, then runs `body` on the I/O thread behind every call
/// submitted before, blocking the calling thread until it finished or `bound` passed.
fn run_blocking(body: impl Future<Output = ()> + Send + 'static, bound: Duration) {
    let Ok(io) = io() else { return };
    flush_burst_now();
    let (done, finished) = std::sync::mpsc::channel();
    io.submit(Box::pin(async move {
        body.await;
        let _ = done.send(());
    }));
    let _ = finished.recv_timeout(bound);
}

// ---- answers: the JS thread wakes with zktx-io ----

/// On the JS thread, when bytes reached a socket its calls went out on: while a few calls are
/// pending, waits awake up to [`crate::answers::window`] for `zktx-io` (woken by the same
/// bytes) to queue a completion, spinning briefly, then yielding its core. The completion
/// function's wake-up, already signalled then, is taken by the event loop's next turn without
/// sleeping. An answer that takes longer, or bytes that were no answer (a ping's, a watch
/// event), end the wait at the window: the completion then wakes the thread as before.
/// Missed waits back off as [`Linger`]'s do: after `n` in a row (at most [`MAX_BACKOFF`]) the
/// next `2^n - 1` wake-ups do not wait, until completions are settled (then the misses were
/// late answers: on a loaded machine, `zktx-io` scheduled late). Bytes that are no answer, with
/// a call pending all along (a lock waiting for its turn while a persistent watch gets a storm
/// of events), cost a whole window each otherwise: 1,500 events written by another process,
/// ~460 windows waited, none caught (`__test__/answers.test.js`, the watch-event storm). False
/// when no call was pending (the bytes could be no answer), or more than a few: such wake-ups
/// stop the poll handle until the next call made with none pending.
fn wait_for_answer() -> bool {
    let Some((shared, pending)) = JS.with_borrow(|js| js.as_ref().filter(|js| js.pending > 0).map(|js| (js.shared.clone(), js.pending))) else {
        ANSWER_STATS.with(|s| s.set(AnswerStats { idle: s.get().idle + 1, ..s.get() }));
        return false;
    };
    if pending > WAIT_PENDING_AT_MOST {
        // many in flight: the JS thread is woken by their completions anyway; after two such
        // wake-ups the handle stops until a call is made with none pending (8 sessions x 64 in
        // flight: 27.6 against 24.8 µs of CPU per call with the handle left polling)
        ANSWER_STATS.with(|s| s.set(AnswerStats { busy: s.get().busy + 1, ..s.get() }));
        return false;
    }
    ANSWER_STATS.with(|s| s.set(AnswerStats { woken: s.get().woken + 1, ..s.get() }));
    let (missed, skip) = ANSWER_BACKOFF.get();
    if skip > 0 {
        ANSWER_BACKOFF.set((missed, skip - 1));
        return true;
    }
    let window = crate::answers::window();
    let start = Instant::now();
    let mut waited = Duration::ZERO;
    let mut turns = 0u32;
    while !shared.queued.load(Ordering::Acquire) && waited < window {
        turns += 1;
        if turns <= SPIN_TURNS {
            for _ in 0..16 {
                std::hint::spin_loop();
            }
        } else {
            // `zktx-io` may be runnable on this very core (the other is busy): hand it over
            std::thread::yield_now();
        }
        waited = start.elapsed();
    }
    let caught = shared.queued.load(Ordering::Acquire);
    if caught {
        ANSWER_BACKOFF.set((0, 0));
    } else {
        let missed = (missed + 1).min(MAX_BACKOFF);
        ANSWER_BACKOFF.set((missed, (1 << missed) - 1));
    }
    ANSWER_STATS.with(|s| {
        let mut v = s.get();
        v.waits += 1;
        if caught {
            v.awake += 1;
            v.waited_ns += u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        }
        s.set(v);
    });
    true
}

/// Turns of the wait that only spin (some µs: `zktx-io`, woken on the other core, settles an
/// answer in 9–18 µs); later turns yield the core. When both threads share one core (the
/// other one busy: `perf sched timehist` during another engineer's build showed the JS thread
/// and `zktx-io` woken by the same answer on CPU 0), a pure spin held the core `zktx-io` needed
/// for the whole window: 0 of 53 waits saw their completion.
const SPIN_TURNS: u32 = 32;

/// The JS thread waits for an answer only while it has at most this many calls pending: one
/// call at a time, beside a few that stay pending (a lock waiting for its turn, an election).
/// With many in flight its wake-ups come from bytes that are mostly not yet answers, its own
/// work on the completions keeps it awake anyway, and waiting took the cores `zktx-io` and the
/// server needed (`znode_get_pipelined`, 128 in flight: 46.5 against 20.9 µs of CPU per call,
/// and 8 sessions × 64: 30.4 against 21.0).
const WAIT_PENDING_AT_MOST: usize = 4;

/// This JS thread's answer watch, for tests and benchmarks.
#[derive(Clone, Copy, Default)]
pub(crate) struct AnswerStats {
    /// Its epoll fd (-1: none).
    pub(crate) epoll_fd: i32,
    /// Wake-ups by a watched socket while a few calls were pending.
    pub(crate) woken: u64,
    /// Of those, how many waited for an answer (the others were let pass by the back-off).
    pub(crate) waits: u64,
    /// Of those, how many saw a completion queued within the window.
    pub(crate) awake: u64,
    /// How long those took, in all.
    pub(crate) waited_ns: u64,
    /// Wake-ups by a watched socket with no call pending.
    pub(crate) idle: u64,
    /// Wake-ups by a watched socket with more calls pending than a wait is made for.
    pub(crate) busy: u64,
    /// Flushes of [`Burst`]s that sent calls.
    pub(crate) bursts: u64,
    /// Calls those flushes sent (the first call of each turn is not counted: it went at once).
    pub(crate) burst_calls: u64,
}

thread_local! {
    static ANSWER_STATS: Cell<AnswerStats> = const { Cell::new(AnswerStats { epoll_fd: -1, woken: 0, waits: 0, awake: 0, waited_ns: 0, idle: 0, busy: 0, bursts: 0, burst_calls: 0 }) };
    /// On a JS thread: [`wait_for_answer`]'s misses in a row (at most [`MAX_BACKOFF`]), and the
    /// wake-ups left to pass without waiting.
    static ANSWER_BACKOFF: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
}

/// See [`AnswerStats`].
pub(crate) fn answer_stats() -> AnswerStats {
    let epoll_fd = JS.with_borrow(|js| js.as_ref().and_then(|js| js.shared.sockets.as_ref().map(|s| s.fd())).unwrap_or(-1));
    AnswerStats { epoll_fd, ..ANSWER_STATS.with(|s| s.get()) }
}

thread_local! {
    /// On `zktx-io`, while a call's body is being polled: its JS thread's [`Shared`].
    static CURRENT: Cell<*const Shared> = const { Cell::new(ptr::null()) };
}

/// A call's body that tells [`on_request`] whose call it is while it runs.
struct ForJsThread<F> {
    shared: Option<Arc<Shared>>,
    inner: F,
}

impl<F: Future> Future for ForJsThread<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        // SAFETY: `inner` is never moved out of the pinned struct; `shared` is not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let inner = unsafe { Pin::new_unchecked(&mut this.inner) };
        let Some(shared) = this.shared.as_ref() else { return inner.poll(cx) };
        // Restored on the way out even if `inner` unwinds (a panic outside `guarded`, in the
        // span's enter or exit): a pointer left behind would outlive the Arc it came from.
        let _restore = Restore(CURRENT.replace(Arc::as_ptr(shared)));
        inner.poll(cx)
    }
}

/// Puts [`CURRENT`] back as it was when dropped.
struct Restore(*const Shared);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|c| c.set(self.0));
    }
}

/// zookeeper-client's [`zookeeper_client::ON_REQUEST`]: a request of a call from a JS thread
/// puts its session's socket in that thread's watched set.
fn on_request(slot: &Arc<zookeeper_client::SocketSlot>) {
    let Ok(current) = CURRENT.try_with(|c| c.get()) else { return };
    if current.is_null() {
        return;
    }
    // SAFETY: set only while the ForJsThread owning an Arc of it is being polled on this thread.
    let shared = unsafe { &*current };
    if let Some(sockets) = shared.sockets.as_ref() {
        sockets.add(slot);
    }
}

// ---- the I/O thread ----

struct Io {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
    /// The `zktx-timer` runtime, where tonic runs etcd's connection tasks.
    timers: tokio::runtime::Handle,
}

impl Io {
    fn submit(&self, job: Job) {
        let finished = Finished { seq: SUBMITTED.fetch_add(1, Ordering::SeqCst), finished_before: FINISHED.load(Ordering::SeqCst), at: Instant::now() };
        let job = Box::pin(async move {
            let _finished = finished;
            job.await;
        });
        // The receiver lives as long as the process (the thread never returns).
        let _ = self.jobs.send(job);
    }
}

/// Calls submitted to `zktx-io` so far (all JS threads together).
static SUBMITTED: AtomicU64 = AtomicU64::new(0);

/// Calls finished so far, however their futures ended.
static FINISHED: AtomicU64 = AtomicU64::new(0);

/// How long `zktx-io` waits awake for the next call after one made alone finished.
const LINGER: Duration = Duration::from_micros(100);

/// The linger's window: [`LINGER`], or `ZKTX_LINGER_US` microseconds (0: never linger) when set
/// to a number up to 10,000, read once when the I/O thread starts.
fn linger_window() -> Duration {
    static WINDOW: OnceLock<Duration> = OnceLock::new();
    *WINDOW.get_or_init(|| match std::env::var("ZKTX_LINGER_US").ok().and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(us) if us <= 10_000 => Duration::from_micros(us),
        _ => LINGER,
    })
}

thread_local! {
    /// On `zktx-io`: when the last call finished, until the next call came; whether it was
    /// alone (no other call started or finished while it was in flight); [`SUBMITTED`] then.
    static IDLE_SINCE: Cell<Option<(Instant, bool, u64)>> = const { Cell::new(None) };
    /// On `zktx-io`: the caller made its next call within [`LINGER`] of the previous one's end,
    /// last time it made one.
    static PROMPT: Cell<bool> = const { Cell::new(false) };
    /// On `zktx-io`: lingers in a row that the next call did not come in (at most
    /// [`MAX_BACKOFF`]); a linger that catches one resets it.
    static MISSED: Cell<u32> = const { Cell::new(0) };
    /// On `zktx-io`: how many more chances to linger to let pass: `2^MISSED - 1` after a miss.
    static SKIP: Cell<u32> = const { Cell::new(0) };
}

/// Caps the back-off after missed lingers: at worst one linger in 64 chances misses.
const MAX_BACKOFF: u32 = 6;

/// Counts a call as finished however its future ends, and notes whether it was alone: no other
/// call was submitted or finished between its submission and its end. Calls in flight all that
/// time (a lock waiting for its turn, a call waiting for a reconnection) do not count: they
/// neither answer the caller's next call nor keep the linger off. The price: a call that was
/// in flight before the lone one began and is answered during the linger is read when the
/// linger ends (at most [`LINGER`] later), as a watch event or a ping already was.
struct Finished {
    /// [`SUBMITTED`] before this call.
    seq: u64,
    /// [`FINISHED`] when it was submitted.
    finished_before: u64,
    /// When it was submitted (on its JS thread).
    at: Instant,
}

impl Drop for Finished {
    fn drop(&mut self) {
        let alone = FINISHED.fetch_add(1, Ordering::SeqCst) == self.finished_before;
        let submitted = SUBMITTED.load(Ordering::SeqCst);
        let alone = alone && submitted == self.seq.wrapping_add(1);
        let _ = IDLE_SINCE.try_with(|idle| {
            // A call that came after the previous one finished, and finished in the same poll of
            // this thread (it sent nothing: a released lock's `release()`), replaces that entry
            // before [`Linger`] reads it, which judged whether the caller is prompt when it saw
            // the next call queued: such calls never counted as prompt and the thread never
            // lingered for them (the bench's native overhead probe: 60-77 µs a call, each woke
            // `zktx-io` through the reactor). Judged here instead, from when this call was made.
            if let Some((previous, _, then)) = idle.get() {
                if self.seq >= then {
                    let _ = PROMPT.try_with(|p| p.set(self.at.saturating_duration_since(previous) <= linger_window()));
                }
            }
            idle.set(Some((Instant::now(), alone, submitted)))
        });
    }
}

/// The I/O thread's future, lingering after a call finished: a caller making one call at
/// a time makes its next one some tens of µs after the completion reached it, and that call
/// found this thread asleep in the reactor, woken through an eventfd write and a scheduler
/// wake-up that is on the call's path. So when a call finished alone (no other call was
/// submitted or finished while it was in flight: a pipelining caller gets its calls batched by
/// the wake-up, lingering would take them one by one), and the caller's previous call came
/// within [`LINGER`] of its predecessor's end, the thread first waits awake up to [`LINGER`],
/// yielding its core to any other runnable thread (`sched_yield`), and takes the next call as
/// soon as it is queued. Calls that stayed in flight all along (a lock waiting for its turn)
/// do not keep it from lingering: a process with one waiting lock kept the linger off for all
/// its callers when any call in flight did (2026-12-07: 1.98 voluntary context switches of
/// `zktx-io` per sequential `getData` with a lock waiting, 0.06–0.74 without). It never
/// lingers for a caller slower than [`LINGER`] (one missed linger and it stops until a prompt
/// call again): an idle client costs nothing. Missed lingers back off: after `n` in a row the
/// next `2^n - 1` chances (at most 63) pass. A caller alternating prompt and slow calls (two
/// calls, then some work) is judged prompt right before each slow gap, so without the back-off
/// every second call cost a whole window of `sched_yield` for nothing (2026-12-07,
/// `bench/linger.js` "pairs": `zktx-io` CPU 1.57x of the linger turned off, p50 1.09x).
struct Linger<F> {
    inner: Pin<Box<F>>,
    /// [`linger_window`]; zero: never linger.
    window: Duration,
}

impl<F: Future> Future for Linger<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        loop {
            if let std::task::Poll::Ready(v) = self.inner.as_mut().poll(cx) {
                return std::task::Poll::Ready(v);
            }
            let Some((idle, alone, submitted)) = IDLE_SINCE.take() else { return std::task::Poll::Pending };
            let window = self.window;
            if SUBMITTED.load(Ordering::SeqCst) != submitted {
                // the next call is already queued (its wake-up is pending): run it
                PROMPT.set(idle.elapsed() <= window);
                continue;
            }
            if !PROMPT.get() || !alone || window.is_zero() {
                IDLE_SINCE.set(Some((idle, alone, submitted))); // measured when the next call comes
                return std::task::Poll::Pending;
            }
            if SKIP.get() > 0 {
                SKIP.set(SKIP.get() - 1);
                IDLE_SINCE.set(Some((idle, alone, submitted)));
                return std::task::Poll::Pending;
            }
            let came = loop {
                if SUBMITTED.load(Ordering::SeqCst) != submitted {
                    break true;
                }
                if idle.elapsed() >= window {
                    break false;
                }
                std::thread::yield_now();
            };
            PROMPT.set(came);
            if came {
                MISSED.set(0);
            } else {
                let missed = (MISSED.get() + 1).min(MAX_BACKOFF);
                MISSED.set(missed);
                SKIP.set((1 << missed) - 1);
                return std::task::Poll::Pending;
            }
        }
    }
}

/// zookeeper-client spawns its session tasks through `spawns`: onto this thread's LocalSet.
struct LocalSpawner;

impl spawns_core::Spawn for LocalSpawner {
    fn spawn(&self, task: spawns_core::Task) {
        drop(tokio::task::spawn_local(Box::into_pin(task.future)));
    }
}

/// The I/O thread, started on first use. A machine that cannot start its threads gets an error
/// on every call (never a panic across into Node).
fn io() -> Result<&'static Io> {
    static IO: OnceLock<std::result::Result<Io, String>> = OnceLock::new();
    IO.get_or_init(start_io).as_ref().map_err(|msg| Error::new(Status::GenericFailure, format!("INTERNAL|not_applied|{msg}")))
}

fn start_io() -> std::result::Result<Io, String> {
    let timers = tokio::runtime::Builder::new_current_thread().enable_time().enable_io().build().map_err(|e| format!("zktx: cannot build the timer runtime: {e}"))?;
    let handle = timers.handle().clone();
    let timer_handle = handle.clone();
    std::thread::Builder::new()
        .name("zktx-timer".into())
        .spawn(move || timers.block_on(std::future::pending::<()>()))
        .map_err(|e| format!("zktx: cannot start the timer thread: {e}"))?;
    let _ = zookeeper_client::ON_REQUEST.set(on_request);
    let (jobs, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
    std::thread::Builder::new()
        .name("zktx-io".into())
        .spawn(move || {
            let _runtime = handle.enter();
            let _spawner = spawns_core::enter(&LocalSpawner);
            let local = tokio::task::LocalSet::new();
            let jobs = local.run_until(async move {
                while let Some(job) = rx.recv().await {
                    drop(tokio::task::spawn_local(job));
                }
            });
            async_io::block_on(Linger { inner: Box::pin(jobs), window: linger_window() });
        })
        .map_err(|e| format!("zktx: cannot start the I/O thread: {e}"))?;
    Ok(Io { jobs, timers: timer_handle })
}
