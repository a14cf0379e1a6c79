// SPDX-License-Identifier: GPL-2.0

//! POLL requests: `IOCB_CMD_POLL` (fs/aio.c's `aio_poll()`), one-shot: the event comes when the
//! file has one of the asked-for events (or always `EPOLLERR`/`EPOLLHUP`), with `res` the events
//! in user space's encoding; cancelled (by CANCEL or destroy), with `res` 0.
//!
//! At submit the file is polled and the request's wait entry added to the file's wait queue; if
//! an event is there already, the request completes at once. Otherwise the file's wake-ups call
//! [`WakeCallback::woken`], under the file's queue lock, in any context. As in fs/aio.c's
//! `aio_poll_wake()`: a wake-up that names its events, while the work is not scheduled, *tries*
//! `ctx_lock_polls` and, if it gets it, takes the request off the queue and off the pending list
//! and completes it right there (so the event is in the ring when the waker returns), or, with
//! an eventfd to signal, leaves the posting to the work (signalling an eventfd under another
//! file's queue lock could come back through epoll to that lock). Any other wake-up schedules
//! the work, which polls the file again ([`PollRequest::run`]). A queue that goes away
//! (`POLLFREE`) cancels the request. As in fs/aio.c, the request's state (`work_scheduled`,
//! `work_need_resched`, `cancelled`) changes under the lock of the queue it waits on.
//!
//! The queue's lock is taken under the context's `ctx_lock_polls`, with interrupts off; the wake
//! function, which holds the queue's lock, only tries `ctx_lock_polls` (a trylock orders
//! nothing).
//!
//! Lifetime: the request is an `Arc`, held by its context's pending list while it can be
//! cancelled, by its work while that is queued, and by the submitter; it is on the file's queue
//! only while one of those holds it, and it is taken off the queue (under the queue's lock)
//! before it completes. The last reference is dropped in the submitter, CANCEL, DESTROY or the
//! work, never in a wake function: one that completes the request hands the list's reference
//! (or a new one) to the work, and touches the request no more. Dropping it puts the polled
//! file, which must not happen in interrupt context (`FileRef`).

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use kernel::{
    impl_has_work, impl_list_arc_safe, impl_list_item,
    list::{AtomicTracker, List, ListArc, ListLinks, TryNewListArc},
    new_work,
    prelude::*,
    sync::{Arc, ArcBorrow},
    workqueue::{Work, WorkItem},
};

use crate::{
    context::request::Completion,
    context::{Context, InFlight},
    kapi::file::FileRef,
    kapi::poll::{self as pollwait, HasWaitEntry, PolledHead, WaitEntry, WakeCallback, Waking},
    kapi::sync::TryIrqSpinLockGuard,
    kapi::sys,
};

/// A submitted `IOCB_CMD_POLL`.
#[pin_data]
pub(crate) struct PollRequest {
    #[pin]
    wait: WaitEntry<PollRequest>,
    #[pin]
    work: Work<PollRequest>,
    #[pin]
    links: ListLinks,
    #[pin]
    tracker: AtomicTracker,
    head: PolledHead,
    /// The events asked for, with `EPOLLERR` and `EPOLLHUP`.
    events: u32,
    /// Under the queue's lock (read without it, as fs/aio.c's `READ_ONCE`).
    cancelled: AtomicBool,
    /// Under the queue's lock: the work is queued or running.
    work_scheduled: AtomicBool,
    /// Under the queue's lock: a wake-up came while the work was scheduled.
    work_need_resched: AtomicBool,
    /// The events of the wake-up that took the request off the queue, for the work to post
    /// (0: none).
    ready: AtomicU32,
    /// A wake-up completed the request: its work only drops it.
    finished: AtomicBool,
    completion: Completion,
    /// Declared before `in_flight`: put before the request stops counting as in flight.
    file: FileRef,
    in_flight: InFlight,
}

impl_list_arc_safe! {
    impl ListArcSafe<0> for PollRequest { tracked_by tracker: AtomicTracker; }
}
impl_list_item! {
    impl ListItem<0> for PollRequest { using ListLinks { self.links }; }
}
impl_has_work! {
    impl HasWork<Self> for PollRequest { self.work }
}

