// SPDX-License-Identifier: GPL-2.0

//! Reads and writes: `IOCB_CMD_PREAD`, `PWRITE`, `PREADV` and `PWRITEV` (fs/aio.c's
//! `aio_read()`/`aio_write()`). The file system runs the request in the submitter's context
//! (`read_iter`/`write_iter` on a kiocb of the request's) and completes it there (tmpfs, buffered
//! I/O), from a workqueue (O_DIRECT writes) or from the block layer's completion interrupt
//! (O_DIRECT reads): [`KiocbCompletion::completed`] runs in any of them.
//!
//! Errors of the submission are SUBMIT's, in fs/aio.c's order: the I/O priority (EPERM, EINVAL),
//! the `RWF_*` flags (EOPNOTSUPP, EINVAL, EPERM), the file's mode (EBADF) and operations
//! (EINVAL), the user buffers (EFAULT, EINVAL), `rw_verify_area()`. What the file system says,
//! a bad buffer's EFAULT included, is the event's `res`. Not cancellable (cancel says EINVAL).

use core::sync::atomic::{AtomicI64, Ordering};
use kernel::{
    impl_has_work, new_work,
    prelude::*,
    sync::Arc,
    workqueue::{Work, WorkItem},
};

use crate::{
    context::request::Completion,
    context::{Context, InFlight},
    kapi::cred,
    kapi::file::FileRef,
    kapi::kiocb::{self, Direction, HasKiocb, Issued, Kiocb, KiocbCompletion, Setup},
    kapi::sys,
};

/// A read or write the file system has been (or is being) given.
///
/// Once issued, the request has two owners, as fs/aio.c's `aio_kiocb` has two references: the
/// file system, until it completes the request ([`KiocbCompletion::completed`]), and the
/// submitter, until `read_iter`/`write_iter` has returned — the file system may complete the
/// request (from the disk's interrupt, say) before its `read_iter` returns and still touch the
/// kiocb and the file on its way out (ext4's `file_accessed()`). Both are references of its
/// `Arc`; whichever lets go last posts the event ([`RwRequest::put`]).
///
/// The request is then dropped — its file put, then the request ended ([`InFlight`], its last
/// field) — in process context: at once in a user task, else (the disk's interrupt, a file
/// system's workqueue) on the module's workqueue, where the file is put synchronously
/// (`FileRef`), so that destroy, and an address space's death, return only after every file of
/// their requests has been released.
///
/// # Invariants
///
/// `kiocb` is prepared for `file`, which the request holds until it is freed.
#[pin_data]
pub(crate) struct RwRequest {
    #[pin]
    kiocb: Kiocb<RwRequest>,
    /// Where a request completed outside a user task is dropped.
    #[pin]
    work: Work<RwRequest>,
    completion: Completion,
    file: FileRef,
    /// What the file system said, for the event.
    res: AtomicI64,
    /// Last: the request ends once everything before it is dropped.
    in_flight: InFlight,
}

impl_has_work! {
    impl HasWork<Self> for RwRequest { self.work }
}

impl WorkItem for RwRequest {
    type Pointer = Arc<RwRequest>;

    /// Drops a request completed outside a user task (its file is put synchronously here).
    fn run(this: Arc<RwRequest>) {
        drop(this);
    }
}

// SAFETY: `kiocb` is a field of type `Kiocb<RwRequest>`.
unsafe impl HasKiocb for RwRequest {
    const OFFSET: usize = core::mem::offset_of!(RwRequest, kiocb);
}

impl KiocbCompletion for RwRequest {
    /// The file system is done with the request, with `res` (a byte count or a negative errno):
    /// the write's freeze protection is given back at once (fs/aio.c's `aio_complete_rw()`),
    /// and the file system lets go. Any context, hard IRQ included.
    fn completed(this: Arc<Self>, res: i64) {
        this.kiocb.end_write();
        this.res.store(res, Ordering::Relaxed);
        Self::put(this);
    }
}

/// The iocb's fields a read or write uses.
pub(crate) struct RwArgs {
    pub(crate) direction: Direction,
    pub(crate) vectored: bool,
    pub(crate) buf: u64,
    pub(crate) nbytes: u64,
    pub(crate) setup: Setup,
}

impl RwArgs {
    /// The arguments of `iocb`, a read or write; checks `IOCB_FLAG_IOPRIO`'s priority as
    /// `ioprio_check_cap()` does (EPERM, EINVAL) or takes the task's.
    pub(crate) fn new(iocb: &sys::iocb, direction: Direction, vectored: bool) -> Result<Self> {
        let ioprio = if iocb.aio_flags & sys::IOCB_FLAG_IOPRIO != 0 {
            check_ioprio(iocb.aio_reqprio)?;
            iocb.aio_reqprio as u16
        } else {
            kiocb::current_ioprio()
        };
        Ok(Self {
            direction,
            vectored,
            buf: iocb.aio_buf,
            nbytes: iocb.aio_nbytes,
            setup: Setup {
                pos: iocb.aio_offset,
                eventfd: iocb.aio_flags & sys::IOCB_FLAG_RESFD != 0,
                ioprio,
                rw_flags: iocb.aio_rw_flags,
            },
        })
    }
}

