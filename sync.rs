// SPDX-License-Identifier: GPL-2.0

//! The locks and wait queue of a context, where the 6.12 kernel crate falls short.
//!
//! Both locks are made the kernel crate's way, with a lockdep class of their own per `new_*!`
//! call site, named there (as `new_spinlock!` and `new_mutex!` do): each lock of a context has
//! its own class, named after the field it guards, like the `mutex_init()`/`spin_lock_init()`
//! call sites of fs/aio.c.
//!
//! - [`IrqSpinLock`] (`completion_lock` and `ctx_lock`, which timer completions take from hard
//!   IRQ): the kernel crate's [`Lock`] and [`Guard`] over a backend of ours,
//!   [`IrqSpinLockBackend`], which takes the spinlock with `spin_lock_irqsave()` and keeps the
//!   saved flags as its guard state. 6.12 has no IRQ-saving backend.
//! - [`TryMutex`] (`ring_lock`, which migration may only *try*): 6.12's `Lock` has no `try_lock`,
//!   and a module cannot add one to it: the lock's C state is a private field, and a [`Guard`]
//!   can only be made inside the kernel crate (`Guard::new` is `pub(crate)`), so only
//!   `Lock::lock()` makes one. `TryMutex` is therefore the smallest lock of the module's own: a
//!   C mutex and its data, initialised, taken and released by the kernel crate's
//!   [`MutexBackend`], plus `mutex_trylock()`. From 6.13 on, the kernel's `Mutex` and its
//!   `try_lock()` replace it.

use core::{cell::UnsafeCell, marker::PhantomData, ops::Deref, ops::DerefMut};
use kernel::{
    bindings,
    ffi::c_ulong,
    init::PinInit,
    pin_init,
    prelude::*,
    sync::{
        lock::{mutex::MutexBackend, spinlock::SpinLockBackend, Backend, Guard, Lock},
        LockClassKey,
    },
    types::Opaque,
};

use crate::sys;

/// The C `lock_class_key` of `key`, for a backend's `init` (6.12's `LockClassKey::as_ptr()` is
/// private to the kernel crate).
fn class_key(key: &'static LockClassKey) -> *mut bindings::lock_class_key {
    // `LockClassKey` is `repr(transparent)` over `Opaque<lock_class_key>`, itself transparent over
    // the C struct; lockdep writes it through the `Opaque`'s interior mutability.
    (key as *const LockClassKey).cast_mut().cast()
}

/// A spinlock taken with interrupts disabled (`spin_lock_irqsave()`), so that hard-IRQ code may
/// take it too: the kernel crate's [`Lock`] over [`IrqSpinLockBackend`]. Made by
/// [`new_irq_spinlock!`].
pub(crate) type IrqSpinLock<T> = Lock<T, IrqSpinLockBackend>;

/// Proof that an [`IrqSpinLock`] is held; releases it and restores interrupts when dropped.
pub(crate) type IrqSpinLockGuard<'a, T> = Guard<'a, T, IrqSpinLockBackend>;

/// The backend of an [`IrqSpinLock`]: a `spinlock_t` taken with `spin_lock_irqsave()` and
/// released with `spin_unlock_irqrestore()`; the guard state is the saved interrupt flags.
pub(crate) struct IrqSpinLockBackend;

// SAFETY: The `spinlock_t` gives mutual exclusion between CPUs, and with local interrupts off
// against this CPU's interrupt handlers; `unlock` restores the flags its `lock` saved. `relock` is
// the default, which calls `lock` again: the same method.
unsafe impl Backend for IrqSpinLockBackend {
    type State = bindings::spinlock_t;
    type GuardState = c_ulong;

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const kernel::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: The caller's guarantees (`ptr` valid for writes, `name` and `key` for ever) are
        // the ones `SpinLockBackend::init` needs: the same `spinlock_t`, initialised the same way.
        unsafe { SpinLockBackend::init(ptr, name, key) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: The caller guarantees that `init` was called; both bindings name the same C
        // type.
        unsafe { sys::rust_aio_spin_lock_irqsave(ptr.cast()) }
    }

    unsafe fn unlock(ptr: *mut Self::State, guard_state: &Self::GuardState) {
        // SAFETY: The caller owns the lock, which `lock` took and whose flags are `guard_state`.
        unsafe { sys::rust_aio_spin_unlock_irqrestore(ptr.cast(), *guard_state) }
    }
}

