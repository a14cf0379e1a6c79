// SPDX-License-Identifier: GPL-2.0

//! Contexts and their completion rings: `io_setup`, `io_submit`, `io_getevents`, `io_cancel` and
//! `io_destroy` over the `struct aio_ring` of fs/aio.c.
//!
//! A context's ring is the page cache of its own anonymous inode (`mm.rs`), mapped shared into
//! the process that set it up; the context id user space passes is the ring's address there.
//! Page 0 starts with the ring header; `struct io_event` slots follow across the pages. User space
//! may reap events itself by reading the slots between `head` and `tail` and storing a new `head`,
//! so every header field in the mapping is hostile input: the kernel keeps its own `nr` and
//! `tail`, takes `head` modulo `nr`, and finds contexts by their id alone, never by the header's
//! `id` (fs/aio.c reads it; a stray write there would orphan the context).
//!
//! # Locking
//!
//! Per context, in the order they nest:
//!
//! - `ring_lock` (mutex): serialises the kernel's writes of the ring's `head` (reaping through the
//!   ioctl) and everything that changes which folios make up the ring: setup holds it from the
//!   moment the ring file can be seen by migration until the context is complete (the seed
//!   patch's rule), teardown holds it while it disconnects the file. Page migration may only
//!   *try* it (`migrate.rs`). No user-memory fault is ever taken under it: reaping copies with
//!   page faults disabled and faults the destination in after dropping it, so that a reader
//!   stuck in a fault (userfaultfd, FUSE, swap-in) pins neither the ring nor DESTROY.
//!   `mmap_lock` nests inside it (setup maps the ring, teardown unmaps it).
//! - `completion_lock` (spinlock, interrupts off): writes of the ring's `tail`, the event slots
//!   and the free-slot bookkeeping. Completions come from any context: the submitting task,
//!   the workqueue, and hard IRQ (timer requests complete from an irq_work, which runs in hard
//!   IRQ without `PREEMPT_RT`).
//! - The folio array is written only with both locks held (migration's swap, setup, teardown),
//!   so either lock is enough to read it.
//!
//! Outside those, each taken alone: `ctx_lock` (spinlock, interrupts off) guards the list of
//! pending timer operations (cancel and destroy complete what they take off it after dropping
//! it); the file's context table and the address space's (`owner.rs`) have their own
//! spinlocks. The ring's `i_private_lock` comes before `ring_lock`, in migration only
//! (`migrate.rs`); `mremap` takes it, then the file's table lock, under `mmap_lock`.
//!
//! No lock of the module is a raw spinlock: the hrtimer of a timer request expires in hard IRQ,
//! where `PREEMPT_RT` forbids `spinlock_t`, so its expiry function takes no lock at all. It
//! pushes the request on a lock-free stack and queues an irq_work ([`FiredTimers`]), which
//! completes it.
//!
//! Lifetime: a context is an `Arc`. The file's table and its address space's table each hold one
//! reference until destroy; every request in flight holds one. Destroy marks the context dead,
//! takes it off both tables, cancels what it can, waits until nothing is in flight and only then
//! tears the ring down, so a completion never meets a freed ring. Contexts are destroyed by
//! DESTROY, by closing the file that made them, and when the address space that made them dies
//! (`owner.rs`), whichever comes first. The last reference may be dropped from hard IRQ (a timer
//! request), so dropping a context only frees memory.

use core::{
    cell::UnsafeCell,
    mem::size_of,
    sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering},
};
use kernel::{
    ffi::{c_int, c_ulong},
    list::{List, ListArc},
    new_spinlock,
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::{Arc, SpinLock},
    types::ARef,
    uaccess::{UserPtr, UserSlice},
};

use crate::{
    misc::{this_module, FileOperations},
    mm::{self, Folio, MmGrab, RingFile, RingOps, VmOperations, Vma},
    owner::MmContextsRef,
    request::{Completion, NoopBatch, TimerRequest, WorkRequest},
    sync::{IrqSpinLock, IrqSpinLockGuard, TryMutex, TryMutexGuard, WaitQueue, Wakeup},
    sys,
    timer::{self, Cancel, EventFd},
    Shared,
};

/// Bytes in a ring page.
const PAGE_SIZE: usize = sys::PAGE_SIZE;
/// Size of the ring header and of an event slot: both 32 bytes, as in fs/aio.c.
const HEADER_SIZE: usize = size_of::<sys::rust_aio_ring>();
const EVENT_SIZE: usize = size_of::<sys::io_event>();
/// Event slots per page, and the header's size in slots (`AIO_EVENTS_OFFSET`).
const EVENTS_PER_PAGE: usize = PAGE_SIZE / EVENT_SIZE;
const EVENTS_OFFSET: usize = HEADER_SIZE / EVENT_SIZE;
/// fs/aio.c doubles `nr_events` and refuses more than `0x10000000 / sizeof(struct io_event)`
/// with EINVAL: beyond that a ring would be absurdly large.
const MAX_DOUBLED_EVENTS: u32 = (0x1000_0000 / EVENT_SIZE) as u32;

