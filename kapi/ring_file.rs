// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers: a ring's file, an anonymous inode on the module's pseudo filesystem
//! (`kapi/pseudo_fs.rs`) whose page cache holds the ring, mapped into its owner; and the
//! operation tables ring files carry, built from the ring's [`AddressSpaceOps`] and [`VmOps`].
//!
//! Like fs/aio.c's `aio_private_file()`, each ring is the page cache of an anonymous inode on a
//! pseudo filesystem: that makes the ring pages ordinary movable page-cache folios that the
//! kernel migrates through the mapping's `migrate_folio` (`migrate.rs`).

use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    c_str,
    error::{from_err_ptr, from_result, to_result},
    ffi::{c_int, c_ulong},
    prelude::*,
    sync::aref::ARef,
};

use crate::kapi::{
    address_space::{AddressSpaceOps, AddressSpaceVTable, RingMapping},
    folio::Folio,
    miscdevice::this_module,
    mm::{set_ring_operations, vma_pgoff, VmOps, Vma, VmaNew},
    pseudo_fs::RingFsPin,
    sys,
};

/// The operation tables of the ring files of owners `O`: the address-space operations of an
/// [`AddressSpaceOps`] (`migrate.rs`) and the file operations, whose `mmap` gives the mapping the
/// operations of a [`VmOps`] (`mremap.rs`). The crate root builds them and hands them down.
///
/// # Invariants
///
/// `aops` and `fops` are built from an [`AddressSpaceOps`] and a [`VmOps`] whose `Owner` is `O`.
pub(crate) struct RingOps<O> {
    aops: &'static sys::address_space_operations,
    fops: &'static sys::file_operations,
    _owner: PhantomData<fn(&O)>,
}

// SAFETY: The tables are never written; their pointers may be read from any thread.
unsafe impl<O: Sync> Sync for RingOps<O> {}
// SAFETY: See above.
unsafe impl<O: Sync> Send for RingOps<O> {}

impl<O> RingOps<O> {
    pub(crate) fn new<A: AddressSpaceOps<Owner = O>, V: VmOps<Owner = O>>() -> Self {
        // INVARIANT: Both are `O`'s.
        Self {
            aops: AddressSpaceVTable::<A>::build(),
            fops: RingFileVTable::<V>::build(),
            _owner: PhantomData,
        }
    }
}

/// The `file_operations` of ring files whose mappings get `V`'s operations: `mmap`, which setup
/// uses, and `release`, which ends the file's pin of the ring filesystem. `owner` keeps the
/// module loaded while a ring file exists (a mapping of it may outlive its context); so does the
/// filesystem's superblock.
struct RingFileVTable<V: VmOps>(PhantomData<V>);

impl<V: VmOps> RingFileVTable<V> {
    const VTABLE: sys::file_operations = sys::file_operations {
        owner: this_module(),
        mmap: Some(Self::mmap),
        release: Some(Self::release),
        // SAFETY: All-zero is a valid `file_operations`: every other operation is absent.
        ..unsafe { core::mem::zeroed() }
    };

    fn build() -> &'static sys::file_operations {
        &Self::VTABLE
    }

    /// `mmap` of a ring file (setup maps it with `vm_mmap()`): the mapping cannot grow and gets
    /// `V`'s operations.
    ///
    /// # Safety
    ///
    /// Called by the kernel with the new VMA, valid for the call, with `mmap_lock` held for
    /// writing.
    unsafe extern "C" fn mmap(_file: *mut sys::file, vma: *mut sys::vm_area_struct) -> c_int {
        // SAFETY: The kernel passes the new VMA, valid for the call, with `mmap_lock` held for
        // writing.
        let vma = unsafe { VmaNew::from_raw(vma) };
        from_result(|| {
            // SAFETY: This is the `mmap` of a ring file of owners `V::Owner` (these operations
            // are only given to such files, `RingOps`).
            unsafe { set_ring_operations::<V>(vma) };
            Ok(0)
        })
    }

    /// The ring file's last reference is gone (`__fput()`): its pin of the ring filesystem ends;
    /// the last one unmounts it.
    ///
    /// # Safety
    ///
    /// Called by the VFS once per ring file, when its last reference is gone.
    unsafe extern "C" fn release(_inode: *mut sys::inode, _file: *mut sys::file) -> c_int {
        // SAFETY: Every ring file holds one pin of the ring filesystem, given to it by
        // `RingFile::new()`; this is its only release.
        drop(unsafe { RingFsPin::of_released_file() });
        0
    }
}

