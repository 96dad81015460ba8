//! Locks that outlive a panic. A worker that panicked while holding a mutex leaves it
//! poisoned; the data is still what the other workers need (the failures to report, the
//! units done), so it is taken as it is rather than dropped — never a silently empty
//! list of failures.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// [`Mutex::lock`], recovering the data from a poisoned lock.
pub(crate) trait Locked<T> {
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> Locked<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_keeps_its_data() {
        let m = std::sync::Arc::new(Mutex::new(vec![1]));
        let held = m.clone();
        let _ = std::thread::spawn(move || {
            let mut v = held.lock().expect("not poisoned yet");
            v.push(2);
            panic!("a worker dies holding the lock");
        })
        .join();
        assert!(m.lock().is_err(), "poisoned");
        assert_eq!(*m.locked(), vec![1, 2]);
    }
}