impl PollRequest {
    /// Submits a poll of `file` for `events` (already demangled); SUBMIT's error if it could not
    /// be queued (EINVAL: the file cannot be polled and has none of the events now, or it
    /// offered a second wait queue). fs/aio.c's `aio_poll()`.
    #[inline(never)]
    pub(crate) fn submit(
        ctx: &Arc<Context>,
        file: FileRef,
        completion: Completion,
        events: u32,
    ) -> Result {
        let in_flight = ctx.begin()?;
        let req = Arc::pin_init(
            pin_init!(PollRequest {
                wait <- WaitEntry::new(),
                work <- new_work!("rust_aio::PollRequest"),
                links <- ListLinks::new(),
                tracker <- AtomicTracker::new(),
                head: PolledHead::new(),
                events: events | sys::EPOLLERR | sys::EPOLLHUP,
                cancelled: AtomicBool::new(false),
                work_scheduled: AtomicBool::new(false),
                work_need_resched: AtomicBool::new(false),
                ready: AtomicU32::new(0),
                finished: AtomicBool::new(false),
                completion,
                file,
                in_flight,
            }),
            GFP_KERNEL,
        )
        .map_err(|_| EAGAIN)?;
        // SAFETY: The request is pinned in its `Arc`, which the submitter holds until the entry
        // is either off the queue (below, or by `run`) or held by the pending list or the work.
        let polled =
            unsafe { pollwait::poll_and_queue(&req.file, req.events, &req.wait, &req.head) };
        let mut mask = polled.mask & req.events;
        let mut error = polled.error;
        let mut cancel = false;
        let mut pending = ctx.pending_polls().lock();
        if polled.queued {
            let locked = req.head.lock(&req.wait);
            if locked.is_none() || req.work_scheduled.load(Ordering::Relaxed) {
                // A wake-up came already: the work will complete the request.
                cancel = error != 0;
                error = 0;
                mask = 0;
            }
            if mask != 0 || error != 0 {
                // Completed (or failed) here: off the queue.
                if let Some(locked) = &locked {
                    req.wait.remove(locked);
                }
            } else if cancel {
                req.cancelled.store(true, Ordering::Relaxed);
            } else if locked.is_some() {
                if ctx.is_dead() {
                    // Destroy has begun and cancelled what was listed (or will find nothing of
                    // ours): cancel it here, or it would wait for ever, and destroy with it.
                    req.cancelled.store(true, Ordering::Relaxed);
                    req.work_scheduled.store(true, Ordering::Relaxed);
                    req.schedule_work();
                } else if let Ok(list_arc) = ListArc::try_from_arc(req.clone()) {
                    // Waiting for an event: it can be cancelled now.
                    pending.push_back(list_arc);
                }
            }
        }
        drop(pending);
        if mask != 0 {
            req.complete(mask);
            return Ok(());
        }
        if error != 0 {
            return Err(Error::from_errno(error));
        }
        Ok(())
    }

    /// Posts the request's event: `res` is `mask` as user space spells it.
    fn complete(&self, mask: u32) {
        let res = i64::from(pollwait::mangle(mask));
        self.in_flight.ctx().post(&self.completion, Some(res));
    }

    /// Queues the request's work (the queue's lock is held, or the request is not on a queue).
    fn schedule_work(&self) {
        // SAFETY: Every `PollRequest` lives in an `Arc` (`submit`), which is alive while we are
        // called: by its wake function (it is on the queue), or by a holder of a reference.
        let arc: Arc<Self> = unsafe { ArcBorrow::from_raw(self) }.into();
        // Queued already: the reference comes back and is dropped.
        let _ = self.in_flight.ctx().shared().workqueue().enqueue(arc);
    }

    /// A wake-up of the queue for us, with its events (`mask`, 0 if it names none); the queue's
    /// lock is held (`waking`). fs/aio.c's `aio_poll_wake()`.
    fn wake(&self, mask: u32, waking: &Waking<'_>) {
        if mask != 0 && !self.work_scheduled.load(Ordering::Relaxed) {
            // The queue's lock comes after `ctx_lock_polls`: only try it.
            if let Some(mut pending) = self.in_flight.ctx().pending_polls().try_lock() {
                waking.remove_entry();
                // SAFETY: A poll request is only ever on its context's pending list.
                let listed = unsafe { pending.remove(self) };
                drop(pending);
                // Off the queue: nothing locks it through the request any more.
                // SAFETY: In the wake function, under the queue's lock, the entry off the queue.
                unsafe { self.head.clear_in_wake() };
                if self.completion.eventfd.is_some() {
                    // The work posts it, and signals the eventfd there.
                    self.ready.store(mask, Ordering::Relaxed);
                } else {
                    self.complete(mask);
                    self.finished.store(true, Ordering::Release);
                }
                self.work_scheduled.store(true, Ordering::Relaxed);
                // Last, the work gets a reference (the list's, if it held one) and drops it in
                // process context; from the enqueue on the request may be gone: nothing here
                // touches it after.
                let arc = match listed {
                    Some(listed) => listed.into_arc(),
                    // SAFETY: The request lives in an `Arc` (`submit`), alive while its entry
                    // was on the queue (a holder keeps it).
                    None => unsafe { ArcBorrow::from_raw(self) }.into(),
                };
                let workqueue = self.in_flight.ctx().shared().workqueue();
                // Not queued (`work_scheduled` was clear): the enqueue takes the reference.
                let _ = workqueue.enqueue(arc);
                return;
            }
        }
        if self.work_scheduled.load(Ordering::Relaxed) {
            self.work_need_resched.store(true, Ordering::Relaxed);
        } else {
            self.work_scheduled.store(true, Ordering::Relaxed);
            self.schedule_work();
        }
        if mask & sys::POLLFREE != 0 {
            // The queue is going away: off it, and cancelled. Clearing the head last: from then
            // on the work may complete the request without the queue's lock.
            self.cancelled.store(true, Ordering::Relaxed);
            waking.remove_entry();
            // SAFETY: In the wake function, under the queue's lock, the entry off the queue.
            unsafe { self.head.clear_in_wake() };
        }
    }