/// A ring's file: an anonymous inode on the ring filesystem whose page cache holds the ring, and
/// whose mapping names the ring's owner, an `O`, until it is disconnected from it.
///
/// # Invariants
///
/// `file` is a counted reference to a file made by `alloc_file_pseudo()` on the ring filesystem,
/// with the operations of a [`RingOps<O>`]; its mapping is a [`RingMapping<O>`].
pub(crate) struct RingFile<O> {
    file: NonNull<sys::file>,
    _owner: PhantomData<fn(&O)>,
}

// SAFETY: A file reference may be used and dropped from any thread; the owner it names is shared
// with migration and `mremap` on any CPU, which `O: Sync` allows.
unsafe impl<O: Sync> Send for RingFile<O> {}
// SAFETY: See above.
unsafe impl<O: Sync> Sync for RingFile<O> {}

impl<O> RingFile<O> {
    /// Makes the file of a ring of `nr_pages` pages, whose mapping names `owner` in
    /// its inode's `i_private` so that migration and `mremap` can find it.
    ///
    /// # Safety
    ///
    /// `owner` must stay alive until the ring is disconnected from it ([`RingFile::disconnect`],
    /// or the drop).
    pub(crate) unsafe fn new(nr_pages: usize, owner: &O, ops: &RingOps<O>) -> Result<Self> {
        let pin = RingFsPin::new()?;
        // SAFETY: The mount is pinned (`RingFsPin` invariant).
        let inode = from_err_ptr(unsafe { sys::alloc_anon_inode((*pin.mount()).mnt_sb) })
            .map_err(|_| ENOMEM)?;
        // SAFETY: `inode` is a new inode that nobody else knows of yet; `ops` live for ever.
        // INVARIANT: The mapping names `owner`, alive until it is disconnected (the caller's
        // guarantee).
        unsafe {
            let mapping = (*inode).i_mapping;
            (*mapping).a_ops = ops.aops;
            (*inode).i_private = core::ptr::from_ref::<O>(owner).cast_mut().cast();
            (*inode).i_size = (nr_pages * sys::PAGE_SIZE) as i64;
        }
        // `alloc_file_pseudo()` does not take the module reference that the file's last `fput()`
        // drops (`fops->owner`): take it here, as `anon_inode_getfile()` does. The caller runs
        // module code, so the module is alive.
        // SAFETY: Always allowed from the module's own code.
        unsafe { sys::rust_aio_module_get() };
        // SAFETY: `inode` and the mount are valid; on success the file owns the inode reference.
        let file = unsafe {
            sys::alloc_file_pseudo(
                inode,
                pin.mount(),
                c_str!("[rust_aio]").as_char_ptr(),
                sys::O_RDWR as c_int,
                ops.fops,
            )
        };
        match from_err_ptr(file) {
            Ok(file) => {
                // The file's `release` ends the pin (the ring's `file_operations`).
                pin.into_file();
                Ok(Self {
                    // INVARIANT: `alloc_file_pseudo()` succeeded.
                    file: NonNull::new(file).ok_or(ENOMEM)?,
                    _owner: PhantomData,
                })
            }
            Err(_) => {
                // SAFETY: The inode reference and the module reference are still ours when the
                // file could not be made.
                unsafe {
                    sys::iput(inode);
                    sys::rust_aio_module_put();
                }
                Err(ENOMEM)
            }
        }
    }

    fn as_ptr(&self) -> *mut sys::file {
        self.file.as_ptr()
    }

    fn inode(&self) -> *mut sys::inode {
        // SAFETY: The file is valid (type invariant).
        unsafe { sys::rust_aio_file_inode(self.file.as_ptr()) }
    }

    pub(crate) fn mapping(&self) -> &RingMapping<O> {
        // SAFETY: The file, and so its mapping, is valid while `self` is, and a ring's mapping
        // of owners `O` (type invariant).
        unsafe { RingMapping::from_raw((*self.file.as_ptr()).f_mapping) }
    }

