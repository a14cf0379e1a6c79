// SPDX-License-Identifier: GPL-2.0

//! An AIO context: `io_submit`, `io_getevents`, `io_cancel` and `io_destroy` on one context, and
//! its teardown. Its ring, and the rules of the ring's locks, are in `ring.rs`; its requests and
//! how each kind completes in `request.rs`; how it is set up and found by the file that made it
//! in `file.rs`.
//!
//! Lifetime: a context is an `Arc`. The file's table and its address space's table each hold one
//! reference until it is torn down; every request in flight holds one. Destroy marks the context
//! dead (lookups refuse it from then on), cancels what it can, waits until nothing is in flight,
//! tears the ring down, so a completion never meets a freed ring, and only then takes the
//! context off both tables: a close or an exit that finds it there dying waits for it. Contexts are destroyed by
//! DESTROY, by closing the file that made them, and when the address space that made them dies
//! (`owner.rs`), whichever comes first. The last reference may be dropped from hard IRQ (a timer
//! request), so dropping a context only frees memory.

use core::{
    num::NonZeroU32,
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering},
};
use kernel::{
    ffi::c_int,
    list::{List, ListArc},
    prelude::*,
    sync::Arc,
    uaccess::UserPtr,
};

use crate::{
    cred::Credentials,
    file::{refile_displaced, ContextKey, FileTable},
    folio::PrivateGuard,
    fs::{FileRef, RingFile},
    owner::MmContextsRef,
    kiocb::Direction,
    poll::PollRequest,
    pollwait,
    request::{Completion, FsyncRequest, NoopBatch, TimerRequest, WorkRequest},
    ring::{Ring, EVENT_SIZE, PAGE_SIZE},
    rw::{RwArgs, RwRequest},
    sync::{
        new_irq_spinlock, new_try_irq_spinlock, IrqSpinLock, TryIrqSpinLock, WaitQueue, Wakeup,
    },
    sys,
    timer::{self, Cancel, EventFd},
    uaccess, Shared,
};

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
    owner_mm: usize,
    /// Events user space asked for: what is accounted against the module-wide limit.
    max_reqs: u32,
    nr_pages: usize,
    dead: AtomicBool,
    /// Set once destroy has torn the ring down and every request is over: those who lost the
    /// race to destroy wait for it ([`Context::destroy_and_wait`]).
    torn_down: AtomicBool,
    inflight: AtomicUsize,
    #[pin]
    ring: Ring,
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

// SAFETY: All fields are shared under the locking rules of `ring.rs`'s documentation; the raw
// `owner_mm` is only compared.
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

/// Offset of `aio_key` in `struct iocb`, the only field `io_cancel()` reads.
pub(crate) const AIO_KEY_OFFSET: usize = core::mem::offset_of!(sys::iocb, aio_key);

/// The operation an iocb asks for.
enum Operation {
    Noop,
    Timer { nanoseconds: i64 },
    Work,
    Fsync { file: FileRef, datasync: bool },
    Rw { file: FileRef, args: RwArgs },
    Poll { file: FileRef, events: u32 },
}

impl Operation {
    /// Operations on a file start their event with `res` 0 and report their result in it; the
    /// module's own echo `aio_nbytes`.
    fn on_file(&self) -> bool {
        matches!(
            self,
            Operation::Fsync { .. } | Operation::Rw { .. } | Operation::Poll { .. }
        )
    }
}

