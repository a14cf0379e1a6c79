// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers: the module's pseudo filesystem, on which every ring file
//! (`kapi/ring_file.rs`) is an anonymous inode, and the pin of its mount that each ring file
//! holds.

use core::ptr::NonNull;
use kernel::{
    error::{from_result, to_result},
    ffi::{c_int, c_ulong},
    prelude::*,
    types::Opaque,
};

use crate::kapi::sys;

/// The module's pseudo filesystem type. `kern_mount()` links superblocks into it, so it must be
/// writable: it lives in an `Opaque`.
#[repr(transparent)]
struct FsType(Opaque<sys::file_system_type>);

// SAFETY: The VFS serialises its writes to a filesystem type (under `sb_lock`).
unsafe impl Sync for FsType {}

static RING_FS_TYPE: FsType = FsType(Opaque::new(sys::file_system_type {
    name: kernel::str::as_char_ptr_in_const_context(c"rust_aio"),
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
    /// The pinned mount.
    pub(crate) fn mount(&self) -> *mut sys::vfsmount {
        self.mnt.as_ptr()
    }
}

impl RingFsPin {
    /// Mounts the ring filesystem if no ring exists yet, and pins the mount.
    pub(crate) fn new() -> Result<Self> {
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
    pub(crate) fn into_file(self) {
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
