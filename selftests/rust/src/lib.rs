// SPDX-License-Identifier: GPL-2.0

//! What the tests, the demo and the soak share: the user-space crate's raw layer (the ABI, the
//! ioctls as the AIO calls they mirror, reaping from the mapped ring as libaio does: `rust-aio`,
//! in `userspace/`), NUMA helpers, the traffic generator, and a small TAP harness.

pub use rust_aio::raw::{errno, make_iocb, Device, RingView, SysResult, DEVICE, HEADER_WORDS};
pub use rust_aio::uapi;
pub use uapi::{io_event, iocb};

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
