//! Multi-lock: several exclusive locks taken as one, all or nothing.
//!
//! Paths are sorted and de-duplicated before acquiring, so two callers naming the same paths in
//! different orders acquire them in the same order and cannot deadlock each other.

use tokio::time::Instant;

use super::internals::AcquireOptions;
use super::mutex::{lock, Lock};
use crate::error::{Error, Result};
use crate::session::Session;

/// The canonical acquisition order of `paths`: sorted, without duplicates.
pub fn canonical_order(paths: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    v.sort();
    v.dedup();
    v
}

/// Acquires every lock in `paths` (in canonical order) within one deadline.
///
/// # Errors
/// `INVALID_ARGUMENT` for an empty list; any error of [`super::lock`], after releasing the locks
/// already taken.
pub async fn multi_lock(session: &Session, paths: &[&str], opts: &AcquireOptions) -> Result<Vec<Lock>> {
    let order = canonical_order(paths);
    for p in &order {
        super::validate_lock_path(p)?;
    }
    acquire_all(&order, opts, |path, opts| async move { lock(session, &path, &opts).await }, |l: Lock| async move {
        let _ = l.release().await;
    })
    .await
}

/// The all-or-nothing loop of a multi-lock, for any backend's locks: takes `order` (already
/// canonical) one after the other within `opts`' one deadline, and on the first failure gives
/// back, newest first, what it took.
///
/// # Errors
/// `INVALID_ARGUMENT` for an empty list; the first error of `acquire`.
pub async fn acquire_all<L, A, AFut, R, RFut>(order: &[String], opts: &AcquireOptions, acquire: A, release: R) -> Result<Vec<L>>
where
    A: Fn(String, AcquireOptions) -> AFut,
    AFut: std::future::Future<Output = Result<L>>,
    R: Fn(L) -> RFut,
    RFut: std::future::Future<Output = ()>,
{
    if order.is_empty() {
        return Err(Error::invalid("multiLock needs at least one path"));
    }
    let give_up_at = opts.wait.and_then(crate::session::instant_after);
    let mut held: Vec<L> = Vec::with_capacity(order.len());
    for path in order {
        let wait = give_up_at.map(|t| t.saturating_duration_since(Instant::now()));
        match acquire(path.clone(), AcquireOptions { wait, cancel: opts.cancel.clone() }).await {
            Ok(l) => held.push(l),
            Err(e) => {
                while let Some(l) = held.pop() {
                    release(l).await;
                }
                return Err(e);
            },
        }
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    #[test]
    fn any_order_gives_one_order() {
        assert_eq!(super::canonical_order(&["/b", "/a", "/b"]), vec!["/a", "/b"]);
        assert_eq!(super::canonical_order(&["/a", "/b"]), super::canonical_order(&["/b", "/a"]));
    }
}
