//! `NativeElection`: the binding of `zktx_core::recipe::election` (the JS `zk.election(path)`).
//!
//! Leadership crosses as a [`NativeLock`] (it is a lock on the candidate's node), so fencing,
//! loss callbacks and release (resign) are the lock's own. A participant id crosses as text:
//! UTF-8 bytes on the server, as Curator's `LeaderLatch` writes them.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use zktx_core::recipe::{Election, Participant};
use zktx_core::Store;

use crate::{acquire_options, in_span, no_panic, to_js_error, NativeLock};

/// One candidate of an election.
#[napi(object)]
pub struct NativeParticipant {
    /// Its participant id (its node's data as UTF-8; invalid sequences replaced).
    pub id: String,
    /// Its node's name under the election path.
    pub node: String,
    pub is_leader: bool,
}

impl From<Participant> for NativeParticipant {
    fn from(p: Participant) -> Self {
        NativeParticipant { id: String::from_utf8_lossy(&p.id).into_owned(), node: p.node, is_leader: p.is_leader }
    }
}

/// A leader election at one path, for one participant id.
#[napi]
pub struct NativeElection {
    pub(crate) store: Arc<Store>,
    pub(crate) election: Arc<Election>,
    pub(crate) span: tracing::Span,
}

/// `zk.election(path, id)`: validated here (nothing sent).
pub(crate) fn new_election(store: Arc<Store>, span: tracing::Span, path: String, id: String) -> Result<NativeElection> {
    let election = store.election(&path, id.into_bytes()).map_err(to_js_error)?;
    Ok(NativeElection { store, election: Arc::new(election), span })
}

#[napi]
impl NativeElection {
    /// Takes part; resolves with the leadership (a lock on this candidate's node).
    #[napi]
    pub fn lead(&self, env: Env, timeout_ms: Option<f64>, cancel_id: Option<u32>) -> Result<PromiseRaw<'static, NativeLock>> {
        no_panic(|| {
            let (store, election) = (self.store.clone(), self.election.clone());
            in_span(env, &self.span, async move {
                let opts = acquire_options(timeout_ms, cancel_id)?;
                let lock = election.lead(store.session(), &opts).await.map_err(to_js_error)?;
                Ok(NativeLock::zookeeper(lock))
            })
        })
    }

    /// Every candidate, the leader first.
    #[napi]
    pub fn participants(&self, env: Env) -> Result<PromiseRaw<'static, Vec<NativeParticipant>>> {
        no_panic(|| {
            let (store, election) = (self.store.clone(), self.election.clone());
            in_span(env, &self.span, async move {
                let found = election.participants(store.session()).await.map_err(to_js_error)?;
                Ok(found.into_iter().map(Into::into).collect())
            })
        })
    }

    /// The candidates now, retried through connection loss (the first state of a watch).
    #[napi]
    pub fn current(&self, env: Env, cancel_id: Option<u32>) -> Result<PromiseRaw<'static, Vec<NativeParticipant>>> {
        no_panic(|| {
            let (store, election) = (self.store.clone(), self.election.clone());
            in_span(env, &self.span, async move {
                let cancel = acquire_options(None, cancel_id)?.cancel;
                let found = election.current(store.session(), cancel).await.map_err(to_js_error)?;
                Ok(found.into_iter().map(Into::into).collect())
            })
        })
    }

    /// Resolves with the candidates once their nodes differ from `known` (node names, in order).
    #[napi]
    pub fn changed(&self, env: Env, known: Vec<String>, cancel_id: Option<u32>) -> Result<PromiseRaw<'static, Vec<NativeParticipant>>> {
        no_panic(|| {
            let (store, election) = (self.store.clone(), self.election.clone());
            in_span(env, &self.span, async move {
                let cancel = acquire_options(None, cancel_id)?.cancel;
                let found = election.changed(store.session(), &known, cancel).await.map_err(to_js_error)?;
                Ok(found.into_iter().map(Into::into).collect())
            })
        })
    }
}
