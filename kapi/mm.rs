// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers: address spaces (`struct mm_struct`) and their VMAs, with the operations of a
//! ring's VMAs built from [`VmOps`] (upstream: `kernel::mm` and `kernel::mm::virt`).

use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    error::from_result,
    ffi::c_int,
    prelude::*,
    sync::aref::{ARef, AlwaysRefCounted},
    types::Opaque,
};

use crate::kapi::address_space::RingMapping;
use crate::kapi::sys;

/// A VMA the kernel passed to one of a ring file's callbacks (`mmap`, `vm_operations`), which
/// run with `mmap_lock` held.
#[repr(transparent)]
pub(crate) struct Vma(Opaque<sys::vm_area_struct>);

impl Vma {
    /// # Safety
    ///
    /// `ptr` must be a valid VMA for the whole of `'a`, with its `mmap_lock` held.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut sys::vm_area_struct) -> &'a Vma {
        // SAFETY: `Vma` is `repr(transparent)` over the C struct; the caller guarantees validity.
        unsafe { &*ptr.cast() }
    }

    fn as_ptr(&self) -> *mut sys::vm_area_struct {
        self.0.get()
    }

    pub(crate) fn start(&self) -> usize {
        // SAFETY: The VMA is valid and its bounds stable under `mmap_lock` (`from_raw`).
        unsafe { sys::rust_aio_vma_start(self.0.get()) as usize }
    }

    pub(crate) fn end(&self) -> usize {
        // SAFETY: The VMA is valid and its bounds stable under `mmap_lock` (`from_raw`).
        unsafe { sys::rust_aio_vma_end(self.0.get()) as usize }
    }

    /// The VMA's offset in its file, in pages.
    pub(crate) fn pgoff(&self) -> usize {
        // SAFETY: The VMA is valid and its offset stable under `mmap_lock` (`from_raw`).
        unsafe { (*self.0.get()).vm_pgoff }
    }

    /// The address space the VMA belongs to.
    pub(crate) fn mm(&self) -> &Mm {
        // SAFETY: The VMA is valid (`from_raw`) and belongs to its address space, which is alive
        // while `mmap_lock` is held (`Mm` is `repr(transparent)` over the C struct).
        unsafe { &*(*self.0.get()).vm_mm.cast::<Mm>() }
    }

    /// The mapping of the file the VMA maps.
    ///
    /// # Safety
    ///
    /// The VMA must map a file.
    unsafe fn file_mapping(&self) -> *mut sys::address_space {
        // SAFETY: The VMA is valid and holds a reference to its file (the caller's guarantee).
        unsafe { (*(*self.0.get()).vm_file).f_mapping }
    }
}

/// The new VMA a ring file's `mmap` sets up, with `mmap_lock` held for writing: what may only be
/// changed there.
#[repr(transparent)]
pub(crate) struct NewVma(Vma);

impl NewVma {
    /// # Safety
    ///
    /// `ptr` must be the VMA the kernel passes to `mmap`, valid for the whole of `'a`, with its
    /// `mmap_lock` held for writing.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut sys::vm_area_struct) -> &'a NewVma {
        // SAFETY: `NewVma` is `repr(transparent)` over `Vma`, itself over the C struct; the
        // caller guarantees validity.
        unsafe { &*ptr.cast() }
    }

    /// Sets up a ring mapping, as 7.x's fs/aio.c (`aio_ring_mmap_prepare()`): it cannot grow
    /// (`mremap` cannot expand it), a forked child does not inherit it (`VM_DONTCOPY`), and it
    /// gets `T`'s operations.
    ///
    /// # Safety
    ///
    /// The VMA must map a ring file of owners `T::Owner` (made by `RingFile::<T::Owner>::new`):
    /// `T`'s `mremap` reads the owner its mapping names.
    pub(super) unsafe fn set_ring_operations<T: VmOps>(&self) {
        let vma = self.0.as_ptr();
        // SAFETY: This is the new VMA of `mmap`, with `mmap_lock` held for writing (`from_raw`).
        unsafe {
            sys::rust_aio_vm_flags_set(vma, (sys::VM_DONTEXPAND | sys::VM_DONTCOPY) as _);
            (*vma).vm_ops = VmOpsVTable::<T>::build();
        }
    }
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
        let ring = unsafe { RingMapping::<T::Owner>::from_raw(vma.file_mapping()) };
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
    /// The calling task's address space, `None` for a kernel thread.
    pub(crate) fn current() -> Option<MmId> {
        // SAFETY: Reading `current->mm` is always allowed for the calling task.
        let mm = unsafe { sys::rust_aio_current_mm() };
        (!mm.is_null()).then_some(MmId(mm as usize))
    }
}

/// An address space (`struct mm_struct`), as later kernels' `kernel::mm::Mm`. An [`ARef<Mm>`]
/// is a reference from `mmgrab()`, which keeps the `mm_struct` itself alive (not its mappings), to
/// tell the process that owns a context.
///
/// # Invariants
///
/// The wrapped `mm_struct` is valid; an `Mm` is only reached through a reference counted by
/// `mmgrab()` (an [`ARef<Mm>`]), one borrowed from such, or as the `vm_mm` of a VMA borrowed
/// under `mmap_lock` ([`Vma::mm`]).
#[repr(transparent)]
pub(crate) struct Mm(Opaque<sys::mm_struct>);

// SAFETY: The reference may be dropped from any thread in process context (`mmdrop()` may free
// the `mm_struct`); contexts drop theirs when they are destroyed, never from IRQ.
unsafe impl Send for Mm {}
// SAFETY: Only the address is compared.
unsafe impl Sync for Mm {}

// SAFETY: `mmgrab()` and `mmdrop()` count the references that keep the `mm_struct` alive, from
// any thread.
unsafe impl AlwaysRefCounted for Mm {
    fn inc_ref(&self) {
        // SAFETY: The `mm_struct` is valid (type invariant).
        unsafe { sys::rust_aio_mmgrab(self.0.get()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller owns a reference, which is given up here. `mmdrop()` may free the
        // `mm_struct`: in process context, as every reference is dropped (see `Send` above).
        unsafe { sys::rust_aio_mmdrop(obj.cast().as_ptr()) };
    }
}

impl Mm {
    /// The calling task's address space, or `None` for a kernel thread.
    pub(crate) fn current() -> Option<ARef<Mm>> {
        // SAFETY: `current->mm` is stable for the calling task.
        let mm = NonNull::new(unsafe { sys::rust_aio_current_mm() })?;
        // SAFETY: `mm` is the caller's own, live address space, borrowed only to take a reference
        // (`Mm` is `repr(transparent)` over the C struct).
        let mm = unsafe { mm.cast::<Mm>().as_ref() };
        // `inc_ref()`: `mmgrab()`.
        Some(ARef::from(mm))
    }

    /// Whether the calling task runs in this address space.
    pub(crate) fn is_current(&self) -> bool {
        MmId::current() == Some(self.id())
    }

    /// The address space's identity.
    pub(crate) fn id(&self) -> MmId {
        MmId(self.0.get() as usize)
    }
}
