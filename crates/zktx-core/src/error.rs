//! One error type for every zktx operation, with stable upper-case codes.
//!
//! The codes reuse ZooKeeper's own names where one exists (`NONODE`, `BADVERSION`, ...) and add
//! zktx's (`LOCK_LOST`, `TIMEOUT`, ...). They are part of the public contract: the JS facade
//! exposes them as `err.code`, so a code, once published, never changes meaning.

use std::fmt;

use zookeeper_client as zk;

/// Whether a failed write may nevertheless have been applied by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server refused the request, or it was never sent: nothing changed.
    NotApplied,
    /// The request may or may not have been applied (connection lost, or our deadline passed
    /// while the request was in flight). Re-read to find out.
    Unknown,
}

impl Outcome {
    /// `"not_applied"` or `"unknown"`, as exposed to JS in `err.outcome`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NotApplied => "not_applied",
            Outcome::Unknown => "unknown",
        }
    }
}

/// Every failure zktx reports.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Bad input from the caller; nothing was sent to the server.
    #[error("{0}")]
    InvalidArgument(String),
    /// A value or request exceeds ZooKeeper's size limit; nothing was written.
    #[error("{0}")]
    TooLarge(String),
    /// A deadline passed (acquire timeout, or no answer from the server in time).
    #[error("{message}")]
    Timeout {
        /// What timed out.
        message: String,
        /// For a write already sent: the outcome is unknown.
        outcome: Outcome,
    },
    /// The connection to the server was lost while the request was in flight.
    #[error("{message}")]
    ConnectionLoss {
        /// Details from the client.
        message: String,
        /// Whether the request may have been applied.
        outcome: Outcome,
    },
    /// No session could be opened because every host refused the connection or could not be
    /// resolved (code `CONNECTIONLOSS`, nothing sent). `cause_code` is Node's name for the
    /// first host's failure (`ECONNREFUSED`, `ENOTFOUND`), `cause` what it said.
    #[error("{message}")]
    Unreachable {
        /// What was tried and why it failed, host by host.
        message: String,
        /// `ECONNREFUSED` or `ENOTFOUND`.
        cause_code: &'static str,
        /// The first host's failure, as a socket error reads (`connect ECONNREFUSED 127.0.0.1:1`).
        cause: String,
    },
    /// The ZooKeeper session expired: every ephemeral node (lock) it owned is gone.
    #[error("session expired: every lock held on it is lost")]
    SessionExpired,
    /// The lock this operation was fenced on is no longer held.
    #[error("{0}")]
    LockLost(String),
    /// The caller cancelled the operation (AbortSignal); nothing is left behind.
    #[error("{0}")]
    Aborted(String),
    /// The optimistic transaction kept conflicting with concurrent writers.
    #[error("{0}")]
    Conflict(String),
    /// The client was closed.
    #[error("client is closed")]
    ClientClosed,
    /// The client was closed while a write was in flight: it may have applied (before the
    /// session's close, never after). Code `CLIENT_CLOSED`, outcome unknown.
    #[error("{0}")]
    ClosedDuringWrite(String),
    /// This client already holds (or is acquiring) the lock: locks are not reentrant, and
    /// waiting for ourselves would never end.
    #[error("{0}")]
    AlreadyHeld(String),
    /// A semaphore lease asked for on a path used as a lock (exclusive, read-write, multiLock),
    /// or a lock on a path used as a semaphore. A semaphore counts leases, a lock excludes
    /// holders: the two cannot share a queue. The kind of the queue's lowest node wins: a
    /// contender of the other kind is refused and leaves nothing behind.
    #[error("{0}")]
    LockKindMismatch(String),
    /// A TLS handshake with a server failed (certificate not trusted, not for this host, client
    /// certificate missing or refused): the reason, as rustls gives it. Nothing was sent.
    #[error("{0}")]
    Tls(String),
    /// A distributed transaction (see [`crate::coordinator`]) was aborted: no participant
    /// committed, prepared branches were rolled back (or are left to recovery, which rolls them
    /// back). The message says why (a participant could not prepare, a conflict, recovery).
    #[error("{0}")]
    RolledBack(String),
    /// [`Error::RolledBack`] because of another error (the session could not be opened to
    /// record the transaction, a participant's prepare failed...): code `ROLLED_BACK`, the
    /// error kept whole as its cause (the JS facade makes it `err.cause`, with its own cause).
    #[error("{message}")]
    RolledBackBecause {
        /// Why, the cause's message included.
        message: String,
        /// The error the transaction rolled back on.
        cause: Box<Error>,
    },
    /// A participant of a distributed transaction (a JavaScript object) failed a call.
    #[error("{0}")]
    Participant(String),
    /// The caller lost its ZooKeeper session (or the connection) before it learned whether its
    /// distributed transaction committed. Look the outcome up later by transaction id.
    #[error("{message}")]
    InDoubt {
        /// The transaction id.
        txid: String,
        /// Details.
        message: String,
    },
    /// A coordinator tree's id (`<base>/id`, carried by every gid) is missing from a tree that
    /// holds transaction records, or was written for another tree (a copy: a restore, a clone).
    /// The coordinator makes no gid and resolves no branch until an operator restores or re-keys
    /// it (README, "Transactions across services"). Nothing was written.
    #[error("{0}")]
    CoordinatorId(String),
    /// A ZooKeeper error without a zktx meaning of its own, under ZooKeeper's name.
    #[error("{code}: {message}")]
    ZooKeeper {
        /// ZooKeeper's name for the error (`NONODE`, `NODEEXISTS`, `BADVERSION`, ...).
        code: &'static str,
        /// Details.
        message: String,
    },
}

