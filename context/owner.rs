// SPDX-License-Identifier: GPL-2.0

//! Contexts die with the address space that made them, as in fs/aio.c, where `exit_aio()` runs on
//! the last `mmput()`: when the process exits, and when it calls `exec`. A forked child that
//! shares the device file, makes contexts and exits must not leave their timers, pages and
//! events behind until the parent closes the file.
//!
//! Each address space that owns contexts has one [`MmContexts`], found or made by
//! `mmu_notifier_get()` (`kapi/mmu_notifier.rs`). Its `release` (called by `exit_mmap()` before
//! the mappings go, with no lock held) destroys every context still on it. Every context holds a
//! reference ([`MmContextsRef`]) until it is destroyed; the last reference frees the
//! `MmContexts` after an SRCU grace period, which module unloading waits for ([`synchronize`]).

use kernel::{
    new_spinlock, prelude::*, rbtree::RBTree, rbtree::RBTreeNodeReservation, sync::Arc,
    sync::SpinLock,
};

use crate::{
    context::Context,
    kapi::mmu_notifier::{self, MmuNotifierOps, MmuNotifierRef, MmuNotifierVTable},
};

/// The contexts of one address space, by their index (fs/aio.c's `mm->ioctx_table`): a new
/// context takes the lowest free one, which its ring header's `id` shows. The data of the
/// address space's mmu notifier.
#[pin_data]
pub(crate) struct MmContexts {
    #[pin]
    contexts: SpinLock<RBTree<u32, Arc<Context>>>,
}

/// The notifier operations of [`MmContexts`].
// SAFETY: A static, the only table of `MmContexts`.
static OPS: MmuNotifierVTable<MmContexts> = unsafe { MmuNotifierVTable::new() };

impl MmuNotifierOps for MmContexts {
    /// A new, empty table (the address space's first context).
    fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(MmContexts {
            contexts <- new_spinlock!(RBTree::new(), "rust_aio::MmContexts::contexts"),
        }? Error)
    }

    /// The address space is being torn down: every context it still owns is destroyed, as
    /// `exit_aio()` does, and this waits until they are all gone, their I/O included, even those
    /// another task is destroying. Process context, no locks held; may sleep.
    fn release(&self) {
        crate::context::destroy::destroy_all(&self.contexts);
    }
}

/// A counted reference to the calling process's [`MmContexts`]; the last one frees it (after an
/// SRCU grace period).
pub(crate) struct MmContextsRef(MmuNotifierRef<MmContexts>);

impl MmContextsRef {
    /// The calling process's contexts, made (and the address space registered) if it has none
    /// yet. Takes `mmap_lock` for writing: never call it under `ring_lock`.
    pub(crate) fn current() -> Result<Self> {
        MmuNotifierRef::current(&OPS)
            // The first registration fails with EINTR on any pending signal: the ioctl is
            // restarted once the signal is handled, so that only a killed setup fails, as in
            // fs/aio.c.
            .map(Self)
            .map_err(|err| if err == EINTR { ERESTARTNOINTR } else { err })
    }

    /// Adds a new context under the lowest free index (fs/aio.c's `ioctx_add_table()`), which
    /// it returns.
    pub(crate) fn insert(
        &self,
        ctx: Arc<Context>,
        reservation: RBTreeNodeReservation<u32, Arc<Context>>,
    ) -> u32 {
        let mut contexts = self.0.contexts.lock();
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
        let mut contexts = self.0.contexts.lock();
        match contexts.get(&index) {
            Some(filed) if core::ptr::eq(&**filed, ctx) => contexts.remove(&index),
            _ => None,
        }
    }
}

/// Waits until every [`MmContexts`] given back has been freed: module unloading calls this, so
/// that no notifier callback runs after the module is gone.
pub(crate) fn synchronize() {
    mmu_notifier::synchronize();
}
