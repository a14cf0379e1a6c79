// SPDX-License-Identifier: GPL-2.0

//! Raw kernel and ABI bindings, under one name:
//!
//! - the kernel crate's bindings, `kernel::bindings`, re-exported: `sys::file` *is*
//!   `kernel::bindings::file`;
//! - the kernel items those lack, which bindgen generated from `sys.h` at build time (see `Kbuild`
//!   and `sys_allowlist`) on top of them: the types they mention are the kernel crate's;
//! - the ABI, [`uapi`]: what bindgen generated from the uapi header alone, plus the byte-level
//!   traits its structs need for `kernel::uaccess`.
//!
//! Only the wrappers of `kapi/` call functions from here (`scripts/check-raw-calls`). The layers
//! above name its types and constants: the ABI's (`iocb`, `io_event`, `IOCB_CMD_*`), errno
//! numbers; every C callback is a wrapper's.

#![allow(
    dead_code,
    improper_ctypes,
    missing_docs,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    unreachable_pub,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::pedantic,
    clippy::undocumented_unsafe_blocks
)]
#![cfg_attr(CONFIG_RUSTC_HAS_UNNECESSARY_TRANSMUTES, allow(unnecessary_transmutes))]

// The two have no name in common (`Kbuild` checks): one C type is one Rust type.
pub(crate) use generated::*;
pub(crate) use kernel::bindings::*;

// The ABI under the names the code uses. These hide the kernel crate's `iocb`, `io_event`,
// `__kernel_timespec` and `IOCB_*` on purpose: the module only copies them from and to user space,
// for which they need `FromBytes` and `AsBytes`, and those can only be implemented for this
// crate's own types. No kernel function the module calls takes one.
pub(crate) use uapi::{
    __kernel_timespec, io_event, iocb, rust_aio_cancel, rust_aio_getevents, rust_aio_io_setup,
    rust_aio_pgetevents, rust_aio_ring, rust_aio_setup, rust_aio_submit, IOCB_CMD_NOOP,
    IOCB_FLAG_RESFD, RUST_AIO_ABI_VERSION, RUST_AIO_CMD_TIMER, RUST_AIO_CMD_WORK,
    RUST_AIO_IOC_CANCEL, RUST_AIO_IOC_DESTROY, RUST_AIO_IOC_GETEVENTS, RUST_AIO_IOC_IO_SETUP,
    RUST_AIO_IOC_PGETEVENTS, RUST_AIO_IOC_SETUP, RUST_AIO_IOC_SUBMIT, RUST_AIO_IOC_VERSION,
    RUST_AIO_RING_COMPAT_FEATURES, RUST_AIO_RING_INCOMPAT_FEATURES, RUST_AIO_RING_MAGIC,
};

/// The kernel items `kernel::bindings` lacks (`sys_generated.rs` starts with
/// `use kernel::bindings::*;`).
mod generated {
    include!("sys_generated.rs");
}

// Structs generated here with kernel crate types inside have the C size only if those types are
// the kernel's, in full (not a forward declaration).
const _: () = {
    use core::mem::size_of;
    assert!(size_of::<irq_work>() == SIZEOF_IRQ_WORK);
    assert!(size_of::<miscdevice>() == SIZEOF_MISCDEVICE);
};

/// The ABI: `include/uapi/rust_aio.h` and the parts of `linux/aio_abi.h` it uses, generated from
/// the uapi header alone (`uapi_generated.rs`, see `Kbuild`).
pub(crate) mod uapi {
    include!("uapi_generated.rs");

    use kernel::transmute::{AsBytes, FromBytes};

    // SAFETY: These are the plain-integer structs of `include/uapi/rust_aio.h` and
    // `linux/aio_abi.h`: every bit pattern is valid and they have no padding (asserted below).
    unsafe impl FromBytes for rust_aio_setup {}
    // SAFETY: See above.
    unsafe impl FromBytes for rust_aio_io_setup {}
    // SAFETY: See above.
    unsafe impl AsBytes for rust_aio_setup {}
    // SAFETY: See above.
    unsafe impl FromBytes for rust_aio_submit {}
    // SAFETY: See above.
    unsafe impl FromBytes for rust_aio_getevents {}
    // SAFETY: See above.
    unsafe impl FromBytes for rust_aio_pgetevents {}
    // SAFETY: See above.
    unsafe impl FromBytes for rust_aio_cancel {}
    // SAFETY: See above.
    unsafe impl FromBytes for iocb {}
    // SAFETY: See above.
    unsafe impl AsBytes for io_event {}
    // SAFETY: See above.
    unsafe impl FromBytes for __kernel_timespec {}

    // The ABI's layout, as fs/aio.c and user space know it. The Rust types are generated from the
    // uapi header, so these can only fail if the header itself changes; the C tests assert the
    // same numbers from the C side.
    const _: () = {
        use core::mem::{offset_of, size_of};
        assert!(size_of::<rust_aio_ring>() == 32);
        assert!(offset_of!(rust_aio_ring, head) == 8);
        assert!(offset_of!(rust_aio_ring, tail) == 12);
        assert!(offset_of!(rust_aio_ring, header_length) == 28);
        assert!(size_of::<io_event>() == 32);
        assert!(size_of::<iocb>() == 64);
        assert!(size_of::<rust_aio_setup>() == 16);
        assert!(size_of::<rust_aio_io_setup>() == 16);
        assert!(size_of::<rust_aio_submit>() == 24);
        assert!(size_of::<rust_aio_getevents>() == 40);
        assert!(size_of::<rust_aio_pgetevents>() == 56);
        assert!(size_of::<rust_aio_cancel>() == 24);
    };
}
