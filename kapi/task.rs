// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers: what the calling task is and has, beyond 7.3's `kernel::task` (which the
//! signal check and the busy wait below use): the context it runs in, fatal signals and the
//! signal mask, its block-layer plug.

use kernel::prelude::*;

use crate::kapi::sys;

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
    kernel::current!().signal_pending()
}

/// Whether the calling task is being killed.
pub(crate) fn fatal_signal_pending() -> bool {
    // SAFETY: Always allowed for the calling task.
    unsafe { sys::rust_aio_fatal_signal_pending() }
}

/// Busy-waits `us` microseconds (`udelay()`, 7.3's `kernel::time::delay::udelay`, which takes
/// at most `MAX_UDELAY_MS` at a time): allowed under spinlocks, with interrupts off.
pub(crate) fn busy_wait_us(mut us: u64) {
    while us > 0 {
        let step = us.min(1000);
        kernel::time::delay::udelay(kernel::time::Delta::from_micros(step as i64));
        us -= step;
    }
}

/// Runs `f` with the calling task's block-layer plug in place (`blk_start_plug()` ..
/// `blk_finish_plug()`), as fs/aio.c's `io_submit()` does for a batch: the block I/O `f`
/// submits is held back and merged, and issued when `f` returns (or when the task sleeps).
pub(crate) fn with_block_plug<T>(f: impl FnOnce() -> T) -> T {
    let mut plug = core::mem::MaybeUninit::<sys::blk_plug>::uninit();
    // SAFETY: `blk_start_plug()` initialises the plug and makes it the task's; it stays in place
    // (this frame) until `blk_finish_plug()` below takes it away again. Panics abort the kernel
    // task, so nothing returns past it without that.
    unsafe { sys::blk_start_plug(plug.as_mut_ptr()) };
    let result = f();
    // SAFETY: The plug was started above, by this task, and is still in place.
    unsafe { sys::blk_finish_plug(plug.as_mut_ptr()) };
    result
}
