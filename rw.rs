// SPDX-License-Identifier: GPL-2.0

//! Reads and writes: `IOCB_CMD_PREAD`, `PWRITE`, `PREADV` and `PWRITEV` (fs/aio.c's
//! `aio_read()`/`aio_write()`). The file system runs the request in the submitter's context
//! (`read_iter`/`write_iter` on a kiocb of the request's) and completes it there (tmpfs, buffered
//! I/O), from a workqueue (O_DIRECT writes) or from the block layer's completion interrupt
//! (O_DIRECT reads): [`RwRequest::complete`] runs in any of them.
//!
//! Errors of the submission are SUBMIT's, in fs/aio.c's order: the I/O priority (EPERM, EINVAL),
//! the `RWF_*` flags (EOPNOTSUPP, EINVAL, EPERM), the file's mode (EBADF) and operations
//! (EINVAL), the user buffers (EFAULT, EINVAL), `rw_verify_area()`. What the file system says,
//! a bad buffer's EFAULT included, is the event's `res`. Not cancellable (cancel says EINVAL).

use core::pin::Pin;
use kernel::{container_of, ffi::c_long, prelude::*, sync::Arc};

use crate::{
    context::Context,
    cred,
    fs::FileRef,
    kiocb::{self, Direction, Kiocb, Setup},
    request::Completion,
    sys,
};

/// A read or write the file system has been (or is being) given.
///
/// # Invariants
///
/// `kiocb` is prepared for `file`, which the request holds until it is completed; from the
/// moment it is issued the request is owned by the file system, which gives it back through
/// [`rw_complete`].
#[pin_data]
pub(crate) struct RwRequest {
    #[pin]
    kiocb: Kiocb,
    ctx: Arc<Context>,
    completion: Completion,
    file: FileRef,
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

/// `ioprio_check_cap()` of 6.12 (block/ioprio.c, not exported): a real-time class needs
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
    pub(crate) fn submit(
        ctx: &Arc<Context>,
        file: FileRef,
        completion: Completion,
        args: &RwArgs,
    ) -> Result {
        let req = KBox::pin_init(
            pin_init!(RwRequest {
                kiocb: Kiocb::uninit(),
                ctx: ctx.clone(),
                completion,
                file,
            }),
            GFP_KERNEL,
        )
        .map_err(|_| EAGAIN)?;
        // INVARIANT: Prepared for the file the request holds.
        req.kiocb
            .prep(&req.file, &args.setup, args.direction, rw_complete)?;
        kiocb::check_file(&req.file, args.direction)?;
        kiocb::with_user_iter(
            args.direction,
            args.buf,
            args.nbytes,
            args.vectored,
            |iter| {
                kiocb::verify_area(&req.file, args.direction, &req.kiocb, iter.count())?;
                ctx.begin_request()?;
                if args.direction == Direction::Write {
                    req.kiocb.start_write();
                }
                // From here the file system owns the request (type invariant).
                // SAFETY: Not moved out of: the pointer only goes back to `rw_complete`.
                let req = KBox::into_raw(unsafe { Pin::into_inner_unchecked(req) });
                // SAFETY: `req` is alive until it is completed.
                let (file, kiocb) = unsafe { (&(*req).file, (*req).kiocb.as_ptr()) };
                // SAFETY: The kiocb was prepared for `file` and `check_file()` passed; the
                // request lives until it is completed; the iterator covers our caller's memory.
                let ret = unsafe { kiocb::issue(file, args.direction, kiocb, iter) };
                if ret != -(sys::EIOCBQUEUED as isize) {
                    // SAFETY: The file system did not queue the request, so it is still ours,
                    // and this completes it once.
                    unsafe { rw_complete(kiocb, restart_to_eintr(ret) as c_long) };
                }
                Ok(())
            },
        )?
    }

    /// The request is done with `res` (a byte count or a negative errno). Any context, hard IRQ
    /// included. As fs/aio.c: the write's freeze protection is given back, the event is posted,
    /// the file reference is dropped, and only then the request stops counting as in flight
    /// (so destroy returns only after every file of its requests has been put).
    fn complete(self: Pin<KBox<Self>>, res: i64) {
        self.kiocb.end_write();
        let ctx = self.ctx.clone();
        ctx.post(&self.completion, Some(res));
        drop(self);
        ctx.end_request();
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

/// The kiocb's `ki_complete`: the file system finished a request it queued (or the submitter
/// one it did not). Any context, hard IRQ included.
///
/// # Safety
///
/// `kiocb` must be the kiocb of a `RwRequest` that was issued and not completed yet; the call
/// completes it.
unsafe extern "C" fn rw_complete(kiocb: *mut sys::kiocb, res: c_long) {
    // SAFETY: The kiocb is the `kiocb` field of an issued request, which `submit` leaked from a
    // pinned box; it comes back once, here.
    let req = unsafe {
        let kiocb = Kiocb::from_raw(kiocb) as *const Kiocb;
        Pin::new_unchecked(KBox::from_raw(
            container_of!(kiocb, RwRequest, kiocb).cast_mut(),
        ))
    };
    req.complete(res as i64);
}
