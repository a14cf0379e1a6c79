// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers: a ring's `struct address_space` (its page cache), with the mapping's
//! `i_private_lock` and the context it names, and the address-space operations built from
//! [`AddressSpaceOps`] (how ring pages are read and migrate: `migrate.rs`).

use core::marker::PhantomData;
use kernel::{
    error::{from_result, to_result},
    ffi::{c_int, c_void},
    prelude::*,
    types::Opaque,
};

use crate::kapi::folio::{Folio, LockedFolio};
use crate::kapi::sys;

/// The `struct address_space` of an inode (a ring's).
///
/// # Invariants
///
/// The wrapped mapping is valid.
#[repr(transparent)]
pub(crate) struct Mapping(Opaque<sys::address_space>);

impl Mapping {
    pub(crate) fn as_ptr(&self) -> *mut sys::address_space {
        self.0.get()
    }

    /// Puts `dst` in the page cache in place of `src` (`folio_migrate_mapping()`); `extra_count`
    /// is the references to `src` its owner holds beyond the page cache's.
    ///
    /// # Safety
    ///
    /// Both folios must be locked by the migration core, `src` in this mapping.
    pub(crate) unsafe fn migrate_mapping(
        &self,
        dst: &Folio,
        src: &Folio,
        extra_count: c_int,
    ) -> Result {
        // SAFETY: The mapping and folios are valid (type invariants) and locked (the caller's
        // guarantee).
        to_result(unsafe {
            sys::folio_migrate_mapping(self.0.get(), dst.as_ptr(), src.as_ptr(), extra_count)
        })
    }

    fn private_lock(&self) -> *mut sys::spinlock_t {
        // SAFETY: The mapping is valid (type invariant); only the field's address is taken.
        unsafe { core::ptr::addr_of_mut!((*self.0.get()).i_private_lock) }
    }

    /// Takes `i_private_lock`, which guards the host inode's `i_private` (7.x has no
    /// `i_private_data`; the anonymous inode is the module's own): the ring's context, or null once
    /// the context has been disconnected from the ring (teardown).
    fn lock_private(&self) -> PrivateGuard<'_> {
        // SAFETY: The mapping is valid (type invariant) and so is its lock.
        unsafe { sys::rust_aio_spin_lock(self.private_lock()) };
        // INVARIANT: The lock was just taken.
        PrivateGuard {
            mapping: self,
            _not_send: core::marker::PhantomData,
        }
    }
}

/// Proof that a mapping's `i_private_lock` is held.
///
/// # Invariants
///
/// The current CPU holds `mapping.i_private_lock`.
#[must_use = "the lock unlocks immediately when the guard is unused"]
struct PrivateGuard<'a> {
    mapping: &'a Mapping,
    _not_send: core::marker::PhantomData<*mut ()>,
}

impl PrivateGuard<'_> {
    fn private_data(&self) -> *const c_void {
        // SAFETY: The field is guarded by the lock this guard holds (type invariant); the host
        // inode lives as long as its mapping.
        unsafe { (*(*self.mapping.0.get()).host).i_private }
    }

    fn set_private_data(&mut self, data: *const c_void) {
        // SAFETY: The field is guarded by the lock this guard holds (type invariant); the host
        // inode lives as long as its mapping.
        unsafe { (*(*self.mapping.0.get()).host).i_private = data.cast_mut() };
    }
}

impl Drop for PrivateGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: The current CPU holds the lock (type invariant).
        unsafe { sys::rust_aio_spin_unlock(self.mapping.private_lock()) };
    }
}

/// The mapping of a ring file: its host inode's `i_private` is null or names an `O`, the ring's owner
/// (`RingFile::new()`), until the ring is disconnected from it (`RingFile::disconnect()`).
///
/// # Invariants
///
/// The host inode's `i_private` is null or points to an `O` that stays alive until it is
/// cleared, under `i_private_lock`.
#[repr(transparent)]
pub(crate) struct RingMapping<O> {
    mapping: Mapping,
    _owner: PhantomData<O>,
}

impl<O> RingMapping<O> {
    /// # Safety
    ///
    /// `ptr` must be a valid mapping for the whole of `'a`, of a ring file made by
    /// `RingFile::<O>::new()`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut sys::address_space) -> &'a RingMapping<O> {
        // SAFETY: `RingMapping` is `repr(transparent)` over `Mapping`, itself over the C struct;
        // the caller guarantees validity and what the private data names.
        unsafe { &*ptr.cast() }
    }

    /// Takes `i_private_lock`: while the guard lives, the owner it shows cannot go.
    pub(crate) fn lock_owner(&self) -> OwnerGuard<'_, O> {
        OwnerGuard {
            private: self.mapping.lock_private(),
            _owner: PhantomData,
        }
    }
}

