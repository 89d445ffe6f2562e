//! Leader election, with the node layout of Curator's `LeaderLatch`
//! (<https://curator.apache.org/docs/recipes-leader-latch>), so that zktx candidates and Java
//! services using `LeaderLatch` on the same path agree on one leader.
//!
//! Layout (Curator 5, `LeaderLatch.reset()` and `LockInternals`): each candidate creates a
//! protected ephemeral-sequential node `<path>/_c_<uuid>-latch-<10-digit seq>` whose data is its
//! participant id (UTF-8 bytes in Curator); the lowest sequence leads (foreign children aside,
//! below); every other candidate watches its predecessor. That is the lock loop of [`super::internals`] with the
//! [`LatchDriver`] and a node that carries data, so taking part is acquiring, and leadership is
//! a [`Lock`] on the candidate's node: its czxid is the fencing token, [`Lock::lost`] the loss
//! signal, [`Lock::release`] resigning, and writes fenced on it are refused once it is lost.
//!
//! Participants are ordered as Curator's `LeaderLatch` orders them ([`latch_order`]): every
//! child of the path, sorted by the text after `latch-` in its name (the whole name when there
//! is none). So a foreign child (someone's plain sequential `0000000000`) is a participant whose
//! id is its data, and one ahead of the candidates leads and blocks them, on both sides alike.
//!
//! Observing ([`Election::participants`], [`Election::changed`], [`Election::current`]) reads the
//! participants of the path and their data; it takes no part.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use zookeeper_client as zk;

use super::driver::{latch_order, LatchDriver};
use super::internals::{self, validate_lock_path, AcquireOptions};
use super::mutex::Lock;
use crate::error::{Error, Result};
use crate::session::{deadline, Session};

/// Leadership of an election: a [`Lock`] on the candidate's latch node.
///
/// [`Lock::token`] is the fencing token (strictly increasing from one leader of the path to the
/// next), [`Lock::lost`] resolves when leadership is lost, [`Lock::release`] resigns, and a
/// write fenced on it (a `set` or transaction with the lock) commits only while the node exists.
pub type Leadership = Lock;

/// The longest participant id accepted, in bytes. Every observer reads every candidate's id, so
/// ids are kept far below ZooKeeper's 1 MiB node limit.
pub const MAX_PARTICIPANT_ID_BYTES: usize = 16 * 1024;

/// One candidate seen in an election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    /// The participant id its node carries (what Curator's `Participant.getId()` decodes).
    pub id: Vec<u8>,
    /// Its node's name under the election path.
    pub node: String,
    /// The node's sequence number (its trailing 10 or more digits), if its name has one.
    /// Candidates are ordered as Curator orders them ([`latch_order`]), which for `latch`
    /// nodes is by sequence.
    pub sequence: Option<i64>,
    /// Whether it leads (the first participant still present when read).
    pub is_leader: bool,
}

/// A leader election at one path, for one participant id.
///
/// # Example
/// ```no_run
/// # async fn demo(session: &zktx_core::Session) -> zktx_core::Result<()> {
/// use zktx_core::recipe::election::Election;
/// let election = Election::new("/election/orders", b"node-a".to_vec())?;
/// let leadership = election.lead(session, &Default::default()).await?;
/// println!("leading with token {}", leadership.token());
/// leadership.release().await?; // resign
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Election {
    path: String,
    id: Vec<u8>,
}

impl Election {
    /// An election at `path` in which this process takes part as `id`.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a path a lock could not use ([`validate_lock_path`]), `TOO_LARGE`
    /// for an id over [`MAX_PARTICIPANT_ID_BYTES`]. Nothing is sent.
    pub fn new(path: &str, id: Vec<u8>) -> Result<Election> {
        validate_lock_path(path)?;
        if id.len() > MAX_PARTICIPANT_ID_BYTES {
            return Err(Error::TooLarge(format!("participant id is {} bytes; the limit is {MAX_PARTICIPANT_ID_BYTES}", id.len())));
        }
        Ok(Election { path: path.to_string(), id })
    }

