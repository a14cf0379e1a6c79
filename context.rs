// SPDX-License-Identifier: GPL-2.0

//! An AIO context: `io_submit`, `io_getevents`, `io_cancel` and `io_destroy` on one context, and
//! its teardown. Its ring, and the rules of the ring's locks, are in `ring.rs`; its requests and
//! how each kind completes in `context/request.rs`, `rw.rs` and `poll.rs`; how it is set up and
//! found by the file that made it in `context/table.rs`; submitting, reaping and destroying in
//! `submit.rs`, `reap.rs` and `destroy.rs` beside it.
//!
//! Lifetime: a context is an `Arc`. The file's table and its address space's table each hold one
//! reference until it is torn down; every request in flight holds one. Destroy marks the context
//! dead (lookups refuse it from then on), cancels what it can, waits until nothing is in flight,
//! tears the ring down, so a completion never meets a freed ring, and only then takes the
//! context off both tables: a close or an exit that finds it there dying waits for it. Contexts are destroyed by
//! DESTROY, by closing the file that made them, and when the address space that made them dies
//! (`context/owner.rs`), whichever comes first. The last reference may be dropped from hard IRQ (a timer
//! request), so dropping a context only frees memory.

pub(crate) mod destroy;
pub(crate) mod owner;
pub(crate) mod poll;
pub(crate) mod reap;
pub(crate) mod request;
pub(crate) mod rw;
pub(crate) mod submit;
pub(crate) mod table;

use core::{
    num::NonZeroU32,
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering},
};
use kernel::{list::List, prelude::*, sync::aref::ARef, sync::Arc};

use crate::{
    context::{
        owner::MmContextsRef,
        poll::PollRequest,
        request::{Completion, FiredTimers, NoopBatch, TimerRequest},
        table::{refile_displaced, ContextKey, FileTable},
    },
    kapi::{
        mm::{Mm, MmId},
        ring_file::{RingFile, RingOps},
        sync::{new_irq_spinlock, new_try_irq_spinlock, IrqSpinLock, TryIrqSpinLock, WaitQueue},
        task,
        workqueue::WorkQueue,
    },
    ring::Ring,
    stats::AIO_NR,
};

/// What every context of the module shares, made by the crate root at init.
#[pin_data]
pub(crate) struct Shared {
    /// Where `RUST_AIO_CMD_WORK` operations complete.
    workqueue: WorkQueue,
    /// Where timer requests go once their hrtimer has expired.
    #[pin]
    pub(crate) fired_timers: FiredTimers,
    /// The operation tables of ring files: the ring callbacks, a layer above the contexts,
    /// handed down by the crate root.
    ring_ops: RingOps<Context>,
}

impl Shared {
    pub(crate) fn new(ring_ops: RingOps<Context>) -> impl PinInit<Self, Error> {
        try_pin_init!(Shared {
            workqueue: WorkQueue::new()?,
            fired_timers <- FiredTimers::new(),
            ring_ops,
        }? Error)
    }

    /// The operation tables setup gives a ring file.
    pub(crate) fn ring_ops(&self) -> &RingOps<Context> {
        &self.ring_ops
    }

    pub(crate) fn workqueue(&self) -> &kernel::workqueue::Queue {
        self.workqueue.queue()
    }

    /// Accounts a new context's events against the module-wide limit (EAGAIN beyond it).
    pub(crate) fn account_events(&self, nr_events: u32) -> Result {
        let limit = u64::from(crate::kapi::miscdevice::max_events());
        AIO_NR
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |accounted| {
                let total = accounted + u64::from(nr_events);
                (total <= limit).then_some(total)
            })
            .map(|_| ())
            .map_err(|_| EAGAIN)
    }

    pub(crate) fn unaccount_events(&self, nr_events: u32) {
        AIO_NR.fetch_sub(u64::from(nr_events), Ordering::AcqRel);
    }
}

/// What a context's `ring_lock` guards besides the folios: what setup installs and teardown
/// removes.
pub(crate) struct RingResources {
    pub(crate) file: Option<RingFile<Context>>,
    pub(crate) owner_mm: Option<ARef<Mm>>,
    /// The owner's table of contexts (`owner.rs`): held until teardown.
    pub(crate) mm_contexts: Option<MmContextsRef>,
}

