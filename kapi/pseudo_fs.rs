// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers: the module's pseudo filesystem and a ring's file on it (an anonymous inode
//! whose page cache holds the ring), with the operation tables ring files carry.
//!
//! Like fs/aio.c's `aio_private_file()`, each ring is the page cache of an anonymous inode on a
//! pseudo filesystem: that makes the ring pages ordinary movable page-cache folios that the
//! kernel migrates through the mapping's `migrate_folio` (see `migrate.rs`).

use core::ptr::NonNull;
use kernel::{
    c_str,
    error::{from_err_ptr, from_result, to_result},
    ffi::{c_int, c_ulong, c_void},
    prelude::*,
    types::{ARef, Opaque},
};

use crate::kapi::folio::{Folio, Mapping};
use crate::kapi::sys;

/// The module's pseudo filesystem type. `kern_mount()` links superblocks into it, so it must be
/// writable: it lives in an `Opaque`.
#[repr(transparent)]
struct FsType(Opaque<sys::file_system_type>);

// SAFETY: The VFS serialises its writes to a filesystem type (under `sb_lock`).
unsafe impl Sync for FsType {}

static RING_FS_TYPE: FsType = FsType(Opaque::new(sys::file_system_type {
    name: c_str!("rust_aio").as_char_ptr(),
    init_fs_context: Some(ring_fs_init_fs_context),
    kill_sb: Some(sys::kill_anon_super),
    // The superblock holds the module (`get_filesystem()`) until `kill_sb` has returned, so the
    // module outlives the last `mntput()` of a ring file, which `__fput()` makes after it has
    // dropped the file's own module reference (`fops_put()`).
    owner: crate::kapi::miscdevice::this_module(),
    // SAFETY: All-zero is a valid `file_system_type`: no flags, no other operations.
    ..unsafe { core::mem::zeroed() }
}));

/// `init_fs_context` of the ring filesystem.
///
/// # Safety
///
/// Called by the VFS with a valid filesystem context that is being set up, exclusively ours for
/// the call.
unsafe extern "C" fn ring_fs_init_fs_context(fc: *mut sys::fs_context) -> c_int {
    // SAFETY: The VFS passes a valid, exclusively owned filesystem context, for the call.
    let fc = unsafe { FsContext::from_raw(fc) };
    from_result(|| {
        init_fs_context(fc)?;
        Ok(0)
    })
}

/// Sets up a mount of the ring filesystem, like `aio_init_fs_context()`.
fn init_fs_context(fc: &FsContext) -> Result {
    fc.init_pseudo(sys::RING_FS_MAGIC)?;
    // Ring pages are never executable, whatever the mapping asks for (CVE-2016-10044): mmap() of
    // a noexec filesystem drops VM_MAYEXEC and ignores READ_IMPLIES_EXEC.
    fc.set_noexec();
    Ok(())
}

/// A filesystem context that the VFS is setting up (`init_fs_context`).
///
/// # Invariants
///
/// The wrapped `fs_context` is valid and exclusively ours while it is borrowed.
#[repr(transparent)]
struct FsContext(Opaque<sys::fs_context>);

impl FsContext {
    /// # Safety
    ///
    /// `ptr` must be a valid filesystem context, exclusively the caller's for the whole of `'a`.
    unsafe fn from_raw<'a>(ptr: *mut sys::fs_context) -> &'a FsContext {
        // SAFETY: `FsContext` is `repr(transparent)` over the C struct; the caller guarantees
        // validity.
        unsafe { &*ptr.cast() }
    }

    /// Makes it a pseudo filesystem's context (`init_pseudo()`) with the given magic number.
    fn init_pseudo(&self, magic: c_ulong) -> Result {
        // SAFETY: The context is valid and ours (type invariant).
        if unsafe { sys::init_pseudo(self.0.get(), magic) }.is_null() {
            return Err(ENOMEM);
        }
        Ok(())
    }

    /// Makes the superblock's files never executable (`SB_I_NOEXEC`).
    fn set_noexec(&self) {
        // SAFETY: The context is valid and ours (type invariant). The kernel crate declares
        // `struct fs_context` without its fields: the helper does the store.
        unsafe { sys::rust_aio_fc_s_iflags_set(self.0.get(), sys::SB_I_NOEXEC) };
    }
}