    /// The election's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// This participant's id.
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// Takes part and resolves once this candidate leads.
    ///
    /// # Guarantees
    /// At most one leader per path among live sessions, zktx and Curator `LeaderLatch`
    /// candidates alike: the first participant in Curator's order leads, and a candidate leads
    /// only once every node ahead of it is gone (a foreign child ahead of it too, as in Curator). Candidates are served in arrival order; each waits on its
    /// predecessor only. A free election costs one round trip.
    ///
    /// # Errors
    /// `TIMEOUT` when `opts.wait` passes, `ABORTED` when `opts.cancel` fires, `CLIENT_CLOSED`
    /// when the session closes meanwhile, `SESSIONEXPIRED`, `CONNECTIONLOSS`, `LOCK_LOST` when its
    /// node was deleted by someone else while it waited, `LOCK_KIND_MISMATCH` when the path is
    /// in use as a lock or semaphore.
    ///
    /// # Cancellation
    /// Timeout, abort, close or error never leave the candidate's node behind (it is deleted,
    /// retried while the session lives).
    ///
    /// # On connection loss
    /// A waiting candidate keeps its place (its watch is restored on reconnect). Leadership won
    /// is in doubt while disconnected and counts as lost after the session's `lost_after`
    /// ([`Lock::lost`] resolves `DisconnectedTooLong`); session expiry ends it (`SessionEnded`).
    pub async fn lead(&self, session: &Session, opts: &AcquireOptions) -> Result<Leadership> {
        let acquired = internals::acquire_with_data(session, &self.path, &LatchDriver, opts, None, &self.id).await?;
        Ok(Lock::from_acquired(&acquired, &self.path, session.request_timeout(&acquired.client)))
    }

    /// Every candidate, in order, the leader first, with its id.
    ///
    /// # Guarantees
    /// One listing, then every candidate's data read in one pipelined round trip. A candidate
    /// that left between the two is left out, and the first one still present (in Curator's order) is the leader.
    /// Empty when nobody takes part (or the path does not exist).
    ///
    /// # Errors
    /// `TIMEOUT` / `CONNECTIONLOSS` when the server does not answer, `CLIENT_CLOSED`,
    /// `SESSIONEXPIRED`, `NOAUTH`.
    pub async fn participants(&self, session: &Session) -> Result<Vec<Participant>> {
        session.unless_closed(false, self.read_once(session)).await
    }

