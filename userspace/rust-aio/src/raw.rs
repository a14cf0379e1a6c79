// SPDX-License-Identifier: GPL-2.0

//! The device's ioctls as the AIO system calls they mirror, without types in the way: errors are
//! errno numbers, pointers are addresses (tests pass bad ones on purpose), and the ring is read
//! with the barriers fs/aio.c pairs with. The typed API (the crate root) is built on this;
//! `libaio.so.1` (userspace/libaio) is too.
//!
//! The calls that hand the kernel an address it may write to, or that unmap a ring, are `unsafe`:
//! a valid but wrong address is memory corruption, not an error.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, AtomicU32, Ordering};

use crate::uapi::{self, io_event, iocb};

/// Where the module's device is.
pub const DEVICE: &str = "/dev/rust_aio";

/// The last OS error as an errno number.
pub fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `Ok(return value)` or `Err(errno)`, as a system call reports it.
pub type SysResult = Result<i64, i32>;

fn sys_result(ret: libc::c_long) -> SysResult {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

/// An open `/dev/rust_aio`.
pub struct Device {
    fd: OwnedFd,
}

impl Device {
    pub fn open() -> io::Result<Self> {
        let path = CString::new(DEVICE).unwrap();
        // SAFETY: `path` is a valid C string.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nobody else.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// [`Device::open`], with the descriptor moved to `floor` or above when the limit allows
    /// (libaio's drop-in keeps it out of the way of programs that reuse low descriptors).
    pub fn open_above(floor: RawFd) -> io::Result<Self> {
        let dev = Self::open()?;
        // SAFETY: Plain fcntl on our descriptor; a new one is ours alone.
        let high = unsafe { libc::fcntl(dev.fd(), libc::F_DUPFD_CLOEXEC, floor) };
        if high < 0 {
            return Ok(dev);
        }
        // SAFETY: `high` was just made and is owned by nobody else; `dev`'s is closed on drop.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(high) },
        })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// A raw ioctl.
    ///
    /// # Safety
    ///
    /// What `arg` points to must be what `cmd` reads and writes, and every address in it valid
    /// for what the kernel does with it (an unmapped one is only an error).
    pub unsafe fn ioctl(&self, cmd: u32, arg: usize) -> SysResult {
        // SAFETY: The caller's guarantee.
        sys_result(unsafe { libc::ioctl(self.fd(), cmd as _, arg) } as libc::c_long)
    }

    pub fn version(&self) -> Result<u32, i32> {
        let mut version = 0u32;
        // SAFETY: VERSION writes one u32, ours.
        unsafe {
            self.ioctl(
                uapi::RUST_AIO_IOC_VERSION,
                &mut version as *mut u32 as usize,
            )
        }?;
        Ok(version)
    }

    /// `io_setup()`: the new context's id (its ring's address).
    pub fn setup(&self, nr_events: u32) -> Result<u64, i32> {
        self.setup_flags(nr_events, 0)
    }

    pub fn setup_flags(&self, nr_events: u32, flags: u32) -> Result<u64, i32> {
        let mut setup = uapi::rust_aio_setup {
            nr_events,
            flags,
            ctx: 0,
        };
        // SAFETY: SETUP reads and writes `setup`, ours, and maps a new ring where nothing was.
        unsafe { self.ioctl(uapi::RUST_AIO_IOC_SETUP, &mut setup as *mut _ as usize) }?;
        Ok(setup.ctx)
    }

    /// `io_setup()` as the system call takes it: the kernel reads the `aio_context_t` at `ctxp`
    /// (`EFAULT`; `EINVAL` unless it is 0) and writes the new context's id there (`EFAULT` if it
    /// cannot, and the context is destroyed).
    ///
    /// # Safety
    ///
    /// `ctxp`, if mapped and writable, must be the caller's `aio_context_t`: it is written.
    pub unsafe fn io_setup(&self, nr_events: u32, ctxp: usize) -> SysResult {
        let setup = uapi::rust_aio_io_setup {
            nr_events,
            flags: 0,
            ctxp: ctxp as u64,
        };
        // SAFETY: IO_SETUP reads `setup`, ours; the caller's guarantee covers `ctxp`.
        unsafe { self.ioctl(uapi::RUST_AIO_IOC_IO_SETUP, &setup as *const _ as usize) }
    }

    /// `io_submit()` of the iocbs at `iocbpp`.
    ///
    /// # Safety
    ///
    /// Each iocb is written (`aio_key`) and its request reads and writes the memory it names
    /// until its event is reaped: all of it must be valid for that, and stay so.
    pub unsafe fn submit_raw(&self, ctx: u64, nr: i64, iocbpp: usize) -> SysResult {
        let submit = uapi::rust_aio_submit {
            ctx,
            nr,
            iocbpp: iocbpp as u64,
        };
        // SAFETY: The caller's guarantee.
        unsafe { self.ioctl(uapi::RUST_AIO_IOC_SUBMIT, &submit as *const _ as usize) }
    }

    /// `io_submit()` of `iocbs`.
    ///
    /// # Safety
    ///
    /// As [`Device::submit_raw`].
    pub unsafe fn submit(&self, ctx: u64, iocbs: &[*const iocb]) -> SysResult {
        // SAFETY: The caller's guarantee.
        unsafe { self.submit_raw(ctx, iocbs.len() as i64, iocbs.as_ptr() as usize) }
    }

    /// `io_getevents()`; `timeout` None waits for ever.
    pub fn getevents(
        &self,
        ctx: u64,
        min_nr: i64,
        events: &mut [io_event],
        timeout: Option<(i64, i64)>,
    ) -> SysResult {
        // SAFETY: The kernel writes at most `events.len()` events into `events`.
        unsafe {
            self.getevents_raw(
                ctx,
                min_nr,
                events.len() as i64,
                events.as_mut_ptr() as usize,
                timeout,
            )
        }
    }

    /// `io_getevents()` into `nr` events at `events`.
    ///
    /// # Safety
    ///
    /// `events` must be valid for writing `nr` events (an unmapped address is only an error).
    pub unsafe fn getevents_raw(
        &self,
        ctx: u64,
        min_nr: i64,
        nr: i64,
        events: usize,
        timeout: Option<(i64, i64)>,
    ) -> SysResult {
        let ts = timeout.map(|(tv_sec, tv_nsec)| uapi::__kernel_timespec { tv_sec, tv_nsec });
        let get = getevents_args(ctx, min_nr, nr, events, &ts);
        // SAFETY: The caller's guarantee.
        unsafe { self.ioctl(uapi::RUST_AIO_IOC_GETEVENTS, &get as *const _ as usize) }
    }

    /// `io_getevents()` as the system call takes it: the timeout at user address `timeout` (a
    /// `struct __kernel_timespec`, which the kernel reads: `EFAULT`; 0 waits for ever).
    ///
    /// # Safety
    ///
    /// As [`Device::getevents_raw`].
    pub unsafe fn getevents_at(
        &self,
        ctx: u64,
        min_nr: i64,
        nr: i64,
        events: usize,
        timeout: usize,
    ) -> SysResult {
        let get = uapi::rust_aio_getevents {
            ctx,
            min_nr,
            nr,
            events: events as u64,
            timeout: timeout as u64,
        };
        // SAFETY: The caller's guarantee.
        unsafe { self.ioctl(uapi::RUST_AIO_IOC_GETEVENTS, &get as *const _ as usize) }
    }

    /// `io_pgetevents()`: [`Device::getevents_raw`] with the signal mask at `sigmask` (a
    /// `sigset_t`; 0: none) in force while it waits.
    ///
    /// # Safety
    ///
    /// As [`Device::getevents_raw`].
    pub unsafe fn pgetevents_raw(
        &self,
        ctx: u64,
        min_nr: i64,
        nr: i64,
        events: usize,
        timeout: Option<(i64, i64)>,
        sigmask: usize,
    ) -> SysResult {
        let ts = timeout.map(|(tv_sec, tv_nsec)| uapi::__kernel_timespec { tv_sec, tv_nsec });
        let at = ts.as_ref().map_or(0, |t| t as *const _ as usize);
        // SAFETY: The caller's guarantee; `ts` outlives the call.
        unsafe { self.pgetevents_at(ctx, min_nr, nr, events, at, sigmask) }
    }

    /// [`Device::pgetevents_raw`] with the timeout at user address `timeout`, as
    /// [`Device::getevents_at`].
    ///
    /// # Safety
    ///
    /// As [`Device::getevents_raw`].
    pub unsafe fn pgetevents_at(
        &self,
        ctx: u64,
        min_nr: i64,
        nr: i64,
        events: usize,
        timeout: usize,
        sigmask: usize,
    ) -> SysResult {
        let pget = uapi::rust_aio_pgetevents {
            get: uapi::rust_aio_getevents {
                ctx,
                min_nr,
                nr,
                events: events as u64,
                timeout: timeout as u64,
            },
            sigmask: sigmask as u64,
            // The kernel's sigset_t (_NSIG / 8), which glibc's is larger than.
            sigsetsize: 8,
        };
        // SAFETY: The caller's guarantee.
        unsafe { self.ioctl(uapi::RUST_AIO_IOC_PGETEVENTS, &pget as *const _ as usize) }
    }

    /// `io_cancel()`.
    pub fn cancel(&self, ctx: u64, iocb: *const iocb) -> SysResult {
        let cancel = uapi::rust_aio_cancel {
            ctx,
            iocb: iocb as u64,
            result: 0,
        };
        // SAFETY: CANCEL only reads the iocb's `aio_key` (an error if it cannot).
        unsafe { self.ioctl(uapi::RUST_AIO_IOC_CANCEL, &cancel as *const _ as usize) }
    }

    /// `io_destroy()`: the context's ring is unmapped.
    ///
    /// # Safety
    ///
    /// Nothing may use the ring afterwards (a [`RingView`] of it, a [`crate::Context`]).
    pub unsafe fn destroy(&self, ctx: u64) -> SysResult {
        let id = ctx;
        // SAFETY: DESTROY reads `id`; the caller's guarantee covers the unmapping.
        unsafe { self.ioctl(uapi::RUST_AIO_IOC_DESTROY, &id as *const u64 as usize) }
    }
}

/// GETEVENTS' argument; `ts` must outlive its use.
fn getevents_args(
    ctx: u64,
    min_nr: i64,
    nr: i64,
    events: usize,
    ts: &Option<uapi::__kernel_timespec>,
) -> uapi::rust_aio_getevents {
    uapi::rust_aio_getevents {
        ctx,
        min_nr,
        nr,
        events: events as u64,
        timeout: ts.as_ref().map_or(0, |t| t as *const _ as u64),
    }
}

/// An iocb for one of the module's operations.
pub fn make_iocb(opcode: u16, data: u64, nbytes: u64, offset_ns: i64) -> iocb {
    iocb {
        aio_data: data,
        aio_lio_opcode: opcode,
        aio_nbytes: nbytes,
        aio_offset: offset_ns,
        ..Default::default()
    }
}

/// The ring of a context, seen through the caller's mapping (the context id is its address).
///
/// The header lives in memory the kernel writes concurrently, so it is read with atomics, with
/// the barriers libaio and fs/aio.c pair with.
#[derive(Clone, Copy)]
pub struct RingView {
    base: usize,
    /// The ring's slots as the header said when the view was made: the header is user memory,
    /// and a later `nr` (or `head`) past the mapping must not send a reap out of it.
    slots: u32,
}

// SAFETY: A `RingView` is an address; every access to the ring goes through atomics.
unsafe impl Send for RingView {}
// SAFETY: See above.
unsafe impl Sync for RingView {}

pub const HEADER_WORDS: [&str; 8] = [
    "id",
    "nr",
    "head",
    "tail",
    "magic",
    "compat_features",
    "incompat_features",
    "header_length",
];

impl RingView {
    /// # Safety
    ///
    /// `ctx` must be the id of a live context of this process whose ring is mapped.
    pub unsafe fn new(ctx: u64) -> Self {
        // SAFETY: The header is mapped (the caller's guarantee).
        let slots = unsafe { &*((ctx as usize + 4) as *const AtomicU32) }.load(Ordering::Relaxed);
        Self {
            base: ctx as usize,
            slots,
        }
    }

    pub fn word(&self, index: usize) -> &AtomicU32 {
        assert!(index < 8);
        // SAFETY: The header's eight u32 words are mapped while the ring is (`new`'s contract).
        unsafe { &*((self.base + 4 * index) as *const AtomicU32) }
    }

    pub fn nr(&self) -> u32 {
        self.word(1).load(Ordering::Relaxed)
    }
    pub fn head(&self) -> u32 {
        self.word(2).load(Ordering::Relaxed)
    }
    pub fn tail(&self) -> u32 {
        self.word(3).load(Ordering::Relaxed)
    }
    pub fn magic(&self) -> u32 {
        self.word(4).load(Ordering::Relaxed)
    }
    pub fn header_length(&self) -> u32 {
        self.word(7).load(Ordering::Relaxed)
    }
    pub fn set_head(&self, head: u32) {
        self.word(2).store(head, Ordering::Release);
    }

    /// Reaps up to `out.len()` events into `out` without a system call (see [`RingView::reap`]).
    pub fn reap_into(&self, out: &mut [io_event]) -> usize {
        let mut events = Vec::with_capacity(out.len());
        let n = self.reap(&mut events, out.len());
        out[..n].copy_from_slice(&events);
        n
    }

    /// Reaps up to `max` events without a system call, as fio's `user_io_getevents()` does:
    /// the caller must be the ring's only consumer while it runs.
    pub fn reap(&self, out: &mut Vec<io_event>, max: usize) -> usize {
        let nr = self.slots;
        let mut head = self.head();
        // Acquire: the events up to `tail` are visible once `tail` is (the kernel's smp_wmb()).
        let tail = self.word(3).load(Ordering::Acquire);
        if head >= nr || tail >= nr {
            // A header scribbled on: nothing can be reaped safely.
            return 0;
        }
        let mut n = 0;
        while head != tail && n < max {
            let slot = (self.base + 32 + 32 * head as usize) as *const io_event;
            // SAFETY: `head < nr` slots are mapped after the header; the kernel does not write
            // slots between head and tail.
            out.push(unsafe { slot.read_volatile() });
            head = (head + 1) % nr;
            n += 1;
        }
        if n > 0 {
            fence(Ordering::Release);
            self.set_head(head);
        }
        n
    }
}
