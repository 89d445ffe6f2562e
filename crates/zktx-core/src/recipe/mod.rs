//! Lock recipes. Each is a facade (what users call) over the shared lock loop in
//! [`internals`], with a [`driver`] deciding how nodes sort and whom a waiter watches:
//! exclusive lock ([`mutex`]), read-write lock ([`rwlock`]), semaphore ([`semaphore`]), and
//! all-or-nothing sets of locks ([`multi`]), and leader election ([`election`], Curator's
//! `LeaderLatch` layout: leadership is a [`Lock`] on the candidate's node). Every kind hands out
//! the same [`Lock`].

pub mod driver;
pub mod election;
pub mod internals;
pub mod multi;
pub mod mutex;
pub mod rwlock;
pub mod semaphore;

pub use election::{Election, Leadership, Participant};
pub use internals::{validate_lock_path, AcquireOptions, MAX_LOCK_PATH_BYTES};
pub use multi::multi_lock;
pub use mutex::{lock, Lock, LockLoss};
pub(crate) use mutex::{HeldPaths, Registration};
pub use rwlock::{read_lock, write_lock};
pub use semaphore::acquire_lease;