const _: () = assert!(HEADER_SIZE == EVENT_SIZE && PAGE_SIZE % EVENT_SIZE == 0);

/// The ring header as the kernel sees it in the shared page: every field may change under it
/// (user space can write the mapping), so each is an atomic.
#[repr(C)]
struct SharedHeader {
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
    fn of(page0: &Folio) -> &SharedHeader {
        // SAFETY: A ring folio is a page of at least `HEADER_SIZE` bytes that lives while the
        // borrowed `Folio` reference does; the header is a plain array of naturally aligned u32s.
        unsafe { &*page0.address().cast::<SharedHeader>() }
    }
}

/// A ring's `completion_lock` data.
struct Completions {
    /// Events posted since free slots were last given back (fs/aio.c's `completed_events`).
    completed_events: u32,
}

/// A ring's `ring_lock` data: what setup installs and teardown removes.
struct RingResources {
    file: Option<RingFile>,
    owner_mm: Option<MmGrab>,
    /// The owner's table of contexts (`owner.rs`): held until teardown.
    mm_contexts: Option<MmContextsRef>,
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
    /// Number of event slots: the trusted copy of the header's `nr`.
    nr_events: u32,
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
pub(crate) struct RingGuard<'a> {
    ring: &'a Ring,
    resources: TryMutexGuard<'a, RingResources>,
}

/// Proof that `completion_lock` is held.
struct CompletionGuard<'a> {
    ring: &'a Ring,
    completions: IrqSpinLockGuard<'a, Completions>,
}

impl Ring {
    fn new(nr_events: u32) -> impl PinInit<Self> {
        // One slot always stays empty: `head == tail` means no events.
        let free_slots = nr_events - 1;
        pin_init!(Self {
            nr_events,
            ring_lock <- TryMutex::new(
                RingResources { file: None, owner_mm: None, mm_contexts: None },
                sys::rust_aio_ring_lock_init,
            ),
            completion_lock <- IrqSpinLock::new(
                Completions { completed_events: 0 },
                sys::rust_aio_completion_lock_init,
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
    #[cfg_attr(mutant = "unserialised-migrate", allow(dead_code))]
    pub(crate) fn try_lock(&self) -> Option<RingGuard<'_>> {
        Some(RingGuard {
            ring: self,
            resources: self.ring_lock.try_lock()?,
        })
    }

    /// Test builds of the `unserialised-migrate` mutant only: the folios without `ring_lock`,
    /// the way migration worked before the seed patch.
    #[cfg(mutant = "unserialised-migrate")]
    pub(crate) fn mutant_without_ring_lock(&self) -> MutantGuard<'_> {
        MutantGuard { ring: self }
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
    /// The caller must hold `ring_lock` while the returned guard lives (or be the test-only
    /// mutant, which deliberately does not).
    unsafe fn lock_both(&self) -> BothGuard<'_> {
        BothGuard {
            ring: self,
            _completions: self.completion_lock.lock_irqsave(),
        }
    }

    fn lock_completions(&self) -> CompletionGuard<'_> {
        CompletionGuard {
            ring: self,
            completions: self.completion_lock.lock_irqsave(),
        }
    }

    pub(crate) fn nr_events(&self) -> u32 {
        self.nr_events
    }

    /// Takes a free slot for a submission, recomputing the free slots from the ring's `head`
    /// when none seem left: user space may have reaped events from the mapping without telling
    /// (fs/aio.c's `get_reqs_available()`).
    fn reserve_slot(&self) -> bool {
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
    fn unreserve_slot(&self) {
        self.reqs_available.fetch_add(1, Ordering::AcqRel);
    }

    /// Posts `event` to the ring (fs/aio.c's `aio_complete()`, ring part). O(1), IRQ-safe.
    fn post(&self, event: &sys::io_event) {
        self.lock_completions().post(event);
    }

    /// Whether the ring holds events that nobody has reaped (the getevents wait condition).
    fn has_events(&self) -> bool {
        let guard = self.lock_completions();
        let Some(page0) = guard.folios().first() else {
            return false;
        };
        SharedHeader::of(page0).head.load(Ordering::Relaxed) % self.nr_events
            != self.tail.load(Ordering::Relaxed)
    }
}

impl<'a> RingGuard<'a> {
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
    fn read_events(&self, out: UserPtr, nr: usize) -> (usize, bool) {
        let nr_events = self.ring.nr_events;
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
        let mut head = header.head.load(Ordering::Relaxed) % nr_events;
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
            head = (head + whole as u32) % nr_events;
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

/// See [`Ring::mutant_without_ring_lock`]: deliberately unsound, test builds only.
#[cfg(mutant = "unserialised-migrate")]
pub(crate) struct MutantGuard<'a> {
    ring: &'a Ring,
}

#[cfg(mutant = "unserialised-migrate")]
impl MutantGuard<'_> {
    pub(crate) fn folios(&self) -> &[ARef<Folio>] {
        // SAFETY: Not safe: this is the bug the mutant reintroduces (see migrate.rs).
        unsafe { self.ring.folios_locked() }
    }

    pub(crate) fn lock_completions(&mut self) -> BothGuard<'_> {
        // SAFETY: Not safe, as above: `ring_lock` is not held.
        unsafe { self.ring.lock_both() }
    }
}

/// Where completions were when migration's first copy began ([`RingGuard::completion_mark`]).
#[derive(Clone, Copy)]
pub(crate) struct CompletionMark {
    posted: u64,
    tail: u32,
}

/// Proof that both `ring_lock` and `completion_lock` are held: the folios may change.
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
        let nr_events = self.ring.nr_events as usize;
        if index == 0 {
            dst.copy_range_from(src, 0, HEADER_SIZE);
        }
        let posted = self.ring.posted.load(Ordering::Relaxed);
        let written = posted.wrapping_sub(mark.posted).min(nr_events as u64) as usize;
        let start = mark.tail as usize % nr_events;
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

