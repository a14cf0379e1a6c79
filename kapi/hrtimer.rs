// SPDX-License-Identifier: GPL-2.0

//! Thin wrapper: a one-shot hrtimer that expires in hard IRQ (upstream: `kernel::time::hrtimer`,
//! which the 6.12 kernel crate lacks).

use kernel::{prelude::*, types::Opaque};

use crate::kapi::sys;

/// The expiry function of an [`HrTimer`]: called in hard IRQ with the timer's C struct.
pub(crate) type Expiry = unsafe extern "C" fn(*mut sys::hrtimer) -> sys::hrtimer_restart;

/// A one-shot `CLOCK_MONOTONIC` hrtimer that expires in hard-IRQ context.
///
/// # Invariants
///
/// `timer` was initialised with `hrtimer_init()`.
#[pin_data]
#[repr(transparent)]
pub(crate) struct HrTimer {
    #[pin]
    timer: Opaque<sys::hrtimer>,
}

// SAFETY: The hrtimer API may be used from any thread; the timer base serialises it.
unsafe impl Send for HrTimer {}
// SAFETY: See above.
unsafe impl Sync for HrTimer {}

/// Whether [`HrTimer::try_cancel`] stopped the timer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancel {
    /// It was pending and will not expire: the canceller owns what expiry would have done.
    Stopped,
    /// It is expiring right now, or is not started: its expiry function runs (or ran).
    TooLate,
}

impl HrTimer {
    /// A timer that calls `expiry` when it expires.
    pub(crate) fn new(expiry: Expiry) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `ffi_init` hands the helper a valid, exclusively owned, pinned slot.
            timer <- Opaque::ffi_init(move |slot| unsafe {
                sys::rust_aio_hrtimer_init(slot, Some(expiry))
            }),
        })
    }

    /// The timer that `ptr`, as passed to an [`Expiry`] function, belongs to.
    ///
    /// # Safety
    ///
    /// `ptr` must be the C struct of a live `HrTimer`, alive for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut sys::hrtimer) -> &'a HrTimer {
        // SAFETY: `HrTimer` is `repr(transparent)` over the C struct; the caller guarantees it
        // is alive.
        unsafe { &*ptr.cast() }
    }

    /// Starts the timer to expire `nanoseconds` from now.
    pub(crate) fn start(&self, nanoseconds: i64) {
        // SAFETY: The timer is initialised (type invariant) and pinned (it is only ever
        // reached through a pinned owner).
        unsafe {
            sys::hrtimer_start_range_ns(
                self.timer.get(),
                nanoseconds,
                0,
                sys::hrtimer_mode_HRTIMER_MODE_REL_HARD,
            )
        };
    }

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
