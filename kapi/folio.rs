// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers: a ring's page-cache folios (`struct folio`).

use core::ptr::NonNull;
use kernel::{
    ffi::{c_ulong, c_void},
    prelude::*,
    sync::aref::AlwaysRefCounted,
    types::Opaque,
};

use crate::kapi::{sys, uaccess::UserAddr};

/// A page-cache folio of a ring.
///
/// # Invariants
///
/// The wrapped `struct folio` is valid; as [`ARef<Folio>`] it is a counted reference.
#[repr(transparent)]
pub(crate) struct Folio(Opaque<sys::folio>);

// SAFETY: `folio_get()`/`folio_put()` keep the folio alive; it is refcounted for any thread.
unsafe impl AlwaysRefCounted for Folio {
    fn inc_ref(&self) {
        // SAFETY: The folio is valid (type invariant).
        unsafe { sys::rust_aio_folio_get(self.0.get()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller owns a reference, which is given up here.
        unsafe { sys::rust_aio_folio_put(obj.cast().as_ptr()) };
    }
}

// SAFETY: The folio's refcount and contents may be used from any thread.
unsafe impl Send for Folio {}
// SAFETY: See above.
unsafe impl Sync for Folio {}

impl Folio {
    /// Borrows a folio the kernel passed in.
    ///
    /// # Safety
    ///
    /// `ptr` must be a valid folio for the whole of `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut sys::folio) -> &'a Folio {
        // SAFETY: `Folio` is `repr(transparent)` over the C struct; the caller guarantees validity.
        unsafe { &*ptr.cast() }
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::folio {
        self.0.get()
    }

    /// The folio's kernel address (ring folios are order 0 and, on 64-bit, never in highmem).
    pub(crate) fn address(&self) -> *mut u8 {
        // SAFETY: The folio is valid (type invariant).
        unsafe { sys::rust_aio_folio_address(self.0.get()).cast() }
    }

    /// The folio's page index in its mapping.
    pub(crate) fn index(&self) -> usize {
        // SAFETY: The folio is valid (type invariant).
        unsafe { sys::rust_aio_folio_index(self.0.get()) as usize }
    }

    pub(crate) fn is_large(&self) -> bool {
        // SAFETY: The folio is valid (type invariant).
        unsafe { sys::rust_aio_folio_test_large(self.0.get()) }
    }

    pub(crate) fn is_under_writeback(&self) -> bool {
        // SAFETY: The folio is valid (type invariant).
        unsafe { sys::rust_aio_folio_test_writeback(self.0.get()) }
    }

    /// Copies `len` bytes at `offset` in the folio to user address `to` without taking a page
    /// fault: a destination page that is not present ends the copy. Returns the bytes copied
    /// (a prefix of the range), so that it may run under a lock that a fault must not wait for.
    pub(crate) fn copy_to_user_nofault(&self, offset: usize, len: usize, to: UserAddr) -> usize {
        if offset
            .checked_add(len)
            .is_none_or(|end| end > sys::PAGE_SIZE)
        {
            return 0;
        }
        // SAFETY: The range lies in the folio's page (checked above), which is valid while
        // `self` is; the helper checks the user range and never faults.
        let left = unsafe {
            sys::rust_aio_copy_to_user_nofault(
                to as *mut c_void,
                self.address().add(offset).cast(),
                len as c_ulong,
            )
        };
        len - (left as usize).min(len)
    }

    /// Copies the whole of `src` into this folio, then its flags (`folio_copy()`,
    /// `folio_migrate_flags()`): migration's copy.
    ///
    /// # Safety
    ///
    /// Both folios must be locked by the migration core and of the same size.
    pub(crate) unsafe fn migrate_copy_from(&self, src: &Folio) {
        // SAFETY: Both folios are valid (type invariant), locked and the same size (the
        // caller's guarantee).
        unsafe {
            sys::folio_copy(self.0.get(), src.0.get());
            sys::folio_migrate_flags(self.0.get(), src.0.get());
        }
    }

    /// Copies `len` bytes at `offset` in `src` to the same place in this folio (migration's
    /// second copy). Out-of-page ranges copy nothing.
    pub(crate) fn copy_range_from(&self, src: &Folio, offset: usize, len: usize) {
        if offset
            .checked_add(len)
            .is_none_or(|end| end > sys::PAGE_SIZE)
        {
            return;
        }
        // SAFETY: The range lies in both folios' pages (checked above), which are valid while
        // `self` and `src` are, and two folios never overlap.
        unsafe {
            core::ptr::copy_nonoverlapping(
                src.address().add(offset),
                self.address().add(offset),
                len,
            )
        };
    }

    /// Writes `value` at `offset` in the folio, as one volatile store: user space may be
    /// reading the page.
    pub(crate) fn write<T: Copy>(&self, offset: usize, value: T) {
        let fits = offset % core::mem::align_of::<T>() == 0
            && offset
                .checked_add(core::mem::size_of::<T>())
                .is_some_and(|end| end <= sys::PAGE_SIZE);
        if !fits {
            pr_err!(
                "write of {} bytes at {offset} outside a page\n",
                core::mem::size_of::<T>()
            );
            return;
        }
        // SAFETY: The aligned range lies in the folio's page (checked above), which is valid
        // while `self` is.
        unsafe { self.address().add(offset).cast::<T>().write_volatile(value) };
    }
}

/// A locked folio that is ours to unlock: the one the kernel hands `read_folio`.
///
/// # Invariants
///
/// The folio is valid and locked, and its lock is owed back by whoever holds this.
pub(crate) struct LockedFolio<'a>(&'a Folio);

impl LockedFolio<'_> {
    /// # Safety
    ///
    /// `ptr` must be a valid folio for the whole of `'a`, locked, with its unlocking left to the
    /// caller (as `read_folio`'s is).
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut sys::folio) -> LockedFolio<'a> {
        // SAFETY: The caller guarantees validity for `'a`.
        // INVARIANT: The caller guarantees the lock is held and ours to give back.
        LockedFolio(unsafe { Folio::from_raw(ptr) })
    }

    /// Unlocks the folio (what `read_folio` owes the kernel).
    pub(crate) fn unlock(self) {
        // SAFETY: The folio is valid and locked, and the lock is ours (type invariant).
        unsafe { sys::folio_unlock(self.0.as_ptr()) };
    }
}