    /// Cancels the request (CANCEL, destroy), which its context's pending list held: the work
    /// completes it with `res` 0. fs/aio.c's `aio_poll_cancel()`. Under the pending list's lock
    /// (`_pending`), with interrupts off: the file's wake-ups may take its queue's lock in
    /// (soft) IRQ, and fs/aio.c itself takes it from softirq.
    pub(crate) fn cancel(&self, _pending: &TryIrqSpinLockGuard<'_, List<PollRequest>>) {
        if let Some(_locked) = self.head.lock(&self.wait) {
            self.cancelled.store(true, Ordering::Relaxed);
            if !self.work_scheduled.load(Ordering::Relaxed) {
                self.work_scheduled.store(true, Ordering::Relaxed);
                self.schedule_work();
            }
        }
        // Else a wake-up took it off the queue: its work is scheduled already.
    }

    /// Whether this is the request submitted from user address `obj` (on the pending list, it
    /// can still be cancelled: a wake-up that brought its events took it off).
    pub(crate) fn is_cancellable(&self, obj: u64) -> bool {
        self.completion.event.obj == obj
    }
}

impl WorkItem for PollRequest {
    type Pointer = Arc<PollRequest>;

    /// fs/aio.c's `aio_poll_complete_work()`: polls the file again (unless a wake-up brought the
    /// events or the request was cancelled); if nothing is there yet, waits on, else completes.
    fn run(this: Arc<PollRequest>) {
        if this.finished.load(Ordering::Acquire) {
            // Completed by its wake-up, which left the last reference to us.
            return;
        }
        let ready = this.ready.load(Ordering::Relaxed);
        let mut mask = ready;
        if ready == 0 && !this.cancelled.load(Ordering::Relaxed) {
            mask = pollwait::poll(&this.file, this.events) & this.events;
        }
        let ctx = this.in_flight.ctx().clone();
        let mut pending = ctx.pending_polls().lock();
        if let Some(locked) = this.head.lock(&this.wait) {
            if mask == 0 && !this.cancelled.load(Ordering::Relaxed) {
                // Not ready after all: wait on, and run again if another wake-up came.
                if this.work_need_resched.swap(false, Ordering::Relaxed) {
                    this.schedule_work();
                } else {
                    this.work_scheduled.store(false, Ordering::Relaxed);
                }
                return;
            }
            this.wait.remove(&locked);
        }
        // Else it is off the queue already (a wake-up with events, or `POLLFREE`).
        // SAFETY: A poll request is only ever on its context's pending list.
        let listed = unsafe { pending.remove(&this) };
        drop(pending);
        drop(listed);
        this.complete(mask);
    }
}

// SAFETY: `wait` is a field of type `WaitEntry<PollRequest>`.
unsafe impl HasWaitEntry for PollRequest {
    const OFFSET: usize = core::mem::offset_of!(PollRequest, wait);
}

impl WakeCallback for PollRequest {
    /// A wake-up of the queue the request's entry is on: for us if it names none of the events
    /// (`mask` 0) or one we poll for. The request is alive: it is on the queue, so one of its
    /// holders keeps it alive (module documentation).
    fn woken(&self, mask: u32, waking: &Waking<'_>) -> bool {
        if mask != 0 && mask & self.events == 0 {
            return false;
        }
        self.wake(mask, waking);
        true
    }
}
