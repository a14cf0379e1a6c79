// SPDX-License-Identifier: GPL-2.0

//! Requests, and how each kind completes: a NOOP in the batch of its SUBMIT ([`NoopBatch`]), a
//! timer request from the irq_work its hrtimer hands it to ([`TimerRequest`], [`FiredTimers`]), a
//! work request on the module's workqueue ([`WorkRequest`]), an fsync there too
//! ([`FsyncRequest`]); reads and writes are in `rw.rs`. Every request carries its [`Completion`]
//! and ends in `Context::complete` (`context.rs`), which posts the event to the ring, signals the
//! eventfd and wakes the reapers, or in `Context::post` and `Context::end_request` around putting
//! what the request holds (a file: destroy must not return before it is put).
//!
//! A new kind of request is added here (its type and how it completes) and in `context.rs`
//! (decoding the operation, starting it, cancel and destroy if it can be cancelled); the ring
//! (`ring.rs`) does not change.

use core::{
    mem::MaybeUninit,
    pin::Pin,
    ptr::null_mut,
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{
    impl_has_work, impl_list_arc_safe, impl_list_item,
    list::ListLinks,
    new_work,
    prelude::*,
    sync::Arc,
    workqueue::{Work, WorkItem},
};

use crate::{
    context::{Context, InFlight},
    kapi::cred::Credentials,
    kapi::eventfd::EventFd,
    kapi::file::FileRef,
    kapi::hrtimer::{HasHrTimer, HrTimer, HrTimerCallback},
    kapi::irq_work::{HasIrqWork, IrqWork, IrqWorkCallback},
    kapi::sys,
};

/// What completes an operation: its event and where to signal it.
pub(crate) struct Completion {
    pub(crate) event: sys::io_event,
    pub(crate) eventfd: Option<EventFd>,
}

/// NOOPs completed by one SUBMIT, posted together: one `completion_lock`, one wake-up, one update
/// of the requests in flight for a run of consecutive NOOPs. The run is posted when SUBMIT
/// reaches an iocb of another kind, when it ends, or when the batch is full. A run's first NOOP
/// is kept here; from its second on, the batch lives on the heap (the SUBMIT's stack is the file
/// system's too: reads and writes run beneath it), so that a SUBMIT of one NOOP allocates
/// nothing. If the batch cannot be allocated, each NOOP is posted alone.
///
/// # Invariants
///
/// `first` is empty whenever `batch` holds an entry: the run's events are in one place, in order.
pub(crate) struct NoopBatch {
    first: Option<Completion>,
    batch: Option<KBox<Batch>>,
}

/// # Invariants
///
/// The first `len` entries of `events` are initialised.
struct Batch {
    events: [MaybeUninit<sys::io_event>; NOOP_BATCH],
    eventfds: [Option<EventFd>; NOOP_BATCH],
    len: usize,
}

const NOOP_BATCH: usize = 32;

impl NoopBatch {
    pub(crate) fn new() -> Self {
        Self {
            first: None,
            batch: None,
        }
    }

    /// An empty batch on the heap, built in place (it is too big for the stack).
    fn alloc() -> Option<KBox<Batch>> {
        let mut batch = KBox::<Batch>::new_uninit(GFP_KERNEL).ok()?;
        let slot = batch.as_mut_ptr();
        // SAFETY: `slot` is valid for writes; the events may stay uninitialised (`MaybeUninit`),
        // every other field is written here, each in place.
        unsafe {
            for i in 0..NOOP_BATCH {
                (&raw mut (*slot).eventfds[i]).write(None);
            }
            (&raw mut (*slot).len).write(0);
        }
        // SAFETY: Every field is initialised (above); INVARIANT: `len` is 0.
        Some(unsafe { batch.assume_init() })
    }

    pub(crate) fn is_full(&self) -> bool {
        self.batch
            .as_ref()
            .is_some_and(|batch| batch.len == NOOP_BATCH)
    }

    /// Adds a NOOP's completion to the batch; gives it back if the batch cannot be allocated
    /// (the caller posts the batch, then it).
    pub(crate) fn push(&mut self, completion: Completion) -> core::result::Result<(), Completion> {
        let empty = self.batch.as_ref().is_none_or(|batch| batch.len == 0);
        if empty && self.first.is_none() {
            self.first = Some(completion);
            return Ok(());
        }
        if self.batch.is_none() {
            self.batch = Self::alloc();
        }
        let Some(batch) = self.batch.as_deref_mut() else {
            return Err(completion);
        };
        if let Some(first) = self.first.take() {
            // INVARIANT: `first` moves to the batch's (empty) head, before `completion`.
            batch.events[0].write(first.event);
            batch.eventfds[0] = first.eventfd;
            batch.len = 1;
        }
        let len = batch.len;
        match (batch.events.get_mut(len), batch.eventfds.get_mut(len)) {
            (Some(event), Some(eventfd)) => {
                event.write(completion.event);
                *eventfd = completion.eventfd;
                // INVARIANT: The entry at the old `len` was just written.
                batch.len += 1;
                Ok(())
            }
            _ => Err(completion),
        }
    }

    /// How many NOOPs the batch holds.
    pub(crate) fn len(&self) -> usize {
        match &self.first {
            Some(_) => 1,
            None => self.batch.as_ref().map_or(0, |batch| batch.len),
        }
    }

    pub(crate) fn events(&self) -> &[sys::io_event] {
        if let Some(first) = &self.first {
            return core::slice::from_ref(&first.event);
        }
        let Some(batch) = self.batch.as_ref() else {
            return &[];
        };
        let events = batch.events.get(..batch.len).unwrap_or(&[]);
        // SAFETY: The first `len` entries are initialised (type invariant), and
        // `MaybeUninit<T>` has the layout of `T`.
        unsafe { &*(core::ptr::from_ref(events) as *const [sys::io_event]) }
    }

    /// Signals the eventfds of the batch's NOOPs, whose events have been posted, and empties
    /// the batch.
    pub(crate) fn signal_and_clear(&mut self) {
        if let Some(eventfd) = self.first.take().and_then(|first| first.eventfd) {
            eventfd.signal();
        }
        let Some(batch) = self.batch.as_deref_mut() else {
            return;
        };
        for eventfd in batch.eventfds.iter_mut().take(batch.len) {
            if let Some(eventfd) = eventfd.take() {
                eventfd.signal();
            }
        }
        batch.len = 0;
    }
}

/// A submitted `RUST_AIO_CMD_TIMER`: its hrtimer expires in hard IRQ and hands it to
/// [`FiredTimers`], whose irq_work completes it; or cancel or destroy stop the timer and complete
/// it with `-ECANCELED`.
///
/// # Invariants
///
/// From submission until it is completed, the request is on its context's `pending_timers`
/// list, which keeps it alive; whoever takes it off the list completes it. Once its timer has
/// fired it is also on the [`FiredTimers`] stack, and only the irq_work takes it off the list.
#[pin_data]
pub(crate) struct TimerRequest {
    #[pin]
    pub(crate) timer: HrTimer<TimerRequest>,
    #[pin]
    links: ListLinks,
    /// The next request on the [`FiredTimers`] stack.
    next_fired: AtomicPtr<TimerRequest>,
    ctx: Arc<Context>,
    pub(crate) completion: Completion,
}

impl TimerRequest {
    /// A timer request of `ctx`, its timer not started.
    pub(crate) fn new(
        ctx: &Arc<Context>,
        completion: Completion,
    ) -> impl PinInit<Self, Error> + '_ {
        try_pin_init!(TimerRequest {
            timer <- HrTimer::new(),
            links <- ListLinks::new(),
            next_fired: AtomicPtr::new(null_mut()),
            ctx: ctx.clone(),
            completion,
        }? Error)
    }
}

