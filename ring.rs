// SPDX-License-Identifier: GPL-2.0

//! A context's completion ring: the `struct aio_ring` of fs/aio.c, its two locks and the rule
//! they keep (in types: [`RingGuard`], [`BothGuard`]), how events are posted and reaped and how
//! free slots are counted. The ring file's operations are `ring_file.rs`'s, its pages'
//! migration `migrate.rs`'s.
//!
//! A context's ring is the page cache of its own anonymous inode (`fs.rs`), mapped shared into
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
//! context (`folio.rs`), through which migration and `mremap` find it; the file's context table
//! (`file.rs`) and the address space's (`owner.rs`) have their own spinlocks.
//!
//! ## Lock order
//!
//! This is the module's one statement of its lock order, as lockdep sees it, outermost first:
//!
//! `ring_lock` → `mmap_lock` → `i_private_lock` → `completion_lock`
//!
//! - `ring_lock` → `mmap_lock`: setup maps the ring and teardown unmaps it under `ring_lock`.
//!   (Setup registers with the address space, which takes `mmap_lock` for writing, before it
//!   takes `ring_lock`, never under it: `owner.rs`.)
//! - `mmap_lock` → `i_private_lock`: the kernel calls `ring_mremap` with `mmap_lock` held, and
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
//! ([`FiredTimers`](crate::request::FiredTimers)), which completes it.

use core::{
    cell::UnsafeCell,
    mem::size_of,
    num::NonZeroU32,
    sync::atomic::{fence, AtomicU32, AtomicU64, Ordering},
};
use kernel::{prelude::*, types::ARef, uaccess::UserPtr};

use crate::{
    folio::Folio,
    fs::RingFile,
    mm::Mm,
    owner::MmContextsRef,
    sync::{
        new_irq_spinlock, new_try_mutex, IrqSpinLock, IrqSpinLockGuard, TryMutex, TryMutexGuard,
    },
    sys,
};

/// Bytes in a ring page.
pub(crate) const PAGE_SIZE: usize = sys::PAGE_SIZE;
/// Size of the ring header and of an event slot: both 32 bytes, as in fs/aio.c.
pub(crate) const HEADER_SIZE: usize = size_of::<sys::rust_aio_ring>();
pub(crate) const EVENT_SIZE: usize = size_of::<sys::io_event>();
/// Event slots per page, and the header's size in slots (`AIO_EVENTS_OFFSET`).
const EVENTS_PER_PAGE: usize = PAGE_SIZE / EVENT_SIZE;
const EVENTS_OFFSET: usize = HEADER_SIZE / EVENT_SIZE;
/// fs/aio.c doubles `nr_events` and refuses more than `0x10000000 / sizeof(struct io_event)`
/// with EINVAL: beyond that a ring would be absurdly large.
pub(crate) const MAX_DOUBLED_EVENTS: u32 = (0x1000_0000 / EVENT_SIZE) as u32;

const _: () = assert!(HEADER_SIZE == EVENT_SIZE && PAGE_SIZE % EVENT_SIZE == 0);

/// The ring header as the kernel sees it in the shared page: every field may change under it
/// (user space can write the mapping), so each is an atomic.
#[repr(C)]
pub(crate) struct SharedHeader {
    id: AtomicU32,
    nr: AtomicU32,
    head: AtomicU32,
    tail: AtomicU32,
    magic: AtomicU32,
    compat_features: AtomicU32,
    incompat_features: AtomicU32,
    header_length: AtomicU32,
}

const _: () = assert!(size_of::<SharedHeader>() == HEADER_SIZE);

impl SharedHeader {
    pub(crate) fn of(page0: &Folio) -> &SharedHeader {
        // SAFETY: A ring folio is a page of at least `HEADER_SIZE` bytes that lives while the
        // borrowed `Folio` reference does; the header is a plain array of naturally aligned u32s.
        unsafe { &*page0.address().cast::<SharedHeader>() }
    }

    /// Fills in the header of a new ring of `nr_events` slots (setup, before the ring is
    /// installed); `id` is information only: nothing reads it back.
    pub(crate) fn init(&self, id: u32, nr_events: u32) {
        self.id.store(id, Ordering::Relaxed);
        self.nr.store(nr_events, Ordering::Relaxed);
        self.head.store(0, Ordering::Relaxed);
        self.tail.store(0, Ordering::Relaxed);
        self.magic
            .store(sys::RUST_AIO_RING_MAGIC, Ordering::Relaxed);
        self.compat_features
            .store(sys::RUST_AIO_RING_COMPAT_FEATURES, Ordering::Relaxed);
        self.incompat_features
            .store(sys::RUST_AIO_RING_INCOMPAT_FEATURES, Ordering::Relaxed);
        self.header_length
            .store(HEADER_SIZE as u32, Ordering::Relaxed);
    }