    /// One listing and the reads of [`Election::participants`].
    async fn read_once(&self, session: &Session) -> Result<Vec<Participant>> {
        let client = session.client().await?;
        let rt = session.request_timeout(&client);
        let names = match deadline(rt, "list election candidates", client.list_children(&self.path)).await {
            Ok(children) => children,
            Err(Error::ZooKeeper { code: "NONODE", .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        read_participants(&client, rt, &self.path, &names).await
    }

    /// The candidates (as [`Election::participants`]), read with [`Election::changed`]'s
    /// persistence: the first state of a watch.
    ///
    /// # On connection loss
    /// Keeps trying while the session lives (a request that timed out is sent again after a
    /// pause), so a watch started while the connection is down gets the state once it returns.
    ///
    /// # Errors
    /// As [`Election::changed`].
    pub async fn current(&self, session: &Session, cancel: Option<CancellationToken>) -> Result<Vec<Participant>> {
        self.look(session, None, cancel).await
    }

    /// The current leader, if anyone takes part.
    ///
    /// # Errors
    /// As [`Election::participants`].
    pub async fn leader(&self, session: &Session) -> Result<Option<Participant>> {
        Ok(self.participants(session).await?.into_iter().next())
    }

    /// Resolves with the candidates (as [`Election::participants`]) once the set of candidate
    /// nodes differs from `known` (node names, in order), at once if it already does.
    ///
    /// # Guarantees
    /// Watches the path's children (or its existence while it is missing), so a change made
    /// after the listing it compared is never missed. Several changes between two calls arrive
    /// as one.
    ///
    /// # On connection loss
    /// Keeps trying (the watch is restored on reconnect, and a request that timed out is sent
    /// again after a pause): it does not fail while the session lives. With
    /// `reconnectAfterExpiry`, it continues on the new session.
    ///
    /// # Errors
    /// `ABORTED` when `cancel` fires, `CLIENT_CLOSED` when the session closes, `SESSIONEXPIRED`
    /// when it expired (and is not replaced), `NOAUTH`.
    pub async fn changed(&self, session: &Session, known: &[String], cancel: Option<CancellationToken>) -> Result<Vec<Participant>> {
        self.look(session, Some(known), cancel).await
    }

    /// [`Election::changed`] (`known`: `Some`) or [`Election::current`] (`None`): one retry loop.
    async fn look(&self, session: &Session, known: Option<&[String]>, cancel: Option<CancellationToken>) -> Result<Vec<Participant>> {
        let cancel = cancel.unwrap_or_default();
        let aborted = || Error::Aborted(format!("watching election {} was aborted", self.path));
        let work = async {
            let mut pause = Duration::from_millis(100);
            loop {
                match self.changed_once(session, known, &cancel).await {
                    Ok(Some(found)) => return Ok(found),
                    Ok(None) => pause = Duration::from_millis(100),
                    // The next look runs on the session that replaces the expired one.
                    Err(e) if e.is_transient() || (matches!(e, Error::SessionExpired) && session.options().reconnect_after_expiry) => {
                        tracing::debug!(election = %self.path, error = %e, "watching an election: retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(pause) => {},
                            _ = cancel.cancelled() => return Err(aborted()),
                        }
                        pause = (pause * 2).min(Duration::from_secs(2));
                    },
                    Err(e) => return Err(e),
                }
            }
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(aborted()),
            r = session.unless_closed(false, work) => r,
        }
    }

    /// One look: `Some` when the candidates differ from `known` (at once without `known`),
    /// `None` after a watch fired.
    async fn changed_once(&self, session: &Session, known: Option<&[String]>, cancel: &CancellationToken) -> Result<Option<Vec<Participant>>> {
        let Some(known) = known else { return self.read_once(session).await.map(Some) };
        let client = session.client().await?;
        let rt = session.request_timeout(&client);
        let (names, watcher) = match deadline(rt, "watch election candidates", client.list_and_watch_children(&self.path)).await {
            Ok(listed) => listed,
            Err(Error::ZooKeeper { code: "NONODE", .. }) => {
                // No path, no candidates: wait for it to be created (an exists watch is set on a
                // missing node too).
                let (stat, watcher) = deadline(rt, "watch election path", client.check_and_watch_stat(&self.path)).await?;
                if stat.is_some() {
                    return Ok(None); // created meanwhile: list it
                }
                (Vec::new(), watcher)
            },
            Err(e) => return Err(e),
        };
        let candidates = latch_order(&names);
        if candidates != known {
            return read_participants(&client, rt, &self.path, &names).await.map(Some);
        }
        drop(client); // waiting must not keep a closed session alive
        tokio::select! {
            _ = watcher.changed() => Ok(None),
            _ = cancel.cancelled() => Err(Error::Aborted(format!("watching election {} was aborted", self.path))),
        }
    }
}

/// Reads the data of every participant among `children` ([`latch_order`]) in one pipelined
/// round trip.
async fn read_participants(client: &zk::Client, rt: Duration, path: &str, children: &[String]) -> Result<Vec<Participant>> {
    let candidates = latch_order(children);
    // Sent now, in order, answered in order: one round trip for all of them.
    let reads: Vec<_> = candidates.iter().map(|c| client.get_data(&format!("{path}/{c}"))).collect();
    let results = tokio::time::timeout(rt, futures_util::future::join_all(reads))
        .await
        .map_err(|_| Error::timeout(format!("read election candidates: no answer from ZooKeeper within {} ms", rt.as_millis())))?;
    let mut out = Vec::with_capacity(candidates.len());
    for (c, r) in candidates.into_iter().zip(results) {
        match r {
            Ok((data, _)) => out.push(Participant { id: data, sequence: sequence_of(&c), node: c, is_leader: out.is_empty() }),
            Err(zk::Error::NoNode) => {}, // left between the listing and the read
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// The sequence ZooKeeper appended to a sequential node's name (its trailing 10+ digits).
fn sequence_of(name: &str) -> Option<i64> {
    let digits = &name[name.trim_end_matches(|c: char| c.is_ascii_digit()).len()..];
    if digits.len() >= 10 { digits.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_paths_and_oversized_ids_are_refused_before_anything_is_sent() {
        assert_eq!(Election::new("relative", vec![]).unwrap_err().code(), "INVALID_ARGUMENT");
        assert_eq!(Election::new("/zookeeper/x", vec![]).unwrap_err().code(), "INVALID_ARGUMENT");
        assert_eq!(Election::new("/e", vec![0; MAX_PARTICIPANT_ID_BYTES + 1]).unwrap_err().code(), "TOO_LARGE");
        assert!(Election::new("/e", vec![0; MAX_PARTICIPANT_ID_BYTES]).is_ok());
    }
}
