// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers for the memory-management objects a ring is made of: the module's pseudo
//! filesystem, the ring's anonymous inode and file, its page-cache folios, and the owner's
//! address space.
//!
//! Like fs/aio.c's `aio_private_file()`, each ring is the page cache of an anonymous inode on a
//! pseudo filesystem: that makes the ring pages ordinary movable page-cache folios that the
//! kernel migrates through the mapping's `migrate_folio` (see `migrate.rs`).

use core::{
    mem::{align_of, size_of, MaybeUninit},
    ptr::NonNull,
};
use kernel::{
    c_str,
    error::{from_err_ptr, from_result, to_result},
    ffi::{c_int, c_ulong, c_void},
    prelude::*,
    types::{ARef, AlwaysRefCounted, FromBytes, Opaque},
    uaccess::UserPtr,
};

use crate::sys;

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
    owner: crate::misc::this_module(),
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
    pub(crate) fn copy_to_user_nofault(&self, offset: usize, len: usize, to: UserPtr) -> usize {
        if offset
            .checked_add(len)
            .map_or(true, |end| end > sys::PAGE_SIZE)
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
            .map_or(true, |end| end > sys::PAGE_SIZE)
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

/// The `struct address_space` of a ring inode.
///
/// # Invariants
///
/// The wrapped mapping is valid.
#[repr(transparent)]
pub(crate) struct Mapping(Opaque<sys::address_space>);

impl Mapping {
    /// Borrows a mapping the kernel passed in.
    ///
    /// # Safety
    ///
    /// `ptr` must be a valid mapping for the whole of `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut sys::address_space) -> &'a Mapping {
        // SAFETY: `Mapping` is `repr(transparent)` over the C struct; the caller guarantees
        // validity.
        unsafe { &*ptr.cast() }
    }

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

    /// Takes `i_private_lock`, which guards `i_private_data`: the ring's context, or null once
    /// the context has been disconnected from the ring (teardown).
    pub(crate) fn lock_private(&self) -> PrivateGuard<'_> {
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
pub(crate) struct PrivateGuard<'a> {
    mapping: &'a Mapping,
    _not_send: core::marker::PhantomData<*mut ()>,
}

impl PrivateGuard<'_> {
    pub(crate) fn private_data(&self) -> *const c_void {
        // SAFETY: The field is guarded by the lock this guard holds (type invariant).
        unsafe { (*self.mapping.0.get()).i_private_data }
    }

    pub(crate) fn set_private_data(&mut self, data: *const c_void) {
        // SAFETY: The field is guarded by the lock this guard holds (type invariant).
        unsafe { (*self.mapping.0.get()).i_private_data = data.cast_mut() };
    }
}

impl Drop for PrivateGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: The current CPU holds the lock (type invariant).
        unsafe { sys::rust_aio_spin_unlock(self.mapping.private_lock()) };
    }
}

/// The operation tables of ring files: the ring's `address_space_operations` (migrate.rs) and
/// file and VMA operations (ring.rs).
pub(crate) struct RingOps {
    pub(crate) aops: &'static AddressSpaceOperations,
    pub(crate) fops: &'static crate::misc::FileOperations,
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

    pub(crate) fn len(&self) -> usize {
        // SAFETY: As above.
        unsafe { sys::rust_aio_vma_end(self.0.get()) as usize - self.start() }
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

/// Reads `dst.len()` u64 words from the caller's memory at `src` (no alignment needed): the
/// submit path's reads, one user-access section each.
pub(crate) fn read_user_u64s(src: UserPtr, dst: &mut [u64]) -> Result {
    let n = u32::try_from(dst.len()).map_err(|_| EFAULT)?;
    // SAFETY: `dst` is valid for `n` words; the helper checks the user range.
    to_result(unsafe { sys::rust_aio_get_user_u64s(dst.as_mut_ptr(), src as *const c_void, n) })
}

/// Reads a `T` made of u64 words (an iocb, an ioctl's argument) from the caller's memory at
/// `src`.
pub(crate) fn read_user_words<T: FromBytes>(src: UserPtr) -> Result<T> {
    const { assert!(size_of::<T>() % 8 == 0 && align_of::<T>() <= 8) };
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

/// Writes a u32 to the caller's memory at `dst` (`put_user()`).
pub(crate) fn write_user_u32(dst: UserPtr, value: u32) -> Result {
    // SAFETY: The helper checks the user range.
    to_result(unsafe { sys::rust_aio_put_user_u32(value, dst as *mut c_void) })
}

/// Faults in `len` bytes of the caller's memory at `addr` for writing, as a write would; whether
/// all of it could be. May sleep for as long as the fault takes (userfaultfd, FUSE, swap-in):
/// never call it under a lock others wait for.
pub(crate) fn fault_in_writeable(addr: UserPtr, len: usize) -> bool {
    // SAFETY: `fault_in_writeable()` checks the user range itself.
    unsafe { sys::fault_in_writeable(addr as *mut _, len) == 0 }
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

/// Unmaps `[addr, addr + size)` from the calling process if, and only if, it is exactly one
/// mapping of `file`: a ring that user space unmapped or moved must not take another mapping
/// down with it.
///
/// Between the check and the unmap, another thread of the same process could replace the
/// mapping; that process only races itself, and the kernel is not at risk.
pub(crate) fn unmap_if_mapping_of(file: &RingFile, addr: usize, size: usize) -> Result {
    let mm = current_mm().cast_mut();
    if mm.is_null() {
        return Ok(());
    }
    // SAFETY: `mm` is live; its VMAs are stable while `mmap_lock` is held for reading.
    let ours = unsafe {
        sys::rust_aio_mmap_read_lock(mm);
        let vma = sys::find_vma(mm, addr as c_ulong);
        let ours = !vma.is_null()
            && sys::rust_aio_vma_start(vma) == addr as c_ulong
            && sys::rust_aio_vma_end(vma) == (addr + size) as c_ulong
            && core::ptr::eq((*vma).vm_file, file.as_ptr());
        sys::rust_aio_mmap_read_unlock(mm);
        ours
    };
    if ours {
        // SAFETY: Unmapping a range of the caller's own address space.
        to_result(unsafe { sys::vm_munmap(addr as c_ulong, size) })?;
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
