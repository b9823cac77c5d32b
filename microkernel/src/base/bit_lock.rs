//! The kernel lock's type: a spin lock held in one bit, taken with one `lock bts` (the bit
//! set, its old value tested) and let go with one store. `spin::Mutex`'s compare-and-exchange
//! takes four instructions for the same thing, on the way into every system call.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, Ordering};

/// A value behind a spin lock in bit 0 of `state`.
pub struct BitLock<T> {
    state: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, which one holder has at a time (the
// bit), so sharing the lock shares no access to `T` beyond sending it.
unsafe impl<T: Send> Sync for BitLock<T> {}

impl<T> BitLock<T> {
    pub const fn new(value: T) -> Self {
        BitLock {
            state: AtomicU32::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// The lock, if it is free.
    #[inline(always)]
    pub fn try_lock(&self) -> Option<BitLockGuard<'_, T>> {
        // `fetch_or` of one bit whose old value alone is tested: `lock bts`. (A guard is made
        // only when the bit was clear: one made and dropped would let the holder's lock go.)
        if self.state.fetch_or(1, Ordering::Acquire) & 1 == 0 {
            Some(BitLockGuard { lock: self })
        } else {
            None
        }
    }

    /// The lock, spinning until it is free.
    pub fn lock(&self) -> BitLockGuard<'_, T> {
        loop {
            if let Some(guard) = self.try_lock() {
                return guard;
            }
            while self.is_locked() {
                core::hint::spin_loop();
            }
        }
    }

    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & 1 != 0
    }

    /// Lets the lock go without a guard.
    ///
    /// # Safety
    /// The caller holds the lock, through a guard it gave up ([`BitLockGuard::leak`]), and
    /// uses what that gave it no more.
    #[inline(always)]
    pub unsafe fn force_unlock(&self) {
        self.state.store(0, Ordering::Release);
    }
}

/// The lock held: the value, until the guard is dropped (or given up with `leak`).
pub struct BitLockGuard<'a, T> {
    lock: &'a BitLock<T>,
}

impl<'a, T> BitLockGuard<'a, T> {
    /// Gives the guard up without letting the lock go: the value for as long as the lock
    /// lives, until [`BitLock::force_unlock`].
    pub fn leak(this: Self) -> &'a mut T {
        let this = core::mem::ManuallyDrop::new(this);
        // SAFETY: the guard held the lock, and giving it up keeps it held: nobody else
        // reaches the value until `force_unlock`, whose caller stops using this.
        unsafe { &mut *this.lock.value.get() }
    }
}

impl<T> Deref for BitLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock, so no other reference to the value is in use.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for BitLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and the guard is borrowed mutably.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for BitLockGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        self.lock.state.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_the_value_kept() {
        let lock = BitLock::new(5u32);
        let mut guard = lock.try_lock().expect("free");
        assert!(lock.is_locked());
        assert!(lock.try_lock().is_none(), "taken twice");
        *guard += 1;
        drop(guard);
        assert!(!lock.is_locked());
        assert_eq!(*lock.lock(), 6);
        // Given up and let go by hand.
        let value = BitLockGuard::leak(lock.try_lock().expect("free again"));
        *value = 7;
        assert!(
            lock.try_lock().is_none(),
            "a leaked guard still holds the lock"
        );
        // SAFETY: held through the guard just leaked, whose value is not used again.
        unsafe { lock.force_unlock() };
        assert_eq!(*lock.try_lock().expect("let go"), 7);
    }

    #[test]
    fn threads_take_turns() {
        let lock = std::sync::Arc::new(BitLock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        *lock.lock() += 1;
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(*lock.lock(), 40_000);
    }
}