// SAFETY: `timer` is a field of type `HrTimer<TimerRequest>`.
unsafe impl HasHrTimer for TimerRequest {
    const OFFSET: usize = core::mem::offset_of!(TimerRequest, timer);
}

impl HrTimerCallback for TimerRequest {
    /// Its timer expired (hard IRQ): hands it over to [`FiredTimers`]. No lock, no freeing. The
    /// request is alive: it is on its context's list until somebody removes it, and cancel and
    /// destroy remove it only after stopping the timer, which cannot happen while this runs.
    fn expired(&self) {
        // Read before the hand-over, after which the request may complete and go at any time.
        let shared = self.ctx.shared();
        shared.fired_timers.push(self);
    }
}

impl_list_arc_safe! {
    impl ListArcSafe<0> for TimerRequest { untracked; }
}
impl_list_item! {
    impl ListItem<0> for TimerRequest { using ListLinks { self.links }; }
}

// SAFETY: The hrtimer is only touched through the hrtimer API, which is thread-safe.
unsafe impl Send for TimerRequest {}
// SAFETY: See above.
unsafe impl Sync for TimerRequest {}

/// Timer requests whose hrtimer has expired, for the irq_work that completes them. One for the
/// module: the expiry function may not touch its context after handing the request over (the
/// context may be gone by then), only this, which outlives every context.
///
/// # Invariants
///
/// `fired` is a stack, linked through `next_fired`, of requests that are still on their
/// context's `pending_timers` list (which keeps them alive) and whose timers have fired.
#[pin_data]
pub(crate) struct FiredTimers {
    fired: AtomicPtr<TimerRequest>,
    /// Completes what is on the stack; synchronised on drop (module unload).
    #[pin]
    work: IrqWork<FiredTimers>,
}

