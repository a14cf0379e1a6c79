// SPDX-License-Identifier: GPL-2.0

//! Thin wrapper: a counted reference to a file of the submitter's, held by the requests that work
//! on it. Not 7.3's `kernel::fs::File`: its `ARef` always puts with `fput()`, which in a kernel
//! thread leaves the release to a global list after the request has ended (see [`FileRef`]).

use core::ptr::NonNull;
use kernel::{ffi::c_int, prelude::*};

use crate::kapi::sys;

/// A counted reference to an open file of the submitter's (`fget()`), held from submission until
/// the request that uses it completes, as fs/aio.c holds `req->ki_filp`.
///
/// Dropped only in process context: in a user task (`fput()`: the file is released before the
/// task returns to user space or exits), or in a kernel thread (`__fput_sync()`: released before
/// the drop returns) — the module's workqueue, or one that destroys a context (a deferred close
/// of the device, an asynchronous `mmput()`), where no lock is held. Never in interrupt context,
/// where `fput()` would leave the release to a global list, after the request has ended:
/// requests that complete there hand themselves to the module's workqueue first.
///
/// # Invariants
///
/// `file` holds a reference from `fget()`, given back on drop.
pub(crate) struct FileRef {
    file: NonNull<sys::file>,
}

// SAFETY: A file reference may be used and put from any thread in process context (`fput()`
// defers the final release to task work or a workqueue).
unsafe impl Send for FileRef {}
// SAFETY: See above; the methods only read the file or call thread-safe VFS functions.
unsafe impl Sync for FileRef {}

impl FileRef {
    /// The caller's open file `fd`; EBADF if there is none.
    pub(crate) fn get(fd: u32) -> Result<Self> {
        // SAFETY: `fget()` checks the descriptor and returns a counted reference or null.
        let file = unsafe { sys::fget(fd) };
        // INVARIANT: A non-null result is a reference from `fget()`.
        Ok(Self {
            file: NonNull::new(file).ok_or(EBADF)?,
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::file {
        self.file.as_ptr()
    }

    /// The file's operations.
    pub(crate) fn f_op(&self) -> &sys::file_operations {
        // SAFETY: The file is valid while referenced (type invariant); an open file's `f_op` is
        // set (`do_dentry_open()` refuses a file without) and stays for its whole life.
        unsafe { &*(*self.file.as_ptr()).f_op }
    }

    /// The file's `f_mode` (`FMODE_*`), fixed at open.
    pub(crate) fn mode(&self) -> u32 {
        // SAFETY: The file is valid while referenced (type invariant).
        unsafe { (*self.file.as_ptr()).f_mode }
    }

    /// Whether the file can be synced (`f_op->fsync`): aio's FSYNC and FDSYNC need it.
    pub(crate) fn has_fsync(&self) -> bool {
        self.f_op().fsync.is_some()
    }

    /// `vfs_fsync()`: writes the file's dirty data (and, unless `datasync`, its metadata) back;
    /// 0 or a negative errno. May sleep for the whole I/O.
    pub(crate) fn fsync(&self, datasync: bool) -> i64 {
        // SAFETY: The file is valid while referenced (type invariant).
        i64::from(unsafe { sys::vfs_fsync(self.file.as_ptr(), c_int::from(datasync)) })
    }
}

impl Drop for FileRef {
    fn drop(&mut self) {
        if crate::kapi::task::in_kthread() {
            // The module's workqueue (see the type's documentation): released now, so that the
            // request it belonged to ends after it.
            // SAFETY: The reference is ours (type invariant) and not used again; a kernel thread
            // may put a file synchronously.
            unsafe { sys::__fput_sync(self.file.as_ptr()) };
        } else {
            // SAFETY: The reference is ours (type invariant) and not used again.
            unsafe { sys::fput(self.file.as_ptr()) };
        }
    }
}
