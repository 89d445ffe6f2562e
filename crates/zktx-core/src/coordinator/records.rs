//! The coordinator's seam: where its records live and how they are written atomically.
//!
//! The protocol (2PC with presumed abort, sagas, recovery, ownership, pruning) is written once in
//! [`super`], over [`Records`]: a small tree of records under the coordinator's base path
//! (`<base>/<dir>/<txid>`), read with versions, listed by directory, and written by
//! [`Records::apply`]: conditions and writes applied all together or not at all. A record may be
//! tied to the client's session (ZooKeeper: an ephemeral znode; etcd: a key on the lease): it
//! goes when the session does, which is how a transaction's "may still commit" ends with its
//! coordinator.
//!
//! - ZooKeeper ([`crate::backend::zookeeper::records`]): znodes; `apply` is one `multi`
//!   (conditions are version checks, or a create-then-delete for "absent"); versions are znode
//!   versions.
//! - etcd ([`crate::backend::etcd::records`]): keys; `apply` is one `Txn` (conditions are
//!   compares on create and mod revisions); versions are mod revisions.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::backend::{AnyLock, AnyTransaction};
use crate::error::Result;

/// What must hold for [`Records::apply`] to write.
#[derive(Clone, Debug)]
pub(crate) enum Cond {
    /// The record exists.
    Exists(String),
    /// The record does not exist.
    Absent(String),
    /// The record exists at this version (as [`Records::read`] gave it).
    At(String, i64),
}

impl Cond {
    pub(crate) fn path(&self) -> &str {
        match self {
            Cond::Exists(p) | Cond::Absent(p) | Cond::At(p, _) => p,
        }
    }
}

/// One write of [`Records::apply`].
#[derive(Clone, Debug)]
pub(crate) enum Put {
    /// Creates a record that the conditions say is absent; `session`: it lives only as long as
    /// this client's session.
    Create { path: String, data: Vec<u8>, session: bool },
    /// Replaces the data of a record that the conditions say exists.
    Set(String, Vec<u8>),
    /// Deletes a record that the conditions say exists.
    Delete(String),
}

/// What [`Records::apply`] did.
#[derive(Debug)]
pub(crate) enum Applied {
    /// Everything was written: the new version of each [`Put`] (in order; a delete's is 0), and
    /// the server's order of the write (zxid, revision) if it said.
    Done { versions: Vec<i64>, zxid: Option<i64> },
    /// Nothing was written: this condition (its index) did not hold.
    Failed(usize),
}

impl Applied {
    /// The new version of the `i`-th put (0 if it was not applied).
    pub(crate) fn version(&self, i: usize) -> i64 {
        match self {
            Applied::Done { versions, .. } => versions.get(i).copied().unwrap_or(0),
            Applied::Failed(_) => 0,
        }
    }
}

/// A prune horizon ([`Records::horizon`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Horizon {
    /// Its time, in ms since the epoch (the server's clock on ZooKeeper; on etcd the later of
    /// the marking and the pruning machine's): what `outcome()` compares a txid's time with.
    pub at: i64,
    /// etcd: the store's revision at that time; records last written at or before it may go.
    pub revision: Option<i64>,
}

/// What [`Records::decide_with`] wrote: the new version of each put, the write's order (zxid,
/// revision) if known, and the store keys' new versions.
pub(crate) type Decided = (Vec<i64>, Option<i64>, Vec<(String, i64)>);

/// A record store for the coordinator (see the [module docs](self)).
///
/// # Guarantees every implementation gives
/// - `apply` is atomic, and its conditions are checked in the same step as its writes.
/// - A record created with `session: true` is deleted by the server when the client's session
///   ends (expiry, lease end, close), and never otherwise except by a write.
/// - A version from [`Records::read`] names one state of a record: [`Cond::At`] fails once it
///   was written since. (A ZooKeeper record deleted and created again restarts at version 0: the
///   protocol sets at a version only records created once and deleted only by pruning.)
/// - Every call has a deadline (the backend's request timeout); a failed call whose outcome is
///   unknown says so ([`crate::error::Outcome::Unknown`]).
pub(crate) trait Records: Send + Sync {
    /// The base path of coordinator `encoded_name`'s records.
    fn base(&self, encoded_name: &str) -> String;

    /// Whether the client was closed.
    fn is_closed(&self) -> BoxFuture<'_, bool>;

    /// Prepares `base`'s tree for records (ZooKeeper: creates its directories; etcd: the base
    /// key) and returns a stamp of the tree's birth: the same for as long as the tree exists,
    /// another for a copy of it made record by record (the coordinator's id is bound to it).
    fn prepare<'a>(&'a self, base: &'a str, dirs: &'a [&'a str]) -> BoxFuture<'a, Result<String>>;

    /// A record's data and version; `None` when absent.
    fn read<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Option<(Vec<u8>, i64)>>>;

    /// Whether a record exists.
    fn exists<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool>>;

    /// The version of a record tied to this client's session; `None` when absent or another
    /// session's.
    fn owned<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Option<i64>>>;

    /// The names of the records in directory `dir`, sorted.
    fn list<'a>(&'a self, dir: &'a str) -> BoxFuture<'a, Result<Vec<String>>>;

    /// Applies `puts` if every condition holds, atomically (see [`Applied`]). `what` names the
    /// write in errors.
    fn apply<'a>(&'a self, conds: Vec<Cond>, puts: Vec<Put>, what: &'a str) -> BoxFuture<'a, Result<Applied>>;

    /// Commits `tx` (serializable, on this backend's store) together with `conds` and `puts`, in
    /// one atomic write: the commit decision of a run that read or wrote zktx's store.
    ///
    /// # Errors
    /// `ROLLED_BACK` when a condition failed (the transaction was already ended), `CONFLICT` when
    /// a key changed, and the store commit's other errors.
    fn decide_with<'a>(&'a self, tx: &'a mut AnyTransaction, conds: Vec<Cond>, puts: Vec<Put>) -> BoxFuture<'a, Result<Decided>>;

    /// Takes the exclusive lock at `path` (this backend's lock recipe), waiting up to `wait`
    /// (`None`: forever); `None` when the wait passed.
    fn lock<'a>(&'a self, path: &'a str, wait: Option<Duration>) -> BoxFuture<'a, Result<Option<AnyLock>>>;

    /// What records of `base`'s tree may be pruned for `age`: those last written before the
    /// returned horizon. `None`: none yet. ZooKeeper: the server's clock `age` ago, compared with
    /// each node's modification time. etcd keeps no time per key: each call records the store's
    /// revision with the server's clock (a lease's countdown) in `<base>/prune-marks`, and the
    /// horizon is the latest mark at least `age` old by that clock, so a record's age never
    /// depends on the clock of the machine that wrote it or pruned it.
    fn horizon<'a>(&'a self, base: &'a str, age: Duration, what: &'a str) -> BoxFuture<'a, Result<Option<Horizon>>>;

    /// Deletes every record of `dir` that was last written before `horizon` and that
    /// `ended(name, data)` says ended (it is asked of those records only: a closure that
    /// answers `false` lists them). A record written since it was read is kept. Returns how
    /// many were deleted.
    fn sweep<'a>(&'a self, dir: &'a str, horizon: &'a Horizon, ended: &'a (dyn Fn(&str, &[u8]) -> bool + Sync)) -> BoxFuture<'a, Result<usize>>;
}