    /// Sets `id` (setup, once the context has its index in its address space's table).
    pub(crate) fn set_id(&self, id: u32) {
        self.id.store(id, Ordering::Relaxed);
    }
}

/// A ring's `completion_lock` data.
struct Completions {
    /// Events posted since free slots were last given back (fs/aio.c's `completed_events`).
    completed_events: u32,
}

/// A ring's `ring_lock` data: what setup installs and teardown removes.
pub(crate) struct RingResources {
    pub(crate) file: Option<RingFile>,
    pub(crate) owner_mm: Option<ARef<Mm>>,
    /// The owner's table of contexts (`owner.rs`): held until teardown.
    pub(crate) mm_contexts: Option<MmContextsRef>,
}

/// A context's completion ring and its two locks (see the module documentation).
///
/// # Invariants
///
/// - `folios` is written only while both `ring_lock` and `completion_lock` are held, or before
///   the ring is shared (construction).
/// - Once set up, `folios` holds `nr_pages` folios and the header's slots number `nr_events`;
///   after teardown it is empty.
#[pin_data]
pub(crate) struct Ring {
    /// Number of event slots: the trusted copy of the header's `nr`. Never zero, which the type
    /// says, so that taking a position modulo it needs no division-by-zero check.
    nr_events: NonZeroU32,
    #[pin]
    ring_lock: TryMutex<RingResources>,
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
unsafe impl Sync for Ring {}
// SAFETY: Nothing in a `Ring` is tied to a thread.
unsafe impl Send for Ring {}

/// Proof that `ring_lock` is held.
#[must_use = "the lock unlocks immediately when the guard is unused"]
pub(crate) struct RingGuard<'a> {
    ring: &'a Ring,
    resources: TryMutexGuard<'a, RingResources>,
}

/// Proof that `completion_lock` is held.
#[must_use = "the lock unlocks immediately when the guard is unused"]
struct CompletionGuard<'a> {
    ring: &'a Ring,
    completions: IrqSpinLockGuard<'a, Completions>,
}

impl Ring {
    pub(crate) fn new(nr_events: NonZeroU32) -> impl PinInit<Self> {
        // One slot always stays empty: `head == tail` means no events.
        let free_slots = nr_events.get() - 1;
        pin_init!(Self {
            nr_events,
            ring_lock <- new_try_mutex!(
                RingResources { file: None, owner_mm: None, mm_contexts: None },
                "ring_lock",
            ),
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
    pub(crate) fn lock(&self) -> RingGuard<'_> {
        RingGuard {
            ring: self,
            resources: self.ring_lock.lock(),
        }
    }

    /// Tries `ring_lock` without sleeping: migration's way in (`migrate.rs`).
    pub(crate) fn try_lock(&self) -> Option<RingGuard<'_>> {
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
    unsafe fn lock_both(&self) -> BothGuard<'_> {
        BothGuard {
            ring: self,
            _completions: self.completion_lock.lock(),
        }
    }

    fn lock_completions(&self) -> CompletionGuard<'_> {
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

impl<'a> RingGuard<'a> {
    /// What setup installs and teardown removes, under `ring_lock`.
    pub(crate) fn resources(&mut self) -> &mut RingResources {
        &mut self.resources
    }

    /// The ring's folios, stable while `ring_lock` is held (only migration and teardown change
    /// them, and both hold `ring_lock`).
    pub(crate) fn folios(&self) -> &[ARef<Folio>] {
        // SAFETY: This guard holds `ring_lock`.
        unsafe { self.ring.folios_locked() }
    }

    /// Where completions are now: migration's first copy has every event before this mark in
    /// it (`migrate.rs`).
    pub(crate) fn completion_mark(&self) -> CompletionMark {
        // Acquire, `posted` first: a post counted in it has its `tail` visible, so `tail` is at
        // least where `posted` says, and its events are in the page when it is copied.
        let posted = self.ring.posted.load(Ordering::Acquire);
        let tail = self.ring.tail.load(Ordering::Acquire);
        CompletionMark { posted, tail }
    }

    /// Takes `completion_lock` as well, which allows changing the folios.
    pub(crate) fn lock_completions(&mut self) -> BothGuard<'_> {
        // SAFETY: This guard holds `ring_lock`, and the mutable borrow keeps it held.
        unsafe { self.ring.lock_both() }
    }

    /// Copies up to `nr` events to user space and advances the ring's `head` past exactly those
    /// copied (fs/aio.c's `aio_read_events_ring()`). Takes no page fault: a destination page that
    /// is not present ends the copy, and the caller faults it in after dropping `ring_lock`.
    /// Returns how many events were copied, and whether a fault stopped the copy.
    pub(crate) fn read_events(&self, out: UserPtr, nr: usize) -> (usize, bool) {
        let nr_slots = self.ring.nr_events;
        let nr_events = nr_slots.get();
        let folios = self.folios();
        let Some(page0) = folios.first() else {
            return (0, false);
        };
        let header = SharedHeader::of(page0);
        // Acquire (fs/aio.c's smp_rmb()): the events before `tail` are visible once it is read;
        // pairs with the Release in `CompletionGuard::post`. This is the kernel's own `tail`,
        // always below `nr_events`; the header's may hold anything.
        let tail = self.ring.tail.load(Ordering::Acquire);
        // User space may have written anything here: index with the trusted size
        // (CVE-2014-0206).
        let mut head = header.head.load(Ordering::Relaxed) % nr_slots;
        let mut copied = 0usize;
        let mut faulted = false;
        while copied < nr && head != tail {
            let contiguous = if head <= tail { tail } else { nr_events } - head;
            let pos = head as usize + EVENTS_OFFSET;
            let in_page = pos % EVENTS_PER_PAGE;
            let count = (contiguous as usize)
                .min(nr - copied)
                .min(EVENTS_PER_PAGE - in_page);
            let Some(folio) = folios.get(pos / EVENTS_PER_PAGE) else {
                break;
            };
            let mut whole = folio.copy_to_user_nofault(
                in_page * EVENT_SIZE,
                count * EVENT_SIZE,
                out + copied * EVENT_SIZE,
            ) / EVENT_SIZE;
            // The chunk stopped short (a copy may give up on a whole range it cannot check, and
            // only whole events count): go on one event at a time, so that the one that faults
            // is exactly the next, the one the caller faults in.
            while whole < count
                && folio.copy_to_user_nofault(
                    (in_page + whole) * EVENT_SIZE,
                    EVENT_SIZE,
                    out + (copied + whole) * EVENT_SIZE,
                ) == EVENT_SIZE
            {
                whole += 1;
            }
            copied += whole;
            head = (head + whole as u32) % nr_slots;
            if whole < count {
                faulted = true;
                break;
            }
        }
        if copied > 0 {
            // Release: the slots were read before they are handed back to the completion side.
            header.head.store(head, Ordering::Release);
        }
        (copied, faulted)
    }
}

/// Where completions were when migration's first copy began ([`RingGuard::completion_mark`]).
#[derive(Clone, Copy)]
pub(crate) struct CompletionMark {
    posted: u64,
    tail: u32,
}

/// Proof that both `ring_lock` and `completion_lock` are held: the folios may change.
#[must_use = "the lock unlocks immediately when the guard is unused"]
pub(crate) struct BothGuard<'a> {
    ring: &'a Ring,
    _completions: IrqSpinLockGuard<'a, Completions>,
}

