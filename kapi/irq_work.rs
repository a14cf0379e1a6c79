// SPDX-License-Identifier: GPL-2.0

//! Thin wrapper: an `irq_work` embedded in the `T` it belongs to, which implements
//! [`IrqWorkCallback`]; the hrtimer of a timer request hands its completion to one. The C
//! callback is this file's.

use core::{marker::PhantomData, pin::Pin};
use kernel::{prelude::*, types::Opaque};

use crate::kapi::sys;

/// A type that holds an [`IrqWork<Self>`].
///
/// # Safety
///
/// `OFFSET` must be the offset in bytes of a field of type `IrqWork<Self>` in `Self`, and
/// nothing [`IrqWorkCallback::run`] uses may be dropped before that field is (its drop waits
/// for the last run).
pub(crate) unsafe trait HasIrqWork: Sized {
    const OFFSET: usize;
}

/// What the work does when it runs.
pub(crate) trait IrqWorkCallback: HasIrqWork + Sync {
    /// Without `PREEMPT_RT` in hard IRQ (a self-interrupt); with it, in the per-CPU irq_work
    /// thread. Either way it may take `spinlock_t` locks, which a hard-IRQ hrtimer callback may
    /// not.
    fn run(&self);
}

/// An `irq_work`: runs its owner's [`IrqWorkCallback::run`] soon after being queued from any
/// context, hard IRQ included.
///
/// # Invariants
///
/// `work` was initialised with `init_irq_work()` and the function of `T`; it is synchronised
/// (`irq_work_sync()`) before it is freed.
#[pin_data(PinnedDrop)]
#[repr(transparent)]
pub(crate) struct IrqWork<T> {
    #[pin]
    work: Opaque<sys::irq_work>,
    _owner: PhantomData<T>,
}

// SAFETY: The irq_work API may be used from any thread and any context.
unsafe impl<T> Send for IrqWork<T> {}
// SAFETY: See above.
unsafe impl<T> Sync for IrqWork<T> {}

impl<T: IrqWorkCallback> IrqWork<T> {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `ffi_init` hands the helper a valid, exclusively owned, pinned slot.
            work <- Opaque::ffi_init(move |slot| unsafe {
                sys::rust_aio_init_irq_work(slot, Some(Self::run))
            }),
            _owner: PhantomData,
        })
    }

    /// # Safety
    ///
    /// Called by the irq_work core with the C struct of a queued `IrqWork<T>`.
    unsafe extern "C" fn run(work: *mut sys::irq_work) {
        // SAFETY: The work is the `IrqWork<T>` field of a `T`, at `T::OFFSET` (`HasIrqWork`),
        // which is alive: the field's drop waits for this run, and nothing `run` uses goes
        // before it. `IrqWork` is `repr(transparent)` over `Opaque`, itself over the C struct.
        let owner = unsafe { &*work.cast::<u8>().sub(T::OFFSET).cast::<T>() };
        owner.run();
    }

    /// Queues the work on this CPU, unless it is already queued; never sleeps, never fails.
    pub(crate) fn queue(&self) {
        // SAFETY: The work is initialised (type invariant) and pinned.
        unsafe { sys::irq_work_queue(self.work.get()) };
    }
}

#[pinned_drop]
impl<T> PinnedDrop for IrqWork<T> {
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