impl Context {
    /// A new context, named by no table yet: setup (`file.rs`) installs its ring, then files it.
    pub(crate) fn new<'a>(
        shared: &'static Shared,
        table: &'a Arc<FileTable>,
        owner_mm: usize,
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
            ring <- Ring::new(nr_events),
            pending_timers <- new_irq_spinlock!(List::new(), "ctx_lock"),
            pending_polls <- new_try_irq_spinlock!(List::new(), "ctx_lock_polls"),
            wait <- WaitQueue::new(),
        })
    }

    /// The context a ring's mapping names, while `private` holds its `i_private_lock`; `None`
    /// once teardown has disconnected the ring (migration and `mremap` find the context so).
    ///
    /// # Safety
    ///
    /// `private` must be the `i_private_lock` of a ring's mapping (one made by `RingFile::new()`,
    /// whose `i_private_data` is null or a `Context`): any other mapping's private data is not
    /// ours to interpret.
    pub(crate) unsafe fn of_ring<'a>(private: &'a PrivateGuard<'_>) -> Option<&'a Context> {
        let ctx = private.private_data().cast::<Context>();
        // SAFETY: This is a ring's mapping (the caller's guarantee): it names its context from
        // setup (`RingFile::new()`) until teardown clears the name under `i_private_lock`, which
        // `private` holds for `'a`; a context stays alive while its ring names it.
        unsafe { ctx.as_ref() }
    }

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


    pub(crate) fn is_owned_by(&self, mm: *const sys::mm_struct) -> bool {
        mm as usize == self.owner_mm
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
    }

    /// Submits the iocb at user address `user_iocb` (fs/aio.c's `io_submit_one()`), with its
    /// checks in its order: reserved fields and sizes (EINVAL), a free slot (EAGAIN), the
    /// eventfd (EBADF, EINVAL), the write of `aio_key` (EFAULT), and last the operation itself
    /// (EINVAL).
    #[inline(never)]
    pub(crate) fn submit_one(
        self: &Arc<Self>,
        user_iocb: UserPtr,
        noops: &mut NoopBatch,
    ) -> Result {
        let iocb: sys::iocb = uaccess::read_user_words(user_iocb)?;
        // What completed so far is posted before anything else is started, as fs/aio.c posts
        // each iocb's event inside `io_submit_one()`: a later iocb may block (a read of an empty
        // pipe) until a reaper has seen the earlier events.
        if u32::from(iocb.aio_lio_opcode) != sys::IOCB_CMD_NOOP {
            self.complete_noops(noops);
        }
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

    /// Whether the opcode works on the iocb's file (`aio_fildes`), which is then looked up
    /// first, as fs/aio.c's `__io_submit_one()` does for every request.
    fn takes_file(iocb: &sys::iocb) -> bool {
        matches!(
            u32::from(iocb.aio_lio_opcode),
            sys::IOCB_CMD_PREAD
                | sys::IOCB_CMD_PWRITE
                | sys::IOCB_CMD_PREADV
                | sys::IOCB_CMD_PWRITEV
                | sys::IOCB_CMD_FSYNC
                | sys::IOCB_CMD_FDSYNC
                | sys::IOCB_CMD_POLL
        )
    }

    /// What the iocb asks for, once everything else about it has been checked.
    fn operation(iocb: &sys::iocb, file: Option<FileRef>) -> Result<Operation> {
        let opcode = u32::from(iocb.aio_lio_opcode);
        if let Some(file) = file {
            return Self::file_operation(iocb, opcode, file);
        }
        if iocb.aio_rw_flags != 0 || iocb.aio_flags & !sys::IOCB_FLAG_RESFD != 0 {
            return Err(EINVAL);
        }
        match opcode {
            sys::IOCB_CMD_NOOP => Ok(Operation::Noop),
            sys::RUST_AIO_CMD_TIMER if iocb.aio_offset >= 0 => Ok(Operation::Timer {
                nanoseconds: iocb.aio_offset,
            }),
            sys::RUST_AIO_CMD_WORK => Ok(Operation::Work),
            _ => Err(EINVAL),
        }
    }

    /// An operation on `file` (fs/aio.c's `__io_submit_one()` switch). Unknown `aio_flags` bits
    /// are ignored, as there.
    fn file_operation(iocb: &sys::iocb, opcode: u32, file: FileRef) -> Result<Operation> {
        let rw = match opcode {
            sys::IOCB_CMD_PREAD => Some((Direction::Read, false)),
            sys::IOCB_CMD_PWRITE => Some((Direction::Write, false)),
            sys::IOCB_CMD_PREADV => Some((Direction::Read, true)),
            sys::IOCB_CMD_PWRITEV => Some((Direction::Write, true)),
            _ => None,
        };
        if let Some((direction, vectored)) = rw {
            let args = RwArgs::new(iocb, direction, vectored)?;
            return Ok(Operation::Rw { file, args });
        }
        match opcode {
            sys::IOCB_CMD_FSYNC | sys::IOCB_CMD_FDSYNC => {
                // fs/aio.c's `aio_fsync()`: no buffer, offset, size or flags; a file that can
                // sync.
                if iocb.aio_buf != 0
                    || iocb.aio_offset != 0
                    || iocb.aio_nbytes != 0
                    || iocb.aio_rw_flags != 0
                    || !file.has_fsync()
                {
                    return Err(EINVAL);
                }
                Ok(Operation::Fsync {
                    file,
                    datasync: opcode == sys::IOCB_CMD_FDSYNC,
                })
            }
            sys::IOCB_CMD_POLL => {
                // fs/aio.c's `aio_poll()`: events in 16 bits; no offset, size or flags.
                let events = u16::try_from(iocb.aio_buf).map_err(|_| EINVAL)?;
                if iocb.aio_offset != 0 || iocb.aio_nbytes != 0 || iocb.aio_rw_flags != 0 {
                    return Err(EINVAL);
                }
                Ok(Operation::Poll {
                    file,
                    events: pollwait::demangle(events),
                })
            }
            _ => Err(EINVAL),
        }
    }

    /// A request that cannot be allocated fails with EAGAIN, as in fs/aio.c's `io_submit_one()`.
    #[inline(never)]
    fn start(
        self: &Arc<Self>,
        iocb: &sys::iocb,
        user_iocb: UserPtr,
        noops: &mut NoopBatch,
    ) -> Result {
        let file = if Self::takes_file(iocb) {
            Some(FileRef::get(iocb.aio_fildes)?)
        } else {
            None
        };
        let eventfd = if iocb.aio_flags & sys::IOCB_FLAG_RESFD != 0 {
            Some(EventFd::from_fd(iocb.aio_resfd)?)
        } else {
            None
        };
        // fs/aio.c writes `KIOCB_KEY` (0) to `aio_key`: a read-only iocb is EFAULT. The iocb was
        // read whole, so the address does not wrap.
        uaccess::write_user_u32(user_iocb + AIO_KEY_OFFSET, 0)?;
        let op = Self::operation(iocb, file)?;
        let completion = Completion {
            event: sys::io_event {
                data: iocb.aio_data,
                obj: user_iocb as u64,
                res: if op.on_file() {
                    0
                } else {
                    iocb.aio_nbytes as i64
                },
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
                if let Err(completion) = noops.push(completion) {
                    self.complete(&completion, None);
                }
            }
            Operation::Timer { nanoseconds } => {
                let req = ListArc::pin_init(TimerRequest::new(self, completion), GFP_KERNEL)
                    .map_err(|_| EAGAIN)?;
                // Under `ctx_lock`, so that destroy, which sets `dead` and then cancels what is
                // on the list under the same lock, either sees this timer or is seen.
                let mut pending = self.pending_timers.lock();
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
            Operation::Fsync { file, datasync } => {
                let creds = Credentials::current()?;
                let in_flight = self.begin()?;
                let req = KBox::pin_init(
                    FsyncRequest::new(in_flight, completion, file, creds, datasync),
                    GFP_KERNEL,
                )
                .map_err(|_| EAGAIN)?;
                self.shared.workqueue().enqueue(req);
            }
            Operation::Rw { file, args } => RwRequest::submit(self, file, completion, &args)?,
            Operation::Poll { file, events } => {
                PollRequest::submit(self, file, completion, events)?
            }
        }
        Ok(())
    }

    /// Reaps up to `nr` events into user memory: as many as `ring_lock` lets us copy without a
    /// page fault, and, if the first one's destination is not present, faults it in without
    /// the lock (writing nothing: another reaper may take the event meanwhile, and a slot this
    /// call does not return must stay as it was) and tries again. EFAULT only when nothing could be delivered: the destination
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
            if crate::sync::fatal_signal_pending() || !uaccess::fault_in_for_write(out, EVENT_SIZE)
            {
                return Err(EFAULT);
            }
        }
        Err(EFAULT)
    }

    /// Reaps between `min_nr` and `nr` events into user memory, waiting until `deadline` (an
    /// absolute monotonic time in ns; `Some(0)` means do not wait) or for ever (fs/aio.c's
    /// `read_events()`). Events once taken from the ring are always returned: a later fault or a
    /// signal ends the call with the number already delivered.
    pub(crate) fn get_events(
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

    /// Cancels the pending timer or poll operation submitted from user address `user_iocb`
    /// (6.12's `io_cancel()`): its event arrives through the ring, with `-ECANCELED` (a timer)
    /// or `res` 0 (a poll, as fs/aio.c's; unless a wake-up got there first, whose events the
    /// event then carries). Other requests, and polls a wake-up has completed, cannot be
    /// cancelled: EINVAL.
    pub(crate) fn cancel(&self, user_iocb: UserPtr) -> Result {
        let in_progress = Error::from_errno(-(sys::EINPROGRESS as c_int));
        {
            let mut polls = self.pending_polls.lock();
            let mut cursor = polls.cursor_front();
            while let Some(current) = cursor {
                if current.current().is_cancellable(user_iocb as u64) {
                    let req = current.remove();
                    req.cancel(&polls);
                    drop(polls);
                    drop(req);
                    return Err(in_progress);
                }
                cursor = current.next();
            }
        }
        let mut pending = self.pending_timers.lock();
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
                return Err(in_progress);
            }
            cursor = current.next();
        }
        Err(EINVAL)
    }

    /// DESTROY (fs/aio.c's `io_destroy()`): destroys the context and returns once it is gone.
    /// Of concurrent calls, one destroys; the others fail with EINVAL at once, as in fs/aio.c.
    /// Process context only.
    pub(crate) fn destroy(&self) -> Result {
        if self.dead.swap(true, Ordering::SeqCst) {
            return Err(EINVAL);
        }
        self.kill();
        Ok(())
    }

    /// Destroys the context for a file being closed or an address space dying, and returns once
    /// it is gone, whoever destroys it: if another task got there first, this waits for it to
    /// finish, as `exit_aio()` waits for every context's requests. Process context only.
    pub(crate) fn destroy_and_wait(&self) {
        if !self.dead.swap(true, Ordering::SeqCst) {
            self.kill();
            return;
        }
        while !self.torn_down.load(Ordering::Acquire) {
            self.wait
                .wait(None, false, || self.torn_down.load(Ordering::Acquire));
        }
    }

    /// Tears down a context that this call marked dead (fs/aio.c's `kill_ioctx()` and what
    /// follows it): cancels the timers and polls, waits for everything in flight (every request
    /// has put its file before it ends), unmaps the ring if the caller owns it, frees the ring,
    /// and only then takes it off its file's table and its address space's, so that a close of
    /// the file and the address space's death, meanwhile, wait for all of it.
    fn kill(&self) {
        // Stop every timer that has not fired; complete those outside `ctx_lock`. A timer that
        // has fired stays on the list, where the irq_work will look for it.
        let mut cancelled = List::<TimerRequest>::new();
        {
            let mut pending = self.pending_timers.lock();
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
        // Cancel every poll: their work completes them (fs/aio.c's `free_ioctx_users()`). Taken
        // off the list, never onto another (their work takes them off this one), and the last
        // reference dropped outside the lock.
        loop {
            let mut polls = self.pending_polls.lock();
            let Some(req) = polls.pop_front() else {
                break;
            };
            req.cancel(&polls);
            drop(polls);
            drop(req);
        }
        // Reapers asleep in getevents see the context dead.
        self.wait.wake_up_all();
        self.wait_idle();
        let (file, mm_contexts) = self.teardown();
        // Only now off the tables: a file closed or an address space dying meanwhile found it
        // there, and waits for it (`destroy_and_wait`). Lookups refused it since it died.
        self.unfile();
        if let Some(mm_contexts) = mm_contexts {
            drop(mm_contexts.remove(self.mm_index(), self));
        }
        self.shared.unaccount_events(self.max_reqs);
        self.torn_down.store(true, Ordering::Release);
        self.wait.wake_up_all();
        // Last, as the ring file may hold the last references to the module.
        drop(file);
    }

    /// Takes the context off the file's table (at the end of its teardown).
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
    }

    /// Waits, uninterruptibly, until no request is in flight.
    fn wait_idle(&self) {
        while self.inflight.load(Ordering::SeqCst) != 0 {
            self.wait
                .wait(None, false, || self.inflight.load(Ordering::SeqCst) == 0);
        }
    }

    /// Takes the ring apart in the seed patch's order: under `ring_lock`, unmap what is left of
    /// the ring's mapping at its address (if this is the owner), disconnect the ring file from
    /// the context (no migration can reach it afterwards), then take the folios out and put
    /// them. Returns the disconnected file, for the caller to drop last, and the address
    /// space's table, to take the context off.
    fn teardown(&self) -> (Option<RingFile>, Option<MmContextsRef>) {
        let mut guard = self.ring.lock();
        let resources = guard.resources();
        if let (Some(file), Some(owner)) = (&resources.file, &resources.owner_mm) {
            if owner.is_current() {
                // The id, final once read under the table's lock after the context died: a
                // `mremap` that moves the ring from now on is refused (`move_to`) and undone.
                let id = {
                    let _table = self.table.lock();
                    self.user_id.load(Ordering::Acquire)
                };
                // Failing to unmap leaves a dead mapping (SIGBUS on access), nothing worse.
                let _ = crate::mm::unmap_ring_pieces(
                    file,
                    id as usize,
                    self.nr_pages * PAGE_SIZE,
                );
            }
        }
        let file = guard.resources().file.take();
        if let Some(file) = &file {
            file.disconnect();
        }
        let folios = guard.lock_completions().take_folios();
        let owner_mm = guard.resources().owner_mm.take();
        let mm_contexts = guard.resources().mm_contexts.take();
        drop(guard);
        drop(folios);
        drop(owner_mm);
        (file, mm_contexts)
    }
}
