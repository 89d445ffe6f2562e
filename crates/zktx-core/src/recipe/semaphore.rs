//! Counting semaphore: at most `permits` leases of one path at a time.
//!
//! Every user of a path must pass the same `permits`: the count is not stored in ZooKeeper.
//! A lease is a [`Lock`]: same token, loss signal, fencing and release.

use super::driver::StandardDriver;
use super::internals::AcquireOptions;
use super::mutex::{acquire_with, Lock};
use crate::error::{Error, Result};
use crate::session::Session;

/// The most permits a semaphore may have.
pub const MAX_PERMITS: u32 = 10_000;

/// Acquires one lease of the semaphore at `path` with `permits` permits.
///
/// # Errors
/// `INVALID_ARGUMENT` for `permits` outside `1..=MAX_PERMITS`; `LOCK_KIND_MISMATCH` (nothing
/// left behind) when a lock node (exclusive, read, write) heads the queue at `path` (see
/// [`super::driver`]), unless `permits` is 1, which makes the lease an exclusive lock; otherwise
/// as [`super::lock`].
pub async fn acquire_lease(session: &Session, path: &str, permits: u32, opts: &AcquireOptions) -> Result<Lock> {
    if permits == 0 || permits > MAX_PERMITS {
        return Err(Error::invalid(format!("permits must be between 1 and {MAX_PERMITS}, got {permits}")));
    }
    acquire_with(session, path, &StandardDriver { max_leases: permits as usize }, opts).await
}
