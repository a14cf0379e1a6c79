// SPDX-License-Identifier: GPL-2.0

//! A context's completion ring: the `struct aio_ring` of fs/aio.c, its two locks and the rule
//! they keep (in types: [`RingGuard`], [`BothGuard`]), how events are posted and reaped and how
//! free slots are counted. The ring file is `kapi/ring_file.rs`'s, its pages' migration
//! `migrate.rs`'s.
//!
//! A context's ring is the page cache of its own anonymous inode (`kapi/pseudo_fs.rs`), mapped shared into
//! the process that set it up; the context id user space passes is the ring's address there.
//! Page 0 starts with the ring header; `struct io_event` slots follow across the pages. User space
//! may reap events itself by reading the slots between `head` and `tail` and storing a new `head`,
//! so every header field in the mapping is hostile input: the kernel keeps its own `nr` and
//! `tail`, takes `head` modulo `nr`, and finds contexts by their id alone, never by the header's
//! `id` (fs/aio.c reads it; a stray write there would orphan the context).
//!
//! # Locking
//!
//! Per context:
//!
//! - `ring_lock` (mutex): serialises the kernel's writes of the ring's `head` (reaping through the
//!   ioctl) and everything that changes which folios make up the ring: setup holds it from the
//!   moment the ring file can be seen by migration until the context is complete (the seed
//!   patch's rule), teardown holds it while it disconnects the file. Page migration may only
//!   *try* it (`migrate.rs`). No user-memory fault is ever taken under it: reaping copies with
//!   page faults disabled and faults the destination in after dropping it, so that a reader
//!   stuck in a fault (userfaultfd, FUSE, swap-in) pins neither the ring nor DESTROY.
//! - `completion_lock` (spinlock, interrupts off): writes of the ring's `tail`, the event slots
//!   and the free-slot bookkeeping. Completions come from any context: the submitting task,
//!   the workqueue, and hard IRQ (timer requests complete from an irq_work, which runs in hard
//!   IRQ without `PREEMPT_RT`).
//! - The folio array is written only with both locks held (migration's swap, setup, teardown),
//!   so either lock is enough to read it.
//! - `ctx_lock` (spinlock, interrupts off) guards the list of pending timer operations (cancel
//!   and destroy complete what they take off it after dropping it).
//!
//! Besides those, the ring's mapping has `i_private_lock`, which guards its pointer to the
//! context (`kapi/folio.rs`), through which migration and `mremap` find it; the file's context table
//! (`context/table.rs`) and the address space's (`context/owner.rs`) have their own spinlocks.
//!
//! ## Lock order
//!
//! This is the module's one statement of its lock order, as lockdep sees it, outermost first:
//!
//! `ring_lock` → `mmap_lock` → `i_private_lock` → `completion_lock`
//!
//! - `ring_lock` → `mmap_lock`: setup maps the ring and teardown unmaps it under `ring_lock`.
//!   (Setup registers with the address space, which takes `mmap_lock` for writing, before it
//!   takes `ring_lock`, never under it: `context/owner.rs`.)
//! - `mmap_lock` → `i_private_lock`: the kernel calls the ring mapping's `mremap` (`mremap.rs`)
//!   with `mmap_lock` held, and
//!   migration may run under it (`migrate.rs`).
//! - `ring_lock` → `i_private_lock`: teardown disconnects the ring file under `ring_lock`.
//! - `i_private_lock` → `completion_lock` and `ring_lock` → `completion_lock`: migration swaps a
//!   folio holding all three; setup and teardown install and take the folios under `ring_lock`.
//!
//! Migration takes `i_private_lock` and then only *tries* `ring_lock`, failing if it is busy: a
//! trylock creates no lockdep edge, so there is no `i_private_lock` → `ring_lock` order. Why
//! migration takes each lock, and why it must not wait for `ring_lock`, is told in `migrate.rs`.
//!
//! Leaves, under which no other lock of the module is taken:
//!
//! - `ctx_lock` (timers): taken alone.
//! - `ctx_lock_polls`: taken alone, with one lock of another's under it: the wait-queue lock of
//!   a file a poll request waits on (`poll.rs`, as fs/aio.c takes `ctx_lock` → the queue's
//!   lock). The file's wake-ups, which hold that queue lock, only *try* `ctx_lock_polls` (no
//!   edge), and a wake-up that completes a poll takes `completion_lock` and the context's wait
//!   queue's lock under the file's queue lock (after dropping `ctx_lock_polls`): edges from a
//!   polled file's queue lock to those two, as fs/aio.c's `aio_poll_wake()` has; nothing of
//!   the module takes a file's queue lock under either.
//! - The file's table lock: alone, under `ring_lock` (setup files the context), or under
//!   `mmap_lock` and `i_private_lock` (`mremap` refiles it).
//! - The address space's table lock: alone, or under `ring_lock` (setup files the context,
//!   destroy takes it off).
//!
//! No lock of the module is a raw spinlock: the hrtimer of a timer request expires in hard IRQ,
//! where `PREEMPT_RT` forbids `spinlock_t`, so its expiry function takes no lock at all. It
//! pushes the request on a lock-free stack and queues an irq_work
//! (`FiredTimers`, in `context/request.rs`), which completes it.

