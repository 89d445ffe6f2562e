//! Per-client logging: each `NativeClient` gets its own level and, optionally, its own JS logger.
//!
//! A `tracing` subscriber is process-wide, so there is one (installed on first use); what makes
//! logging per client is a span. Every call of a client runs inside that client's span
//! (`zktx_client = id`), and the core spawns its background tasks `.in_current_span()`, so every
//! record the core (or `zookeeper-client`, below) makes on behalf of a client sits under it.
//! `zookeeper-client` spawns its connection task outside any span of ours; its `serve` span
//! carries the session id, which we map to the client whose `connect` span recorded it.
//!
//! Three layers: [`Tagger`] (unfiltered) stores each span's client id in its extensions; [`ToJs`]
//! forwards the records of clients with a logger to JS through a weak thread-safe function (it
//! never keeps Node alive); a `fmt` layer prints the records of clients without one to stderr.
//! Both filter by the client's own level (`debug_level`). Records made outside any client
//! (none today) go to stderr at the most verbose level a client without a logger asked for.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

use crate::WeakCallback;

/// Where one client's records go.
struct Sink {
    /// 0 = nothing, 1 = error ... 4 = debug (`debug_level`).
    level: u8,
    logger: Option<Arc<WeakCallback>>,
}

#[derive(Default)]
struct Clients {
    sinks: HashMap<u64, Sink>,
    /// Session id (as displayed) -> client, for `zookeeper-client`'s own spawned task.
    sessions: HashMap<String, u64>,
}

fn clients() -> &'static RwLock<Clients> {
    static CLIENTS: OnceLock<RwLock<Clients>> = OnceLock::new();
    CLIENTS.get_or_init(Default::default)
}

/// The most verbose level any client asks for: the callsite filter, so a `debug!` costs one
/// cached check when nobody wants debug records.
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);
/// The most verbose level a client without a logger asks for: records outside any client.
static STDERR_LEVEL: AtomicU8 = AtomicU8::new(0);

fn level_number(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        _ => "debug",
    }
}

/// Recomputes the global levels after a client came or went; rebuilds tracing's callsite cache
/// only when the most verbose level changed.
fn levels_changed(c: &Clients) {
    let max = c.sinks.values().map(|s| s.level).max().unwrap_or(0);
    let stderr = c.sinks.values().filter(|s| s.logger.is_none()).map(|s| s.level).max().unwrap_or(0);
    STDERR_LEVEL.store(stderr, Ordering::Relaxed);
    if MAX_LEVEL.swap(max, Ordering::Relaxed) != max {
        tracing::callsite::rebuild_interest_cache();
    }
}

/// Registers a client printing to stderr at `level`; returns its id and the span its calls run in.
pub(crate) fn register(level: u32) -> (u64, tracing::Span) {
    install();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut c) = clients().write() {
        c.sinks.insert(id, Sink { level: level.min(4) as u8, logger: None });
        levels_changed(&c);
    }
    (id, tracing::info_span!(parent: None, "zktx", zktx_client = id))
}

/// Sends the client's records to `logger` (a JS function taking one JSON text) instead of stderr.
pub(crate) fn set_logger(id: u64, logger: WeakCallback) {
    if let Ok(mut c) = clients().write() {
        if let Some(sink) = c.sinks.get_mut(&id) {
            sink.logger = Some(Arc::new(logger));
        }
        levels_changed(&c);
    }
}

/// Forgets a client (its records, if any more come, are dropped).
pub(crate) fn unregister(id: u64) {
    if let Ok(mut c) = clients().write() {
        c.sinks.remove(&id);
        c.sessions.retain(|_, client| *client != id);
        levels_changed(&c);
    }
}

fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::registry()
            .with(Tagger)
            .with(ToJs.with_filter(ClientFilter { to_js: true }))
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false).with_filter(ClientFilter { to_js: false }));
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// The client a span belongs to (in its extensions).
#[derive(Clone, Copy)]
struct ClientId(u64);

/// A span's `session` field, as displayed.
struct SessionField(String);

#[derive(Default)]
struct SpanFields {
    client: Option<u64>,
    session: Option<String>,
}

impl Visit for SpanFields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "zktx_client" {
            self.client = Some(value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "session" {
            self.session = Some(format!("{value:?}"));
        }
    }
}

/// The most verbose level any callsite may be enabled at: what some client asks for, but at least
/// INFO while any client logs, since the spans that carry client ids (ours, zookeeper-client's
/// `connect` and `serve`) are INFO. tracing caches this per callsite: a `debug!` nobody asked
/// for costs one comparison.
fn level_hint() -> LevelFilter {
    match MAX_LEVEL.load(Ordering::Relaxed) {
        0 => LevelFilter::OFF,
        1..=3 => LevelFilter::INFO,
        _ => LevelFilter::DEBUG,
    }
}

