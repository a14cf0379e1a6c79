// SPDX-License-Identifier: GPL-2.0

//! Contexts die with the address space that made them, as in fs/aio.c, where `exit_aio()` runs on
//! the last `mmput()`: when the process exits, and when it calls `exec`. A forked child that
//! shares the device file, makes contexts and exits must not leave their timers, pages and
//! events behind until the parent closes the file.
//!
//! Each address space that owns contexts has one [`MmContexts`], found or made by
//! `mmu_notifier_get()`. Its `release` (called by `exit_mmap()` before the mappings go, with no
//! lock held) destroys every context still on it. Every context holds a reference
//! ([`MmContextsRef`]) until it is destroyed; the last reference frees the `MmContexts` after an
//! SRCU grace period (`free_notifier`), which module unloading waits for
//! (`mmu_notifier_synchronize()` in [`synchronize`]).

use core::ptr::NonNull;
use kernel::{
    new_spinlock, prelude::*, rbtree::RBTree, rbtree::RBTreeNodeReservation, sync::Arc,
    sync::SpinLock, types::Opaque,
};

use crate::{context::Context, kapi::sys};

/// The contexts of one address space, by their index (fs/aio.c's `mm->ioctx_table`): a new
/// context takes the lowest free one, which its ring header's `id` shows.
///
/// # Invariants
///
/// `notifier` is registered on the address space by `mmu_notifier_get()` for as long as any
/// [`MmContextsRef`] to it exists; the struct was allocated by [`alloc_notifier`] and is freed
/// only by [`free_notifier`].
#[pin_data]
#[repr(C)]
pub(crate) struct MmContexts {
    /// First, so that the C struct's address is the whole one's.
    notifier: Opaque<sys::mmu_notifier>,
    #[pin]
    contexts: SpinLock<RBTree<u32, Arc<Context>>>,
}

/// The notifier operations of [`MmContexts`].
struct Ops(sys::mmu_notifier_ops);

// SAFETY: The table is never written; its function pointers may be read from any thread.
unsafe impl Sync for Ops {}

static OPS: Ops = Ops(sys::mmu_notifier_ops {
    release: Some(release),
    alloc_notifier: Some(alloc_notifier),
    free_notifier: Some(free_notifier),
    // SAFETY: All-zero is a valid `mmu_notifier_ops`: every other callback is absent.
    ..unsafe { core::mem::zeroed() }
});

/// A counted reference to the calling process's [`MmContexts`] (`mmu_notifier_get()`), given back
/// by `mmu_notifier_put()` on drop.
///
/// # Invariants
///
/// `ptr` is a live, registered [`MmContexts`] on which this reference is counted.
pub(crate) struct MmContextsRef {
    ptr: NonNull<MmContexts>,
}

// SAFETY: The reference may be used and given back from any thread in process context.
unsafe impl Send for MmContextsRef {}
// SAFETY: `MmContexts` is only used through its lock.
unsafe impl Sync for MmContextsRef {}

impl MmContextsRef {
    /// The calling process's contexts, made (and the address space registered) if it has none
    /// yet. Takes `mmap_lock` for writing: never call it under `ring_lock`.
    pub(crate) fn current() -> Result<Self> {
        let mm = crate::kapi::mm::current_mm().cast_mut();
        if mm.is_null() {
            return Err(EINVAL);
        }
        // SAFETY: `mm` is the caller's own, live address space; `OPS` lives for ever.
        let notifier = unsafe { crate::kapi::mm::mmu_notifier_get(&OPS.0, mm) }
            // The first registration fails with EINTR on any pending signal
            // (`mm_take_all_locks()`): the ioctl is restarted once the signal is handled, so that
            // only a killed setup fails, as in fs/aio.c.
            .map_err(|err| if err == EINTR { ERESTARTNOINTR } else { err })?;
        // INVARIANT: `mmu_notifier_get()` counted a reference on a notifier made by
        // `alloc_notifier()`, the first field of an `MmContexts`.
        Ok(Self {
            ptr: notifier.cast(),
        })
    }

    fn contexts(&self) -> &MmContexts {
        // SAFETY: The reference keeps the struct alive (type invariant).
        unsafe { self.ptr.as_ref() }
    }