use core::{
    cell::UnsafeCell,
    num::NonZeroU32,
    sync::atomic::{fence, AtomicU32, AtomicU64, Ordering},
};
use kernel::{prelude::*, sync::aref::ARef};

mod header;
mod reap;
mod recopy;

pub(crate) use header::{SharedHeader, EVENT_SIZE, HEADER_SIZE, MAX_DOUBLED_EVENTS, PAGE_SIZE};
use header::{EVENTS_OFFSET, EVENTS_PER_PAGE};

use crate::{
    kapi::folio::Folio,
    kapi::sync::{
        new_irq_spinlock, new_try_mutex, IrqSpinLock, IrqSpinLockGuard, TryMutex, TryMutexGuard,
    },
    kapi::sys,
};

/// A ring's `completion_lock` data.
struct Completions {
    /// Events posted since free slots were last given back (fs/aio.c's `completed_events`).
    completed_events: u32,
}

/// A context's completion ring and its two locks (see the module documentation). `ring_lock`
/// guards an `R` of its owner's besides the folios: what setup installs and teardown removes (the
/// context's `RingResources`); the ring never looks into it, as binder's `RangeAllocator<T>`
/// never names its owner.
///
/// # Invariants
///
/// - `folios` is written only while both `ring_lock` and `completion_lock` are held, or before
///   the ring is shared (construction).
/// - Once set up, `folios` holds `nr_pages` folios and the header's slots number `nr_events`;
///   after teardown it is empty.
#[pin_data]
pub(crate) struct Ring<R> {
    /// Number of event slots: the trusted copy of the header's `nr`. Never zero, which the type
    /// says, so that taking a position modulo it needs no division-by-zero check.
    nr_events: NonZeroU32,
    #[pin]
    ring_lock: TryMutex<R>,
    #[pin]
    completion_lock: IrqSpinLock<Completions>,
    folios: UnsafeCell<KVec<ARef<Folio>>>,
    /// Next slot to fill: the trusted copy of the header's `tail`. Written only under
    /// `completion_lock`, after the event it publishes (Release); reapers read it without the
    /// lock (Acquire), so a `tail` written by user space never makes them read unwritten slots.
    tail: AtomicU32,
    /// Events ever posted (wrapping): written under `completion_lock` after the `tail` of the
    /// event it counts (Release). Migration's second copy tells from it how far `tail` went,
    /// which `tail` alone cannot: it may have gone round the ring.
    posted: AtomicU64,
    /// Submissions that may still be made without overflowing the ring (fs/aio.c's
    /// `reqs_available`, without the per-CPU batching).
    reqs_available: AtomicU32,
}

// SAFETY: `folios` is shared under the locking rules of the type invariants; everything else is
// `Sync` on its own.
unsafe impl<R: Send> Sync for Ring<R> {}
// SAFETY: Nothing in a `Ring` is tied to a thread.
unsafe impl<R: Send> Send for Ring<R> {}

/// Proof that `ring_lock` is held.
#[must_use = "the lock unlocks immediately when the guard is unused"]
pub(crate) struct RingGuard<'a, R> {
    ring: &'a Ring<R>,
    resources: TryMutexGuard<'a, R>,
}

/// Proof that `completion_lock` is held.
#[must_use = "the lock unlocks immediately when the guard is unused"]
struct CompletionGuard<'a, R> {
    ring: &'a Ring<R>,
    completions: IrqSpinLockGuard<'a, Completions>,
}

