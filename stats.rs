// SPDX-License-Identifier: GPL-2.0

//! The module's counters and test knobs, in `/sys/kernel/debug/rust_aio/` (read by the tests and
//! `make bench`): the events all contexts hold (`aio_nr`), how migrations went, the
//! interrupts-off windows of the two-phase copy, and the knobs `one_phase` and `copy_delay_us`.
//! Module-wide, so that every layer above may count without naming another.

use core::{
    fmt,
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
};
use kernel::{
    c_str,
    debugfs::{Dir, File},
    prelude::*,
    uaccess::UserSliceReader,
};

/// Events all live contexts asked for, against the `max_events` parameter (fs/aio.c's
/// `aio_nr`); in debugfs as `aio_nr`.
pub(crate) static AIO_NR: AtomicU64 = AtomicU64::new(0);

/// Migration counters, shown in `/sys/kernel/debug/rust_aio/` and read by the tests.
pub(crate) struct Stats {
    /// Ring folios migrated.
    pub(crate) migrated: AtomicU64,
    /// Migrations refused with `-EAGAIN` because `ring_lock` was busy.
    pub(crate) ring_lock_busy: AtomicU64,
    /// Migrations refused with `-EINVAL` because the ring was being torn down.
    pub(crate) teardown_won: AtomicU64,
    /// Longest time, in ns, `completion_lock` was held (interrupts off) during a migration.
    pub(crate) max_irqoff_ns: AtomicU64,
    /// Sum of those times, in ns: divided by `migrated`, the mean.
    pub(crate) total_irqoff_ns: AtomicU64,
    /// Events posted from hard-IRQ context (timer requests, from their irq_work).
    pub(crate) hardirq_completions: AtomicU64,
    /// Event slots the second copy of a two-phase migration copied: completions that raced the
    /// first copy (each would have been lost without it).
    pub(crate) recopied_slots: AtomicU64,
    /// Interrupts-off windows recorded in `irqoff_samples`: the next one goes to index
    /// `irqoff_count % IRQOFF_SAMPLES`. Writable (debugfs), to start a new series.
    pub(crate) irqoff_count: AtomicU64,
}

/// How many interrupts-off windows `irqoff_samples` keeps (the latest).
const IRQOFF_SAMPLES: usize = 4096;

/// The latest interrupts-off windows, in ns (saturated at `u32::MAX`), for their distribution
/// (`make bench`). Written racily by concurrent migrations: a sample may be lost, never torn.
struct IrqOffSamples([AtomicU32; IRQOFF_SAMPLES]);

static IRQOFF: IrqOffSamples = IrqOffSamples([const { AtomicU32::new(0) }; IRQOFF_SAMPLES]);

/// Microseconds to wait between the two copies (debugfs `copy_delay_us`, writable): tests
/// widen the window in which completions race the first copy. 0 in normal use.
pub(crate) static COPY_DELAY_US: AtomicU64 = AtomicU64::new(0);

/// Set (debugfs `one_phase`, writable) to copy ring pages in one phase with interrupts off, as
/// fs/aio.c does: the benchmark's baseline for the two-phase window.
pub(crate) static ONE_PHASE: AtomicU64 = AtomicU64::new(0);

impl Stats {
    pub(crate) fn record_irqoff(&self, ns: u64, recopied: u32) {
        self.max_irqoff_ns.fetch_max(ns, Ordering::Relaxed);
        self.total_irqoff_ns.fetch_add(ns, Ordering::Relaxed);
        self.recopied_slots
            .fetch_add(u64::from(recopied), Ordering::Relaxed);
        let slot = self.irqoff_count.fetch_add(1, Ordering::Relaxed) as usize % IRQOFF_SAMPLES;
        IRQOFF.0[slot].store(u32::try_from(ns).unwrap_or(u32::MAX), Ordering::Relaxed);
    }
}

pub(crate) static STATS: Stats = Stats {
    migrated: AtomicU64::new(0),
    ring_lock_busy: AtomicU64::new(0),
    teardown_won: AtomicU64::new(0),
    max_irqoff_ns: AtomicU64::new(0),
    total_irqoff_ns: AtomicU64::new(0),
    hardirq_completions: AtomicU64::new(0),
    recopied_slots: AtomicU64::new(0),
    irqoff_count: AtomicU64::new(0),
};