    fn take_folios(&mut self) -> KVec<ARef<Folio>> {
        // SAFETY: Both locks are held, so nobody else reads or writes `folios` (invariant).
        core::mem::take(unsafe { &mut *self.ring.folios.get() })
    }

    fn install_folios(&mut self, folios: KVec<ARef<Folio>>) {
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
        let nr_events = self.ring.nr_events;
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
        let nr_events = self.ring.nr_events;
        // Clamp: user space writes `head`.
        let head = head % nr_events;
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

/// The ring's `file_operations`: `mmap`, used by setup, and `release`, which ends the file's pin
/// of the ring filesystem. `owner` keeps the module loaded while a ring file exists (a mapping of
/// it may outlive its context); so does the filesystem's superblock.
static RING_FOPS: FileOperations = FileOperations(sys::file_operations {
    owner: this_module(),
    mmap: Some(ring_mmap),
    release: Some(ring_release),
    // SAFETY: All-zero is a valid `file_operations`: every other operation is absent.
    ..unsafe { core::mem::zeroed() }
});

/// The ring mapping's operations: page-cache faults, plus `mremap` and `may_split` hooks.
static RING_VM_OPS: VmOperations = VmOperations(sys::vm_operations_struct {
    mremap: Some(ring_mremap),
    may_split: Some(ring_may_split),
    fault: Some(sys::filemap_fault),
    map_pages: Some(sys::filemap_map_pages),
    page_mkwrite: Some(sys::filemap_page_mkwrite),
    // SAFETY: All-zero is a valid `vm_operations_struct`: every other operation is absent.
    ..unsafe { core::mem::zeroed() }
});

pub(crate) fn ring_ops() -> RingOps {
    RingOps {
        aops: &crate::migrate::RING_AOPS,
        fops: &RING_FOPS,
    }
}

extern "C" fn ring_mmap(_file: *mut sys::file, vma: *mut sys::vm_area_struct) -> c_int {
    // SAFETY: The kernel passes the new VMA with `mmap_lock` held for writing.
    unsafe { Vma::from_raw(vma) }.set_ring_operations(&RING_VM_OPS);
    0
}

/// The ring file's last reference is gone (`__fput()`).
extern "C" fn ring_release(_inode: *mut sys::inode, _file: *mut sys::file) -> c_int {
    // SAFETY: Every ring file holds one pin of the ring filesystem, given to it by
    // `RingFile::new()`; this is its only release.
    unsafe { mm::release_ring_fs() };
    0
}

/// The ring moved: the context id follows it, as in fs/aio.c's `aio_ring_mremap()`. Only the
/// owner may move a live ring, and only as a whole: a forked child sees the mapping but owns no
/// context (CVE-2023-52646), and a dead context's ring stays dead.
extern "C" fn ring_mremap(vma: *mut sys::vm_area_struct) -> c_int {
    // SAFETY: The kernel passes the moved VMA, with `mmap_lock` held.
    let vma = unsafe { Vma::from_raw(vma) };
    let Some(mapping) = vma.file_mapping() else {
        return EINVAL.to_errno();
    };
    let private = mapping.lock_private();
    let ctx = private.private_data().cast::<Context>();
    if ctx.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: A context stays alive while its ring file names it; teardown clears the name under
    // `i_private_lock`, which `private` holds.
    let ctx = unsafe { &*ctx };
    if !ctx.is_owned_by(vma.mm()) || ctx.is_dead() || vma.len() != ctx.nr_pages * PAGE_SIZE {
        return EINVAL.to_errno();
    }
    if !ctx.move_to(vma.start() as u64) {
        return EINVAL.to_errno();
    }
    0
}

/// A ring mapping is never split: `destroy` can then tell that the mapping at the context's
/// address is still the whole ring before unmapping it.
extern "C" fn ring_may_split(_vma: *mut sys::vm_area_struct, _addr: c_ulong) -> c_int {
    EINVAL.to_errno()
}

/// How a file's table names a context: its owner's address space (by address only) and the
/// ring's address there. Forked children share the file, and may map rings at the same
/// addresses as their parent.
type ContextKey = (usize, u64);

/// The contexts one open `/dev/rust_aio` made, by [`ContextKey`].
type FileTable = SpinLock<RBTree<ContextKey, Arc<Context>>>;

/// Set in the id of a context whose address now maps another ring: no user address has it.
const DISPLACED: u64 = 1 << 63;

/// Makes room at `key` for a ring that now lives at that address. A context filed there had its
/// ring unmapped by user space (or it would still be there): it can no longer be named by
/// address (fs/aio.c loses it the same way) and is refiled under an id no ring has, where
/// closing the file, or its address space's death, still finds it. Its node is reused: no
/// allocation, as `mremap` holds spinlocks.
fn refile_displaced(table: &mut RBTree<ContextKey, Arc<Context>>, key: &ContextKey) {
    let Some(displaced) = table.get(key).cloned() else {
        return;
    };
    if let Some(node) = table.remove_node(key) {
        let id = DISPLACED | displaced.serial;
        displaced.user_id.store(id, Ordering::Release);
        table.insert(
            node.into_reservation()
                .into_node(displaced.key(), displaced),
        );
    }
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
    /// Unique in the module's life; the address space's table files the context under it.
    serial: u64,
    /// The table of the file that made the context.
    table: Arc<FileTable>,
    /// The id user space names the context by: the ring's address in the owner (moved by
    /// `mremap`).
    user_id: AtomicU64,
    /// The owning process's address space, compared by address only (`RingResources` holds a
    /// reference so the address cannot be reused while the context lives).
    owner_mm: usize,
    /// Events user space asked for: what is accounted against the module-wide limit.
    max_reqs: u32,
    nr_pages: usize,
    dead: AtomicBool,
    inflight: AtomicUsize,
    #[pin]
    ring: Ring,
    /// Pending timer operations (`ctx_lock`), for cancel and destroy.
    #[pin]
    pending_timers: IrqSpinLock<List<TimerRequest>>,
    /// Tasks waiting for events, or for the last request to finish (destroy).
    #[pin]
    wait: WaitQueue,
}

// SAFETY: All fields are shared under the locking rules above; the raw `owner_mm` is only
// compared.
unsafe impl Sync for Context {}
// SAFETY: See above.
unsafe impl Send for Context {}

/// The operation an iocb asks for.
enum Operation {
    Noop,
    Timer { nanoseconds: i64 },
    Work,
}

impl Context {
    pub(crate) fn ring(&self) -> &Ring {
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

    fn is_owned_by(&self, mm: *const sys::mm_struct) -> bool {
        mm as usize == self.owner_mm
    }

    fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    fn key(&self) -> ContextKey {
        (self.owner_mm, self.user_id.load(Ordering::Acquire))
    }

    /// The ring is now at `addr` (`mremap`): so is the context's id, and its key in the file's
    /// table. Refused (false) unless the context is filed: setup has not finished (fs/aio.c's
    /// `aio_ring_mremap()` finds no context in the table either), or destroy has begun.
    fn move_to(&self, addr: u64) -> bool {
        let mut table = self.table.lock();
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
        self.user_id.store(addr, Ordering::Release);
        // The node is reused: `mremap` holds spinlocks, so nothing may be allocated here. The
        // reference it held is dropped under the lock, but `ctx` keeps the context alive.
        if let Some(node) = table.remove_node(&old) {
            table.insert(node.into_reservation().into_node(self.key(), ctx));
        }
        true
    }

    /// Starts a request: fails if the context is being destroyed. The SeqCst pair with
    /// `destroy` (store `dead`, then load `inflight`) means that either this sees `dead` or
    /// destroy sees the request.
    fn begin_request(&self) -> Result {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        if self.is_dead() {
            self.end_request();
            return Err(EINVAL);
        }
        Ok(())
    }

    fn end_request(&self) {
        self.end_requests(1);
    }

    fn end_requests(&self, n: usize) {
        if self.inflight.fetch_sub(n, Ordering::SeqCst) == n && self.is_dead() {
            self.wait.wake_up_all();
        }
    }

    /// Completes the NOOPs of `batch` (see [`NoopBatch`]); process context.
    fn complete_noops(&self, batch: &mut NoopBatch) {
        let n = batch.len();
        if n == 0 {
            return;
        }
        self.ring.lock_completions().post_many(batch.events());
        batch.signal_and_clear();
        self.wait.wake_up_all();
        self.end_requests(n);
    }

    /// Completes a request: posts its event, signals its eventfd, wakes the reapers. Runs in
    /// any context, hard IRQ included.
    pub(crate) fn complete(&self, completion: &Completion, res: Option<i64>) {
        let mut event = completion.event;
        if let Some(res) = res {
            event.res = res;
        }
        if timer::in_hardirq() {
            crate::migrate::STATS
                .hardirq_completions
                .fetch_add(1, Ordering::Relaxed);
        }
        self.ring.post(&event);
        if let Some(eventfd) = &completion.eventfd {
            eventfd.signal();
        }
        self.wait.wake_up_all();
        self.end_request();
    }

    /// Submits the iocb at user address `user_iocb` (fs/aio.c's `io_submit_one()`), with its
    /// checks in its order: reserved fields and sizes (EINVAL), a free slot (EAGAIN), the
    /// eventfd (EBADF, EINVAL), the write of `aio_key` (EFAULT), and last the operation itself
    /// (EINVAL).
    fn submit_one(self: &Arc<Self>, user_iocb: UserPtr, noops: &mut NoopBatch) -> Result {
        let iocb: sys::iocb = mm::read_user_words(user_iocb)?;
        if iocb.aio_reserved2 != 0 || (iocb.aio_nbytes as i64) < 0 {
            return Err(EINVAL);
        }
        if !self.ring.reserve_slot() {
            return Err(EAGAIN);
        }
        let result = self.start(&iocb, user_iocb, noops);
        if result.is_err() {
            self.ring.unreserve_slot();
        }
        result
    }

    /// What the iocb asks for, once everything else about it has been checked.
    fn operation(iocb: &sys::iocb) -> Result<Operation> {
        if iocb.aio_rw_flags != 0 || iocb.aio_flags & !sys::IOCB_FLAG_RESFD != 0 {
            return Err(EINVAL);
        }
        match u32::from(iocb.aio_lio_opcode) {
            sys::IOCB_CMD_NOOP => Ok(Operation::Noop),
            sys::RUST_AIO_CMD_TIMER if iocb.aio_offset >= 0 => Ok(Operation::Timer {
                nanoseconds: iocb.aio_offset,
            }),
            sys::RUST_AIO_CMD_WORK => Ok(Operation::Work),
            _ => Err(EINVAL),
        }
    }

    /// A request that cannot be allocated fails with EAGAIN, as in fs/aio.c's `io_submit_one()`.
    fn start(
        self: &Arc<Self>,
        iocb: &sys::iocb,
        user_iocb: UserPtr,
        noops: &mut NoopBatch,
    ) -> Result {
        let eventfd = if iocb.aio_flags & sys::IOCB_FLAG_RESFD != 0 {
            Some(EventFd::from_fd(iocb.aio_resfd)?)
        } else {
            None
        };
        // fs/aio.c writes `KIOCB_KEY` (0) to `aio_key`: a read-only iocb is EFAULT. The iocb was
        // read whole, so the address does not wrap.
        mm::write_user_u32(user_iocb + AIO_KEY_OFFSET, 0)?;
        let op = Self::operation(iocb)?;
        let completion = Completion {
            event: sys::io_event {
                data: iocb.aio_data,
                obj: user_iocb as u64,
                res: iocb.aio_nbytes as i64,
                res2: 0,
            },
            eventfd,
        };
        match op {
            Operation::Noop => {
                if noops.is_full() {
                    self.complete_noops(noops);
                }
                self.begin_request()?;
                noops.push(completion);
            }
            Operation::Timer { nanoseconds } => {
                let req = ListArc::pin_init(TimerRequest::new(self, completion), GFP_KERNEL)
                    .map_err(|_| EAGAIN)?;
                // Under `ctx_lock`, so that destroy, which sets `dead` and then cancels what is
                // on the list under the same lock, either sees this timer or is seen.
                let mut pending = self.pending_timers.lock_irqsave();
                self.begin_request()?;
                // Started under `ctx_lock`, so cancel cannot see it unstarted; the list keeps
                // the request alive until it is completed.
                req.timer.start(nanoseconds);
                pending.push_back(req);
            }
            Operation::Work => {
                let req = KBox::pin_init(WorkRequest::new(self, completion), GFP_KERNEL)
                    .map_err(|_| EAGAIN)?;
                self.begin_request()?;
                self.shared.workqueue().enqueue(req);
            }
        }
        Ok(())
    }

    /// Reaps up to `nr` events into user memory: as many as `ring_lock` lets us copy without a
    /// page fault, and, if the first one's destination is not present, faults it in without
    /// the lock and tries again. EFAULT only when nothing could be delivered: the destination
    /// cannot be faulted in, or it was and still cannot be written, a few times over (it is
    /// taken away each time: the caller races itself).
    fn reap(&self, out: UserPtr, nr: usize) -> Result<usize> {
        const RETRIES: usize = 4;
        for _ in 0..RETRIES {
            let (copied, faulted) = self.ring.lock().read_events(out, nr);
            if copied > 0 || !faulted {
                return Ok(copied);
            }
            // Here a fault may wait as long as it likes (userfaultfd, FUSE, swap-in): nobody
            // waits for us.
            if crate::sync::fatal_signal_pending() || !mm::fault_in_writeable(out, EVENT_SIZE) {
                return Err(EFAULT);
            }
        }
        Err(EFAULT)
    }

    /// Reaps between `min_nr` and `nr` events into user memory, waiting until `deadline` (an
    /// absolute monotonic time in ns; `Some(0)` means do not wait) or for ever (fs/aio.c's
    /// `read_events()`). Events once taken from the ring are always returned: a later fault or a
    /// signal ends the call with the number already delivered.
    fn get_events(
        &self,
        min_nr: usize,
        nr: usize,
        out: UserPtr,
        deadline: Option<i64>,
    ) -> Result<usize> {
        let mut got = 0usize;
        loop {
            match self.reap(out + got * EVENT_SIZE, nr - got) {
                Ok(n) => got += n,
                Err(err) if got == 0 => return Err(err),
                Err(_) => return Ok(got),
            }
            if got >= min_nr || deadline == Some(0) {
                return Ok(got);
            }
            if self.is_dead() {
                return if got > 0 { Ok(got) } else { Err(EINVAL) };
            }
            match self
                .wait
                .wait(deadline, true, || self.ring.has_events() || self.is_dead())
            {
                Wakeup::Woken => {}
                Wakeup::TimedOut | Wakeup::Signal => {
                    // What arrived by now is returned, as fs/aio.c's wait condition reads it.
                    if let Ok(n) = self.reap(out + got * EVENT_SIZE, nr - got) {
                        got += n;
                    }
                    return Ok(got);
                }
            }
        }
    }

    /// Cancels the pending timer operation submitted from user address `user_iocb` (6.12's
    /// `io_cancel()`): its event arrives through the ring with `-ECANCELED`.
    fn cancel(&self, user_iocb: UserPtr) -> Result {
        let mut pending = self.pending_timers.lock_irqsave();
        let mut cursor = pending.cursor_front();
        while let Some(current) = cursor {
            let req = current.current();
            if req.completion.event.obj == user_iocb as u64 {
                // Only tries: the timer may be expiring right now.
                if req.timer.try_cancel() == Cancel::TooLate {
                    // Fired: its own event is on the way.
                    return Err(EINVAL);
                }
                let req = current.remove();
                drop(pending);
                self.complete(&req.completion, Some(-i64::from(sys::ECANCELED)));
                return Err(Error::from_errno(-(sys::EINPROGRESS as c_int)));
            }
            cursor = current.next();
        }
        Err(EINVAL)
    }

    /// Destroys the context (fs/aio.c's `kill_ioctx()` and what follows it): takes it off the
    /// tables that name it, cancels the timers, waits for everything in flight, unmaps the ring
    /// if the caller owns it and the mapping is still the ring, and frees the ring. Process
    /// context only. Of concurrent calls (DESTROY, closing the file, the address space's death),
    /// one destroys and the others fail with EINVAL.
    pub(crate) fn destroy(&self) -> Result {
        if self.dead.swap(true, Ordering::SeqCst) {
            return Err(EINVAL);
        }
        self.unfile();
        // Stop every timer that has not fired; complete those outside `ctx_lock`. A timer that
        // has fired stays on the list, where the irq_work will look for it.
        let mut cancelled = List::<TimerRequest>::new();
        {
            let mut pending = self.pending_timers.lock_irqsave();
            let mut fired = List::<TimerRequest>::new();
            while let Some(req) = pending.pop_front() {
                if req.timer.try_cancel() == Cancel::Stopped {
                    cancelled.push_back(req);
                } else {
                    fired.push_back(req);
                }
            }
            pending.push_all_back(&mut fired);
        }
        while let Some(req) = cancelled.pop_front() {
            self.complete(&req.completion, Some(-i64::from(sys::ECANCELED)));
        }
        // Reapers asleep in getevents see the context dead.
        self.wait.wake_up_all();
        self.wait_idle();
        let file = self.teardown();
        self.shared.unaccount_events(self.max_reqs);
        // Last, as the ring file may hold the last references to the module.
        drop(file);
        Ok(())
    }

    /// Takes the context off the file's table and its address space's: nobody finds it any more.
    fn unfile(&self) {
        let from_file = {
            let mut table = self.table.lock();
            let key = self.key();
            match table.get(&key) {
                Some(ctx) if core::ptr::eq(&**ctx, self) => table.remove(&key),
                _ => None,
            }
        };
        drop(from_file);
        let from_mm = self
            .ring
            .lock()
            .resources
            .mm_contexts
            .as_ref()
            .and_then(|contexts| contexts.remove(self.serial));
        drop(from_mm);
    }

    /// Waits, uninterruptibly, until no request is in flight.
    fn wait_idle(&self) {
        while self.inflight.load(Ordering::SeqCst) != 0 {
            self.wait
                .wait(None, false, || self.inflight.load(Ordering::SeqCst) == 0);
        }
    }

    /// Takes the ring apart in the seed patch's order: under `ring_lock`, unmap (if this is the
    /// owner and the mapping is still the ring), disconnect the ring file from the context (no
    /// migration can reach it afterwards), then take the folios out and put them. Returns the
    /// disconnected file, for the caller to drop last.
    fn teardown(&self) -> Option<RingFile> {
        let mut guard = self.ring.lock();
        if let (Some(file), Some(owner)) = (&guard.resources.file, &guard.resources.owner_mm) {
            if owner.is_current() {
                // Failing to unmap leaves a dead mapping (SIGBUS on access), nothing worse.
                let _ = mm::unmap_if_mapping_of(
                    file,
                    self.user_id.load(Ordering::Acquire) as usize,
                    self.nr_pages * PAGE_SIZE,
                );
            }
        }
        let file = guard.resources.file.take();
        if let Some(file) = &file {
            file.disconnect();
        }
        let folios = guard.lock_completions().take_folios();
        let owner_mm = guard.resources.owner_mm.take();
        let mm_contexts = guard.resources.mm_contexts.take();
        drop(guard);
        drop(folios);
        drop(owner_mm);
        drop(mm_contexts);
        file
    }
}

/// Offset of `aio_key` in `struct iocb`, the only field `io_cancel()` reads.
const AIO_KEY_OFFSET: usize = core::mem::offset_of!(sys::iocb, aio_key);

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
        let key = (mm::current_mm() as usize, user_id);
        let ctx = self.table.lock().get(&key).cloned().ok_or(EINVAL)?;
        if ctx.is_dead() {
            return Err(EINVAL);
        }
        Ok(ctx)
    }

    /// `io_setup()`: creates a context with room for `nr_events` events in flight and maps its
    /// ring into the caller; returns the context id.
    pub(crate) fn setup(&self, nr_events: u32, flags: u32) -> Result<u64> {
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

    fn setup_accounted(&self, max_reqs: u32) -> Result<u64> {
        // One slot always stays empty (head == tail means empty), one more "for good luck", as
        // fs/aio.c; then the ring is whole pages and `nr` whatever fits.
        let wanted = max_reqs as usize + 2;
        let nr_pages = (HEADER_SIZE + wanted * EVENT_SIZE).div_ceil(PAGE_SIZE);
        let nr_events = ((nr_pages * PAGE_SIZE - HEADER_SIZE) / EVENT_SIZE) as u32;
        let owner_mm = MmGrab::current().ok_or(EINVAL)?;
        let owner_addr = mm::current_mm() as usize;
        // Takes `mmap_lock`: before `ring_lock`.
        let mm_contexts = MmContextsRef::current()?;
        let file_node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let mm_node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let mut folios = KVec::with_capacity(nr_pages, GFP_KERNEL)?;

        let serial = self.shared.next_serial();
        let ctx = Arc::pin_init(
            pin_init!(Context {
                shared: self.shared,
                serial,
                table: self.table.clone(),
                user_id: AtomicU64::new(0),
                owner_mm: owner_addr,
                max_reqs,
                nr_pages,
                dead: AtomicBool::new(false),
                inflight: AtomicUsize::new(0),
                ring <- Ring::new(nr_events),
                pending_timers <- IrqSpinLock::new(List::new(), sys::rust_aio_ctx_lock_init),
                wait <- WaitQueue::new(),
            }),
            GFP_KERNEL,
        )?;

        // Hold `ring_lock` until setup is complete: from the moment the ring file exists,
        // migration can find the context through it and must not see it half made.
        let mut guard = ctx.ring.lock();
        let file = RingFile::new(nr_pages, (&*ctx as *const Context).cast(), &ring_ops())?;
        for index in 0..nr_pages {
            folios.push(file.create_folio(index)?, GFP_KERNEL)?;
        }
        let size = nr_pages * PAGE_SIZE;
        // As fs/aio.c: EINTR when killed while waiting for `mmap_lock`, otherwise ENOMEM.
        let addr =
            mm::map_shared(&file, size).map_err(|err| if err == EINTR { EINTR } else { ENOMEM })?;

        let header = SharedHeader::of(folios.first().ok_or(EINVAL)?);
        // Information only: nothing reads it back.
        header.id.store(serial as u32, Ordering::Relaxed);
        header.nr.store(nr_events, Ordering::Relaxed);
        header.head.store(0, Ordering::Relaxed);
        header.tail.store(0, Ordering::Relaxed);
        header
            .magic
            .store(sys::RUST_AIO_RING_MAGIC, Ordering::Relaxed);
        header
            .compat_features
            .store(sys::RUST_AIO_RING_COMPAT_FEATURES, Ordering::Relaxed);
        header
            .incompat_features
            .store(sys::RUST_AIO_RING_INCOMPAT_FEATURES, Ordering::Relaxed);
        header
            .header_length
            .store(HEADER_SIZE as u32, Ordering::Relaxed);

        guard.lock_completions().install_folios(folios);
        guard.resources.file = Some(file);
        guard.resources.owner_mm = Some(owner_mm);

        // The context is complete: make it visible, to lookups and to its address space's death.
        {
            let mut table = self.table.lock();
            refile_displaced(&mut table, &(owner_addr, addr as u64));
            ctx.user_id.store(addr as u64, Ordering::Release);
            table.insert(file_node.into_node(ctx.key(), ctx.clone()));
        }
        mm_contexts.insert(serial, ctx.clone(), mm_node);
        guard.resources.mm_contexts = Some(mm_contexts);
        drop(guard);
        Ok(addr as u64)
    }

    /// `io_submit()`: submits up to `nr` iocbs whose user addresses are at `iocbpp`; returns how
    /// many were queued. Stops at the first bad one and fails with its error only if it was the
    /// first.
    pub(crate) fn submit(&self, user_id: u64, nr: i64, iocbpp: UserPtr) -> Result<usize> {
        if nr < 0 {
            return Err(EINVAL);
        }
        let ctx = self.lookup(user_id)?;
        // More than the ring holds cannot all be queued; fs/aio.c clamps the same way.
        let nr = (nr as u64).min(u64::from(ctx.ring.nr_events())) as usize;
        let mut noops = NoopBatch::new();
        let (submitted, result) = Self::submit_all(&ctx, nr, iocbpp, &mut noops);
        ctx.complete_noops(&mut noops);
        match result {
            Err(err) if submitted == 0 => Err(err),
            _ => Ok(submitted),
        }
    }

    /// Submits the iocbs until the first that fails: how many were queued, and its error.
    /// The pointers are read a batch at a time; a batch that cannot be read whole is read one
    /// by one, so that those before an unreadable pointer are submitted, as in fs/aio.c.
    fn submit_all(
        ctx: &Arc<Context>,
        nr: usize,
        iocbpp: UserPtr,
        noops: &mut NoopBatch,
    ) -> (usize, Result) {
        // Eight at a time: a small array, zeroed on every SUBMIT.
        let mut pointers = [0u64; 8];
        let mut submitted = 0;
        while submitted < nr {
            let at = iocbpp.wrapping_add(submitted * size_of::<u64>());
            let mut chunk = (nr - submitted).min(pointers.len());
            if mm::read_user_u64s(at, &mut pointers[..chunk]).is_err() {
                chunk = 1;
                if let Err(err) = mm::read_user_u64s(at, &mut pointers[..1]) {
                    return (submitted, Err(err));
                }
            }
            for &user_iocb in &pointers[..chunk] {
                if let Err(err) = ctx.submit_one(user_iocb as UserPtr, noops) {
                    return (submitted, Err(err));
                }
                submitted += 1;
            }
        }
        (submitted, Ok(()))
    }

    /// `io_getevents()`; `deadline` as for [`Context::get_events`].
    pub(crate) fn get_events(
        &self,
        user_id: u64,
        min_nr: i64,
        nr: i64,
        events: UserPtr,
        deadline: Option<i64>,
    ) -> Result<usize> {
        let ctx = self.lookup(user_id)?;
        if min_nr < 0 || nr < 0 || min_nr > nr {
            return Err(EINVAL);
        }
        let got = ctx.get_events(min_nr as usize, nr as usize, events, deadline)?;
        // io_getevents(): `if (!ret && signal_pending(current)) ret = -EINTR;`
        if got == 0 && crate::sync::signal_pending() {
            return Err(EINTR);
        }
        Ok(got)
    }

    /// `io_cancel()`: like fs/aio.c, reads only the iocb's `aio_key`, and before it looks the
    /// context up.
    pub(crate) fn cancel(&self, user_id: u64, user_iocb: UserPtr) -> Result {
        // Any address may come in: one that would wrap is as unreadable as get_user() finds it.
        let key_addr = user_iocb.checked_add(AIO_KEY_OFFSET).ok_or(EFAULT)?;
        let key: u32 = UserSlice::new(key_addr, size_of::<u32>()).reader().read()?;
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
        destroy_all(&self.table);
    }
}

/// Destroys every context of `table`, taking them off one at a time: destroying sleeps, so the
/// lock is not held meanwhile. A context that is already dead is being destroyed by another
/// thread, which finishes the job.
pub(crate) fn destroy_all<K: Ord + Copy>(table: &SpinLock<RBTree<K, Arc<Context>>>) {
    loop {
        let next = {
            let mut table = table.lock();
            let key = table.keys().next().copied();
            key.and_then(|key| table.remove(&key))
        };
        let Some(ctx) = next else { break };
        let _ = ctx.destroy();
    }
}