impl<R> Ring<R> {
    /// A ring of `nr_events` slots whose `ring_lock` guards `resources`.
    pub(crate) fn new(nr_events: NonZeroU32, resources: R) -> impl PinInit<Self> {
        // One slot always stays empty: `head == tail` means no events.
        let free_slots = nr_events.get() - 1;
        pin_init!(Self {
            nr_events,
            ring_lock <- new_try_mutex!(resources, "ring_lock"),
            completion_lock <- new_irq_spinlock!(
                Completions { completed_events: 0 },
                "completion_lock",
            ),
            folios: UnsafeCell::new(KVec::new()),
            tail: AtomicU32::new(0),
            posted: AtomicU64::new(0),
            reqs_available: AtomicU32::new(free_slots),
        })
    }

    /// Takes `ring_lock`, sleeping if needed.
    pub(crate) fn lock(&self) -> RingGuard<'_, R> {
        RingGuard {
            ring: self,
            resources: self.ring_lock.lock(),
        }
    }

    /// Tries `ring_lock` without sleeping: migration's way in (`migrate.rs`).
    pub(crate) fn try_lock(&self) -> Option<RingGuard<'_, R>> {
        Some(RingGuard {
            ring: self,
            resources: self.ring_lock.try_lock()?,
        })
    }

    /// The folio array.
    ///
    /// # Safety
    ///
    /// The caller must hold `ring_lock` or `completion_lock` for `'a` (writers hold both).
    unsafe fn folios_locked<'a>(&'a self) -> &'a [ARef<Folio>] {
        // SAFETY: The caller holds one of the locks every writer holds (type invariant).
        unsafe { &*self.folios.get() }
    }

    /// Takes `completion_lock` on top of `ring_lock`, which allows changing the folios.
    ///
    /// # Safety
    ///
    /// The caller must hold `ring_lock` while the returned guard lives.
    unsafe fn lock_both(&self) -> BothGuard<'_, R> {
        BothGuard {
            ring: self,
            _completions: self.completion_lock.lock(),
        }
    }

    fn lock_completions(&self) -> CompletionGuard<'_, R> {
        CompletionGuard {
            ring: self,
            completions: self.completion_lock.lock(),
        }
    }

    pub(crate) fn nr_events(&self) -> u32 {
        self.nr_events.get()
    }

    /// Takes a free slot for a submission, recomputing the free slots from the ring's `head`
    /// when none seem left: user space may have reaped events from the mapping without telling
    /// (fs/aio.c's `get_reqs_available()`).
    pub(crate) fn reserve_slot(&self) -> bool {
        self.try_reserve_slot() || {
            self.lock_completions().give_back_reaped_slots();
            self.try_reserve_slot()
        }
    }

    fn try_reserve_slot(&self) -> bool {
        self.reqs_available
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Returns a slot that a failed submission had reserved.
    pub(crate) fn unreserve_slot(&self) {
        self.reqs_available.fetch_add(1, Ordering::AcqRel);
    }

    /// Posts `event` to the ring (fs/aio.c's `aio_complete()`, ring part). O(1), IRQ-safe.
    pub(crate) fn post(&self, event: &sys::io_event) {
        self.lock_completions().post(event);
    }

    /// Posts `events` in order, under one `completion_lock`: see [`CompletionGuard::post_many`].
    pub(crate) fn post_many(&self, events: &[sys::io_event]) {
        self.lock_completions().post_many(events);
    }

    /// Whether the ring holds events that nobody has reaped (the getevents wait condition).
    pub(crate) fn has_events(&self) -> bool {
        let guard = self.lock_completions();
        let Some(page0) = guard.folios().first() else {
            return false;
        };
        SharedHeader::of(page0).head.load(Ordering::Relaxed) % self.nr_events
            != self.tail.load(Ordering::Relaxed)
    }
}

impl<R: Unpin> RingGuard<'_, R> {
    /// What `ring_lock` guards besides the folios: what setup installs and teardown removes.
    pub(crate) fn resources(&mut self) -> &mut R {
        &mut self.resources
    }
}

impl<'a, R> RingGuard<'a, R> {
    /// The ring's folios, stable while `ring_lock` is held (only migration and teardown change
    /// them, and both hold `ring_lock`).
    pub(crate) fn folios(&self) -> &[ARef<Folio>] {
        // SAFETY: This guard holds `ring_lock`.
        unsafe { self.ring.folios_locked() }
    }

    /// Takes `completion_lock` as well, which allows changing the folios.
    pub(crate) fn lock_completions(&mut self) -> BothGuard<'_, R> {
        // SAFETY: This guard holds `ring_lock`, and the mutable borrow keeps it held.
        unsafe { self.ring.lock_both() }
    }
}

