//! zktx-core: ZooKeeper-coordinated locks and fenced transactions, in pure Rust.
//!
//! - [`session`]: connecting, deadlines, expiry.
//! - [`recipe`]: lock recipes (exclusive lock; facade / internals / driver as in Curator).
//! - [`kv`]: how keys map to znodes, JSON values and size limits.
//! - [`store`]: get / set / fenced set of keys.
//! - [`txn`]: `executeTransaction` — lock, read, fenced write + release in one `multi`.
//! - [`transaction`]: multi-key optimistic transactions committed by one `multi`.
//! - [`coordinator`]: atomic commit across other resources (2PC, sagas) with ZooKeeper deciding.
//! - [`error`]: one error enum with stable codes.
//! - [`clock`]: the clock age limits are measured on (tests move it forward).
//! - [`znode`]: the raw ZooKeeper API (znodes, Stat, ACLs, multi, sync, one-shot watches).
//!
//! No napi here: the Node binding in the repository root converts and delegates.

pub mod backend;
pub mod clock;
pub mod coordinator;
pub mod error;
pub mod kv;
pub mod recipe;
pub mod session;
pub mod store;
pub mod transaction;
pub mod txn;
pub mod znode;

pub use error::{Error, Outcome, Result};
pub use session::{Session, SessionEvent, SessionOptions};
pub use store::{Compaction, LockKind, Store, Versioned};
pub use tokio_util::sync::CancellationToken;
