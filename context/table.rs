// SPDX-License-Identifier: GPL-2.0

//! One open `/dev/rust_aio` and the contexts it made ([`FileContexts`]): `io_setup` makes a
//! context, maps its ring into the caller and files it in the file's table; `io_submit`,
//! `io_getevents`, `io_cancel` and `io_destroy` find it there by the id user space passes (the
//! ring's address) and hand over to the context (`context.rs`, `context/`). Closing the file destroys every
//! context it made.
//!
//! Setup is where ring files are made: it gives each the operation tables the crate root handed
//! down ([`Shared::ring_ops`]): how the pages migrate (`migrate.rs`) and what moving the mapping
//! does (`mremap.rs`); the ring file itself is `kapi/ring_file.rs`'s.

use core::{mem::size_of, num::NonZeroU32};
use kernel::{
    new_spinlock,
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::aref::ARef,
    sync::{Arc, SpinLock},
};

use crate::{
    context::owner::MmContextsRef,
    context::request::NoopBatch,
    context::Shared,
    context::{submit::AIO_KEY_OFFSET, Context},
    kapi::folio::Folio,
    kapi::mm::{current_mm, MmId},
    kapi::ring_file::RingFile,
    kapi::task,
    kapi::uaccess::{self, user_slice, UserAddr},
    ring::{SharedHeader, EVENT_SIZE, HEADER_SIZE, MAX_DOUBLED_EVENTS, PAGE_SIZE},
};

/// fs/aio.c's: `io_submit()` plugs the block layer for batches larger than this.
const AIO_PLUG_THRESHOLD: usize = 2;

/// How a file's table names a context: its owner's address space (by address only) and the
/// ring's address there. Forked children share the file, and may map rings at the same
/// addresses as their parent.
pub(crate) type ContextKey = (MmId, u64);

/// The contexts one open `/dev/rust_aio` made, by [`ContextKey`].
pub(crate) type FileTable = SpinLock<RBTree<ContextKey, Arc<Context>>>;

/// Set in the id of a context whose address now maps another ring: no user address has it.
const DISPLACED: u64 = 1 << 63;

/// Makes room at `key` for a ring that now lives at that address. A context filed there had its
/// ring unmapped by user space (or it would still be there): it can no longer be named by
/// address (fs/aio.c loses it the same way) and is refiled under an id no ring has, where
/// closing the file, or its address space's death, still finds it. Its node is reused: no
/// allocation, as `mremap` holds spinlocks.
pub(crate) fn refile_displaced(table: &mut RBTree<ContextKey, Arc<Context>>, key: &ContextKey) {
    let Some(displaced) = table.get(key).cloned() else {
        return;
    };
    if let Some(node) = table.remove_node(key) {
        // Unique among the contexts of its address space while it lives.
        let id = DISPLACED | u64::from(displaced.mm_index());
        displaced.set_user_id(id);
        table.insert(
            node.into_reservation()
                .into_node(displaced.key(), displaced),
        );
    }
}

/// One open `/dev/rust_aio`: the contexts it made.
pub(crate) struct FileContexts {
    shared: &'static Shared,
    table: Arc<FileTable>,
}

impl FileContexts {
    pub(crate) fn new(shared: &'static Shared) -> Result<Self> {
        Ok(Self {
            shared,
            table: Arc::pin_init(
                new_spinlock!(RBTree::new(), "rust_aio::FileContexts::table"),
                GFP_KERNEL,
            )?,
        })
    }

    /// Finds the caller's context named `user_id` (fs/aio.c's `lookup_ioctx()`): the ring's
    /// address in the caller's address space. Nothing user space can write is read.
    fn lookup(&self, user_id: u64) -> Result<Arc<Context>> {
        // The id of a displaced context is no address: nothing names it.
        if user_id & DISPLACED != 0 {
            return Err(EINVAL);
        }
        let key = (MmId::current().ok_or(EINVAL)?, user_id);
        let ctx = self.table.lock().get(&key).cloned().ok_or(EINVAL)?;
        if ctx.is_dead() {
            return Err(EINVAL);
        }
        Ok(ctx)
    }

    /// `io_setup()`: creates a context with room for `nr_events` events in flight and maps its
    /// ring into the caller; returns the context (its id is [`Context::id`]).
    #[inline(never)]
    pub(crate) fn setup(&self, nr_events: u32, flags: u32) -> Result<Arc<Context>> {
        // fs/aio.c doubles `nr_events` as a u32 before its overflow check: from 2^31 on it
        // wraps, passes, and the event limit says EAGAIN instead. Here that is EAGAIN whatever
        // the limit: such a ring is never built (fs/aio.c would build one from the wrapped
        // number).
        if nr_events == 0 || flags != 0 || nr_events.wrapping_mul(2) > MAX_DOUBLED_EVENTS {
            return Err(EINVAL);
        }
        if nr_events >= 1 << 31 {
            return Err(EAGAIN);
        }
        self.shared.account_events(nr_events)?;
        let result = self.setup_accounted(nr_events);
        if result.is_err() {
            self.shared.unaccount_events(nr_events);
        }
        result
    }

