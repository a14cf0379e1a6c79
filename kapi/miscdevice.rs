// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers for a misc device and its file operations (`linux/miscdevice.h`).
//!
//! Shaped like 7.3's `kernel::miscdevice`, which rust_aio cannot use as it is: its options have
//! no mode (the device is 0666, as the aio system calls are open to all), no data shared by every
//! open, and it installs a `compat_ioctl` the 64-bit-only ABI must not have.

use core::marker::PhantomData;
use kernel::{
    container_of,
    error::{from_result, to_result},
    ffi::{c_int, c_long, c_uint, c_ulong},
    prelude::*,
    types::{ForeignOwnable, Opaque},
};

use crate::kapi::sys;

/// The module's own `struct module`, for the `owner` field of operation tables, so that the
/// module cannot be unloaded while a file it implements is open.
pub(super) const fn this_module() -> *mut sys::module {
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

/// A misc device's file operations, shaped like upstream's `kernel::miscdevice::MiscDevice`
/// (newer kernels): each open file gets a `Ptr` from [`MiscDevice::open`], which its ioctls
/// borrow and its release takes back. The C callbacks are this file's; the device implements
/// only this trait.
pub(crate) trait MiscDevice: Sized + 'static {
    /// What an open file of the device owns (its `private_data`).
    type Ptr: ForeignOwnable + Send + Sync;
    /// What the registration holds and every open is given: it lives as long as the
    /// registration, which outlives every open file (see [`MiscRegistration::register`]).
    type Data: Sync;

    /// A file of the device is opened.
    fn open(data: &'static Self::Data) -> Result<Self::Ptr>;

    /// The file's last reference is gone.
    fn release(device: Self::Ptr) {
        drop(device);
    }

    /// `unlocked_ioctl`: returns what the system call returns.
    fn ioctl(
        device: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        cmd: u32,
        arg: usize,
    ) -> Result<isize>;
}

/// The `file_operations` of a [`MiscDevice`], built from the trait (upstream's
/// `MiscdeviceVTable`): `open`, `release`, `unlocked_ioctl`, nothing else.
struct MiscDeviceVTable<T: MiscDevice>(PhantomData<T>);

impl<T: MiscDevice> MiscDeviceVTable<T> {
    const VTABLE: sys::file_operations = sys::file_operations {
        // The module cannot be unloaded while a file it implements is open.
        owner: this_module(),
        open: Some(Self::open),
        release: Some(Self::release),
        unlocked_ioctl: Some(Self::ioctl),
        // SAFETY: All-zero is a valid `file_operations`: every other operation is absent.
        ..unsafe { core::mem::zeroed() }
    };

    fn build() -> &'static sys::file_operations {
        &Self::VTABLE
    }

    /// # Safety
    ///
    /// Called by `misc_open()` (which holds the misc-device lock) for a file being opened on a
    /// device registered by a `MiscRegistration<T>`.
    unsafe extern "C" fn open(_inode: *mut sys::inode, file: *mut sys::file) -> c_int {
        // SAFETY: `misc_open()` is opening `file` on a device of a `MiscRegistration<T>`
        // (these operations are only ever given to one), which outlives every open file
        // (`register`'s guarantee).
        let registration: &'static MiscRegistration<T> =
            unsafe { MiscRegistration::of_opening_file(file) };
        from_result(|| {
            let device = T::open(&registration.data)?;
            // SAFETY: The file is being opened and is ours to set up: from now on its
            // `private_data` is the device's `Ptr`, which `ioctl` borrows and `release` takes
            // back.
            unsafe { (*file).private_data = device.into_foreign() };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the VFS once per file that [`Self::open`] set up, when its last reference is
    /// gone.
    unsafe extern "C" fn release(_inode: *mut sys::inode, file: *mut sys::file) -> c_int {
        // SAFETY: `private_data` was set by `open`, and no ioctl runs any more.
        let device = unsafe { T::Ptr::from_foreign((*file).private_data) };
        T::release(device);
        0
    }

    /// # Safety
    ///
    /// Called by the VFS for a file that [`Self::open`] set up, which stays open during the
    /// call.
    unsafe extern "C" fn ioctl(file: *mut sys::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: `private_data` was set by `open` and stays until `release`, which cannot run
        // while an ioctl does.
        let device = unsafe { T::Ptr::borrow((*file).private_data) };
        from_result(|| Ok(T::ioctl(device, cmd, arg)? as c_long))
    }
}

/// A registered misc device and the data its files are opened with, in one pinned struct (as
/// later kernels' `MiscDeviceRegistration`): `misc_open()` puts the device's `struct miscdevice`
/// in the new file's `private_data` before it calls `open`, which finds the registration, and so
/// the data, from it. Deregistered when dropped, before the data is dropped.
///
/// # Invariants
///
/// `device` is registered with `misc_register()`, with `T`'s operations, and `data` was
/// initialised before it was.
#[pin_data(PinnedDrop)]
pub(crate) struct MiscRegistration<T: MiscDevice> {
    #[pin]
    data: T::Data,
    #[pin]
    device: Opaque<sys::miscdevice>,
}

// SAFETY: The device is only touched by `misc_register()`/`misc_deregister()`, which take the
// misc-device lock themselves; the data is shared as `T::Data` allows.
unsafe impl<T: MiscDevice> Sync for MiscRegistration<T> {}
// SAFETY: See above; moving a registration moves its data.
unsafe impl<T: MiscDevice> Send for MiscRegistration<T> where T::Data: Send {}

impl<T: MiscDevice> MiscRegistration<T> {
    /// Initialises `data`, then registers `/dev/<name>` with a dynamic minor, the given mode and
    /// `T`'s operations: a file can only be opened once the data is ready.
    ///
    /// # Safety
    ///
    /// The registration must live until the module is unloaded (it is the module's): files of
    /// the device borrow its data for as long as they are open, which the module's reference
    /// in the operations (`owner`) makes at most that long.
    pub(crate) unsafe fn register(
        name: &'static CStr,
        mode: u16,
        data: impl PinInit<T::Data, Error>,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            data <- data,
            device <- Self::register_device(name, mode),
        }? Error)
    }

    fn register_device(
        name: &'static CStr,
        mode: u16,
    ) -> impl PinInit<Opaque<sys::miscdevice>, Error> {
        let init = move |slot: *mut Opaque<sys::miscdevice>| {
            let raw = Opaque::cast_into(slot);
            // SAFETY: `raw` points to a pinned slot that is ours to initialise; zero is a valid
            // `miscdevice` before registration, and `name` and the operations live for ever.
            unsafe {
                raw.write(core::mem::zeroed());
                (*raw).minor = sys::MISC_DYNAMIC_MINOR as c_int;
                (*raw).name = name.as_char_ptr();
                (*raw).fops = MiscDeviceVTable::<T>::build();
                (*raw).mode = mode;
                // INVARIANT: On success the device is registered; it is deregistered (drop)
                // before the pinned slot goes.
                to_result(sys::misc_register(raw))
            }
        };
        // SAFETY: On success the slot holds a registered `miscdevice`; on failure nothing is
        // registered and an `Opaque` needs no drop, so the slot may be left as it is.
        unsafe { pin_init::pin_init_from_closure(init) }
    }

    /// The registration of the device whose file is being opened, in its `open`.
    ///
    /// # Safety
    ///
    /// `file` must be a file that `misc_open()` is opening (so its `private_data` is the `struct
    /// miscdevice` of its device) on a device registered by a `MiscRegistration<T>`, which must
    /// live for `'a`.
    unsafe fn of_opening_file<'a>(file: *mut sys::file) -> &'a Self {
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
impl<T: MiscDevice> PinnedDrop for MiscRegistration<T> {
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
