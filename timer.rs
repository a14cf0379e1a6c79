// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers for what completes operations away from the submitter: an hrtimer that expires
//! in hard IRQ, the irq_work that its expiry hands requests to, an eventfd to signal, and the
//! module's own workqueue. The 6.12 kernel crate has none of them.

use core::{pin::Pin, ptr::NonNull};
use kernel::{error::from_err_ptr, ffi::c_int, prelude::*, types::Opaque};

use crate::sys;

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

/// An eventfd to signal on completion (`IOCB_FLAG_RESFD`).
///
/// # Invariants
///
/// Holds a reference from `eventfd_ctx_fdget()`.
pub(crate) struct EventFd(NonNull<sys::eventfd_ctx>);

// SAFETY: An eventfd context may be signalled and put from any context, hard IRQ included.
unsafe impl Send for EventFd {}
// SAFETY: See above.
unsafe impl Sync for EventFd {}

impl EventFd {
    /// The eventfd behind the caller's descriptor `fd`: EBADF for a bad descriptor, EINVAL for
    /// one that is not an eventfd.
    pub(crate) fn from_fd(fd: u32) -> Result<Self> {
        // SAFETY: `eventfd_ctx_fdget()` checks the descriptor and returns a counted reference on
        // success.
        let ctx = from_err_ptr(unsafe { sys::eventfd_ctx_fdget(fd as c_int) })?;
        // INVARIANT: The reference is ours.
        Ok(Self(NonNull::new(ctx).ok_or(EBADF)?))
    }

    /// Adds one to the eventfd's counter; IRQ-safe.
    pub(crate) fn signal(&self) {
        // SAFETY: The eventfd is valid (type invariant).
        unsafe { sys::rust_aio_eventfd_signal(self.0.as_ptr()) };
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: The reference is ours (type invariant).
        unsafe { sys::eventfd_ctx_put(self.0.as_ptr()) };
    }
}

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

/// Whether the caller runs in hard-IRQ context.
pub(crate) fn in_hardirq() -> bool {
    // SAFETY: Always allowed.
    unsafe { sys::rust_aio_in_hardirq() }
}

/// Whether the caller runs in a user task's process context (not an interrupt, not a kernel
/// thread).
pub(crate) fn in_user_task() -> bool {
    // SAFETY: Always allowed.
    unsafe { sys::rust_aio_in_user_task() }
}

/// Whether the caller runs in a kernel thread's process context (a workqueue's, say).
pub(crate) fn in_kthread() -> bool {
    // SAFETY: Always allowed.
    unsafe { sys::rust_aio_in_kthread() }
}

/// The module's own workqueue: unloading destroys it, which waits for every work function to
/// return, so no work runs module code after the module is gone.
///
/// # Invariants
///
/// `wq` was allocated by `alloc_workqueue()` and is destroyed only on drop.
pub(crate) struct WorkQueue {
    wq: core::ptr::NonNull<sys::workqueue_struct>,
}

// SAFETY: Workqueues are made to be used from any thread.
unsafe impl Send for WorkQueue {}
// SAFETY: See above.
unsafe impl Sync for WorkQueue {}

impl WorkQueue {
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: Allocating a workqueue has no preconditions.
        let wq = unsafe { sys::rust_aio_alloc_workqueue() };
        Ok(Self {
            wq: core::ptr::NonNull::new(wq).ok_or(ENOMEM)?,
        })
    }

    pub(crate) fn queue(&self) -> &kernel::workqueue::Queue {
        // SAFETY: The workqueue is valid until `self` is dropped (type invariant).
        unsafe { kernel::workqueue::Queue::from_raw(self.wq.as_ptr()) }
    }
}

impl Drop for WorkQueue {
    fn drop(&mut self) {
        // SAFETY: The workqueue is ours (type invariant); this drains it first.
        unsafe { sys::destroy_workqueue(self.wq.as_ptr()) };
    }
}