/// An [`IrqSpinLock`] initialiser with a lockdep class of its own, named `$name` (as
/// `new_spinlock!`).
macro_rules! new_irq_spinlock {
    ($inner:expr, $name:literal $(,)?) => {
        $crate::sync::IrqSpinLock::new($inner, kernel::c_str!($name), kernel::static_lock_class!())
    };
}
pub(crate) use new_irq_spinlock;

/// A mutex that can also be tried without sleeping (see the module documentation for why it is
/// not the kernel crate's `Mutex`). Made by [`new_try_mutex!`].
///
/// # Invariants
///
/// `state` has been initialised by [`MutexBackend::init`], and `data` is only accessed through a
/// [`TryMutexGuard`], which exists only while `state` is held.
#[pin_data]
pub(crate) struct TryMutex<T> {
    #[pin]
    state: Opaque<bindings::mutex>,
    data: UnsafeCell<T>,
}

// SAFETY: The mutex serialises all access to `data`, so a `TryMutex` may be shared between
// threads as long as `T` can be sent to the thread that holds the lock.
unsafe impl<T: Send> Sync for TryMutex<T> {}
// SAFETY: Moving a `TryMutex` to another thread moves the `T` inside it.
unsafe impl<T: Send> Send for TryMutex<T> {}

impl<T> TryMutex<T> {
    /// Creates a mutex whose lockdep class is `key`, named `name`; see [`new_try_mutex!`].
    pub(crate) fn new(
        data: T,
        name: &'static CStr,
        key: &'static LockClassKey,
    ) -> impl PinInit<Self> {
        pin_init!(Self {
            data: UnsafeCell::new(data),
            // SAFETY: `ffi_init` gives a valid, exclusively owned, pinned slot, and `name` and
            // `key` are static.
            state <- Opaque::ffi_init(|slot| unsafe {
                MutexBackend::init(slot, name.as_char_ptr(), class_key(key))
            }),
        })
    }

    /// Takes the mutex, sleeping until it is free.
    pub(crate) fn lock(&self) -> TryMutexGuard<'_, T> {
        // SAFETY: `state` is initialised (type invariant). The backend's guard state is `()`.
        let () = unsafe { MutexBackend::lock(self.state.get()) };
        TryMutexGuard::new(self)
    }

    /// Takes the mutex if it is free; never sleeps, so it may be called under a spinlock. What
    /// 6.12's `Lock` lacks (later kernels' `Backend::try_lock` of `MutexBackend`).
    pub(crate) fn try_lock(&self) -> Option<TryMutexGuard<'_, T>> {
        // SAFETY: `state` is initialised (type invariant).
        if unsafe { bindings::mutex_trylock(self.state.get()) } != 0 {
            Some(TryMutexGuard::new(self))
        } else {
            None
        }
    }
}

/// A [`TryMutex`] initialiser with a lockdep class of its own, named `$name` (as `new_mutex!`).
macro_rules! new_try_mutex {
    ($inner:expr, $name:literal $(,)?) => {
        $crate::sync::TryMutex::new($inner, kernel::c_str!($name), kernel::static_lock_class!())
    };
}
pub(crate) use new_try_mutex;

/// Proof that a [`TryMutex`] is held; releases it when dropped.
///
/// # Invariants
///
/// The current task holds `lock.state`.
#[must_use = "the lock unlocks immediately when the guard is unused"]
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
        unsafe { MutexBackend::unlock(self.lock.state.get(), &()) };
    }
}

/// Puts the signal mask at user address `mask` (a `sigset_t` of `size` bytes; 0: none) in force
/// until [`restore_sigmask_unless`] (io_pgetevents()'s `set_user_sigmask()`): EINVAL for a wrong
/// size, EFAULT.
pub(crate) fn set_user_sigmask(mask: usize, size: usize) -> Result {
    // SAFETY: The helper copies the mask from user memory itself.
    kernel::error::to_result(unsafe {
        sys::rust_aio_set_user_sigmask(mask as *const kernel::ffi::c_void, size)
    })
}

/// Ends what [`set_user_sigmask`] began (`restore_saved_sigmask_unless()`): unless
/// `interrupted`, the old mask is back now; if a signal is pending, it is delivered on the way
/// back to user space under the temporary mask, which is restored after.
pub(crate) fn restore_sigmask_unless(interrupted: bool) {
    // SAFETY: Always allowed for the calling task.
    unsafe { sys::rust_aio_restore_saved_sigmask_unless(interrupted) }
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