// SAFETY: `work` is a field of type `IrqWork<FiredTimers>`, and `fired`, which its run uses, has
// nothing to drop.
unsafe impl HasIrqWork for FiredTimers {
    const OFFSET: usize = core::mem::offset_of!(FiredTimers, work);
}

impl IrqWorkCallback for FiredTimers {
    /// Completes every request on the stack.
    fn run(&self) {
        self.complete_all();
    }
}

impl FiredTimers {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            fired: AtomicPtr::new(null_mut()),
            work <- IrqWork::new(),
        })
    }

    /// Hands over a request whose timer expired, and makes sure the irq_work will run. Hard IRQ;
    /// takes no lock.
    fn push(&self, req: &TimerRequest) {
        let req_ptr = core::ptr::from_ref(req).cast_mut();
        let mut head = self.fired.load(Ordering::Relaxed);
        loop {
            req.next_fired.store(head, Ordering::Relaxed);
            // Release: `next_fired` is written before the request is seen on the stack.
            match self.fired.compare_exchange_weak(
                head,
                req_ptr,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => head = now,
            }
        }
        // After the push: a run that has begun already queues again and finds the request.
        self.work.queue();
    }
}

impl FiredTimers {
    /// Completes every request on the stack (its irq_work).
    fn complete_all(&self) {
        // Acquire: pairs with the Release of the pushes.
        let mut next = self.fired.swap(null_mut(), Ordering::Acquire);
        while !next.is_null() {
            // SAFETY: Requests on the stack are alive: they are still on their context's list,
            // and only this function takes fired requests off it (type invariant).
            let req = unsafe { &*next };
            next = req.next_fired.load(Ordering::Relaxed);
            // Its expiry function may still be running on another CPU, after the push: the
            // request must outlive it (and so must everything it touches after the push:
            // `FiredTimers` outlives every request, as unloading waits for the last one's
            // completion).
            req.timer.cancel_sync();
            let ctx = req.ctx.clone();
            // SAFETY: The request is only ever on this list.
            let req = unsafe { ctx.pending_timers().lock().remove(req) };
            if let Some(req) = req {
                ctx.complete(&req.completion, None);
            }
        }
    }
}

/// A submitted `RUST_AIO_CMD_WORK`, completed by the module's workqueue.
#[pin_data]
pub(crate) struct WorkRequest {
    #[pin]
    work: Work<WorkRequest>,
    ctx: Arc<Context>,
    completion: Completion,
}

impl WorkRequest {
    /// A work request of `ctx`, for the module's workqueue.
    pub(crate) fn new(ctx: &Arc<Context>, completion: Completion) -> impl PinInit<Self> + '_ {
        pin_init!(WorkRequest {
            work <- new_work!("rust_aio::WorkRequest"),
            ctx: ctx.clone(),
            completion,
        })
    }
}

impl_has_work! {
    impl HasWork<Self> for WorkRequest { self.work }
}

impl WorkItem for WorkRequest {
    type Pointer = Pin<KBox<WorkRequest>>;

    fn run(this: Pin<KBox<WorkRequest>>) {
        this.ctx.complete(&this.completion, None);
    }
}

/// A submitted `IOCB_CMD_FSYNC` or `IOCB_CMD_FDSYNC` (fs/aio.c's `aio_fsync()`): `vfs_fsync()`
/// on the module's workqueue, under the submitter's credentials, holding the file until it
/// completes; the event's `res` is its result. Not cancellable.
#[pin_data]
pub(crate) struct FsyncRequest {
    #[pin]
    work: Work<FsyncRequest>,
    completion: Completion,
    file: FileRef,
    creds: Credentials,
    datasync: bool,
    /// Last: the request ends once its file and credentials are put.
    in_flight: InFlight,
}

impl FsyncRequest {
    pub(crate) fn new(
        in_flight: InFlight,
        completion: Completion,
        file: FileRef,
        creds: Credentials,
        datasync: bool,
    ) -> impl PinInit<Self> {
        pin_init!(FsyncRequest {
            work <- new_work!("rust_aio::FsyncRequest"),
            completion,
            file,
            creds,
            datasync,
            in_flight,
        })
    }
}

impl_has_work! {
    impl HasWork<Self> for FsyncRequest { self.work }
}

impl WorkItem for FsyncRequest {
    type Pointer = Pin<KBox<FsyncRequest>>;

    /// As fs/aio.c: the event is posted, the file and the credentials are put, and only then
    /// does the request stop counting as in flight (dropping it).
    fn run(this: Pin<KBox<FsyncRequest>>) {
        let res = this.creds.run_as(|| this.file.fsync(this.datasync));
        this.in_flight.ctx().post(&this.completion, Some(res));
    }
}