/// Proof that both `ring_lock` and `completion_lock` are held: the folios may change.
#[must_use = "the lock unlocks immediately when the guard is unused"]
pub(crate) struct BothGuard<'a, R> {
    ring: &'a Ring<R>,
    _completions: IrqSpinLockGuard<'a, Completions>,
}

impl<R> BothGuard<'_, R> {
    /// Puts `folio` in the ring at `index`, returning the one it replaces.
    pub(crate) fn replace_folio(
        &mut self,
        index: usize,
        folio: ARef<Folio>,
    ) -> Option<ARef<Folio>> {
        // SAFETY: Both locks are held, so nobody else reads or writes `folios` (invariant).
        let folios = unsafe { &mut *self.ring.folios.get() };
        folios
            .get_mut(index)
            .map(|slot| core::mem::replace(slot, folio))
    }

    pub(crate) fn take_folios(&mut self) -> KVec<ARef<Folio>> {
        // SAFETY: Both locks are held, so nobody else reads or writes `folios` (invariant).
        core::mem::take(unsafe { &mut *self.ring.folios.get() })
    }

    pub(crate) fn install_folios(&mut self, folios: KVec<ARef<Folio>>) {
        // SAFETY: Both locks are held, so nobody else reads or writes `folios` (invariant).
        unsafe { *self.ring.folios.get() = folios };
    }
}

impl<R> CompletionGuard<'_, R> {
    fn folios(&self) -> &[ARef<Folio>] {
        // SAFETY: This guard holds `completion_lock`.
        unsafe { self.ring.folios_locked() }
    }

    fn post(&mut self, event: &sys::io_event) {
        self.post_many(core::slice::from_ref(event));
    }

    /// Posts `events` in order: one `tail` update for all of them.
    fn post_many(&mut self, events: &[sys::io_event]) {
        let nr_events = self.ring.nr_events.get();
        let mut tail = self.ring.tail.load(Ordering::Relaxed);
        let folios = self.folios();
        let Some(page0) = folios.first() else {
            // Teardown waits for every request first: a ring is never gone while one completes.
            return;
        };
        for event in events {
            let pos = tail as usize + EVENTS_OFFSET;
            let Some(folio) = folios.get(pos / EVENTS_PER_PAGE) else {
                return;
            };
            // The slot is outside [head, tail), so no reader looks at it, and `completion_lock`
            // excludes other writers.
            folio.write((pos % EVENTS_PER_PAGE) * EVENT_SIZE, *event);
            tail = if tail + 1 >= nr_events { 0 } else { tail + 1 };
        }
        // smp_wmb(): the events are visible before the tail that publishes them, to the kernel's
        // reapers (Release store) and to user space (fence, then the header's store).
        self.ring.tail.store(tail, Ordering::Release);
        fence(Ordering::Release);
        let header = SharedHeader::of(page0);
        header.tail.store(tail, Ordering::Relaxed);
        let posted = self.ring.posted.load(Ordering::Relaxed);
        self.ring
            .posted
            .store(posted.wrapping_add(events.len() as u64), Ordering::Release);
        let head = header.head.load(Ordering::Relaxed);
        self.completions.completed_events += events.len() as u32;
        if self.completions.completed_events > 1 {
            self.give_back_slots(head, tail);
        }
    }

    /// Recomputes the free slots from user space's `head` (fs/aio.c's
    /// `user_refill_reqs_available()`).
    fn give_back_reaped_slots(&mut self) {
        if self.completions.completed_events == 0 {
            return;
        }
        let Some(page0) = self.folios().first() else {
            return;
        };
        // `head` may move under us (user space, or a reaper holding only `ring_lock`); any value
        // is safe, because `tail` cannot move while `completion_lock` is held and the result is
        // bounded by `completed_events`.
        let head = SharedHeader::of(page0).head.load(Ordering::Relaxed);
        let tail = self.ring.tail.load(Ordering::Relaxed);
        self.give_back_slots(head, tail);
    }

    /// Slots of events that have left the ring become free again (fs/aio.c's
    /// `refill_reqs_available()`): free slots are never computed from user-written fields alone.
    fn give_back_slots(&mut self, head: u32, tail: u32) {
        let nr_events = self.ring.nr_events.get();
        // Clamp: user space writes `head`.
        let head = head % self.ring.nr_events;
        let in_ring = if head <= tail {
            tail - head
        } else {
            nr_events - (head - tail)
        };
        let completed = self.completions.completed_events.saturating_sub(in_ring);
        if completed > 0 {
            self.completions.completed_events -= completed;
            self.ring
                .reqs_available
                .fetch_add(completed, Ordering::AcqRel);
        }
    }
}
