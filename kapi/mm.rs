// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers: the owner's address space — its VMAs, mapping the ring into it, and the
//! mmu notifier through which contexts die with it (`context/owner.rs`).

use core::ptr::NonNull;
use kernel::{
    error::{from_err_ptr, to_result},
    ffi::{c_int, c_ulong},
    prelude::*,
    types::{ARef, AlwaysRefCounted, Opaque},
};

use crate::kapi::folio::Mapping;
use crate::kapi::pseudo_fs::{RingFile, VmOperations};
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

    /// The VMA's offset in its file, in pages.
    pub(crate) fn pgoff(&self) -> usize {
        // SAFETY: The VMA is valid and its offset stable under `mmap_lock` (`from_raw`).
        unsafe { (*self.0.get()).vm_pgoff }
    }

    /// The address space the VMA belongs to (for comparison only).
    pub(crate) fn mm(&self) -> *const sys::mm_struct {
        // SAFETY: The VMA is valid (`from_raw`).
        unsafe { (*self.0.get()).vm_mm }
    }

    /// The mapping of the file the VMA maps, if any.
    pub(crate) fn file_mapping(&self) -> Option<&Mapping> {
        // SAFETY: The VMA is valid and holds a reference to its file, if it has one.
        unsafe {
            let file = (*self.0.get()).vm_file;
            (!file.is_null()).then(|| Mapping::from_raw((*file).f_mapping))
        }
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

    /// Sets up a ring mapping: it cannot grow (`mremap` cannot expand it) and uses `ops`.
    pub(crate) fn set_ring_operations(&self, ops: &'static VmOperations) {
        let vma = self.0.as_ptr();
        // SAFETY: This is the new VMA of `mmap`, with `mmap_lock` held for writing (`from_raw`).
        unsafe {
            sys::rust_aio_vm_flags_set(vma, sys::VM_DONTEXPAND as _);
            (*vma).vm_ops = &ops.0;
        }
    }
}

/// The calling task's address space (null for a kernel thread), for comparison only.
pub(crate) fn current_mm() -> *const sys::mm_struct {
    // SAFETY: Reading `current->mm` is always allowed for the calling task.
    unsafe { sys::rust_aio_current_mm() }
}

/// An address space (`struct mm_struct`), as later kernels' `kernel::mm::Mm`. An [`ARef<Mm>`]
/// is a reference from `mmgrab()`, which keeps the `mm_struct` itself alive (not its mappings), to
/// tell the process that owns a context.
///
/// # Invariants
///
/// The wrapped `mm_struct` is valid; an `Mm` is only reached through a reference counted by
/// `mmgrab()` (an [`ARef<Mm>`]) or one borrowed from such.
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
        core::ptr::eq(current_mm(), self.0.get())
    }
}

/// Maps `file` shared and read/write into the calling process, like fs/aio.c's `do_mmap()` of the
/// ring; returns the address.
pub(crate) fn map_shared(file: &RingFile, size: usize) -> Result<usize> {
    // SAFETY: The file is valid; `vm_mmap()` takes the caller's `mmap_lock` itself.
    let addr = unsafe {
        sys::vm_mmap(
            file.as_ptr(),
            0,
            size as c_ulong,
            sys::PROT_RW,
            sys::MAP_SHARED as c_ulong,
            0,
        )
    };
    // `vm_mmap()` returns an address or a negative errno.
    if (addr as isize) < 0 && (addr as isize) >= -4095 {
        return Err(Error::from_errno(addr as isize as c_int));
    }
    Ok(addr as usize)
}

/// Unmaps from the calling process what is left of `file`'s mapping at `[addr, addr + size)`:
/// each piece of that range that still maps `file` at its own offset (user space may have split
/// the mapping, unmapped or replaced parts of it, or moved them away). Nothing else is unmapped:
/// a mapping that replaced part of the ring stays.
///
/// Between the look and the unmap, another thread of the same process could replace a piece;
/// that process only races itself, and the kernel is not at risk.
pub(crate) fn unmap_ring_pieces(file: &RingFile, addr: usize, size: usize) -> Result {
    let mm = current_mm().cast_mut();
    if mm.is_null() {
        return Ok(());
    }
    let end = addr.saturating_add(size);
    let mut cursor = addr;
    while cursor < end {
        // SAFETY: `mm` is the caller's, live; its VMAs are stable while `mmap_lock` is held for
        // reading.
        let piece = unsafe {
            sys::rust_aio_mmap_read_lock(mm);
            let vma = sys::find_vma(mm, cursor as c_ulong);
            let piece = if vma.is_null() {
                None
            } else {
                let start = (sys::rust_aio_vma_start(vma) as usize).max(cursor);
                let stop = (sys::rust_aio_vma_end(vma) as usize).min(end);
                let at_own_offset = ((*vma).vm_pgoff as usize)
                    .checked_mul(sys::PAGE_SIZE)
                    .and_then(|offset| sys::rust_aio_vma_start(vma).checked_sub(offset as _))
                    == Some(addr as c_ulong);
                let ours = core::ptr::eq((*vma).vm_file, file.as_ptr()) && at_own_offset;
                (start < stop).then_some((start, stop, ours))
            };
            sys::rust_aio_mmap_read_unlock(mm);
            piece
        };
        let Some((start, stop, ours)) = piece else {
            break;
        };
        if ours {
            // SAFETY: Unmapping a range of the caller's own address space.
            to_result(unsafe { sys::vm_munmap(start as c_ulong, stop - start) })?;
        }
        cursor = stop;
    }
    Ok(())
}

/// `mmu_notifier_get()` through the helper: the address space's notifier for `ops`, made by
/// `ops.alloc_notifier` if it has none; a counted reference.
///
/// # Safety
///
/// `mm` must be a live address space the caller uses (its own); `ops` outlives every notifier
/// made from it.
pub(crate) unsafe fn mmu_notifier_get(
    ops: &'static sys::mmu_notifier_ops,
    mm: *mut sys::mm_struct,
) -> Result<NonNull<sys::mmu_notifier>> {
    // SAFETY: The caller's guarantees are the helper's preconditions.
    let notifier = from_err_ptr(unsafe { sys::rust_aio_mmu_notifier_get(ops, mm) })?;
    NonNull::new(notifier).ok_or(ENOMEM)
}

/// Gives back a reference from [`mmu_notifier_get`] (`mmu_notifier_put()`).
///
/// # Safety
///
/// The caller owns the reference and does not use `notifier` again.
pub(crate) unsafe fn mmu_notifier_put(notifier: NonNull<sys::mmu_notifier>) {
    // SAFETY: The caller owns the reference.
    unsafe { sys::mmu_notifier_put(notifier.as_ptr()) };
}

/// Waits until every notifier given back has been freed (`mmu_notifier_synchronize()`).
pub(crate) fn mmu_notifier_synchronize() {
    // SAFETY: Always allowed in process context.
    unsafe { sys::mmu_notifier_synchronize() };
}