    /// Adds a new context under the lowest free index (fs/aio.c's `ioctx_add_table()`), which
    /// it returns.
    pub(crate) fn insert(
        &self,
        ctx: Arc<Context>,
        reservation: RBTreeNodeReservation<u32, Arc<Context>>,
    ) -> u32 {
        let mut contexts = self.contexts().contexts.lock();
        // The keys come in order: the first that is not its own position ends a run from 0.
        let index = contexts
            .keys()
            .zip(0u32..)
            .find(|(key, position)| **key != *position)
            .map_or(contexts.iter().count() as u32, |(_, position)| position);
        contexts.insert(reservation.into_node(index, ctx));
        index
    }

    /// Takes `ctx` off its index (destroy, once it is torn down); nothing if `release` already
    /// took it.
    pub(crate) fn remove(&self, index: u32, ctx: &Context) -> Option<Arc<Context>> {
        let mut contexts = self.contexts().contexts.lock();
        match contexts.get(&index) {
            Some(filed) if core::ptr::eq(&**filed, ctx) => contexts.remove(&index),
            _ => None,
        }
    }
}

impl Drop for MmContextsRef {
    fn drop(&mut self) {
        // SAFETY: The reference is counted (type invariant) and not used again. This may be the
        // last one; the struct is then freed after an SRCU grace period, by `free_notifier`.
        unsafe { crate::kapi::mm::mmu_notifier_put(self.ptr.cast()) };
    }
}

impl MmContexts {
    /// A new, empty table, for [`alloc_notifier`].
    fn new() -> Result<Pin<KBox<Self>>> {
        let init = pin_init!(MmContexts {
            // SAFETY: All-zero is a valid unregistered `mmu_notifier`; registering fills it in.
            notifier: Opaque::new(unsafe { core::mem::zeroed() }),
            contexts <- new_spinlock!(RBTree::new(), "rust_aio::MmContexts::contexts"),
        });
        KBox::pin_init(init, GFP_KERNEL).map_err(|_| ENOMEM)
    }

    /// The address space is being torn down: every context it still owns is destroyed, as
    /// `exit_aio()` does, and this waits until they are all gone, their I/O included, even those
    /// another task is destroying. Process context, no locks held; may sleep.
    fn release(&self) {
        crate::context::destroy::destroy_all(&self.contexts);
    }
}

/// `alloc_notifier`: the first `mmu_notifier_get()` on an address space.
///
/// # Safety
///
/// Called by the notifier core, with the address space's `mmap_lock` held for writing.
unsafe extern "C" fn alloc_notifier(_mm: *mut sys::mm_struct) -> *mut sys::mmu_notifier {
    match MmContexts::new() {
        // SAFETY: The box is handed to the notifier core until `free_notifier` takes it back;
        // it is never moved.
        Ok(contexts) => KBox::into_raw(unsafe { Pin::into_inner_unchecked(contexts) }).cast(),
        Err(err) => err.to_ptr(),
    }
}

/// `free_notifier`: the last reference is gone and an SRCU grace period has passed.
///
/// # Safety
///
/// Called by the notifier core with a notifier made by [`alloc_notifier`], once.
unsafe extern "C" fn free_notifier(notifier: *mut sys::mmu_notifier) {
    // SAFETY: `notifier` is the first field of an `MmContexts` boxed by `alloc_notifier`, which
    // nobody uses any more.
    drop(unsafe { KBox::from_raw(notifier.cast::<MmContexts>()) });
}

/// `release`: the address space is being torn down (`exit_mmap()`); see
/// [`MmContexts::release`].
///
/// # Safety
///
/// Called by the notifier core with a registered notifier made by [`alloc_notifier`].
unsafe extern "C" fn release(notifier: *mut sys::mmu_notifier, _mm: *mut sys::mm_struct) {
    // SAFETY: The notifier is registered, so the `MmContexts` around it is alive until after this
    // returns (it is freed only after an SRCU grace period, and we are in an SRCU reader).
    let this = unsafe { &*notifier.cast::<MmContexts>() };
    this.release();
}

/// Waits until every [`MmContexts`] given back has been freed: module unloading calls this, so
/// that no `free_notifier` runs after the module is gone.
pub(crate) fn synchronize() {
    crate::kapi::mm::mmu_notifier_synchronize();
}
