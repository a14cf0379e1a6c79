// SPDX-License-Identifier: GPL-2.0

//! What the tests, the demo and the soak share: the user-space crate's raw layer (the ABI, the
//! ioctls as the AIO calls they mirror, reaping from the mapped ring as libaio does: `rust-aio`,
//! in `userspace/`), NUMA helpers, the traffic generator, and a small TAP harness.

pub use rust_aio::raw::{errno, make_iocb, RingView, SysResult, DEVICE, HEADER_WORDS};
pub use rust_aio::uapi;
pub use uapi::{io_event, iocb};

/// `rust_aio::raw::Device` for the tests: the same calls, safe to write. Not sound in general —
/// the tests hand the kernel bad, foreign and stale addresses on purpose, and check that it
/// refuses them or that the test itself notices; nothing outside the tests should copy this.
pub struct Device(rust_aio::raw::Device);

impl Device {
    pub fn open() -> std::io::Result<Self> {
        rust_aio::raw::Device::open().map(Self)
    }
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.0.fd()
    }
    pub fn ioctl(&self, cmd: u32, arg: usize) -> SysResult {
        // SAFETY: Test-only (see the type).
        unsafe { self.0.ioctl(cmd, arg) }
    }
    pub fn version(&self) -> Result<u32, i32> {
        self.0.version()
    }
    pub fn setup(&self, nr_events: u32) -> Result<u64, i32> {
        self.0.setup(nr_events)
    }
    pub fn setup_flags(&self, nr_events: u32, flags: u32) -> Result<u64, i32> {
        self.0.setup_flags(nr_events, flags)
    }
    pub fn submit_raw(&self, ctx: u64, nr: i64, iocbpp: usize) -> SysResult {
        // SAFETY: Test-only (see the type).
        unsafe { self.0.submit_raw(ctx, nr, iocbpp) }
    }
    pub fn submit(&self, ctx: u64, iocbs: &[*const iocb]) -> SysResult {
        // SAFETY: Test-only (see the type).
        unsafe { self.0.submit(ctx, iocbs) }
    }
    pub fn getevents(
        &self,
        ctx: u64,
        min_nr: i64,
        events: &mut [io_event],
        timeout: Option<(i64, i64)>,
    ) -> SysResult {
        self.0.getevents(ctx, min_nr, events, timeout)
    }
    pub fn getevents_raw(
        &self,
        ctx: u64,
        min_nr: i64,
        nr: i64,
        events: usize,
        timeout: Option<(i64, i64)>,
    ) -> SysResult {
        // SAFETY: Test-only (see the type).
        unsafe { self.0.getevents_raw(ctx, min_nr, nr, events, timeout) }
    }
    pub fn cancel(&self, ctx: u64, iocb: *const iocb) -> SysResult {
        self.0.cancel(ctx, iocb)
    }
    pub fn destroy(&self, ctx: u64) -> SysResult {
        // SAFETY: Test-only (see the type).
        unsafe { self.0.destroy(ctx) }
    }
}

pub mod numa;
pub mod traffic;

pub const DEFAULT_KO: &str = "/lib/modules/rust_aio.ko";
pub const IOCB_CMD_NOOP: u16 = uapi::IOCB_CMD_NOOP as u16;
pub const CMD_TIMER: u16 = uapi::RUST_AIO_CMD_TIMER as u16;
pub const CMD_WORK: u16 = uapi::RUST_AIO_CMD_WORK as u16;

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

/// A stress phase's time: it runs as many rounds as fit in its budget and at least its stated
/// minimum, so that a slower machine does fewer rounds in about the same time instead of running
/// into a fixed limit. `STRESS_SECONDS` makes every budget at least that long.
pub struct Budget {
    start: std::time::Instant,
    seconds: std::time::Duration,
}

impl Budget {
    /// A budget of `seconds` (or `STRESS_SECONDS`, if longer), starting now.
    pub fn new(seconds: u64) -> Self {
        Self {
            start: std::time::Instant::now(),
            seconds: std::time::Duration::from_secs(seconds.max(stress_seconds(0))),
        }
    }

    /// Whether time is left: go on while it is, or while the minimum is not reached.
    pub fn left(&self) -> bool {
        self.start.elapsed() < self.seconds
    }

    pub fn elapsed(&self) -> std::time::Duration {
        self.start.elapsed()
    }
}