/// `ioprio_check_cap()` of 7.3 (block/ioprio.c, not exported): a real-time class needs
/// `CAP_SYS_ADMIN` or `CAP_SYS_NICE` (EPERM); the class must exist and its level be in range
/// (EINVAL).
fn check_ioprio(ioprio: i16) -> Result {
    const CLASS_NONE: u32 = 0;
    const CLASS_RT: u32 = 1;
    const CLASS_BE: u32 = 2;
    const CLASS_IDLE: u32 = 3;
    let ioprio = u32::from(ioprio as u16);
    let class = (ioprio >> sys::IOPRIO_CLASS_SHIFT) & sys::IOPRIO_CLASS_MASK;
    let level = ioprio & sys::IOPRIO_LEVEL_MASK;
    match class {
        CLASS_RT | CLASS_BE => {
            // Administrator first, as the kernel does, to spare a needless denial in the audit
            // log of a task that has it.
            if class == CLASS_RT
                && !cred::capable(sys::CAP_SYS_ADMIN)
                && !cred::capable(sys::CAP_SYS_NICE)
            {
                return Err(EPERM);
            }
            if level >= sys::IOPRIO_NR_LEVELS {
                return Err(EINVAL);
            }
        }
        CLASS_IDLE => {}
        CLASS_NONE if level == 0 => {}
        _ => return Err(EINVAL),
    }
    Ok(())
}

impl RwRequest {
    /// Submits a read or write of `ctx` on `file` (fs/aio.c's `aio_read()`/`aio_write()`):
    /// checks it, then hands it to the file system, which completes it now or later.
    #[inline(never)]
    pub(crate) fn submit(
        ctx: &Arc<Context>,
        file: FileRef,
        completion: Completion,
        args: &RwArgs,
    ) -> Result {
        let in_flight = ctx.begin()?;
        let req = Arc::pin_init(
            pin_init!(RwRequest {
                kiocb: Kiocb::uninit(),
                work <- new_work!("rust_aio::RwRequest"),
                completion,
                file,
                res: AtomicI64::new(0),
                in_flight,
            }),
            GFP_KERNEL,
        )
        .map_err(|_| EAGAIN)?;
        // INVARIANT: Prepared for the file the request holds.
        req.kiocb.prep(&req.file, &args.setup, args.direction)?;
        kiocb::check_file(&req.file, args.direction)?;
        let issued = kiocb::with_user_iter(
            args.direction,
            args.buf,
            args.nbytes,
            args.vectored,
            |iter| -> Result<Issued<RwRequest>> {
                kiocb::verify_area(&req.file, args.direction, &req.kiocb, iter.count())?;
                if args.direction == Direction::Write {
                    req.kiocb.start_write();
                }
                // SAFETY: The kiocb is the request's, prepared for its file, and
                // `check_file()` passed; the iterator covers our caller's memory.
                Ok(unsafe { kiocb::issue(&req, &req.file, args.direction, iter) })
            },
        )??;
        if let Issued::Done(fs_ref, ret) = issued {
            // The file system did not queue the request: its completion is ours to make.
            Self::completed(fs_ref, restart_to_eintr(ret));
        }
        // The submitter lets go.
        Self::put(req);
        Ok(())
    }

    /// One owner lets go; the last one (fs/aio.c's `iocb_put()`) posts the event and drops the
    /// request (see the type's documentation). Any context.
    fn put(this: Arc<Self>) {
        // The last owner sees what the others did (`res`, the kiocb): `refcount_dec_and_test()`
        // orders them.
        let Some(req) = Arc::into_unique_or_drop(this) else {
            return;
        };
        req.in_flight
            .ctx()
            .post(&req.completion, Some(req.res.load(Ordering::Relaxed)));
        if crate::kapi::task::in_user_task() {
            drop(req);
        } else {
            let wq = req.in_flight.ctx().shared().workqueue();
            // A request is queued once, when its last owner lets go: it cannot be queued already.
            // Were it handed back, leaking it beats dropping it here (perhaps in hard IRQ).
            if let Err(req) = wq.enqueue(Arc::from(req)) {
                core::mem::forget(req);
            }
        }
    }
}

/// A restart error cannot restart one request of many: fs/aio.c's `aio_rw_done()` makes it
/// EINTR.
fn restart_to_eintr(ret: isize) -> i64 {
    const RESTARTS: [u32; 4] = [
        sys::ERESTARTSYS,
        sys::ERESTARTNOINTR,
        sys::ERESTARTNOHAND,
        sys::ERESTART_RESTARTBLOCK,
    ];
    if RESTARTS.iter().any(|&e| ret == -(e as isize)) {
        -i64::from(sys::EINTR)
    } else {
        ret as i64
    }
}
