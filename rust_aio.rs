// SPDX-License-Identifier: GPL-2.0

//! rust_aio: Linux AIO's completion ring as a misc device, with ring pages that can migrate.
//!
//! `/dev/rust_aio` answers ioctls that behave like `io_setup`, `io_submit`, `io_getevents`,
//! `io_cancel` and `io_destroy` (see `include/uapi/rust_aio.h`, the ABI's single source).

use kernel::{
    c_str,
    ffi::{c_long, c_uint, c_ulong},
    prelude::*,
    uaccess::UserSlice,
};

mod misc;
mod sys;

use misc::{FileOperations, MiscRegistration};

module! {
    type: RustAio,
    name: "rust_aio",
    author: "rust_aio developers",
    description: "Linux AIO's completion ring with migratable ring pages",
    license: "GPL",
}

/// The module: its device.
struct RustAio {
    _device: MiscRegistration,
}

impl kernel::Module for RustAio {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // Mode 0666: like the aio system calls, the device is open to every user.
        let device = MiscRegistration::register(c_str!("rust_aio"), 0o666, &DEVICE_FOPS)?;
        pr_info!("ABI version {}\n", sys::RUST_AIO_ABI_VERSION);
        Ok(Self { _device: device })
    }
}

/// The operations of `/dev/rust_aio`.
static DEVICE_FOPS: FileOperations = FileOperations(sys::file_operations {
    owner: misc::this_module(),
    unlocked_ioctl: Some(device_ioctl),
    // SAFETY: All-zero is a valid `file_operations`: every other operation is absent.
    ..unsafe { core::mem::zeroed() }
});

/// `unlocked_ioctl` of `/dev/rust_aio`.
extern "C" fn device_ioctl(_file: *mut sys::file, cmd: c_uint, arg: c_ulong) -> c_long {
    match ioctl(cmd, arg as usize) {
        Ok(value) => value,
        Err(err) => err.to_errno() as c_long,
    }
}

fn ioctl(cmd: c_uint, arg: usize) -> Result<c_long> {
    match cmd {
        sys::RUST_AIO_IOC_VERSION => {
            let version: u32 = sys::RUST_AIO_ABI_VERSION;
            UserSlice::new(arg, core::mem::size_of::<u32>())
                .writer()
                .write(&version)?;
            Ok(0)
        }
        _ => Err(ENOTTY),
    }
}
