// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers for a misc device and its file operations (`linux/miscdevice.h`).
//!
//! The 6.12 kernel crate has no misc-device abstraction; this is the little rust_aio needs.

use kernel::{container_of, error::to_result, prelude::*, types::Opaque};

use crate::kapi::sys;

/// A `struct file_operations` table that may live in a `static`.
#[repr(transparent)]
pub(crate) struct FileOperations(pub(crate) sys::file_operations);

// SAFETY: The table is never written after it is built; the raw pointers in it (the owner module
// and functions) may be read from any thread.
unsafe impl Sync for FileOperations {}

/// The module's own `struct module`, for the `owner` field of operation tables, so that the
/// module cannot be unloaded while a file it implements is open.
pub(crate) const fn this_module() -> *mut sys::module {
    // Without lockdep, `struct module` holds empty structs, which Rust calls FFI-unsafe; only
    // the address is ever taken.
    #[allow(improper_ctypes)]
    extern "C" {
        static __this_module: Opaque<sys::module>;
    }
    // SAFETY: `__this_module` is made by the kernel's module loader for every module; only its
    // address is taken here.
    unsafe { __this_module.get() }
}

/// A registered misc device and the data its files are opened with, in one pinned struct (as
/// later kernels' `MiscDeviceRegistration`): `misc_open()` puts the device's `struct miscdevice`
/// in the new file's `private_data` before it calls `open`, which finds the registration, and so
/// the data, from it ([`MiscRegistration::of_opening_file`]). Deregistered when dropped, before
/// the data is dropped.
///
/// # Invariants
///
/// `device` is registered with `misc_register()`, and `data` was initialised before it was.
#[pin_data(PinnedDrop)]
pub(crate) struct MiscRegistration<T> {
    #[pin]
    data: T,
    #[pin]
    device: Opaque<sys::miscdevice>,
}

// SAFETY: The device is only touched by `misc_register()`/`misc_deregister()`, which take the
// misc-device lock themselves; the data is shared as `T` allows.
unsafe impl<T: Sync> Sync for MiscRegistration<T> {}
// SAFETY: See above; moving a registration moves its `T`.
unsafe impl<T: Send> Send for MiscRegistration<T> {}

impl<T> MiscRegistration<T> {
    /// Initialises `data`, then registers `/dev/<name>` with a dynamic minor, the given mode and
    /// operations: a file can only be opened once the data is ready.
    pub(crate) fn register(
        name: &'static CStr,
        mode: u16,
        fops: &'static FileOperations,
        data: impl PinInit<T, Error>,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            data <- data,
            device <- Self::register_device(name, mode, fops),
        }? Error)
    }

    fn register_device(
        name: &'static CStr,
        mode: u16,
        fops: &'static FileOperations,
    ) -> impl PinInit<Opaque<sys::miscdevice>, Error> {
        let init = move |slot: *mut Opaque<sys::miscdevice>| {
            let raw = Opaque::raw_get(slot);
            // SAFETY: `raw` points to a pinned slot that is ours to initialise; zero is a valid
            // `miscdevice` before registration, and `name` and `fops` live for ever.
            unsafe {
                raw.write(core::mem::zeroed());
                (*raw).minor = sys::MISC_DYNAMIC_MINOR as _;
                (*raw).name = name.as_char_ptr();
                (*raw).fops = &fops.0;
                (*raw).mode = mode;
                // INVARIANT: On success the device is registered; it is deregistered (drop)
                // before the pinned slot goes.
                to_result(sys::misc_register(raw))
            }
        };
        // SAFETY: On success the slot holds a registered `miscdevice`; on failure nothing is
        // registered and an `Opaque` needs no drop, so the slot may be left as it is.
        unsafe { kernel::init::pin_init_from_closure(init) }
    }

    /// What the device's files are opened with.
    pub(crate) fn data(&self) -> &T {
        &self.data
    }

    /// The registration of the device whose file is being opened, in its `open`.
    ///
    /// # Safety
    ///
    /// `file` must be a file that `misc_open()` is opening (so its `private_data` is the `struct
    /// miscdevice` of its device) on a device registered by a `MiscRegistration<T>`, which must
    /// live for `'a`.
    pub(crate) unsafe fn of_opening_file<'a>(file: *mut sys::file) -> &'a Self {
        // SAFETY: `misc_open()` set `private_data` to the device's `struct miscdevice`, the
        // `device` field of a live `MiscRegistration<T>` (the caller's guarantees), and
        // `Opaque` is `repr(transparent)`.
        unsafe {
            let device = (*file).private_data.cast::<Opaque<sys::miscdevice>>();
            &*container_of!(device, Self, device)
        }
    }
}

#[pinned_drop]
impl<T> PinnedDrop for MiscRegistration<T> {
    fn drop(self: Pin<&mut Self>) {
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
