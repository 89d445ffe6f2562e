//! Binding of the core's [`Coordinator`]: participants and saga steps are JavaScript objects,
//! reached through one thread-safe `dispatch(request)` function per coordinator. The facade
//! (`index.js`) turns each request into a call of the right participant or step and always
//! resolves with `{"ok": value}` or `{"error": message}`, so a JS failure comes back as a
//! `PARTICIPANT_FAILED` error, never as an exception on the JS thread.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;
use serde::Serialize;
use zktx_core::backend::{AnyStore, AnyTransaction};
use zktx_core::coordinator::{BoxFuture, Coordinator, Participant, Run, SagaKey, SagaSteps, TxOutcome};

use crate::{invalid, millis, no_panic, parse_writes, spawn_for, to_js_error, NativeKeyVersion, NativeWrite, MAX_WAIT};

/// `dispatch(requestJson) => Promise<responseJson>`; weak: an idle coordinator does not keep
/// Node alive (a call in progress is kept alive by the promise the caller awaits).
pub(crate) type Dispatch = ThreadsafeFunction<String, Promise<String>, String, Status, false, true>;

#[derive(Serialize)]
#[serde(untagged)]
enum Request<'a> {
    Participant { participant: &'a str, op: &'a str, gid: &'a str },
    Saga { saga: &'a str, step: usize, op: &'a str, transaction: &'a str, branch: &'a str, input: &'a str },
}

async fn call(dispatch: &Dispatch, request: &Request<'_>) -> zktx_core::Result<serde_json::Value> {
    let text = serde_json::to_string(request).map_err(|e| zktx_core::Error::Participant(e.to_string()))?;
    let failed = |e: napi::Error| zktx_core::Error::Participant(format!("calling JavaScript failed: {}", e.reason));
    let promise = dispatch.call_async_catch(text).await.map_err(failed)?;
    let answer = promise.await.map_err(failed)?;
    let mut answer: serde_json::Value = serde_json::from_str(&answer).map_err(|e| zktx_core::Error::Participant(format!("bad answer from JavaScript: {e}")))?;
    if let Some(err) = answer.get("error") {
        return Err(zktx_core::Error::Participant(err.as_str().unwrap_or("participant failed").to_string()));
    }
    Ok(answer.get_mut("ok").map(serde_json::Value::take).unwrap_or(serde_json::Value::Null))
}

struct JsParticipant {
    name: String,
    dispatch: Arc<Dispatch>,
}

impl JsParticipant {
    fn op<'a>(&'a self, op: &'a str, gid: &'a str) -> BoxFuture<'a, zktx_core::Result<()>> {
        Box::pin(async move { call(&self.dispatch, &Request::Participant { participant: &self.name, op, gid }).await.map(drop) })
    }
}

impl Participant for JsParticipant {
    fn prepare<'a>(&'a self, gid: &'a str) -> BoxFuture<'a, zktx_core::Result<()>> {
        self.op("prepare", gid)
    }
    fn commit<'a>(&'a self, gid: &'a str) -> BoxFuture<'a, zktx_core::Result<()>> {
        self.op("commit", gid)
    }
    fn rollback<'a>(&'a self, gid: &'a str) -> BoxFuture<'a, zktx_core::Result<()>> {
        self.op("rollback", gid)
    }
    fn in_doubt(&self) -> BoxFuture<'_, zktx_core::Result<Vec<String>>> {
        Box::pin(async move {
            let list = call(&self.dispatch, &Request::Participant { participant: &self.name, op: "inDoubt", gid: "" }).await?;
            serde_json::from_value(list).map_err(|e| zktx_core::Error::Participant(format!("participant {}: inDoubt() must resolve an array of gid strings ({e})", self.name)))
        })
    }
}

struct JsSagas {
    /// Saga name -> number of steps.
    steps: std::collections::HashMap<String, usize>,
    dispatch: Arc<Dispatch>,
}

impl JsSagas {
    fn op<'a>(&'a self, op: &'a str, saga: &'a str, step: usize, key: &'a SagaKey, input: &'a str) -> BoxFuture<'a, zktx_core::Result<()>> {
        Box::pin(async move {
            call(&self.dispatch, &Request::Saga { saga, step, op, transaction: &key.transaction, branch: &key.branch, input }).await.map(drop)
        })
    }
}