    fn setup_accounted(&self, max_reqs: u32) -> Result<Arc<Context>> {
        // One slot always stays empty (head == tail means empty), one more "for good luck", as
        // fs/aio.c; then the ring is whole pages and `nr` whatever fits.
        let wanted = max_reqs as usize + 2;
        let nr_pages = (HEADER_SIZE + wanted * EVENT_SIZE).div_ceil(PAGE_SIZE);
        // At least a page: never zero slots.
        let nr_events = NonZeroU32::new(((nr_pages * PAGE_SIZE - HEADER_SIZE) / EVENT_SIZE) as u32)
            .ok_or(EINVAL)?;
        let owner_mm = current_mm().ok_or(EINVAL)?;
        let owner_addr = MmId::of(&owner_mm);
        // Takes `mmap_lock` for writing: before `ring_lock`, never under it (`owner.rs`).
        let mm_contexts = MmContextsRef::current()?;
        let file_node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let mm_node = RBTreeNodeReservation::new(GFP_KERNEL)?;

        let ctx = self.new_context(owner_addr, max_reqs, nr_pages, nr_events)?;

        // Hold `ring_lock` until setup is complete: from the moment the ring file exists,
        // migration can find the context through it and must not see it half made.
        let mut guard = ctx.ring().lock();
        let (file, folios, addr) = Self::make_ring(&ctx, nr_pages)?;
        // `id` is the context's index in its address space's table, set once it is filed there;
        // until then `~0U`, as fs/aio.c writes it.
        let header = SharedHeader::of(folios.first().ok_or(EINVAL)?);
        header.init(u32::MAX, nr_events.get());

        guard.lock_completions().install_folios(folios);
        guard.resources().file = Some(file);
        guard.resources().owner_mm = Some(owner_mm);

        // The context is complete: make it visible, to its address space's death (which gives it
        // its index, the header's `id`) and to lookups.
        let index = mm_contexts.insert(ctx.clone(), mm_node);
        ctx.set_mm_index(index);
        if let Some(page0) = guard.folios().first() {
            SharedHeader::of(page0).set_id(index);
        }
        {
            let mut table = self.table.lock();
            refile_displaced(&mut table, &(owner_addr, addr as u64));
            ctx.set_user_id(addr as u64);
            table.insert(file_node.into_node(ctx.key(), ctx.clone()));
        }
        guard.resources().mm_contexts = Some(mm_contexts);
        drop(guard);
        Ok(ctx)
    }

    /// A new context of this file, built in place.
    #[inline(never)]
    fn new_context(
        &self,
        owner_addr: MmId,
        max_reqs: u32,
        nr_pages: usize,
        nr_events: NonZeroU32,
    ) -> Result<Arc<Context>> {
        Arc::pin_init(
            Context::new(
                self.shared,
                &self.table,
                owner_addr,
                max_reqs,
                nr_pages,
                nr_events,
            ),
            GFP_KERNEL,
        )
    }

    /// The ring of `ctx`, whose `ring_lock` the caller holds: its file, its `nr_pages` folios,
    /// and its address in the caller, where it is mapped.
    #[inline(never)]
    fn make_ring(
        ctx: &Context,
        nr_pages: usize,
    ) -> Result<(RingFile<Context>, KVec<ARef<Folio>>, usize)> {
        let mut folios = KVec::with_capacity(nr_pages, GFP_KERNEL)?;
        // SAFETY: The context outlives its ring's connection: the file is dropped here if setup
        // fails, while the caller holds the context; once setup has installed it, nothing fails
        // and the context dies only through teardown, which disconnects the ring first.
        let file = unsafe { RingFile::new(nr_pages, ctx, ctx.shared().ring_ops())? };
        for index in 0..nr_pages {
            folios.push(file.create_folio(index)?, GFP_KERNEL)?;
        }
        // As fs/aio.c: EINTR when killed while waiting for `mmap_lock`, otherwise ENOMEM.
        let addr = file.map_shared(nr_pages * PAGE_SIZE).map_err(|err| {
            if err == EINTR {
                EINTR
            } else {
                ENOMEM
            }
        })?;
        Ok((file, folios, addr))
    }

