// SPDX-License-Identifier: GPL-2.0

//! The locks and wait queue of a context, where the 6.12 kernel crate falls short.
//!
//! The 6.12 `kernel::sync` has no `try_lock` (migration may only *try* `ring_lock`) and no
//! IRQ-saving spinlock (`completion_lock` is taken from hard IRQ by timer completions). These
//! types follow `kernel::sync::Lock`: pinned, data inside, RAII guards. Each lock is initialised
//! by a C helper so that every lock of a context has its own lockdep class, named after the
//! field it guards, like the `mutex_init()`/`spin_lock_init()` call sites of fs/aio.c.

use core::{cell::UnsafeCell, marker::PhantomData, ops::Deref, ops::DerefMut};
use kernel::{init::PinInit, pin_init, prelude::*, types::Opaque};

use crate::sys;

/// A mutex that can also be tried without sleeping.
///
/// # Invariants
///
/// `mutex` has been initialised, and `data` is only accessed through a [`TryMutexGuard`],
/// which exists only while `mutex` is held.
#[pin_data]
pub(crate) struct TryMutex<T> {
    #[pin]
    mutex: Opaque<sys::mutex>,
    data: UnsafeCell<T>,
}

// SAFETY: The mutex serialises all access to `data`, so a `TryMutex` may be shared between
// threads as long as `T` can be sent to the thread that holds the lock.
unsafe impl<T: Send> Sync for TryMutex<T> {}
// SAFETY: Moving a `TryMutex` to another thread moves the `T` inside it.
unsafe impl<T: Send> Send for TryMutex<T> {}

impl<T> TryMutex<T> {
    /// Creates a mutex, initialised by `init` (a C helper that calls `mutex_init()`).
    pub(crate) fn new(data: T, init: unsafe extern "C" fn(*mut sys::mutex)) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `ffi_init` gives `init` a valid, exclusively owned, pinned slot.
            mutex <- Opaque::ffi_init(|slot| unsafe { init(slot) }),
            data: UnsafeCell::new(data),
        })
    }

    /// Takes the mutex, sleeping until it is free.
    pub(crate) fn lock(&self) -> TryMutexGuard<'_, T> {
        // SAFETY: `mutex` is initialised (type invariant).
        unsafe { sys::rust_aio_mutex_lock(self.mutex.get()) };
        TryMutexGuard::new(self)
    }

    /// Takes the mutex if it is free; never sleeps, so it may be called under a spinlock.
    #[cfg_attr(mutant = "unserialised-migrate", allow(dead_code))]
    pub(crate) fn try_lock(&self) -> Option<TryMutexGuard<'_, T>> {
        // SAFETY: `mutex` is initialised (type invariant).
        if unsafe { sys::rust_aio_mutex_trylock(self.mutex.get()) } {
            Some(TryMutexGuard::new(self))
        } else {
            None
        }
    }
}

/// Proof that a [`TryMutex`] is held; releases it when dropped.
///
/// # Invariants
///
/// The current task holds `lock.mutex`.
pub(crate) struct TryMutexGuard<'a, T> {
    lock: &'a TryMutex<T>,
    // A mutex must be released by the task that took it.
    _not_send: PhantomData<*mut ()>,
}

impl<'a, T> TryMutexGuard<'a, T> {
    fn new(lock: &'a TryMutex<T>) -> Self {
        // INVARIANT: Only called right after the mutex was taken.
        Self {
            lock,
            _not_send: PhantomData,
        }
    }
}

impl<T> Deref for TryMutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: The mutex is held (type invariant), so nobody else accesses `data`.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for TryMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: The mutex is held (type invariant), so nobody else accesses `data`.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for TryMutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: The current task holds the mutex (type invariant).
        unsafe { sys::rust_aio_mutex_unlock(self.lock.mutex.get()) };
    }
}

/// A spinlock taken with interrupts disabled, so that hard-IRQ code may take it too.
///
/// # Invariants
///
/// `lock` has been initialised, and `data` is only accessed through an [`IrqSpinLockGuard`],
/// which exists only while `lock` is held.
#[pin_data]
pub(crate) struct IrqSpinLock<T> {
    #[pin]
    lock: Opaque<sys::spinlock_t>,
    data: UnsafeCell<T>,
}

// SAFETY: The spinlock serialises all access to `data`.
unsafe impl<T: Send> Sync for IrqSpinLock<T> {}
// SAFETY: Moving an `IrqSpinLock` to another thread moves the `T` inside it.
unsafe impl<T: Send> Send for IrqSpinLock<T> {}

impl<T> IrqSpinLock<T> {
    /// Creates a spinlock, initialised by `init` (a C helper that calls `spin_lock_init()`).
    pub(crate) fn new(
        data: T,
        init: unsafe extern "C" fn(*mut sys::spinlock_t),
    ) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `ffi_init` gives `init` a valid, exclusively owned, pinned slot.
            lock <- Opaque::ffi_init(|slot| unsafe { init(slot) }),
            data: UnsafeCell::new(data),
        })
    }

    /// Takes the spinlock with local interrupts disabled (`spin_lock_irqsave()`).
    pub(crate) fn lock_irqsave(&self) -> IrqSpinLockGuard<'_, T> {
        // SAFETY: `lock` is initialised (type invariant).
        let flags = unsafe { sys::rust_aio_spin_lock_irqsave(self.lock.get()) };
        // INVARIANT: The lock was just taken.
        IrqSpinLockGuard {
            lock: self,
            flags,
            _not_send: PhantomData,
        }
    }
}