/// Result alias used throughout zktx.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stable code string exposed as `err.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::TooLarge(_) => "TOO_LARGE",
            Error::Timeout { .. } => "TIMEOUT",
            Error::ConnectionLoss { .. } | Error::Unreachable { .. } => "CONNECTIONLOSS",
            Error::SessionExpired => "SESSIONEXPIRED",
            Error::LockLost(_) => "LOCK_LOST",
            Error::Aborted(_) => "ABORTED",
            Error::Conflict(_) => "CONFLICT",
            Error::ClientClosed | Error::ClosedDuringWrite(_) => "CLIENT_CLOSED",
            Error::AlreadyHeld(_) => "ALREADY_HELD",
            Error::LockKindMismatch(_) => "LOCK_KIND_MISMATCH",
            Error::Tls(_) => "TLS_HANDSHAKE",
            Error::RolledBack(_) | Error::RolledBackBecause { .. } => "ROLLED_BACK",
            Error::Participant(_) => "PARTICIPANT_FAILED",
            Error::InDoubt { .. } => "IN_DOUBT",
            Error::CoordinatorId(_) => "COORDINATOR_ID",
            Error::ZooKeeper { code, .. } => code,
        }
    }

    /// The lower-level failure this error stands for, as `(code, message)`: a socket or DNS
    /// error's Node code (`ECONNREFUSED`, `ENOTFOUND`) or `ERR_TLS_HANDSHAKE`. The JS facade
    /// makes it `err.cause`.
    pub fn cause(&self) -> Option<(&'static str, &str)> {
        match self {
            Error::Unreachable { cause_code, cause, .. } => Some((cause_code, cause)),
            Error::Tls(reason) => Some(("ERR_TLS_HANDSHAKE", reason)),
            _ => None,
        }
    }

    /// The zktx error this one stands for, when it wraps one ([`Error::RolledBackBecause`]).
    /// Its own [`Error::cause`] or `caused_by` continue the chain.
    pub fn caused_by(&self) -> Option<&Error> {
        match self {
            Error::RolledBackBecause { cause, .. } => Some(cause),
            _ => None,
        }
    }

    /// `ROLLED_BACK` with `message`, keeping `cause` (see [`Error::caused_by`]).
    pub(crate) fn rolled_back(message: impl fmt::Display, cause: Error) -> Self {
        Error::RolledBackBecause { message: message.to_string(), cause: Box::new(cause) }
    }

    /// Whether a write that failed with this error may have been applied.
    pub fn outcome(&self) -> Outcome {
        match self {
            Error::Timeout { outcome, .. } | Error::ConnectionLoss { outcome, .. } => *outcome,
            Error::ClosedDuringWrite(_) | Error::InDoubt { .. } => Outcome::Unknown,
            _ => Outcome::NotApplied,
        }
    }

    /// Marks a connection-level failure of a write as "outcome unknown".
    pub(crate) fn for_write(self) -> Self {
        match self {
            Error::Timeout { message, .. } => Error::Timeout { message, outcome: Outcome::Unknown },
            Error::ConnectionLoss { message, .. } => Error::ConnectionLoss { message, outcome: Outcome::Unknown },
            other => other,
        }
    }

    /// True for failures after which retrying the same request may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::ConnectionLoss { .. } | Error::Unreachable { .. } | Error::Timeout { .. })
    }

    pub(crate) fn invalid(message: impl fmt::Display) -> Self {
        Error::InvalidArgument(message.to_string())
    }

    pub(crate) fn timeout(message: impl fmt::Display) -> Self {
        Error::Timeout { message: message.to_string(), outcome: Outcome::NotApplied }
    }

    pub(crate) fn zk(code: &'static str, message: impl fmt::Display) -> Self {
        Error::ZooKeeper { code, message: message.to_string() }
    }
}

