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
//! - [`TryMutex`] (`ring_lock`, which migration may only *try*) and [`TryIrqSpinLock`]
//!   (`ctx_lock_polls`, which a poll's wake function may only try): 6.12's `Lock` has no
//!   `try_lock`, so these are [`TryLock`]s, the smallest lock of the module's own, over the
//!   kernel crate's backends plus the C trylock (see [`TryBackend`]). From 6.13 on, the
//!   kernel's `Lock::try_lock()` replaces them.

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

use crate::kapi::sys;

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
        $crate::kapi::sync::IrqSpinLock::new(
            $inner,
            kernel::c_str!($name),
            kernel::static_lock_class!(),
        )
    };
}
pub(crate) use new_irq_spinlock;

/// A lock that can also be *tried*, which 6.12's [`Lock`] cannot do, and a module cannot add to
/// it: the lock's C state is a private field, and a [`Guard`] can only be made inside the kernel
/// crate (`Guard::new` is `pub(crate)`). [`TryLock`] is therefore the smallest lock of the
/// module's own: a C lock and its data, initialised, taken and released by one of the backends
/// below, which also try it. From 6.13 on, the kernel's `Lock::try_lock()` replaces it.
///
/// # Safety
///
/// As [`Backend`]: `lock` and a successful `try_lock` give exclusive access until `unlock`, to
/// which they hand their guard state.
pub(crate) unsafe trait TryBackend {
    /// The C lock.
    type State;
    /// What the lock's holder keeps until it unlocks (the saved interrupt flags, say).
    type GuardState;

    /// Initialises the lock, with a lockdep class of its own.
    ///
    /// # Safety
    ///
    /// As [`Backend::init`].
    unsafe fn init(
        ptr: *mut Self::State,
        name: *const kernel::ffi::c_char,
        key: *mut bindings::lock_class_key,
    );

    /// Takes the lock, waiting for it.
    ///
    /// # Safety
    ///
    /// `init` was called on `ptr`.
    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState;

    /// Takes the lock if it is free, never waiting.
    ///
    /// # Safety
    ///
    /// `init` was called on `ptr`.
    unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState>;

    /// Releases the lock.
    ///
    /// # Safety
    ///
    /// The caller holds the lock, taken by `lock` or `try_lock`, which returned `guard_state`.
    unsafe fn unlock(ptr: *mut Self::State, guard_state: &Self::GuardState);
}

/// The backend of a [`TryMutex`]: the kernel crate's [`MutexBackend`], plus `mutex_trylock()`.
pub(crate) struct MutexTry;

// SAFETY: The kernel crate's mutex backend gives mutual exclusion; `mutex_trylock()` takes the
// same mutex, without sleeping.
unsafe impl TryBackend for MutexTry {
    type State = bindings::mutex;
    type GuardState = ();

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const kernel::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: The caller's guarantees are `MutexBackend::init`'s.
        unsafe { MutexBackend::init(ptr, name, key) }
    }

    unsafe fn lock(ptr: *mut Self::State) {
        // SAFETY: The caller's guarantee: the mutex is initialised.
        unsafe { MutexBackend::lock(ptr) }
    }

    unsafe fn try_lock(ptr: *mut Self::State) -> Option<()> {
        // SAFETY: The caller's guarantee: the mutex is initialised.
        (unsafe { bindings::mutex_trylock(ptr) } != 0).then_some(())
    }

    unsafe fn unlock(ptr: *mut Self::State, guard_state: &()) {
        // SAFETY: The caller holds the mutex.
        unsafe { MutexBackend::unlock(ptr, guard_state) }
    }
}

/// The backend of a [`TryIrqSpinLock`]: [`IrqSpinLockBackend`]'s `spinlock_t` taken with
/// interrupts off, plus `spin_trylock_irqsave()`; the guard state is the saved interrupt flags.
pub(crate) struct IrqSpinTry;