    /// `io_submit()`: submits up to `nr` iocbs whose user addresses are at `iocbpp`; returns how
    /// many were queued. Stops at the first bad one and fails with its error only if it was the
    /// first.
    #[inline(never)]
    pub(crate) fn submit(&self, user_id: u64, nr: i64, iocbpp: UserAddr) -> Result<usize> {
        if nr < 0 {
            return Err(EINVAL);
        }
        let ctx = self.lookup(user_id)?;
        // More than the ring holds cannot all be queued; fs/aio.c clamps the same way.
        let nr = (nr as u64).min(u64::from(ctx.ring().nr_events())) as usize;
        let mut noops = NoopBatch::new();
        // A batch of more than `AIO_PLUG_THRESHOLD` is issued to the block layer plugged, so
        // that adjacent I/O merges.
        let (submitted, result) = if nr > AIO_PLUG_THRESHOLD {
            task::with_block_plug(|| Self::submit_all(&ctx, nr, iocbpp, &mut noops))
        } else {
            Self::submit_all(&ctx, nr, iocbpp, &mut noops)
        };
        ctx.complete_noops(&mut noops);
        match result {
            Err(err) if submitted == 0 => Err(err),
            _ => Ok(submitted),
        }
    }

    /// Submits the iocbs until the first that fails: how many were queued, and its error. Each
    /// pointer is read just before its iocb is submitted, as fs/aio.c's `get_user()` does: an
    /// earlier iocb may have rewritten it (a read into the pointer array, its own `aio_key`
    /// write). Reading them ahead would also touch pages, and wait on faults (userfaultfd, FUSE),
    /// that fs/aio.c does not or not yet.
    #[inline(never)]
    fn submit_all(
        ctx: &Arc<Context>,
        nr: usize,
        iocbpp: UserAddr,
        noops: &mut NoopBatch,
    ) -> (usize, Result) {
        for submitted in 0..nr {
            let at = iocbpp.wrapping_add(submitted * size_of::<u64>());
            let result = uaccess::read_user_pointed(at)
                .and_then(|(user_iocb, iocb)| ctx.submit_one(user_iocb, &iocb, noops));
            if let Err(err) = result {
                return (submitted, Err(err));
            }
        }
        (nr, Ok(()))
    }

    /// `io_getevents()`; `deadline` as for [`Context::get_events`].
    pub(crate) fn get_events(
        &self,
        user_id: u64,
        min_nr: i64,
        nr: i64,
        events: UserAddr,
        deadline: Option<i64>,
    ) -> Result<usize> {
        let got = self.do_get_events(user_id, min_nr, nr, events, deadline)?;
        // io_getevents(): `if (!ret && signal_pending(current)) ret = -EINTR;`
        if got == 0 && task::signal_pending() {
            return Err(EINTR);
        }
        Ok(got)
    }

    /// `io_pgetevents()`: [`FileContexts::get_events`] with the signal mask at user address
    /// `sigmask` (`sigsetsize` bytes) in force while it waits, as fs/aio.c: the mask is set
    /// first (EINVAL, EFAULT), restored after unless a signal came, which is then delivered
    /// under it; nothing reaped and a signal pending is `ERESTARTNOHAND`.
    pub(crate) fn pget_events(
        &self,
        user_id: u64,
        min_nr: i64,
        nr: i64,
        events: UserAddr,
        deadline: Option<i64>,
        sigmask: (usize, usize),
    ) -> Result<usize> {
        task::set_user_sigmask(sigmask.0, sigmask.1)?;
        let got = self.do_get_events(user_id, min_nr, nr, events, deadline);
        let interrupted = task::signal_pending();
        task::restore_sigmask_unless(interrupted);
        match got {
            Ok(0) if interrupted => Err(ERESTARTNOHAND),
            got => got,
        }
    }

    /// fs/aio.c's `do_io_getevents()`.
    #[inline(never)]
    fn do_get_events(
        &self,
        user_id: u64,
        min_nr: i64,
        nr: i64,
        events: UserAddr,
        deadline: Option<i64>,
    ) -> Result<usize> {
        let ctx = self.lookup(user_id)?;
        if min_nr < 0 || nr < 0 || min_nr > nr {
            return Err(EINVAL);
        }
        ctx.get_events(min_nr as usize, nr as usize, events, deadline)
    }

    /// `io_cancel()`: like fs/aio.c, reads only the iocb's `aio_key`, and before it looks the
    /// context up.
    pub(crate) fn cancel(&self, user_id: u64, user_iocb: UserAddr) -> Result {
        // Any address may come in: one that would wrap is as unreadable as get_user() finds it.
        let key_addr = user_iocb.checked_add(AIO_KEY_OFFSET).ok_or(EFAULT)?;
        let key: u32 = user_slice(key_addr, size_of::<u32>()).reader().read()?;
        if key != 0 {
            return Err(EINVAL);
        }
        self.lookup(user_id)?.cancel(user_iocb)
    }

    /// `io_destroy()`: returns once the context is gone. Of two concurrent calls, one destroys
    /// and the other fails with EINVAL.
    pub(crate) fn destroy(&self, user_id: u64) -> Result {
        self.lookup(user_id)?.destroy()
    }
}

impl Drop for FileContexts {
    /// The file is closed (or its process exits): every context it made is destroyed.
    fn drop(&mut self) {
        crate::context::destroy::destroy_all(&self.table);
    }
}
