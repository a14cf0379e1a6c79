// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers for a misc device and its file operations (`linux/miscdevice.h`).
//!
//! The 6.12 kernel crate has no misc-device abstraction; this is the little rust_aio needs.

use kernel::{error::to_result, prelude::*, types::Opaque};

use crate::sys;

/// A `struct file_operations` table that may live in a `static`.
#[repr(transparent)]
pub(crate) struct FileOperations(pub(crate) sys::file_operations);

// SAFETY: The table is never written after it is built; the raw pointers in it (the owner module
// and functions) may be read from any thread.
unsafe impl Sync for FileOperations {}

/// The module's own `struct module`, for the `owner` field of operation tables, so that the
/// module cannot be unloaded while a file it implements is open.
pub(crate) const fn this_module() -> *mut sys::module {
    extern "C" {
        static __this_module: Opaque<sys::module>;
    }
    // SAFETY: `__this_module` is made by the kernel's module loader for every module; only its
    // address is taken here.
    unsafe { __this_module.get() }
}

/// A registered misc device; deregistered when dropped.
///
/// # Invariants
///
/// `device` is registered with `misc_register()`.
pub(crate) struct MiscRegistration {
    device: Pin<KBox<Opaque<sys::miscdevice>>>,
}

// SAFETY: The registration is only touched by `misc_register()`/`misc_deregister()`, which take
// the misc-device lock themselves.
unsafe impl Sync for MiscRegistration {}
// SAFETY: See above.
unsafe impl Send for MiscRegistration {}

impl MiscRegistration {
    /// Registers `/dev/<name>` with a dynamic minor, the given mode and operations.
    pub(crate) fn register(
        name: &'static CStr,
        mode: u16,
        fops: &'static FileOperations,
    ) -> Result<Self> {
        let device = KBox::pin(Opaque::<sys::miscdevice>::uninit(), GFP_KERNEL)?;
        let raw = device.get();
        // SAFETY: `raw` points to a pinned, exclusively owned allocation; zero is a valid
        // `miscdevice` before registration, and `name` and `fops` live for ever.
        unsafe {
            raw.write(core::mem::zeroed());
            (*raw).minor = sys::MISC_DYNAMIC_MINOR as _;
            (*raw).name = name.as_char_ptr();
            (*raw).fops = &fops.0;
            (*raw).mode = mode;
            to_result(sys::misc_register(raw))?;
        }
        // INVARIANT: `misc_register()` succeeded.
        Ok(Self { device })
    }
}

impl Drop for MiscRegistration {
    fn drop(&mut self) {
        // SAFETY: The device is registered (type invariant).
        unsafe { sys::misc_deregister(self.device.get()) };
    }
}

/// The `max_events` module parameter (helpers.c): the module-wide event limit, as fs/aio.c's
/// `aio-max-nr`.
pub(crate) fn max_events() -> u32 {
    // SAFETY: Reading a module parameter is always allowed.
    unsafe { sys::rust_aio_max_events() }
}
