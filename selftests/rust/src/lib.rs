// SPDX-License-Identifier: GPL-2.0

//! User-space side of rust_aio for the tests, the demo and the benchmarks: the ABI (generated
//! from `include/uapi/rust_aio.h` by bindgen), the ioctls as the AIO calls they mirror, reaping
//! from the mapped ring as libaio does, and a small TAP harness.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, AtomicU32, Ordering};

#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    clippy::missing_safety_doc
)]
pub mod uapi {
    include!(env!("RUST_AIO_UAPI_RS"));
}

pub use uapi::{io_event, iocb};

pub mod numa;
pub mod traffic;

pub const DEVICE: &str = "/dev/rust_aio";
pub const DEFAULT_KO: &str = "/lib/modules/rust_aio.ko";
pub const IOCB_CMD_NOOP: u16 = uapi::IOCB_CMD_NOOP as u16;
pub const CMD_TIMER: u16 = uapi::RUST_AIO_CMD_TIMER as u16;
pub const CMD_WORK: u16 = uapi::RUST_AIO_CMD_WORK as u16;

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

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// A raw ioctl: the tests also pass bad pointers on purpose.
    pub fn ioctl(&self, cmd: u32, arg: usize) -> SysResult {
        // SAFETY: The kernel validates `arg`; a bad one is an error, not memory corruption.
        sys_result(unsafe { libc::ioctl(self.fd(), cmd as _, arg) } as libc::c_long)
    }

    pub fn version(&self) -> Result<u32, i32> {
        let mut version = 0u32;
        self.ioctl(
            uapi::RUST_AIO_IOC_VERSION,
            &mut version as *mut u32 as usize,
        )?;
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
        self.ioctl(uapi::RUST_AIO_IOC_SETUP, &mut setup as *mut _ as usize)?;
        Ok(setup.ctx)
    }

    /// `io_submit()` of the iocbs at `iocbpp`.
    pub fn submit_raw(&self, ctx: u64, nr: i64, iocbpp: usize) -> SysResult {
        let submit = uapi::rust_aio_submit {
            ctx,
            nr,
            iocbpp: iocbpp as u64,
        };
        self.ioctl(uapi::RUST_AIO_IOC_SUBMIT, &submit as *const _ as usize)
    }

    pub fn submit(&self, ctx: u64, iocbs: &[*const iocb]) -> SysResult {
        self.submit_raw(ctx, iocbs.len() as i64, iocbs.as_ptr() as usize)
    }

    /// `io_getevents()`; `timeout` None waits for ever.
    pub fn getevents(
        &self,
        ctx: u64,
        min_nr: i64,
        events: &mut [io_event],
        timeout: Option<(i64, i64)>,
    ) -> SysResult {
        self.getevents_raw(
            ctx,
            min_nr,
            events.len() as i64,
            events.as_mut_ptr() as usize,
            timeout,
        )
    }

    pub fn getevents_raw(
        &self,
        ctx: u64,
        min_nr: i64,
        nr: i64,
        events: usize,
        timeout: Option<(i64, i64)>,
    ) -> SysResult {
        let ts = timeout.map(|(tv_sec, tv_nsec)| uapi::__kernel_timespec { tv_sec, tv_nsec });
        let get = uapi::rust_aio_getevents {
            ctx,
            min_nr,
            nr,
            events: events as u64,
            timeout: ts.as_ref().map_or(0, |t| t as *const _ as u64),
        };
        self.ioctl(uapi::RUST_AIO_IOC_GETEVENTS, &get as *const _ as usize)
    }

    /// `io_cancel()`.
    pub fn cancel(&self, ctx: u64, iocb: *const iocb) -> SysResult {
        let cancel = uapi::rust_aio_cancel {
            ctx,
            iocb: iocb as u64,
            result: 0,
        };
        self.ioctl(uapi::RUST_AIO_IOC_CANCEL, &cancel as *const _ as usize)
    }

    /// `io_destroy()`.
    pub fn destroy(&self, ctx: u64) -> SysResult {
        let id = ctx;
        self.ioctl(uapi::RUST_AIO_IOC_DESTROY, &id as *const u64 as usize)
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
        Self { base: ctx as usize }
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

    /// Reaps up to `out.len()` events without a system call, as libaio's `user_getevents()`
    /// does: the caller must be the ring's only consumer while it runs.
    pub fn reap(&self, out: &mut Vec<io_event>, max: usize) -> usize {
        let nr = self.nr();
        let mut head = self.head();
        // Acquire: the events up to `tail` are visible once `tail` is (the kernel's smp_wmb()).
        let tail = self.word(3).load(Ordering::Acquire);
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

/// A minimal TAP producer in the style of the kselftest harness.
pub struct Tap {
    count: usize,
    failed: usize,
}

impl Default for Tap {
    fn default() -> Self {
        Self::new()
    }
}

impl Tap {
    pub fn new() -> Self {
        println!("TAP version 13");
        Self {
            count: 0,
            failed: 0,
        }
    }

    /// Runs one test: `Ok(())` passes, `Err(message)` fails, `Ok` of a skip message skips.
    pub fn run(&mut self, name: &str, test: impl FnOnce() -> Result<Outcome, String>) {
        self.count += 1;
        println!("#  RUN  {name}");
        let start = std::time::Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(test))
            .unwrap_or_else(|_| Err("panicked".into()));
        let ms = start.elapsed().as_millis();
        match result {
            Ok(Outcome::Pass) => println!("ok {} {name} # {ms} ms", self.count),
            Ok(Outcome::Skip(why)) => println!("ok {} {name} # SKIP {why}", self.count),
            Err(message) => {
                self.failed += 1;
                for line in message.lines() {
                    println!("# {line}");
                }
                println!("not ok {} {name}", self.count);
            }
        }
    }

    /// Prints the plan and exits with the kselftest convention (1 if anything failed).
    pub fn finish(self) -> ! {
        println!("1..{}", self.count);
        println!(
            "# Totals: pass:{} fail:{}",
            self.count - self.failed,
            self.failed
        );
        std::process::exit(if self.failed > 0 { 1 } else { 0 });
    }
}

pub enum Outcome {
    Pass,
    Skip(String),
}

/// `ensure!(cond, "format", args)`: fail the test with a message unless `cond`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!("{}:{}: {}", file!(), line!(), format!($($arg)+)));
        }
    };
}

/// `ensure_eq!(expected, actual)`: fail with both values unless equal.
#[macro_export]
macro_rules! ensure_eq {
    ($expected:expr, $actual:expr) => {{
        let (e, a) = (&$expected, &$actual);
        if e != a {
            return Err(format!(
                "{}:{}: expected {} == {:?}, got {:?}",
                file!(),
                line!(),
                stringify!($actual),
                e,
                a
            ));
        }
    }};
    ($expected:expr, $actual:expr, $($arg:tt)+) => {{
        let (e, a) = (&$expected, &$actual);
        if e != a {
            return Err(format!(
                "{}:{}: expected {} == {:?}, got {:?}: {}",
                file!(),
                line!(),
                stringify!($actual),
                e,
                a,
                format!($($arg)+)
            ));
        }
    }};
}

/// Seconds the stress phases run: `STRESS_SECONDS` from the environment, or `default`.
pub fn stress_seconds(default: u64) -> u64 {
    std::env::var("STRESS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s| s > 0)
        .unwrap_or(default)
}