impl BothGuard<'_> {
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

    /// Migration's second copy: copies from `src` to `dst`, the old and new folio of ring page
    /// `index`, what was written to that page since `mark` — the event slots of the events
    /// posted since, from the marked `tail` on, that lie in the page and, for page 0, the
    /// header. Returns the number of slots copied.
    ///
    /// Nothing else in the page can have changed: `head` is written by reapers holding
    /// `ring_lock` (as the caller does) and by user space, whose page-table entries for this page
    /// migration has replaced. But user space may still reap the other pages and store `head`,
    /// so `tail` may have gone round the ring meanwhile: the number of events posted, not the
    /// new `tail`, says how many slots were written (`ring_laps_between_copies` in
    /// migrate_test). Counting from a `posted` read before the marked `tail` may overcount,
    /// which only copies unchanged slots again.
    pub(crate) fn recopy_since(
        &self,
        index: usize,
        src: &Folio,
        dst: &Folio,
        mark: CompletionMark,
    ) -> u32 {
        let nr_events = self.ring.nr_events.get() as usize;
        if index == 0 {
            dst.copy_range_from(src, 0, HEADER_SIZE);
        }
        let posted = self.ring.posted.load(Ordering::Relaxed);
        let written = posted.wrapping_sub(mark.posted).min(nr_events as u64) as usize;
        let start = (mark.tail % self.ring.nr_events) as usize;
        let end = start + written;
        let ranges: [(usize, usize); 2] = if written == nr_events {
            [(0, nr_events), (0, 0)]
        } else if end <= nr_events {
            [(start, end), (0, 0)]
        } else {
            [(start, nr_events), (0, end - nr_events)]
        };
        // The slots whose events live in this page.
        let first = (index * EVENTS_PER_PAGE).saturating_sub(EVENTS_OFFSET);
        let last = ((index + 1) * EVENTS_PER_PAGE - EVENTS_OFFSET).min(nr_events);
        let mut copied = 0;
        for (from, to) in ranges {
            let (from, to) = (from.max(first), to.min(last));
            if from < to {
                let offset = ((from + EVENTS_OFFSET) % EVENTS_PER_PAGE) * EVENT_SIZE;
                dst.copy_range_from(src, offset, (to - from) * EVENT_SIZE);
                copied += (to - from) as u32;
            }
        }
        copied
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

impl CompletionGuard<'_> {
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