impl<O> core::ops::Deref for RingMapping<O> {
    type Target = Mapping;

    fn deref(&self) -> &Mapping {
        &self.mapping
    }
}

/// A ring mapping's `i_private_lock`, held: the ring's owner, if it is still connected.
#[must_use = "the lock unlocks immediately when the guard is unused"]
pub(crate) struct OwnerGuard<'a, O> {
    private: PrivateGuard<'a>,
    _owner: PhantomData<&'a O>,
}

impl<O> OwnerGuard<'_, O> {
    /// The ring's owner; `None` once the ring has been disconnected from it (teardown).
    pub(crate) fn owner(&self) -> Option<&O> {
        let owner = self.private.private_data().cast::<O>();
        // SAFETY: The private data is null or an `O` that stays alive until it is cleared under
        // `i_private_lock` (`RingMapping` invariant), which this guard holds for as long as the
        // borrow.
        unsafe { owner.as_ref() }
    }

    /// Disconnects the ring from its owner: later lockers see none.
    pub(crate) fn disconnect(&mut self) {
        self.private.set_private_data(core::ptr::null());
    }
}

/// The address-space operations of a ring (its inode's `a_ops`), for owners of type `Owner`.
/// The C callbacks are this file's; the ring implements only this trait.
pub(crate) trait AddressSpaceOps: 'static {
    /// What the ring's mapping names (`RingMapping`), shared with migration on any CPU.
    type Owner: Sync;

    /// `read_folio`: a fault found no page in the page cache. The folio is locked and must be
    /// unlocked.
    fn read_folio(folio: LockedFolio<'_>) -> Result;

    /// `migrate_folio`: move `src`, a folio of `mapping`, to `dst`. Both are locked by the
    /// migration core, which holds references to them for the call.
    fn migrate_folio(mapping: &RingMapping<Self::Owner>, dst: &Folio, src: &Folio) -> Result;
}

/// The `address_space_operations` of an [`AddressSpaceOps`].
pub(super) struct AddressSpaceVTable<T: AddressSpaceOps>(PhantomData<T>);

impl<T: AddressSpaceOps> AddressSpaceVTable<T> {
    const VTABLE: sys::address_space_operations = sys::address_space_operations {
        read_folio: Some(Self::read_folio),
        // Ring folios are never written back.
        dirty_folio: Some(sys::noop_dirty_folio),
        migrate_folio: Some(Self::migrate_folio),
        // SAFETY: All-zero is a valid `address_space_operations`: every other one is absent.
        ..unsafe { core::mem::zeroed() }
    };

    pub(super) fn build() -> &'static sys::address_space_operations {
        &Self::VTABLE
    }

    /// # Safety
    ///
    /// Called by the kernel with a valid, locked folio of a ring's mapping, which `read_folio`
    /// must unlock.
    unsafe extern "C" fn read_folio(_file: *mut sys::file, folio: *mut sys::folio) -> c_int {
        // SAFETY: The kernel passes a valid folio for the whole call, locked, and expects
        // `read_folio` to unlock it.
        let folio = unsafe { LockedFolio::from_raw(folio) };
        from_result(|| {
            T::read_folio(folio)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the migration core with a ring's mapping and two folios it holds references to
    /// and has locked, valid for the whole call: `src`, in the mapping, and `dst`, its new place.
    unsafe extern "C" fn migrate_folio(
        mapping: *mut sys::address_space,
        dst: *mut sys::folio,
        src: *mut sys::folio,
        _mode: sys::migrate_mode,
    ) -> c_int {
        // SAFETY: The kernel passes the mapping of a ring file (these operations are only given
        // to ring files of owners `T::Owner`) and two folios it holds references to, valid for
        // the whole call.
        let (mapping, dst, src) = unsafe {
            (
                RingMapping::<T::Owner>::from_raw(mapping),
                Folio::from_raw(dst),
                Folio::from_raw(src),
            )
        };
        from_result(|| {
            T::migrate_folio(mapping, dst, src)?;
            // Success is 0 (`MIGRATEPAGE_SUCCESS` until 6.17).
            Ok(0)
        })
    }
}
