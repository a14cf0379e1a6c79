// SPDX-License-Identifier: GPL-2.0

//! Thin wrapper: a debugfs directory of read-only (or writable) counters and a sample array.
//! Failure is not an error (debugfs may be absent), as everywhere in the kernel.

use core::{cell::UnsafeCell, sync::atomic::AtomicU32, sync::atomic::AtomicU64};
use kernel::prelude::*;

use crate::kapi::sys;

/// A static array of u32 samples, as `debugfs_create_u32_array()` shows it (space-separated).
pub(crate) struct U32Array(UnsafeCell<sys::debugfs_u32_array>);

// SAFETY: debugfs only reads the description, which is never written after construction.
unsafe impl Sync for U32Array {}

impl U32Array {
    /// Describes `samples`, which live for ever.
    pub(crate) const fn new<const N: usize>(samples: &'static [AtomicU32; N]) -> Self {
        Self(UnsafeCell::new(sys::debugfs_u32_array {
            array: samples.as_ptr().cast::<u32>().cast_mut(),
            n_elements: N as u32,
        }))
    }
}

/// A debugfs directory; removed, with its files, when dropped.
///
/// # Invariants
///
/// `dir` came from `debugfs_create_dir()` (a dentry or an error pointer).
pub(crate) struct Dir {
    dir: *mut sys::dentry,
}

// SAFETY: The dentry is only passed back to debugfs, which does its own locking.
unsafe impl Send for Dir {}
// SAFETY: See above.
unsafe impl Sync for Dir {}

impl Dir {
    /// Creates `/sys/kernel/debug/<name>/`.
    pub(crate) fn new(name: &CStr) -> Self {
        // SAFETY: The name is a valid C string; a null parent means the debugfs root.
        let dir = unsafe { sys::debugfs_create_dir(name.as_char_ptr(), core::ptr::null_mut()) };
        // INVARIANT: `dir` came from `debugfs_create_dir()`.
        Self { dir }
    }

    /// A file showing `counter` (writable if `mode` says so).
    pub(crate) fn u64_file(&self, name: &CStr, mode: u16, counter: &'static AtomicU64) {
        // SAFETY: `dir` is a debugfs directory or an error pointer (then debugfs ignores the
        // call); the counter is a static, so it outlives the file, which goes with `dir`.
        unsafe { sys::debugfs_create_u64(name.as_char_ptr(), mode, self.dir, counter.as_ptr()) };
    }

    /// A read-only file showing `array`.
    pub(crate) fn u32_array_file(&self, name: &CStr, array: &'static U32Array) {
        // SAFETY: As above; the array and its description are statics.
        unsafe {
            sys::debugfs_create_u32_array(name.as_char_ptr(), 0o444, self.dir, array.0.get())
        };
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: `dir` came from `debugfs_create_dir()` (type invariant); an error pointer is
        // ignored.
        unsafe { sys::debugfs_remove(self.dir) };
    }
}
