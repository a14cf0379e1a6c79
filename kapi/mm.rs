// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers over 7.3's `kernel::mm`: an address space's identity and the calling task's
//! address space, what 7.3's VMAs lack (a VMA's file offset and mapping), and the operations of a
//! ring's VMAs built from [`VmOps`] (7.3's `kernel::mm::virt` cannot install `vm_operations`).

use core::marker::PhantomData;
use kernel::{error::from_result, ffi::c_int, prelude::*, sync::aref::ARef};

pub(crate) use kernel::mm::{
    virt::{VmaNew, VmaRef as Vma},
    Mm,
};

use crate::kapi::address_space::RingMapping;
use crate::kapi::sys;

/// The VMA's offset in its file, in pages.
pub(crate) fn vma_pgoff(vma: &Vma) -> usize {
    // SAFETY: A `VmaRef` is valid, with its `mmap_lock` (or VMA lock) held, for as long as it is
    // borrowed: the offset is stable.
    unsafe { (*vma.as_ptr()).vm_pgoff }
}

/// The mapping of the file `vma` maps.
///
/// # Safety
///
/// The VMA must map a file.
unsafe fn file_mapping(vma: &Vma) -> *mut sys::address_space {
    // SAFETY: The VMA is valid while borrowed and holds a reference to its file (the caller's
    // guarantee).
    unsafe { (*(*vma.as_ptr()).vm_file).f_mapping }
}

/// Sets up a ring mapping in its `mmap`, as 7.x's fs/aio.c (`aio_ring_mmap_prepare()`): it
/// cannot grow (`mremap` cannot expand it), a forked child does not inherit it (`VM_DONTCOPY`),
/// and it gets `T`'s operations.
///
/// # Safety
///
/// The VMA must map a ring file of owners `T::Owner` (made by `RingFile::<T::Owner>::new`): `T`'s
/// `mremap` reads the owner its mapping names.
pub(super) unsafe fn set_ring_operations<T: VmOps>(vma: &VmaNew) {
    vma.set_dontexpand();
    vma.set_dontcopy();
    // SAFETY: The VMA is being set up by `mmap`, with `mmap_lock` held for writing (`VmaNew`'s
    // invariant): nothing else reads its operations yet.
    unsafe { (*vma.as_ptr()).vm_ops = VmOpsVTable::<T>::build() };
}

/// The operations of a ring's VMAs: page-cache faults, plus what `mremap` does. The C callbacks
/// are this file's; the ring implements only this trait.
pub(crate) trait VmOps: 'static {
    /// What the ring's mapping names (`RingMapping`), shared with `mremap` on any CPU.
    type Owner: Sync;

    /// `mremap`: `vma`, a mapping of `ring`, moved (`vma` is the new one); an error refuses the
    /// move. `mmap_lock` is held for writing.
    fn mremap(vma: &Vma, ring: &RingMapping<Self::Owner>) -> Result;
}

/// The `vm_operations_struct` of a [`VmOps`].
struct VmOpsVTable<T: VmOps>(PhantomData<T>);

impl<T: VmOps> VmOpsVTable<T> {
    const VTABLE: sys::vm_operations_struct = sys::vm_operations_struct {
        mremap: Some(Self::mremap),
        fault: Some(sys::filemap_fault),
        map_pages: Some(sys::filemap_map_pages),
        page_mkwrite: Some(sys::filemap_page_mkwrite),
        // SAFETY: All-zero is a valid `vm_operations_struct`: every other operation is absent.
        ..unsafe { core::mem::zeroed() }
    };

    fn build() -> &'static sys::vm_operations_struct {
        &Self::VTABLE
    }

    /// # Safety
    ///
    /// Called by the kernel with the moved VMA, valid for the call, with `mmap_lock` held.
    unsafe extern "C" fn mremap(vma: *mut sys::vm_area_struct) -> c_int {
        // SAFETY: The kernel passes the moved VMA, valid for the call, with `mmap_lock` held.
        let vma = unsafe { Vma::from_raw(vma) };
        // SAFETY: These operations are only installed on mappings of ring files of `T::Owner`
        // (`set_ring_operations()`'s guarantee): the VMA maps one, which stays valid while it
        // does.
        let ring = unsafe { RingMapping::<T::Owner>::from_raw(file_mapping(vma)) };
        from_result(|| {
            T::mremap(vma, ring)?;
            Ok(0)
        })
    }
}

/// An address space's identity, for comparison only (a context's owner, the key of a process's
/// contexts): it may outlive the address space and never reaches it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct MmId(usize);

impl MmId {
    /// `mm`'s identity.
    pub(crate) fn of(mm: &Mm) -> MmId {
        MmId(mm.as_raw() as usize)
    }

    /// The calling task's address space, `None` for a kernel thread.
    pub(crate) fn current() -> Option<MmId> {
        kernel::current!().mm().map(|mm| Self::of(mm))
    }
}

/// The calling task's address space, counted by `mmgrab()` (which keeps the `mm_struct` itself
/// alive, not its mappings: enough to tell the process that owns a context), or `None` for a
/// kernel thread.
pub(crate) fn current_mm() -> Option<ARef<Mm>> {
    kernel::current!().mm().map(|mm| ARef::from(&**mm))
}

/// Whether the calling task runs in address space `mm`.
pub(crate) fn is_current(mm: &Mm) -> bool {
    MmId::current() == Some(MmId::of(mm))
}