impl SagaSteps for JsSagas {
    fn action<'a>(&'a self, saga: &'a str, step: usize, key: &'a SagaKey, input: &'a str) -> BoxFuture<'a, zktx_core::Result<()>> {
        self.op("action", saga, step, key, input)
    }
    fn compensate<'a>(&'a self, saga: &'a str, step: usize, key: &'a SagaKey, input: &'a str) -> BoxFuture<'a, zktx_core::Result<()>> {
        self.op("compensate", saga, step, key, input)
    }
    fn steps(&self, saga: &str) -> Option<usize> {
        self.steps.get(saga).copied()
    }
}

/// A saga's name and number of steps.
#[napi(object)]
pub struct NativeSagaDefinition {
    pub name: String,
    pub steps: u32,
}

/// A transaction coordinator (see `zktx_core::coordinator`), on either backend.
#[napi]
pub struct NativeCoordinator {
    coord: Coordinator,
    store: AnyStore,
    span: tracing::Span,
}

pub(crate) fn new_coordinator(store: AnyStore, span: tracing::Span, name: String, participants: Vec<String>, sagas: Vec<NativeSagaDefinition>, dispatch: Dispatch, participant_timeout_ms: Option<f64>) -> Result<NativeCoordinator> {
    let participant_timeout = participant_timeout_ms.map(|ms| millis("participantTimeoutMs", ms, MAX_WAIT)).transpose()?;
    let dispatch = Arc::new(dispatch);
    let parts = participants
        .into_iter()
        .map(|n| {
            let p: Arc<dyn Participant> = Arc::new(JsParticipant { name: n.clone(), dispatch: dispatch.clone() });
            (n, p)
        })
        .collect();
    let steps: Option<Arc<dyn SagaSteps>> = if sagas.is_empty() {
        None
    } else {
        Some(Arc::new(JsSagas { steps: sagas.into_iter().map(|s| (s.name, s.steps as usize)).collect(), dispatch }))
    };
    let mut coord = Coordinator::new(store.clone(), &name, parts, steps).map_err(to_js_error)?;
    if let Some(t) = participant_timeout {
        coord = coord.with_participant_timeout(t).map_err(to_js_error)?;
    }
    Ok(NativeCoordinator { coord, store, span })
}

/// What a recovery pass did.
#[napi(object)]
pub struct NativeRecoveryReport {
    pub committed: u32,
    pub rolled_back: u32,
    pub aborted: u32,
    pub active: u32,
    pub compensated: u32,
    pub errors: Vec<String>,
}

/// A committed distributed transaction.
#[napi(object)]
pub struct NativeCoordinatorCommit {
    pub txid: String,
    pub pending: Vec<String>,
    pub versions: Vec<NativeKeyVersion>,
}

