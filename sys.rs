// SPDX-License-Identifier: GPL-2.0

//! Raw kernel and ABI bindings: what bindgen generated from `sys.h` at build time (see `Kbuild`
//! and `sys_allowlist`), plus the byte-level traits the ABI structs need for `kernel::uaccess`.
//!
//! Only the thin wrappers (`sync`, `mm`, `misc`, `migrate`'s table) and the ABI handling should
//! use this module directly.

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

include!("sys_generated.rs");

use kernel::types::{AsBytes, FromBytes};

// SAFETY: These are the plain-integer structs of `include/uapi/rust_aio.h` and
// `linux/aio_abi.h`: every bit pattern is valid and they have no padding (asserted below).
unsafe impl FromBytes for rust_aio_setup {}
// SAFETY: See above.
unsafe impl AsBytes for rust_aio_setup {}
// SAFETY: See above.
unsafe impl FromBytes for rust_aio_submit {}
// SAFETY: See above.
unsafe impl FromBytes for rust_aio_getevents {}
// SAFETY: See above.
unsafe impl FromBytes for rust_aio_cancel {}
// SAFETY: See above.
unsafe impl FromBytes for iocb {}
// SAFETY: See above.
unsafe impl AsBytes for io_event {}
// SAFETY: See above.
unsafe impl FromBytes for __kernel_timespec {}

// The ABI's layout, as fs/aio.c and user space know it. The Rust types are generated from the
// uapi header, so these can only fail if the header itself changes; the C tests assert the same
// numbers from the C side.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<rust_aio_ring>() == 32);
    assert!(offset_of!(rust_aio_ring, head) == 8);
    assert!(offset_of!(rust_aio_ring, tail) == 12);
    assert!(offset_of!(rust_aio_ring, header_length) == 28);
    assert!(size_of::<io_event>() == 32);
    assert!(size_of::<iocb>() == 64);
    assert!(size_of::<rust_aio_setup>() == 16);
    assert!(size_of::<rust_aio_submit>() == 24);
    assert!(size_of::<rust_aio_getevents>() == 40);
    assert!(size_of::<rust_aio_cancel>() == 24);
};