/// An AIO context: its ring, its pending requests, and what tells it apart.
///
/// # Invariants
///
/// `inflight` counts the requests submitted and not yet completed; once `dead` is set and
/// `inflight` has dropped to zero it never rises again, and only then is the ring torn down.
/// `user_id` changes only under the lock of `table`, where the context is filed under it.
#[pin_data]
pub(crate) struct Context {
    shared: &'static Shared,
    /// The context's index in its address space's table (`owner.rs`), which the ring header's
    /// `id` shows: set once, when setup files it there (`u32::MAX` before).
    mm_index: AtomicU32,
    /// The table of the file that made the context.
    table: Arc<FileTable>,
    /// The id user space names the context by: the ring's address in the owner (moved by
    /// `mremap`).
    user_id: AtomicU64,
    /// The owning process's address space, compared by address only (`RingResources` holds a
    /// reference so the address cannot be reused while the context lives).
    owner_mm: MmId,
    /// Events user space asked for: what is accounted against the module-wide limit.
    max_reqs: u32,
    nr_pages: usize,
    dead: AtomicBool,
    /// Set once destroy has torn the ring down and every request is over: those who lost the
    /// race to destroy wait for it ([`Context::destroy_and_wait`]).
    torn_down: AtomicBool,
    inflight: AtomicUsize,
    #[pin]
    ring: Ring<RingResources>,
    /// Pending timer operations (`ctx_lock`), for cancel and destroy.
    #[pin]
    pending_timers: IrqSpinLock<List<TimerRequest>>,
    /// Poll requests waiting for an event (`ctx_lock_polls`), for cancel and destroy. A poll's
    /// wake function only *tries* it (`poll.rs`).
    #[pin]
    pending_polls: TryIrqSpinLock<List<PollRequest>>,
    /// Tasks waiting for events, or for the last request to finish (destroy).
    #[pin]
    wait: WaitQueue,
}

// SAFETY: All fields are shared under the locking rules of `ring.rs`'s documentation.
unsafe impl Sync for Context {}
// SAFETY: See above.
unsafe impl Send for Context {}

/// One request in flight on its context (fs/aio.c's reference on `ctx->reqs`), from
/// [`Context::begin`]: dropping it ends the request. Every request that holds a file (reads and
/// writes, fsyncs, polls) holds this as its last field, so that the file, before it, is put
/// before destroy can see the request gone; such a request is dropped only in a user task or on
/// the module's workqueue, where a file is put synchronously (`FileRef`).
pub(crate) struct InFlight {
    ctx: Arc<Context>,
}

impl InFlight {
    pub(crate) fn ctx(&self) -> &Arc<Context> {
        &self.ctx
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.ctx.end_request();
    }
}

