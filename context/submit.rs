// SPDX-License-Identifier: GPL-2.0

//! `io_submit()` of one iocb (fs/aio.c's `io_submit_one()`): the iocb read, checked in fs/aio.c's
//! order, decoded into an [`Operation`] and started as its kind of request.

use kernel::{list::ListArc, prelude::*, sync::Arc};

use crate::{
    context::{
        poll::PollRequest,
        request::{Completion, FsyncRequest, NoopBatch, TimerRequest, WorkRequest},
        rw::{RwArgs, RwRequest},
        Context,
    },
    kapi::{
        cred::Credentials, eventfd::EventFd, file::FileRef, kiocb::Direction, poll as pollwait,
    },
    kapi::{
        sys,
        uaccess::{self, UserAddr},
    },
};

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
    /// Submits `iocb`, read from user address `user_iocb` (fs/aio.c's `io_submit_one()`), with
    /// its checks in its order: reserved fields and sizes (EINVAL), a free slot (EAGAIN), the
    /// eventfd (EBADF, EINVAL), the write of `aio_key` (EFAULT), and last the operation itself
    /// (EINVAL).
    #[inline(never)]
    pub(crate) fn submit_one(
        self: &Arc<Self>,
        user_iocb: UserAddr,
        iocb: &sys::iocb,
        noops: &mut NoopBatch,
    ) -> Result {
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
        let result = self.start(iocb, user_iocb, noops);
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
        user_iocb: UserAddr,
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
                    // In order: the run so far, then this one.
                    self.complete_noops(noops);
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
                // Started under `ctx_lock`, so cancel cannot see it unstarted.
                // SAFETY: The list keeps the request alive until it is completed, which happens
                // only after its timer was stopped or has expired (`TimerRequest`).
                unsafe { req.timer.start(nanoseconds) };
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
}
