// SPDX-License-Identifier: GPL-2.0

//! Thin wrapper: the module's own workqueue, on top of the kernel crate's `workqueue::Queue`.

use kernel::prelude::*;

use crate::kapi::sys;

/// The module's own workqueue: unloading destroys it, which waits for every work function to
/// return, so no work runs module code after the module is gone.
///
/// # Invariants
///
/// `wq` was allocated by `alloc_workqueue()` and is destroyed only on drop.
pub(crate) struct WorkQueue {
    wq: core::ptr::NonNull<sys::workqueue_struct>,
}

// SAFETY: Workqueues are made to be used from any thread.
unsafe impl Send for WorkQueue {}
// SAFETY: See above.
unsafe impl Sync for WorkQueue {}

impl WorkQueue {
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: Allocating a workqueue has no preconditions.
        let wq = unsafe { sys::rust_aio_alloc_workqueue() };
        Ok(Self {
            wq: core::ptr::NonNull::new(wq).ok_or(ENOMEM)?,
        })
    }

    pub(crate) fn queue(&self) -> &kernel::workqueue::Queue {
        // SAFETY: The workqueue is valid until `self` is dropped (type invariant).
        unsafe { kernel::workqueue::Queue::from_raw(self.wq.as_ptr()) }
    }
}

impl Drop for WorkQueue {
    fn drop(&mut self) {
        // SAFETY: The workqueue is ours (type invariant); this drains it first.
        unsafe { sys::destroy_workqueue(self.wq.as_ptr()) };
    }
}
