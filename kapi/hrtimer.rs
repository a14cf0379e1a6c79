// SPDX-License-Identifier: GPL-2.0

//! Thin wrapper: a one-shot hrtimer that expires in hard IRQ, embedded in the `T` it belongs to,
//! which implements [`HrTimerCallback`] (shaped like 7.3's `kernel::time::hrtimer`, which has
//! no try-to-cancel: cancel and destroy need one under `ctx_lock`). The C callback is this file's.

use core::marker::PhantomData;
use kernel::{prelude::*, types::Opaque};

use crate::kapi::sys;

/// A type that holds an [`HrTimer<Self>`] (upstream's `HasHrTimer`).
///
/// # Safety
///
/// `OFFSET` must be the offset in bytes of a field of type `HrTimer<Self>` in `Self`.
pub(crate) unsafe trait HasHrTimer: Sized {
    const OFFSET: usize;
}

/// What happens when the timer expires.
pub(crate) trait HrTimerCallback: HasHrTimer + Sync {
    /// The timer expired: hard IRQ, no lock that is taken with interrupts on, no sleeping. The
    /// timer does not restart.
    fn expired(&self);
}

/// A one-shot `CLOCK_MONOTONIC` hrtimer that expires in hard-IRQ context, a field of a `T`.
///
/// # Invariants
///
/// `timer` was initialised with `hrtimer_init()` and the expiry function of `T`.
#[pin_data]
#[repr(transparent)]
pub(crate) struct HrTimer<T> {
    #[pin]
    timer: Opaque<sys::hrtimer>,
    _owner: PhantomData<T>,
}

// SAFETY: The hrtimer API may be used from any thread; the timer base serialises it.
unsafe impl<T> Send for HrTimer<T> {}
// SAFETY: See above.
unsafe impl<T> Sync for HrTimer<T> {}

/// Whether [`HrTimer::try_cancel`] stopped the timer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancel {
    /// It was pending and will not expire: the canceller owns what expiry would have done.
    Stopped,
    /// It is expiring right now, or is not started: its expiry function runs (or ran).
    TooLate,
}

impl<T: HrTimerCallback> HrTimer<T> {
    /// A timer that calls [`HrTimerCallback::expired`] of the `T` it is in when it expires.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `ffi_init` hands the helper a valid, exclusively owned, pinned slot.
            timer <- Opaque::ffi_init(move |slot| unsafe {
                sys::rust_aio_hrtimer_init(slot, Some(Self::expire))
            }),
            _owner: PhantomData,
        })
    }

    /// The hrtimer callback.
    ///
    /// # Safety
    ///
    /// Called by the hrtimer core with the C struct of a started `HrTimer<T>`, whose `T` is alive
    /// ([`HrTimer::start`]'s guarantee).
    unsafe extern "C" fn expire(timer: *mut sys::hrtimer) -> sys::hrtimer_restart {
        // SAFETY: The timer is the `HrTimer<T>` field of a live `T`, at `T::OFFSET`
        // (`HasHrTimer`); `HrTimer` is `repr(transparent)` over `Opaque`, itself over the C
        // struct.
        let owner = unsafe { &*timer.cast::<u8>().sub(T::OFFSET).cast::<T>() };
        owner.expired();
        sys::hrtimer_restart::HRTIMER_NORESTART
    }

    /// Starts the timer to expire `nanoseconds` from now.
    ///
    /// # Safety
    ///
    /// The `T` this timer is in must stay alive until the timer is cancelled
    /// ([`HrTimer::cancel_sync`], or [`HrTimer::try_cancel`] returning [`Cancel::Stopped`]) or its
    /// expiry function has returned.
    pub(crate) unsafe fn start(&self, nanoseconds: i64) {
        // SAFETY: The timer is initialised (type invariant) and pinned (it is only ever reached
        // through a pinned owner).
        unsafe {
            sys::hrtimer_start_range_ns(
                self.timer.get(),
                nanoseconds,
                0,
                sys::hrtimer_mode_HRTIMER_MODE_REL_HARD,
            )
        };
    }
}

impl<T> HrTimer<T> {
    /// Waits until the timer is neither queued nor running its expiry function (which may be
    /// running on another CPU): after this, its memory may go. Spins, never sleeps, for as long
    /// as the expiry function runs, so it may be called from any context but that function.
    pub(crate) fn cancel_sync(&self) {
        // SAFETY: The timer is initialised (type invariant).
        unsafe { sys::hrtimer_cancel(self.timer.get()) };
    }

    /// Stops the timer if it has not begun to expire; never waits, so it may be called under a
    /// spinlock that the expiry function takes.
    pub(crate) fn try_cancel(&self) -> Cancel {
        // SAFETY: The timer is initialised (type invariant).
        match unsafe { sys::hrtimer_try_to_cancel(self.timer.get()) } {
            1 => Cancel::Stopped,
            _ => Cancel::TooLate,
        }
    }
}

/// `CLOCK_MONOTONIC` now, in ns (`ktime_get()`): the clock hrtimers and deadlines use.
pub(crate) fn monotonic_ns() -> i64 {
    // SAFETY: Always allowed.
    unsafe { sys::ktime_get() }
}