    /// Allocates page `index` of the ring in the page cache, zeroed and movable, on a node the
    /// caller's memory policy allows.
    pub(crate) fn create_folio(&self, index: usize) -> Result<ARef<Folio>> {
        // SAFETY: The mapping is valid (type invariant). The folio comes back locked with a
        // reference that becomes ours; `folio_end_read()` marks it up to date and unlocks it.
        unsafe {
            let folio = from_err_ptr(sys::__filemap_get_folio_mpol(
                self.mapping().as_ptr(),
                index,
                sys::FGP_RING,
                sys::GFP_RING,
                core::ptr::null_mut(),
            ))
            .map_err(|_| ENOMEM)?;
            sys::folio_end_read(folio, true);
            Ok(ARef::from_raw(NonNull::new_unchecked(folio.cast())))
        }
    }
}

impl<O> RingFile<O> {
    /// Disconnects the ring from its context, in the order of fs/aio.c's `put_aio_ring_file()`:
    /// the page cache is emptied (user mappings of it are zapped: a later access is SIGBUS),
    /// then the inode's `i_private` is cleared under `i_private_lock`, so that a migration that starts
    /// later sees no context and one that was running has finished. Doing it again is harmless.
    pub(crate) fn disconnect(&self) {
        // SAFETY: The file and its inode are valid (type invariant).
        unsafe { sys::truncate_setsize(self.inode(), 0) };
        self.mapping().lock_owner().disconnect();
    }
}

impl<O> Drop for RingFile<O> {
    /// Disconnects the ring (if that was not done yet) and drops the file. The final `fput()`
    /// work is deferred (task work or a workqueue), and ends in the superblock's module
    /// reference: the module stays until it has run.
    fn drop(&mut self) {
        self.disconnect();
        // SAFETY: The reference is ours (type invariant) and is not used again.
        unsafe { sys::fput(self.file.as_ptr()) };
    }
}

impl<O> RingFile<O> {
    /// Maps the ring shared and read/write into the calling process, like fs/aio.c's `do_mmap()`
    /// of the ring; returns the address.
    pub(crate) fn map_shared(&self, size: usize) -> Result<usize> {
        // SAFETY: The file is valid; `vm_mmap()` takes the caller's `mmap_lock` itself.
        let addr = unsafe {
            sys::vm_mmap(
                self.as_ptr(),
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

    /// Unmaps from the calling process what is left of the ring's mapping at
    /// `[addr, addr + size)`: each piece of that range that still maps the ring at its own offset
    /// (user space may have split the mapping, unmapped or replaced parts of it, or moved them
    /// away). Nothing else is unmapped: a mapping that replaced part of the ring stays.
    ///
    /// Between the look and the unmap, another thread of the same process could replace a piece;
    /// that process only races itself, and the kernel is not at risk.
    pub(crate) fn unmap_pieces(&self, addr: usize, size: usize) -> Result {
        let task = kernel::current!();
        let Some(mm) = task.mm() else {
            return Ok(());
        };
        let end = addr.saturating_add(size);
        let mut cursor = addr;
        while cursor < end {
            let piece = {
                let _guard = mm.mmap_read_lock();
                // SAFETY: `mm` is the caller's, live, with `mmap_lock` held for reading (7.3's
                // `MmapReadGuard` has only `vma_lookup()`; this needs the next VMA at or after
                // `cursor`).
                let vma = unsafe { sys::find_vma(mm.as_raw(), cursor as c_ulong) };
                if vma.is_null() {
                    None
                } else {
                    // SAFETY: A VMA of `mm`, valid while `mmap_lock` is held, to the end of this
                    // block.
                    let vma = unsafe { Vma::from_raw(vma) };
                    let start = vma.start().max(cursor);
                    let stop = vma.end().min(end);
                    let at_own_offset = vma_pgoff(vma)
                        .checked_mul(sys::PAGE_SIZE)
                        .and_then(|offset| vma.start().checked_sub(offset))
                        == Some(addr);
                    // SAFETY: As above: the VMA is valid.
                    let file = unsafe { (*vma.as_ptr()).vm_file };
                    let ours = core::ptr::eq(file, self.as_ptr()) && at_own_offset;
                    (start < stop).then_some((start, stop, ours))
                }
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
}