/// Proof that an [`IrqSpinLock`] is held; releases it and restores interrupts when dropped.
///
/// # Invariants
///
/// The current CPU holds `lock.lock`, with interrupts disabled since `flags` were saved.
pub(crate) struct IrqSpinLockGuard<'a, T> {
    lock: &'a IrqSpinLock<T>,
    flags: kernel::ffi::c_ulong,
    _not_send: PhantomData<*mut ()>,
}

impl<T> Deref for IrqSpinLockGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: The lock is held (type invariant), so nobody else accesses `data`.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for IrqSpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: The lock is held (type invariant), so nobody else accesses `data`.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for IrqSpinLockGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: This CPU holds the lock and `flags` came from taking it (type invariant).
        unsafe { sys::rust_aio_spin_unlock_irqrestore(self.lock.lock.get(), self.flags) };
    }
}

/// Whether the calling task has a signal pending.
pub(crate) fn signal_pending() -> bool {
    // SAFETY: Always allowed for the calling task.
    unsafe { sys::rust_aio_signal_pending() }
}

/// Whether the calling task is being killed.
pub(crate) fn fatal_signal_pending() -> bool {
    // SAFETY: Always allowed for the calling task.
    unsafe { sys::rust_aio_fatal_signal_pending() }
}

/// A wait queue (`struct wait_queue_head`).
///
/// # Invariants
///
/// `head` has been initialised.
#[pin_data]
pub(crate) struct WaitQueue {
    #[pin]
    head: Opaque<sys::wait_queue_head>,
}

// SAFETY: A wait queue is made to be used from any thread; it has its own lock.
unsafe impl Sync for WaitQueue {}
// SAFETY: See above.
unsafe impl Send for WaitQueue {}

/// Why [`WaitQueue::wait`] returned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Wakeup {
    /// Woken up, or the condition was already true.
    Woken,
    /// A signal is pending.
    Signal,
    /// The deadline passed.
    TimedOut,
}

impl WaitQueue {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `ffi_init` gives the helper a valid, exclusively owned, pinned slot.
            head <- Opaque::ffi_init(|slot| unsafe { sys::rust_aio_init_waitqueue_head(slot) }),
        })
    }

    /// Wakes every task waiting here, if there is any (`wq_has_sleeper()` + `wake_up_all()`).
    ///
    /// The caller must have published the change the waiters test before calling this; the
    /// full barrier in `wq_has_sleeper()` orders it against the waiter's `prepare_to_wait`.
    pub(crate) fn wake_up_all(&self) {
        // SAFETY: `head` is initialised (type invariant).
        unsafe {
            if sys::rust_aio_wq_has_sleeper(self.head.get()) {
                sys::rust_aio_wake_up_all(self.head.get());
            }
        }
    }

    /// Sleeps until woken, unless `done()` is already true once the task is on the queue (so a
    /// wake-up between the caller's test and the sleep is never lost).
    ///
    /// `deadline` is an absolute `CLOCK_MONOTONIC` time in nanoseconds, or `None` for no limit.
    /// An `interruptible` sleep ends when a signal is pending. `done` runs with the task state
    /// already set to sleeping: it must not sleep itself.
    pub(crate) fn wait(
        &self,
        deadline: Option<i64>,
        interruptible: bool,
        done: impl FnOnce() -> bool,
    ) -> Wakeup {
        let state = if interruptible {
            sys::TASK_INTERRUPTIBLE
        } else {
            sys::TASK_UNINTERRUPTIBLE
        };
        let entry = Opaque::<sys::wait_queue_entry>::uninit();
        // SAFETY: `entry` lives on this stack frame until `finish_wait` below removes it from
        // the queue; `head` is initialised (type invariant).
        unsafe {
            sys::rust_aio_init_wait_entry(entry.get());
            let pending = sys::prepare_to_wait_event(self.head.get(), entry.get(), state as _);
            let wakeup = if pending != 0 {
                Wakeup::Signal
            } else if done() {
                Wakeup::Woken
            } else if let Some(deadline) = deadline {
                let mut expires: sys::ktime_t = deadline;
                let slack = sys::rust_aio_current_timer_slack_ns();
                if sys::schedule_hrtimeout_range(
                    &mut expires,
                    slack,
                    sys::hrtimer_mode_HRTIMER_MODE_ABS,
                ) == 0
                {
                    Wakeup::TimedOut
                } else {
                    Wakeup::Woken
                }
            } else {
                sys::schedule();
                Wakeup::Woken
            };
            sys::finish_wait(self.head.get(), entry.get());
            wakeup
        }
    }
}

/// Busy-waits `us` microseconds (`udelay()`): allowed under spinlocks, with interrupts off.
pub(crate) fn busy_wait_us(us: u64) {
    // SAFETY: Busy-waiting has no preconditions.
    unsafe { sys::rust_aio_udelay(us as _) };
}
