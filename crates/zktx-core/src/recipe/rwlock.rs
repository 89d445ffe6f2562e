//! Read-write lock (Curator's `InterProcessReadWriteLock`): many readers or one writer.
//!
//! Both sides queue in one directory; readers hold while no writer is ahead of them, a writer
//! holds when first. Arrival order is kept, so a waiting writer blocks later readers (writers are
//! not starved) and no cycle of waits can form (kazoo #649's deadlock cannot happen: every waiter
//! watches a node strictly ahead of it). An exclusive lock ([`super::lock`], multi-locks) on
//! the same path is a writer to readers; semaphore leases cannot share the path
//! (`LOCK_KIND_MISMATCH`, see [`super::driver`]).

use super::driver::ReadWriteDriver;
use super::internals::AcquireOptions;
use super::mutex::{acquire_with, Lock};
use crate::error::Result;
use crate::session::Session;

/// Acquires the shared (read) side of the lock at `path`.
///
/// # Errors
/// As [`super::lock`].
pub async fn read_lock(session: &Session, path: &str, opts: &AcquireOptions) -> Result<Lock> {
    acquire_with(session, path, &ReadWriteDriver::Read, opts).await
}

/// Acquires the exclusive (write) side of the lock at `path`.
///
/// # Errors
/// As [`super::lock`].
pub async fn write_lock(session: &Session, path: &str, opts: &AcquireOptions) -> Result<Lock> {
    acquire_with(session, path, &ReadWriteDriver::Write, opts).await
}
