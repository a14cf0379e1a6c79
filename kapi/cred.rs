// SPDX-License-Identifier: GPL-2.0

//! Thin wrapper: the submitter's credentials, under which work done for it later runs (as
//! fs/aio.c's `aio_fsync()` takes `prepare_creds()` and its work `override_creds()`). 7.3's
//! `kernel::cred::Credential` only counts references: it cannot prepare or override credentials.

use core::ptr::NonNull;
use kernel::{ffi::c_int, prelude::*};

use crate::kapi::sys;

/// A counted copy of the calling task's credentials (`prepare_creds()`).
///
/// # Invariants
///
/// `cred` holds the reference `prepare_creds()` returned, given back on drop.
pub(crate) struct Credentials {
    cred: NonNull<sys::cred>,
}

// SAFETY: Credentials are immutable once prepared and refcounted for any thread.
unsafe impl Send for Credentials {}
// SAFETY: See above.
unsafe impl Sync for Credentials {}

impl Credentials {
    /// The caller's credentials; ENOMEM if they cannot be copied.
    pub(crate) fn current() -> Result<Self> {
        // SAFETY: `prepare_creds()` may be called from any task context.
        let cred = unsafe { sys::prepare_creds() };
        // INVARIANT: A non-null result is a counted copy.
        Ok(Self {
            cred: NonNull::new(cred).ok_or(ENOMEM)?,
        })
    }

    /// Runs `f` with these credentials as the current task's (`override_creds()`, then
    /// `revert_creds()`).
    pub(crate) fn run_as<R>(&self, f: impl FnOnce() -> R) -> R {
        // SAFETY: The credentials are valid (type invariant) and outlive the override, which is
        // reverted before this returns.
        let old = unsafe { sys::rust_aio_override_creds(self.cred.as_ptr()) };
        let result = f();
        // SAFETY: `old` is what `override_creds()` returned on this task.
        unsafe { sys::rust_aio_revert_creds(old) };
        result
    }
}

impl Drop for Credentials {
    fn drop(&mut self) {
        // SAFETY: The reference is ours (type invariant) and not used again.
        unsafe { sys::rust_aio_put_cred(self.cred.as_ptr()) };
    }
}

/// Whether the current task has capability `cap` in the initial user namespace (`capable()`;
/// audited like the kernel's own checks).
pub(crate) fn capable(cap: u32) -> bool {
    // SAFETY: `capable()` may be called from any task context.
    unsafe { sys::capable(cap as c_int) }
}