/// The ring filesystem's mount, made when the first ring file is and released with the last
/// (`simple_pin_fs()`): a mount held for the module's lifetime would hold the module (its
/// superblock does) and forbid unloading.
struct PinnedMount {
    mnt: core::cell::UnsafeCell<*mut sys::vfsmount>,
    count: core::cell::UnsafeCell<c_int>,
}

// SAFETY: Both fields are only touched by `simple_pin_fs()`/`simple_release_fs()`, under their
// `pin_fs_lock`.
unsafe impl Sync for PinnedMount {}

static RING_MOUNT: PinnedMount = PinnedMount {
    mnt: core::cell::UnsafeCell::new(core::ptr::null_mut()),
    count: core::cell::UnsafeCell::new(0),
};

/// One pin of the ring filesystem's mount: every ring file holds one until its `release`.
///
/// # Invariants
///
/// `mnt` is the pinned mount; this pin is counted in `RING_MOUNT.count`.
pub(crate) struct RingFsPin {
    mnt: NonNull<sys::vfsmount>,
}

impl RingFsPin {
    /// Mounts the ring filesystem if no ring exists yet, and pins the mount.
    fn new() -> Result<Self> {
        // SAFETY: The filesystem type and the pin's fields are statics; `simple_pin_fs()`
        // serialises its updates of them.
        to_result(unsafe {
            sys::simple_pin_fs(
                RING_FS_TYPE.0.get(),
                RING_MOUNT.mnt.get(),
                RING_MOUNT.count.get(),
            )
        })?;
        // SAFETY: Pinned just now, so the mount is set and stays until the pin is released.
        let mnt = unsafe { *RING_MOUNT.mnt.get() };
        match NonNull::new(mnt) {
            // INVARIANT: `simple_pin_fs()` succeeded.
            Some(mnt) => Ok(Self { mnt }),
            None => {
                // SAFETY: The pin was taken above.
                unsafe { release_ring_fs() };
                Err(ENOMEM)
            }
        }
    }

    /// Gives the pin to a ring file, whose `release` takes it back
    /// ([`RingFsPin::of_released_file`]).
    fn into_file(self) {
        core::mem::forget(self);
    }

    /// The pin a ring file held, taken back in its `release` (to be dropped).
    ///
    /// # Safety
    ///
    /// Only a ring file's `release` may call this, once: it owns the pin [`RingFsPin::into_file`]
    /// gave the file.
    pub(crate) unsafe fn of_released_file() -> Self {
        // SAFETY: The file's pin is counted (the caller's guarantee), so the mount is set and
        // stays until the pin is released.
        let mnt = unsafe { *RING_MOUNT.mnt.get() };
        // SAFETY: A pinned mount is never null (`simple_pin_fs()` succeeded).
        let mnt = unsafe { NonNull::new_unchecked(mnt) };
        // INVARIANT: The pin is counted, and it is now this one's.
        Self { mnt }
    }
}

impl Drop for RingFsPin {
    fn drop(&mut self) {
        // SAFETY: This pin is counted (type invariant) and is not used again.
        unsafe { release_ring_fs() };
    }
}

/// Releases one pin of the ring filesystem's mount; the last unmounts it.
///
/// # Safety
///
/// The caller must own a pin (a [`RingFsPin`] being dropped, or one that could not be made).
unsafe fn release_ring_fs() {
    // SAFETY: The caller owns a pin; `simple_release_fs()` serialises its updates.
    unsafe { sys::simple_release_fs(RING_MOUNT.mnt.get(), RING_MOUNT.count.get()) };
}

/// The operation tables of ring files: the ring's `address_space_operations` (`migrate.rs`) and
/// its file and VMA operations (`ring_file.rs`).
pub(crate) struct RingOps {
    pub(crate) aops: &'static AddressSpaceOperations,
    pub(crate) fops: &'static crate::kapi::miscdevice::FileOperations,
}

/// A `struct address_space_operations` table that may live in a `static`.
#[repr(transparent)]
pub(crate) struct AddressSpaceOperations(pub(crate) sys::address_space_operations);

// SAFETY: The table is never written; its function pointers may be read from any thread.
unsafe impl Sync for AddressSpaceOperations {}

/// A `struct vm_operations_struct` table that may live in a `static`.
#[repr(transparent)]
pub(crate) struct VmOperations(pub(crate) sys::vm_operations_struct);