impl From<zk::Error> for Error {
    fn from(err: zk::Error) -> Self {
        use zk::Error as Z;
        match err {
            Z::NoNode => Error::zk("NONODE", "node does not exist"),
            Z::NodeExists => Error::zk("NODEEXISTS", "node already exists"),
            Z::BadVersion => Error::zk("BADVERSION", "version mismatch"),
            Z::NotEmpty => Error::zk("NOTEMPTY", "node has children"),
            Z::NoAuth => Error::zk(
                "NOAUTH",
                "not authorized: the ACL of a node this call needs does not grant this session's identity, so the server refused it and nothing was written; connect with the auth option of an identity the ACL names (with acl 'creator-all', the one that created the nodes), or have an admin fix the ACL",
            ),
            Z::AuthFailed => Error::zk("AUTHFAILED", "authentication failed"),
            Z::InvalidAcl => Error::zk("INVALIDACL", "invalid ACL"),
            Z::NoChildrenForEphemerals => Error::zk("NOCHILDRENFOREPHEMERALS", "ephemeral nodes cannot have children"),
            Z::SessionExpired | Z::SessionMoved => Error::SessionExpired,
            Z::ClientClosed => Error::ClientClosed,
            Z::NoHosts => Error::ConnectionLoss { message: "no ZooKeeper host reachable".into(), outcome: Outcome::NotApplied },
            Z::Timeout => Error::timeout("ZooKeeper did not answer in time"),
            Z::BadArguments(msg) => Error::invalid(format!("bad arguments: {msg}")),
            Z::MarshallingError => Error::TooLarge("the server could not read the request (over its jute.maxbuffer limit?)".into()),
            Z::Throttled => Error::zk("THROTTLED", "request throttled by an overloaded server"),
            Z::QuotaExceeded => Error::zk("QUOTAEXCEEDED", "quota exceeded"),
            Z::NotReadOnly => Error::zk("NOTREADONLY", "write sent to a read-only server"),
            Z::Unimplemented => Error::zk("UNIMPLEMENTED", "operation not supported by the server"),
            // zookeeper-client 0.11 reports some connection losses as Custom errors (see
            // shared/ZOOKEEPER.md): both mean "the request's fate is unknown".
            Z::ConnectionLoss => Error::ConnectionLoss { message: "connection to ZooKeeper lost".into(), outcome: Outcome::NotApplied },
            Z::Custom(e) => Error::ConnectionLoss { message: format!("connection to ZooKeeper lost: {e}"), outcome: Outcome::NotApplied },
            other => Error::zk("SYSTEMERROR", other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(Error::from(zk::Error::NoNode).code(), "NONODE");
        assert_eq!(Error::from(zk::Error::BadVersion).code(), "BADVERSION");
        assert_eq!(Error::from(zk::Error::SessionExpired).code(), "SESSIONEXPIRED");
        assert_eq!(Error::from(zk::Error::ConnectionLoss).code(), "CONNECTIONLOSS");
        assert_eq!(Error::LockLost("x".into()).code(), "LOCK_LOST");
        assert_eq!(Error::LockKindMismatch("x".into()).code(), "LOCK_KIND_MISMATCH");
        assert_eq!(Error::CoordinatorId("x".into()).code(), "COORDINATOR_ID");
    }

    #[test]
    fn connection_loss_on_write_has_unknown_outcome() {
        let e = Error::from(zk::Error::ConnectionLoss);
        assert_eq!(e.outcome(), Outcome::NotApplied);
        assert_eq!(e.for_write().outcome(), Outcome::Unknown);
        assert_eq!(Error::zk("NONODE", "x").for_write().outcome(), Outcome::NotApplied);
    }
}