impl Context {
    /// A new context, named by no table yet: setup (`context/table.rs`) installs its ring, then files it.
    pub(crate) fn new<'a>(
        shared: &'static Shared,
        table: &'a Arc<FileTable>,
        owner_mm: MmId,
        max_reqs: u32,
        nr_pages: usize,
        nr_events: NonZeroU32,
    ) -> impl PinInit<Self> + 'a {
        pin_init!(Context {
            shared,
            mm_index: AtomicU32::new(u32::MAX),
            table: table.clone(),
            user_id: AtomicU64::new(0),
            owner_mm,
            max_reqs,
            nr_pages,
            dead: AtomicBool::new(false),
            torn_down: AtomicBool::new(false),
            inflight: AtomicUsize::new(0),
            ring <- Ring::new(
                nr_events,
                RingResources {
                    file: None,
                    owner_mm: None,
                    mm_contexts: None,
                },
            ),
            pending_timers <- new_irq_spinlock!(List::new(), "ctx_lock"),
            pending_polls <- new_try_irq_spinlock!(List::new(), "ctx_lock_polls"),
            wait <- WaitQueue::new(),
        })
    }

    pub(crate) fn ring(&self) -> &Ring<RingResources> {
        &self.ring
    }

    /// What every context of the module shares.
    pub(crate) fn shared(&self) -> &'static Shared {
        self.shared
    }

    /// Pending timer operations (`ctx_lock`): see [`TimerRequest`].
    pub(crate) fn pending_timers(&self) -> &IrqSpinLock<List<TimerRequest>> {
        &self.pending_timers
    }

    /// Poll requests that can be cancelled: see [`PollRequest`].
    pub(crate) fn pending_polls(&self) -> &TryIrqSpinLock<List<PollRequest>> {
        &self.pending_polls
    }

    /// The context's index in its address space's table (`u32::MAX` before setup files it).
    pub(crate) fn mm_index(&self) -> u32 {
        self.mm_index.load(Ordering::Relaxed)
    }

    /// Setup filed the context in its address space's table under `index`.
    pub(crate) fn set_mm_index(&self, index: u32) {
        self.mm_index.store(index, Ordering::Relaxed);
    }

    /// The ring mapping's size, in bytes (fs/aio.c's `mmap_size`).
    pub(crate) fn ring_size(&self) -> usize {
        self.nr_pages * crate::ring::PAGE_SIZE
    }

    pub(crate) fn is_owned_by(&self, mm: &Mm) -> bool {
        MmId::of(mm) == self.owner_mm
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// The id user space names the context by: its ring's address (until `mremap` moves it).
    pub(crate) fn id(&self) -> u64 {
        self.user_id.load(Ordering::Acquire)
    }

    pub(crate) fn key(&self) -> ContextKey {
        (self.owner_mm, self.user_id.load(Ordering::Acquire))
    }

    /// Names the context `id`; the caller holds the lock of `table` and files the context under
    /// its new key there (type invariant).
    pub(crate) fn set_user_id(&self, id: u64) {
        self.user_id.store(id, Ordering::Release);
    }

    /// The ring is now at `addr` (`mremap`): so is the context's id, and its key in the file's
    /// table. Refused (false) unless the context is filed: setup has not finished (fs/aio.c's
    /// `aio_ring_mremap()` finds no context in the table either), or destroy has begun.
    pub(crate) fn move_to(&self, addr: u64) -> bool {
        let mut table = self.table.lock();
        // Under the table's lock: once destroy has read the id it unmaps at (under this lock,
        // after marking the context dead), the id moves no more.
        if self.is_dead() {
            return false;
        }
        let old = self.key();
        let Some(ctx) = table
            .get(&old)
            .filter(|ctx| core::ptr::eq(&***ctx, self))
            .cloned()
        else {
            return false;
        };
        if addr == old.1 {
            return true;
        }
        refile_displaced(&mut table, &(self.owner_mm, addr));
        self.set_user_id(addr);
        // The node is reused: `mremap` holds spinlocks, so nothing may be allocated here. The
        // reference it held is dropped under the lock, but `ctx` keeps the context alive.
        if let Some(node) = table.remove_node(&old) {
            table.insert(node.into_reservation().into_node(self.key(), ctx));
        }
        true
    }

    /// Starts a request: fails if the context is being destroyed. The SeqCst pair with
    /// `destroy` (store `dead`, then load `inflight`) means that either this sees `dead` or
    /// destroy sees the request. Every request that began ends with [`Context::end_request`].
    pub(crate) fn begin_request(&self) -> Result {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        if self.is_dead() {
            self.end_request();
            return Err(EINVAL);
        }
        Ok(())
    }

    /// A request is over: its event is posted and it holds nothing destroy must wait for.
    pub(crate) fn end_request(&self) {
        self.end_requests(1);
    }

    /// Starts a request ([`Context::begin_request`]) that ends when the token is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> Result<InFlight> {
        self.begin_request()?;
        Ok(InFlight { ctx: self.clone() })
    }

    fn end_requests(&self, n: usize) {
        if self.inflight.fetch_sub(n, Ordering::SeqCst) == n && self.is_dead() {
            self.wait.wake_up_all();
        }
    }

    /// Completes the NOOPs of `batch` (see [`NoopBatch`]); process context.
    pub(crate) fn complete_noops(&self, batch: &mut NoopBatch) {
        let n = batch.len();
        if n == 0 {
            return;
        }
        self.ring.post_many(batch.events());
        batch.signal_and_clear();
        self.wait.wake_up_all();
        self.end_requests(n);
    }

    /// Completes a request: posts its event, signals its eventfd, wakes the reapers, ends it.
    /// Runs in any context, hard IRQ included.
    pub(crate) fn complete(&self, completion: &Completion, res: Option<i64>) {
        self.post(completion, res);
        self.end_request();
    }

    /// Posts a request's event (with `res`, if given), signals its eventfd and wakes the
    /// reapers; [`Context::end_request`] must follow, once the request has let go of what it
    /// holds. Any context, hard IRQ included.
    pub(crate) fn post(&self, completion: &Completion, res: Option<i64>) {
        let mut event = completion.event;
        if let Some(res) = res {
            event.res = res;
        }
        if task::in_hardirq() {
            crate::stats::STATS
                .hardirq_completions
                .fetch_add(1, Ordering::Relaxed);
        }
        self.ring.post(&event);
        if let Some(eventfd) = &completion.eventfd {
            eventfd.signal();
        }
        self.wait.wake_up_all();
    }
}
