// SPDX-License-Identifier: GPL-2.0

//! Thin wrapper: an eventfd to signal on completion (`IOCB_FLAG_RESFD`).

use core::ptr::NonNull;
use kernel::{error::from_err_ptr, ffi::c_int, prelude::*};

use crate::kapi::sys;

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
