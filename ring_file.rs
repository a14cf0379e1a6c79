// SPDX-License-Identifier: GPL-2.0

//! The ring file's operations: its `file_operations` (`mmap` for setup, `release`) and the
//! ring mapping's `vm_operations` (page-cache faults, and `mremap`, which moves the context's id
//! with the ring's header). The mapping splits like any other (`munmap`, `mprotect`, `mbind` of
//! a part of it), as fs/aio.c's does. The address-space operations, how its pages migrate, are
//! `migrate.rs`'s.

use kernel::{error::from_result, ffi::c_int, prelude::*};

use crate::{
    context::Context,
    kapi::miscdevice::{this_module, FileOperations},
    kapi::mm::{NewVma, Vma},
    kapi::pseudo_fs::{RingFsPin, VmOperations},
    kapi::sys,
};

/// The ring's `file_operations`: `mmap`, used by setup, and `release`, which ends the file's pin
/// of the ring filesystem. `owner` keeps the module loaded while a ring file exists (a mapping of
/// it may outlive its context); so does the filesystem's superblock.
pub(crate) static RING_FOPS: FileOperations = FileOperations(sys::file_operations {
    owner: this_module(),
    mmap: Some(ring_mmap),
    release: Some(ring_release),
    // SAFETY: All-zero is a valid `file_operations`: every other operation is absent.
    ..unsafe { core::mem::zeroed() }
});

/// The ring mapping's operations: page-cache faults, plus an `mremap` hook.
static RING_VM_OPS: VmOperations = VmOperations(sys::vm_operations_struct {
    mremap: Some(ring_mremap),
    fault: Some(sys::filemap_fault),
    map_pages: Some(sys::filemap_map_pages),
    page_mkwrite: Some(sys::filemap_page_mkwrite),
    // SAFETY: All-zero is a valid `vm_operations_struct`: every other operation is absent.
    ..unsafe { core::mem::zeroed() }
});

/// `mmap` of a ring file (setup maps it with `vm_mmap()`).
///
/// # Safety
///
/// Called by the kernel with the new VMA, valid for the call, with `mmap_lock` held for writing.
unsafe extern "C" fn ring_mmap(_file: *mut sys::file, vma: *mut sys::vm_area_struct) -> c_int {
    // SAFETY: The kernel passes the new VMA, valid for the call, with `mmap_lock` held for
    // writing.
    let vma = unsafe { NewVma::from_raw(vma) };
    from_result(|| {
        ring_mapped(vma);
        Ok(0)
    })
}

/// A ring mapping is being made: it gets the ring's `vm_operations`.
fn ring_mapped(vma: &NewVma) {
    vma.set_ring_operations(&RING_VM_OPS);
}

/// The ring file's last reference is gone (`__fput()`).
///
/// # Safety
///
/// Called by the VFS once per ring file, when its last reference is gone.
unsafe extern "C" fn ring_release(_inode: *mut sys::inode, _file: *mut sys::file) -> c_int {
    // SAFETY: Every ring file holds one pin of the ring filesystem, given to it by
    // `RingFile::new()`; this is its only release.
    let pin = unsafe { RingFsPin::of_released_file() };
    // The pin ends: the last one unmounts the ring filesystem.
    drop(pin);
    0
}

/// `mremap` of a ring mapping.
///
/// # Safety
///
/// Called by the kernel with the moved VMA, valid for the call, with `mmap_lock` held.
unsafe extern "C" fn ring_mremap(vma: *mut sys::vm_area_struct) -> c_int {
    // SAFETY: The kernel passes the moved VMA, valid for the call, with `mmap_lock` held.
    let vma = unsafe { Vma::from_raw(vma) };
    from_result(|| {
        ring_moved(vma)?;
        Ok(0)
    })
}

/// The ring, or a piece of it, moved: a piece that holds the header takes the context id with
/// it, as in fs/aio.c's `aio_ring_mremap()`; another piece leaves the id with the header
/// (fs/aio.c moves the id to any piece, where no header is: the README's differences). Only the
/// owner may move a live ring: a forked child sees the mapping but owns no context
/// (CVE-2023-52646), and a dead context's ring stays dead.
fn ring_moved(vma: &Vma) -> Result {
    let mapping = vma.file_mapping().ok_or(EINVAL)?;
    let private = mapping.lock_private();
    // SAFETY: These are the ring mapping's `vm_operations` (`RING_VM_OPS`), installed only on
    // mappings of a ring file: the VMA's file mapping is a ring's mapping.
    let ctx = unsafe { Context::of_ring(&private) }.ok_or(EINVAL)?;
    if !ctx.is_owned_by(vma.mm()) || ctx.is_dead() {
        return Err(EINVAL);
    }
    if vma.pgoff() == 0 && !ctx.move_to(vma.start() as u64) {
        return Err(EINVAL);
    }
    Ok(())
}
