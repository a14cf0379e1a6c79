// SPDX-License-Identifier: GPL-2.0

//! Thin wrapper: an `irq_work`, which the hrtimer of a timer request hands its completion to.

use core::pin::Pin;
use kernel::{prelude::*, types::Opaque};

use crate::kapi::sys;

/// The function an [`IrqWork`] runs, with the work's C struct.
pub(crate) type IrqWorkFn = unsafe extern "C" fn(*mut sys::irq_work);

/// An `irq_work`: runs its function soon after being queued from any context, hard IRQ
/// included. Without `PREEMPT_RT` it runs in hard IRQ (a self-interrupt); with it, in the
/// per-CPU irq_work thread. Either way it may take `spinlock_t` locks, which a hard-IRQ hrtimer
/// callback may not.
///
/// # Invariants
///
/// `work` was initialised with `init_irq_work()`; it is synchronised (`irq_work_sync()`) before
/// it is freed.
#[pin_data(PinnedDrop)]
#[repr(transparent)]
pub(crate) struct IrqWork {
    #[pin]
    work: Opaque<sys::irq_work>,
}

// SAFETY: The irq_work API may be used from any thread and any context.
unsafe impl Send for IrqWork {}
// SAFETY: See above.
unsafe impl Sync for IrqWork {}

impl IrqWork {
    pub(crate) fn new(func: IrqWorkFn) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `ffi_init` hands the helper a valid, exclusively owned, pinned slot.
            work <- Opaque::ffi_init(move |slot| unsafe {
                sys::rust_aio_init_irq_work(slot, Some(func))
            }),
        })
    }

    /// Queues the work on this CPU, unless it is already queued; never sleeps, never fails.
    pub(crate) fn queue(&self) {
        // SAFETY: The work is initialised (type invariant) and pinned.
        unsafe { sys::irq_work_queue(self.work.get()) };
    }
}

#[pinned_drop]
impl PinnedDrop for IrqWork {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: The work is initialised (type invariant); this waits until it is neither
        // queued nor running. Two runs may overlap on two CPUs, and the first to end clears
        // the busy flag while the other still runs, in hard IRQ, an RCU read-side section:
        // the grace period waits for that one too. Then its memory may go.
        unsafe {
            sys::irq_work_sync(self.work.get());
            sys::synchronize_rcu();
        }
    }
}