// SAFETY: The table is never written; its function pointers may be read from any thread.
unsafe impl Sync for VmOperations {}

/// A ring's file: an anonymous inode on the ring filesystem whose page cache holds the ring.
///
/// # Invariants
///
/// `file` is a counted reference to a file made by `alloc_file_pseudo()` on the ring filesystem.
pub(crate) struct RingFile {
    file: NonNull<sys::file>,
}

// SAFETY: A file reference may be used and dropped from any thread.
unsafe impl Send for RingFile {}
// SAFETY: See above.
unsafe impl Sync for RingFile {}

impl RingFile {
    /// Makes the file of a ring of `nr_pages` pages, whose mapping names `owner` (the context)
    /// in `i_private_data` so that migration can find it.
    pub(crate) fn new(nr_pages: usize, owner: *const c_void, ops: &RingOps) -> Result<Self> {
        let pin = RingFsPin::new()?;
        // SAFETY: The mount is pinned (`RingFsPin` invariant).
        let inode = from_err_ptr(unsafe { sys::alloc_anon_inode((*pin.mnt.as_ptr()).mnt_sb) })
            .map_err(|_| ENOMEM)?;
        // SAFETY: `inode` is a new inode that nobody else knows of yet; `ops` live for ever.
        unsafe {
            let mapping = (*inode).i_mapping;
            (*mapping).a_ops = &ops.aops.0;
            (*mapping).i_private_data = owner.cast_mut();
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
                pin.mnt.as_ptr(),
                c_str!("[rust_aio]").as_char_ptr(),
                sys::O_RDWR as c_int,
                &ops.fops.0,
            )
        };
        match from_err_ptr(file) {
            Ok(file) => {
                // The file's `release` ends the pin (the ring's `file_operations`).
                pin.into_file();
                Ok(Self {
                    // INVARIANT: `alloc_file_pseudo()` succeeded.
                    file: NonNull::new(file).ok_or(ENOMEM)?,
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

    pub(crate) fn as_ptr(&self) -> *mut sys::file {
        self.file.as_ptr()
    }

    fn inode(&self) -> *mut sys::inode {
        // SAFETY: The file is valid (type invariant).
        unsafe { sys::rust_aio_file_inode(self.file.as_ptr()) }
    }

    pub(crate) fn mapping(&self) -> &Mapping {
        // SAFETY: The file, and so its mapping, is valid while `self` is (type invariant).
        unsafe { Mapping::from_raw((*self.file.as_ptr()).f_mapping) }
    }

    /// Allocates page `index` of the ring in the page cache, zeroed and movable, on a node the
    /// caller's memory policy allows.
    pub(crate) fn create_folio(&self, index: usize) -> Result<ARef<Folio>> {
        // SAFETY: The mapping is valid (type invariant). The folio comes back locked with a
        // reference that becomes ours; `folio_end_read()` marks it up to date and unlocks it.
        unsafe {
            let folio = from_err_ptr(sys::__filemap_get_folio(
                self.mapping().as_ptr(),
                index as _,
                sys::FGP_RING,
                sys::GFP_RING,
            ))
            .map_err(|_| ENOMEM)?;
            sys::folio_end_read(folio, true);
            Ok(ARef::from_raw(NonNull::new_unchecked(folio.cast())))
        }
    }
}

impl RingFile {
    /// Disconnects the ring from its context, in the order of fs/aio.c's `put_aio_ring_file()`:
    /// the page cache is emptied (user mappings of it are zapped: a later access is SIGBUS),
    /// then `i_private_data` is cleared under `i_private_lock`, so that a migration that starts
    /// later sees no context and one that was running has finished. Doing it again is harmless.
    pub(crate) fn disconnect(&self) {
        // SAFETY: The file and its inode are valid (type invariant).
        unsafe { sys::truncate_setsize(self.inode(), 0) };
        self.mapping()
            .lock_private()
            .set_private_data(core::ptr::null());
    }
}

impl Drop for RingFile {
    /// Disconnects the ring (if that was not done yet) and drops the file. The final `fput()`
    /// work is deferred (task work or a workqueue), and ends in the superblock's module
    /// reference: the module stays until it has run.
    fn drop(&mut self) {
        self.disconnect();
        // SAFETY: The reference is ours (type invariant) and is not used again.
        unsafe { sys::fput(self.file.as_ptr()) };
    }
}