/// Tags every span with its client: its own `zktx_client` field, else its parent's, else the
/// client whose session it names.
struct Tagger;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Tagger {
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(level_hint())
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        attrs.record(&mut fields);
        let client = fields
            .client
            .or_else(|| span.parent().and_then(|p| p.extensions().get::<ClientId>().map(|c| c.0)))
            .or_else(|| fields.session.as_ref().and_then(|s| clients().read().ok().and_then(|c| c.sessions.get(s).copied())));
        // The client registry is never locked while a span's extensions are (lock order).
        if let (Some(client), Some(session)) = (client, &fields.session) {
            remember_session(session, client);
        }
        let mut ext = span.extensions_mut();
        if let Some(client) = client {
            ext.insert(ClientId(client));
        }
        if let Some(session) = fields.session {
            ext.insert(SessionField(session));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        values.record(&mut fields);
        let Some(session) = fields.session else { return };
        let client = span.extensions().get::<ClientId>().copied();
        if let Some(ClientId(client)) = client {
            remember_session(&session, client);
        }
        span.extensions_mut().replace(SessionField(session));
    }
}

fn remember_session(session: &str, client: u64) {
    if let Ok(mut c) = clients().write() {
        if c.sinks.contains_key(&client) {
            c.sessions.insert(session.to_string(), client);
        }
    }
}

/// The client of the span current at the event, if any.
fn current_client<S: Subscriber + for<'a> LookupSpan<'a>>(ctx: &Context<'_, S>) -> Option<u64> {
    let span = ctx.lookup_current()?;
    let found = span.scope().find_map(|s| s.extensions().get::<ClientId>().map(|c| c.0));
    found
}

/// Lets a record through to stderr (`to_js: false`) or to JS (`to_js: true`) per its client.
struct ClientFilter {
    to_js: bool,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Filter<S> for ClientFilter {
    fn enabled(&self, meta: &Metadata<'_>, ctx: &Context<'_, S>) -> bool {
        if meta.is_span() {
            return true; // spans carry the client id; they print nothing themselves
        }
        let level = level_number(meta.level());
        if level > MAX_LEVEL.load(Ordering::Relaxed) {
            return false;
        }
        let client = current_client(ctx);
        let Ok(c) = clients().read() else { return false };
        match client {
            Some(id) => match c.sinks.get(&id) {
                Some(sink) => level <= sink.level && sink.logger.is_some() == self.to_js,
                None => false, // a client already gone
            },
            None => !self.to_js && level <= STDERR_LEVEL.load(Ordering::Relaxed),
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(level_hint())
    }
}

/// An event's fields as JSON members (`"name":value,` each), and its message.
#[derive(Default)]
struct EventFields {
    message: String,
    json: String,
    names: Vec<&'static str>,
}

impl EventFields {
    fn push(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
            return;
        }
        self.names.push(field.name());
        let _ = write!(self.json, "{}:{},", json_string(field.name()), json_string(value));
    }
}

impl Visit for EventFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, &format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.names.push(field.name());
        let _ = write!(self.json, "{}:{value},", json_string(field.name()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.names.push(field.name());
        let _ = write!(self.json, "{}:{value},", json_string(field.name()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.names.push(field.name());
        let _ = write!(self.json, "{}:{value},", json_string(field.name()));
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            },
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Forwards a record to its client's JS logger as `{"level","message","fields"}` JSON text.
struct ToJs;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for ToJs {
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.lookup_current() else { return };
        let mut client = None;
        let mut session = None;
        for s in span.scope() {
            let ext = s.extensions();
            if client.is_none() {
                client = ext.get::<ClientId>().map(|c| c.0);
            }
            if session.is_none() {
                session = ext.get::<SessionField>().map(|f| f.0.clone());
            }
        }
        let Some(client) = client else { return };
        let logger = match clients().read() {
            Ok(c) => match c.sinks.get(&client).and_then(|s| s.logger.clone()) {
                Some(l) => l,
                None => return,
            },
            Err(_) => return,
        };
        let mut fields = EventFields::default();
        // The session of an enclosing span (zookeeper-client's) unless the event names its own.
        event.record(&mut fields);
        if let Some(session) = session.filter(|_| !fields.names.contains(&"session")) {
            let _ = write!(fields.json, "\"session\":{},", json_string(&session));
        }
        let meta = event.metadata();
        let _ = write!(fields.json, "\"target\":{}", json_string(meta.target()));
        let record = format!(
            "{{\"level\":\"{}\",\"message\":{},\"fields\":{{{}}}}}",
            level_name(meta.level()),
            json_string(&fields.message),
            fields.json,
        );
        logger.call(record, ThreadsafeFunctionCallMode::NonBlocking);
    }
}