/// A counter as a debugfs file shows it.
type Counter = &'static AtomicU64;

/// The debugfs directory with the counters (7.3's `kernel::debugfs`); removed, with its files,
/// when dropped.
pub(crate) struct DebugFs {
    _counters: KVec<Pin<KBox<File<Counter>>>>,
    _samples: Pin<KBox<File<&'static IrqOffSamples>>>,
    _dir: Dir,
}

/// A counter's value, as `debugfs_create_u64()` shows it.
fn show(counter: &Counter, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", counter.load(Ordering::Relaxed))
}

/// Sets a writable counter to the decimal number written.
fn store(counter: &Counter, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 24];
    let n = reader.len();
    if n > buf.len() {
        return Err(EINVAL);
    }
    reader.read_slice(&mut buf[..n])?;
    let text = core::str::from_utf8(&buf[..n]).map_err(|_| EINVAL)?;
    counter.store(text.trim().parse().map_err(|_| EINVAL)?, Ordering::Relaxed);
    Ok(())
}

/// The samples, as `debugfs_create_u32_array()` shows an array: space-separated, slot 0 first
/// (window N of a series is in slot N % [`IRQOFF_SAMPLES`]).
fn show_samples(samples: &&'static IrqOffSamples, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (i, sample) in samples.0.iter().enumerate() {
        let sep = if i + 1 == IRQOFF_SAMPLES { "\n" } else { " " };
        write!(f, "{}{sep}", sample.load(Ordering::Relaxed))?;
    }
    Ok(())
}

/// The counters' files: name, counter, writable.
static COUNTERS: [(&CStr, Counter, bool); 11] = [
    (c_str!("migrated"), &STATS.migrated, false),
    (c_str!("ring_lock_busy"), &STATS.ring_lock_busy, false),
    (c_str!("teardown_won"), &STATS.teardown_won, false),
    (c_str!("max_irqoff_ns"), &STATS.max_irqoff_ns, false),
    (c_str!("total_irqoff_ns"), &STATS.total_irqoff_ns, false),
    (
        c_str!("hardirq_completions"),
        &STATS.hardirq_completions,
        false,
    ),
    (c_str!("recopied_slots"), &STATS.recopied_slots, false),
    (c_str!("irqoff_count"), &STATS.irqoff_count, true),
    (c_str!("one_phase"), &ONE_PHASE, true),
    (c_str!("copy_delay_us"), &COPY_DELAY_US, true),
    (c_str!("aio_nr"), &AIO_NR, false),
];

/// One counter's file. Out of line, as [`DebugFs::create`]: the files are built in place on the
/// stack first, and module init's frame stays small (`scripts/check-stack`).
#[inline(never)]
fn counter_file(
    dir: &Dir,
    name: &'static CStr,
    counter: Counter,
    writable: bool,
) -> Result<Pin<KBox<File<Counter>>>> {
    if writable {
        KBox::pin_init(
            dir.read_write_callback_file(name, counter, &show, &store),
            GFP_KERNEL,
        )
    } else {
        KBox::pin_init(dir.read_callback_file(name, counter, &show), GFP_KERNEL)
    }
}

impl DebugFs {
    /// Creates `/sys/kernel/debug/rust_aio/` with one file per counter.
    #[inline(never)]
    pub(crate) fn create() -> Result<Self> {
        let dir = Dir::new(c_str!("rust_aio"));
        let mut files = KVec::with_capacity(COUNTERS.len(), GFP_KERNEL)?;
        for &(name, counter, writable) in &COUNTERS {
            files.push(counter_file(&dir, name, counter, writable)?, GFP_KERNEL)?;
        }
        let samples = KBox::pin_init(
            dir.read_callback_file(c_str!("irqoff_samples"), &IRQOFF, &show_samples),
            GFP_KERNEL,
        )?;
        Ok(Self {
            _counters: files,
            _samples: samples,
            _dir: dir,
        })
    }
}
