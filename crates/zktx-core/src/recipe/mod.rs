//! Lock recipes. Each is a facade (what users call) over the shared lock loop in
//! [`internals`], with a [`driver`] deciding how nodes sort and whom a waiter watches.

pub mod driver;
pub mod internals;
pub mod mutex;

pub use internals::{validate_lock_path, AcquireOptions};
pub use mutex::{lock, Lock, LockLoss};