// SAFETY: As `IrqSpinLockBackend`, whose methods these are; `try_lock` takes the same lock
// without spinning and saves the flags `unlock` restores.
unsafe impl TryBackend for IrqSpinTry {
    type State = bindings::spinlock_t;
    type GuardState = c_ulong;

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const kernel::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: The caller's guarantees are the backend's.
        unsafe { IrqSpinLockBackend::init(ptr, name, key) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> c_ulong {
        // SAFETY: The caller's guarantee: the lock is initialised.
        unsafe { IrqSpinLockBackend::lock(ptr) }
    }

    unsafe fn try_lock(ptr: *mut Self::State) -> Option<c_ulong> {
        let mut flags = 0;
        // SAFETY: The caller's guarantee: the lock is initialised; `flags` outlives the call.
        unsafe { sys::rust_aio_spin_trylock_irqsave(ptr.cast(), &mut flags) }.then_some(flags)
    }

    unsafe fn unlock(ptr: *mut Self::State, guard_state: &c_ulong) {
        // SAFETY: The caller holds the lock, which saved these flags.
        unsafe { IrqSpinLockBackend::unlock(ptr, guard_state) }
    }
}

/// A lock that can be tried, over the backend `B` (see [`TryBackend`]).
///
/// # Invariants
///
/// `state` has been initialised by `B::init`, and `data` is only accessed through a
/// [`TryLockGuard`], which exists only while `state` is held.
#[pin_data]
pub(crate) struct TryLock<T, B: TryBackend> {
    #[pin]
    state: Opaque<B::State>,
    data: UnsafeCell<T>,
}

/// A mutex that migration may only try (`ring_lock`). Made by [`new_try_mutex!`].
pub(crate) type TryMutex<T> = TryLock<T, MutexTry>;
/// A spinlock taken with interrupts off that a wake function may only try (`ctx_lock_polls`).
/// Made by [`new_try_irq_spinlock!`].
pub(crate) type TryIrqSpinLock<T> = TryLock<T, IrqSpinTry>;

// SAFETY: The lock serialises all access to `data`, so a `TryLock` may be shared between threads
// as long as `T` can be sent to the thread that holds the lock.
unsafe impl<T: Send, B: TryBackend> Sync for TryLock<T, B> {}
// SAFETY: Moving a `TryLock` to another thread moves the `T` inside it.
unsafe impl<T: Send, B: TryBackend> Send for TryLock<T, B> {}

impl<T, B: TryBackend> TryLock<T, B> {
    /// Creates a lock whose lockdep class is `key`, named `name`; see [`new_try_mutex!`].
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
                B::init(slot, name.as_char_ptr(), class_key(key))
            }),
        })
    }

    /// Takes the lock, waiting until it is free.
    pub(crate) fn lock(&self) -> TryLockGuard<'_, T, B> {
        // SAFETY: `state` is initialised (type invariant).
        let state = unsafe { B::lock(self.state.get()) };
        TryLockGuard::new(self, state)
    }

    /// Takes the lock if it is free; never waits, so it may be called where waiting for this
    /// lock could deadlock (under a lock that comes after it in the lock order).
    pub(crate) fn try_lock(&self) -> Option<TryLockGuard<'_, T, B>> {
        // SAFETY: `state` is initialised (type invariant).
        let state = unsafe { B::try_lock(self.state.get()) }?;
        Some(TryLockGuard::new(self, state))
    }
}

/// A [`TryMutex`] initialiser with a lockdep class of its own, named `$name` (as `new_mutex!`).
macro_rules! new_try_mutex {
    ($inner:expr, $name:literal $(,)?) => {
        $crate::kapi::sync::TryMutex::new(
            $inner,
            kernel::c_str!($name),
            kernel::static_lock_class!(),
        )
    };
}
pub(crate) use new_try_mutex;

/// A [`TryIrqSpinLock`] initialiser with a lockdep class of its own, named `$name`.
macro_rules! new_try_irq_spinlock {
    ($inner:expr, $name:literal $(,)?) => {
        $crate::kapi::sync::TryIrqSpinLock::new(
            $inner,
            kernel::c_str!($name),
            kernel::static_lock_class!(),
        )
    };
}
pub(crate) use new_try_irq_spinlock;

/// Proof that a [`TryLock`] is held; releases it when dropped.
///
/// # Invariants
///
/// The current task (or CPU) holds `lock.state`, taken with `state`.
#[must_use = "the lock unlocks immediately when the guard is unused"]
pub(crate) struct TryLockGuard<'a, T, B: TryBackend> {
    lock: &'a TryLock<T, B>,
    state: B::GuardState,
    // A lock must be released by the task that took it.
    _not_send: PhantomData<*mut ()>,
}

/// Proof that a [`TryMutex`] is held.
pub(crate) type TryMutexGuard<'a, T> = TryLockGuard<'a, T, MutexTry>;
/// Proof that a [`TryIrqSpinLock`] is held.
pub(crate) type TryIrqSpinLockGuard<'a, T> = TryLockGuard<'a, T, IrqSpinTry>;

impl<'a, T, B: TryBackend> TryLockGuard<'a, T, B> {
    fn new(lock: &'a TryLock<T, B>, state: B::GuardState) -> Self {
        // INVARIANT: Only called right after the lock was taken, with what taking it returned.
        Self {
            lock,
            state,
            _not_send: PhantomData,
        }
    }
}

impl<T, B: TryBackend> Deref for TryLockGuard<'_, T, B> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: The lock is held (type invariant), so nobody else accesses `data`.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T, B: TryBackend> DerefMut for TryLockGuard<'_, T, B> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: The lock is held (type invariant), so nobody else accesses `data`.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T, B: TryBackend> Drop for TryLockGuard<'_, T, B> {
    fn drop(&mut self) {
        // SAFETY: The current task holds the lock, taken with `state` (type invariant).
        unsafe { B::unlock(self.lock.state.get(), &self.state) };
    }
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
