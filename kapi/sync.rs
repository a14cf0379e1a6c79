// SPDX-License-Identifier: GPL-2.0

//! The locks and wait queue of a context.
//!
//! The locks are the kernel crate's, each with a lockdep class of its own per `new_*!` call site,
//! named there: each lock of a context has its own class, named after the field it guards, like
//! the `mutex_init()`/`spin_lock_init()` call sites of fs/aio.c. The names below say what the
//! module needs of each:
//!
//! - [`IrqSpinLock`] (`completion_lock` and `ctx_lock`, which timer completions take from hard
//!   IRQ): the kernel crate's `SpinLockIrq`, which disables interrupts while it is held and nests
//!   in any context but NMI.
//! - [`TryMutex`] (`ring_lock`, which migration may only *try*) and [`TryIrqSpinLock`]
//!   (`ctx_lock_polls`, which a poll's wake function may only try): `Mutex` and `SpinLockIrq`,
//!   whose `try_lock()` never waits.
//!
//! The wait queue is the module's own: a lockless condition tested after the task is on the
//! queue, and an absolute `CLOCK_MONOTONIC` deadline with the task's timer slack, which the
//! kernel crate's `CondVar` (a lock's guard, a timeout in jiffies) does not offer.

use kernel::{ffi::c_int, prelude::*, types::Opaque};

use crate::kapi::sys;

pub(crate) use kernel::sync::{
    MutexGuard as TryMutexGuard, SpinLockIrq as IrqSpinLock, SpinLockIrq as TryIrqSpinLock,
    SpinLockIrqGuard as IrqSpinLockGuard, SpinLockIrqGuard as TryIrqSpinLockGuard,
};

/// `ring_lock`: a mutex that migration only tries.
pub(crate) type TryMutex<T> = kernel::sync::Mutex<T>;

/// A new [`IrqSpinLock`] with a lockdep class of its own, named `$name`.
macro_rules! new_irq_spinlock {
    ($inner:expr, $name:literal $(,)?) => {
        kernel::new_spinlock_irq!($inner, $name)
    };
}
pub(crate) use new_irq_spinlock;

/// A new [`TryIrqSpinLock`] with a lockdep class of its own, named `$name`.
macro_rules! new_try_irq_spinlock {
    ($inner:expr, $name:literal $(,)?) => {
        kernel::new_spinlock_irq!($inner, $name)
    };
}
pub(crate) use new_try_irq_spinlock;

/// A new [`TryMutex`] with a lockdep class of its own, named `$name`.
macro_rules! new_try_mutex {
    ($inner:expr, $name:literal $(,)?) => {
        kernel::new_mutex!($inner, $name)
    };
}
pub(crate) use new_try_mutex;

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
            let pending = sys::prepare_to_wait_event(self.head.get(), entry.get(), state as c_int);
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