#[napi]
impl NativeCoordinator {
    /// Starts a transaction.
    #[napi]
    pub fn begin(&self, env: Env) -> Result<PromiseRaw<'static, NativeRun>> {
        no_panic(|| {
            let (coord, store, span) = (self.coord.clone(), self.store.clone(), self.span.clone());
            spawn_for(&env, &self.span, self.store.is_etcd(), async move {
                let run = coord.begin().await.map_err(to_js_error)?;
                let tx = Arc::new(tokio::sync::Mutex::new(store.transaction()));
                Ok(NativeRun { run: Arc::new(run), store, tx, span })
            })
        })
    }

    /// Runs a recovery pass; `null` when another process held the recovery lock for `wait_ms`.
    #[napi]
    pub fn recover(&self, env: Env, wait_ms: Option<f64>) -> Result<PromiseRaw<'static, Option<NativeRecoveryReport>>> {
        no_panic(|| {
            let coord = self.coord.clone();
            spawn_for(&env, &self.span, self.store.is_etcd(), async move {
                let wait = wait_ms.map(|w| millis("wait", w, MAX_WAIT)).transpose()?;
                let report = coord.recover(wait).await.map_err(to_js_error)?;
                Ok(report.map(|r| NativeRecoveryReport {
                    committed: r.committed as u32,
                    rolled_back: r.rolled_back as u32,
                    aborted: r.aborted as u32,
                    active: r.active as u32,
                    compensated: r.compensated as u32,
                    errors: r.errors,
                }))
            })
        })
    }

    /// Asked by a branch's gid or by txid: `committed` (decided; branches not yet committed are
    /// committed by recovery), `aborted`, `active`, `forgotten`, `unknown` (a bare txid this
    /// coordinator did not make), or a saga's state (`saga:running`, `saga:compensating`,
    /// `saga:done`, `saga:compensated`). Another coordinator's gid is `INVALID_ARGUMENT`.
    #[napi]
    pub fn outcome(&self, env: Env, txid: String) -> Result<PromiseRaw<'static, String>> {
        no_panic(|| {
            // The core checks too (and checks a gid's parts); refusing here sends nothing.
            if !txid.starts_with("zktx:") && (txid.len() != 32 || !txid.bytes().all(|b| b.is_ascii_hexdigit())) {
                return Err(invalid(format!("not a transaction id (32 hex digits) or a gid: {txid:?}")));
            }
            let coord = self.coord.clone();
            spawn_for(&env, &self.span, self.store.is_etcd(), async move {
                Ok(match coord.outcome(&txid).await.map_err(to_js_error)? {
                    // Decided: every branch commits (now, or by recovery).
                    TxOutcome::Committed(_) => "committed".to_string(),
                    TxOutcome::Aborted => "aborted".to_string(),
                    TxOutcome::Active => "active".to_string(),
                    TxOutcome::Forgotten => "forgotten".to_string(),
                    TxOutcome::Unknown => "unknown".to_string(),
                    TxOutcome::Saga(s) => format!("saga:{s}"),
                })
            })
        })
    }

    /// Deletes records of transactions that ended more than `older_than_ms` ago; resolves how many.
    #[napi]
    pub fn prune(&self, env: Env, older_than_ms: f64) -> Result<PromiseRaw<'static, u32>> {
        no_panic(|| {
            let older_than = millis("olderThanMs", older_than_ms, zktx_core::store::MAX_PRUNE_AGE)?;
            let coord = self.coord.clone();
            spawn_for(&env, &self.span, self.store.is_etcd(), async move { coord.prune(older_than).await.map(|n| n as u32).map_err(to_js_error) })
        })
    }

    /// Runs saga `saga` on `input` (JSON text); resolves its txid.
    #[napi]
    pub fn run_saga(&self, env: Env, saga: String, input: String) -> Result<PromiseRaw<'static, String>> {
        no_panic(|| {
            let coord = self.coord.clone();
            spawn_for(&env, &self.span, self.store.is_etcd(), async move { coord.run_saga(&saga, &input).await.map_err(to_js_error) })
        })
    }
}

/// One distributed transaction in progress, with its own zktx-store transaction.
#[napi]
pub struct NativeRun {
    run: Arc<Run>,
    store: AnyStore,
    tx: Arc<tokio::sync::Mutex<AnyTransaction>>,
    span: tracing::Span,
}

#[napi]
impl NativeRun {
    #[napi(getter)]
    pub fn txid(&self) -> Result<String> {
        no_panic(|| Ok(self.run.txid().to_string()))
    }

    /// Enlists a participant; returns its branch's gid.
    #[napi]
    pub fn enlist(&self, participant: String) -> Result<String> {
        no_panic(|| self.run.enlist(&participant).map_err(to_js_error))
    }

    /// Reads zktx-store keys for the run (JSON text or null per key); checked at the decision.
    #[napi]
    pub fn get_many(&self, env: Env, keys: Vec<String>) -> Result<PromiseRaw<'static, Vec<Option<String>>>> {
        no_panic(|| crate::read_keys(&env, &self.span, self.store.clone(), self.tx.clone(), keys))
    }

    /// Prepares, decides (with `writes` to zktx's store) and commits.
    #[napi]
    pub fn commit(&self, env: Env, writes: Vec<NativeWrite>) -> Result<PromiseRaw<'static, NativeCoordinatorCommit>> {
        no_panic(|| {
            let (store, txm, run) = (self.store.clone(), self.tx.clone(), self.run.clone());
            spawn_for(&env, &self.span, self.store.is_etcd(), async move {
                let mut tx = txm.lock().await;
                for (key, write) in parse_writes(writes)? {
                    tx.write(&store, &key, write).map_err(to_js_error)?;
                }
                let done = run.commit(Some(&mut tx)).await.map_err(to_js_error)?;
                Ok(NativeCoordinatorCommit {
                    txid: done.txid,
                    pending: done.pending,
                    versions: done.versions.into_iter().map(|(key, version)| NativeKeyVersion { key, version: version as f64 }).collect(),
                })
            })
        })
    }

    /// Rolls back every enlisted branch.
    #[napi]
    pub fn rollback(&self, env: Env) -> Result<PromiseRaw<'static, ()>> {
        no_panic(|| {
            let run = self.run.clone();
            spawn_for(&env, &self.span, self.store.is_etcd(), async move { run.rollback().await.map_err(to_js_error) })
        })
    }
}
