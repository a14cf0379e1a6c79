// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers: the submit and reap paths' user-memory accesses that the kernel crate's
//! `UserSlice` does with a call into the generic copy routines (a handful of words each).

use core::mem::{align_of, size_of, MaybeUninit};
use kernel::{
    error::to_result,
    ffi::c_void,
    prelude::*,
    transmute::FromBytes,
    uaccess::{UserPtr, UserSlice},
};

use crate::kapi::sys;

/// A user-space address as the module computes with it (ring slots, iocb pointers): the kernel
/// crate's `UserPtr` is made from it where memory is accessed.
pub(crate) type UserAddr = usize;

/// The kernel crate's checked user-memory accessor for `len` bytes at `addr`.
pub(crate) fn user_slice(addr: UserAddr, len: usize) -> UserSlice {
    UserSlice::new(UserPtr::from_addr(addr), len)
}

/// Reads `dst.len()` u64 words from the caller's memory at `src` (no alignment needed): the
/// submit path's reads, one user-access section each.
pub(crate) fn read_user_u64s(src: UserAddr, dst: &mut [u64]) -> Result {
    let n = u32::try_from(dst.len()).map_err(|_| EFAULT)?;
    // SAFETY: `dst` is valid for `n` words; the helper checks the user range.
    to_result(unsafe { sys::rust_aio_get_user_u64s(dst.as_mut_ptr(), src as *const c_void, n) })
}

/// Reads a `T` made of u64 words (an iocb, an ioctl's argument) from the caller's memory at
/// `src`.
pub(crate) fn read_user_words<T: FromBytes>(src: UserAddr) -> Result<T> {
    const { assert!(size_of::<T>() % 8 == 0 && align_of::<T>() >= 8) };
    let mut value = MaybeUninit::<T>::uninit();
    let words = (size_of::<T>() / 8) as u32;
    // SAFETY: `value` has room for `words` u64s and is aligned for them; the helper checks the
    // user range.
    to_result(unsafe {
        sys::rust_aio_get_user_u64s(value.as_mut_ptr().cast(), src as *const c_void, words)
    })?;
    // SAFETY: The helper initialised every byte, and every bit pattern is a valid `T`
    // (`FromBytes`).
    Ok(unsafe { value.assume_init() })
}

/// Reads the pointer at `at`, then the `T` it points to, in one user-access section: an iocb
/// of `io_submit()`'s array, as fs/aio.c reads it (`get_user()`, then `copy_from_user()`, with
/// nothing in between). The pointer, and what it points to.
pub(crate) fn read_user_pointed<T: FromBytes>(at: UserAddr) -> Result<(UserAddr, T)> {
    const { assert!(size_of::<T>() % 8 == 0 && align_of::<T>() >= 8) };
    let mut pointer = 0u64;
    let mut value = MaybeUninit::<T>::uninit();
    let words = (size_of::<T>() / 8) as u32;
    // SAFETY: `value` has room for `words` u64s and is aligned for them; the helper checks both
    // user ranges.
    to_result(unsafe {
        sys::rust_aio_get_user_iocb(
            &mut pointer,
            value.as_mut_ptr().cast(),
            at as *const c_void,
            words,
        )
    })?;
    // SAFETY: The helper initialised every byte, and every bit pattern is a valid `T`
    // (`FromBytes`).
    Ok((pointer as UserAddr, unsafe { value.assume_init() }))
}

/// Writes a u64 to the caller's memory at `dst` (`put_user()`).
pub(crate) fn write_user_u64(dst: UserAddr, value: u64) -> Result {
    // SAFETY: The helper checks the user range.
    to_result(unsafe { sys::rust_aio_put_user_u64(value, dst as *mut c_void) })
}

/// Writes a u32 to the caller's memory at `dst` (`put_user()`).
pub(crate) fn write_user_u32(dst: UserAddr, value: u32) -> Result {
    // SAFETY: The helper checks the user range.
    to_result(unsafe { sys::rust_aio_put_user_u32(value, dst as *mut c_void) })
}

/// Reads one u64 from the caller's memory at `src` (`get_user()`).
pub(crate) fn read_user_u64(src: UserAddr) -> Result<u64> {
    let mut word = 0u64;
    read_user_u64s(src, core::slice::from_mut(&mut word))?;
    Ok(word)
}

/// Faults in `len` bytes of the caller's memory at `addr` for writing without writing anything
/// (`fault_in_safe_writeable()`, which faults through the page tables as a write would): whether
/// all of it could be. Nothing is stored, so memory the caller is not given back stays as it
/// was. May sleep for as long as the fault takes (userfaultfd, FUSE, swap-in): never call it
/// under a lock others wait for.
pub(crate) fn fault_in_for_write(addr: UserAddr, len: usize) -> bool {
    // SAFETY: `fault_in_safe_writeable()` faults through the caller's VMAs (`fixup_user_fault()`),
    // which no kernel address is in: it only ever touches the caller's own memory.
    unsafe { sys::fault_in_safe_writeable(addr as *const _, len) == 0 }
}
