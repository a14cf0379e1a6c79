// SPDX-License-Identifier: GPL-2.0

//! Event traffic through one context, with every event accounted for: submitter threads send
//! NOOP, TIMER and WORK operations with unique `aio_data`; reaper threads take events back with
//! the ioctl, and in phases one thread reaps from the mapping instead. Each event must come back
//! exactly once with every field as submitted, and the eventfd must count them all.
//!
//! The mapping and the ioctl both move the ring's `head`, so, as with libaio or fio, the ring
//! has one consumer at a time: ioctl reapers hold a shared lock (the kernel's `ring_lock`
//! serialises them among themselves), the mapping reaper holds it exclusively.

use crate::{io_event, iocb, make_iocb, Device, RingView, CMD_TIMER, CMD_WORK, IOCB_CMD_NOOP};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// iocbs per submission.
const BATCH: usize = 64;
/// Events a submitter may send before it stops (sizes its bitmap).
const MAX_PER_SUBMITTER: u64 = 1 << 28;

#[derive(Clone, Debug)]
pub struct Config {
    pub submitters: usize,
    pub ioctl_reapers: usize,
    /// Alternate mapping-reaping phases with ioctl-only phases of this length.
    pub mapping_phase: Option<Duration>,
    /// Percentages of TIMER and WORK operations; the rest are NOOPs.
    pub timer_percent: u64,
    pub work_percent: u64,
    /// Most events the mapping reaper takes (and `head` it stores) at a time.
    pub mapping_batch: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            submitters: 4,
            ioctl_reapers: 2,
            mapping_phase: Some(Duration::from_millis(150)),
            timer_percent: 10,
            work_percent: 10,
            mapping_batch: 256,
        }
    }
}

/// What a traffic run saw.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub submitted: u64,
    pub reaped: u64,
    pub reaped_from_mapping: u64,
    pub duplicates: u64,
    pub lost: u64,
    pub bad_fields: u64,
    pub eventfd_count: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
}

impl Report {
    /// Everything came back exactly once, intact, and counted by the eventfd.
    pub fn check(&self) -> Result<(), String> {
        if let Some(e) = &self.first_error {
            return Err(format!("{e}; {self:?}"));
        }
        if self.duplicates != 0
            || self.lost != 0
            || self.bad_fields != 0
            || self.reaped != self.submitted
            || self.eventfd_count != self.submitted
        {
            return Err(format!("events not accounted for: {self:?}"));
        }
        Ok(())
    }
}

struct Shared {
    dev: Device,
    ctx: u64,
    ring: RingView,
    config: Config,
    stop_submitting: AtomicBool,
    submitting_done: AtomicBool,
    /// Reapers give up (stop() hit its deadline).
    quit: AtomicBool,
    submitted: AtomicU64,
    reaped: AtomicU64,
    reaped_from_mapping: AtomicU64,
    duplicates: AtomicU64,
    bad_fields: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
    /// One bit per event of each submitter.
    seen: Vec<Vec<AtomicU8>>,
    /// Where each submitter's iocbs live (the expected `obj`).
    batch_base: Vec<AtomicU64>,
    consumers: RwLock<()>,
    eventfd: i32,
}

/// A traffic run in progress.
pub struct Traffic {
    shared: Arc<Shared>,
    submitters: Vec<JoinHandle<()>>,
    reapers: Vec<JoinHandle<()>>,
    start: Instant,
}

fn expected_res(data: u64) -> i64 {
    ((data.wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 17) as i64
}

impl Shared {
    fn error(&self, message: String) {
        let mut first = self.first_error.lock().unwrap();
        if first.is_none() {
            *first = Some(message);
        }
        self.stop_submitting.store(true, Ordering::SeqCst);
    }

    fn account(&self, event: &io_event) {
        let submitter = (event.data >> 56) as usize;
        let seq = event.data & ((1 << 56) - 1);
        let Some(bits) = self.seen.get(submitter) else {
            self.bad_fields.fetch_add(1, Ordering::Relaxed);
            self.error(format!("event with unknown data {:#x}", event.data));
            return;
        };
        let base = self.batch_base[submitter].load(Ordering::Acquire);
        let obj = base + (seq % BATCH as u64) * std::mem::size_of::<iocb>() as u64;
        if event.res != expected_res(event.data) || event.res2 != 0 || event.obj != obj {
            self.bad_fields.fetch_add(1, Ordering::Relaxed);
            self.error(format!(
                "bad event {event:?}: res should be {}, obj {obj:#x}",
                expected_res(event.data)
            ));
            return;
        }
        let (byte, bit) = ((seq / 8) as usize, 1u8 << (seq % 8));
        if bits[byte].fetch_or(bit, Ordering::Relaxed) & bit != 0 {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            self.error(format!("event {:#x} reaped twice", event.data));
        }
    }
}

impl Traffic {
    /// Starts traffic on a new context of `nr_events`.
    pub fn start(nr_events: u32, config: Config) -> Result<Self, String> {
        let dev = Device::open().map_err(|e| format!("open: {e}"))?;
        let ctx = dev
            .setup(nr_events)
            .map_err(|e| format!("setup: errno {e}"))?;
        Self::start_on(dev, ctx, config)
    }

    /// Starts traffic on an existing context of `dev`.
    /// Traffic on a new ring whose pages are allocated on `node`. Only the setup runs under the
    /// memory policy: the traffic's threads must not inherit it (they would be out of memory
    /// while the node is offline).
    pub fn start_on_node(node: u32, nr_events: u32, config: Config) -> Result<Self, String> {
        let dev = Device::open().map_err(|e| format!("open: {e}"))?;
        crate::numa::bind_to(Some(node)).map_err(|e| format!("set_mempolicy: errno {e}"))?;
        let ctx = dev.setup(nr_events);
        crate::numa::bind_to(None).map_err(|e| format!("set_mempolicy: errno {e}"))?;
        let ctx = ctx.map_err(|e| format!("setup: errno {e}"))?;
        Self::start_on(dev, ctx, config)
    }

    pub fn start_on(dev: Device, ctx: u64, config: Config) -> Result<Self, String> {
        // SAFETY: `eventfd()` has no memory-safety preconditions.
        let eventfd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if eventfd < 0 {
            return Err("eventfd failed".into());
        }
        let bytes = (MAX_PER_SUBMITTER / 8) as usize;
        let shared = Arc::new(Shared {
            dev,
            ctx,
            // SAFETY: `ctx` is a live context of this process.
            ring: unsafe { RingView::new(ctx) },
            seen: (0..config.submitters)
                .map(|_| (0..bytes).map(|_| AtomicU8::new(0)).collect())
                .collect(),
            batch_base: (0..config.submitters).map(|_| AtomicU64::new(0)).collect(),
            config,
            stop_submitting: AtomicBool::new(false),
            submitting_done: AtomicBool::new(false),
            quit: AtomicBool::new(false),
            submitted: AtomicU64::new(0),
            reaped: AtomicU64::new(0),
            reaped_from_mapping: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            bad_fields: AtomicU64::new(0),
            first_error: std::sync::Mutex::new(None),
            consumers: RwLock::new(()),
            eventfd,
        });
        let submitters = (0..shared.config.submitters)
            .map(|t| {
                let s = shared.clone();
                std::thread::spawn(move || submitter(&s, t))
            })
            .collect();
        let mut reapers: Vec<JoinHandle<()>> = (0..shared.config.ioctl_reapers)
            .map(|_| {
                let s = shared.clone();
                std::thread::spawn(move || ioctl_reaper(&s))
            })
            .collect();
        if let Some(phase) = shared.config.mapping_phase {
            let s = shared.clone();
            reapers.push(std::thread::spawn(move || mapping_reaper(&s, phase)));
        }
        Ok(Self {
            shared,
            submitters,
            reapers,
            start: Instant::now(),
        })
    }

    pub fn ctx(&self) -> u64 {
        self.shared.ctx
    }

    pub fn device(&self) -> &Device {
        &self.shared.dev
    }

    pub fn submitted(&self) -> u64 {
        self.shared.submitted.load(Ordering::Relaxed)
    }

    pub fn reaped(&self) -> u64 {
        self.shared.reaped.load(Ordering::Relaxed)
    }

    /// Whether a check already failed (the run goes on until stopped).
    pub fn failed(&self) -> Option<String> {
        self.shared.first_error.lock().unwrap().clone()
    }

    /// Stops submitting, reaps what is left (waiting at most `drain`), and reports.
    pub fn stop(mut self, drain: Duration) -> Report {
        let s = self.shared.clone();
        let s = &*s;
        s.stop_submitting.store(true, Ordering::SeqCst);
        for t in self.submitters.drain(..) {
            let _ = t.join();
        }
        s.submitting_done.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + drain;
        while !all_reaped(s) && Instant::now() < deadline && self.failed().is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
        s.quit.store(true, Ordering::SeqCst);
        for t in self.reapers.drain(..) {
            let _ = t.join();
        }
        let mut eventfd_count = 0u64;
        // SAFETY: Reads 8 bytes into a u64 from our own non-blocking eventfd (EAGAIN if zero).
        let n = unsafe { libc::read(s.eventfd, (&raw mut eventfd_count).cast(), 8) };
        if n != 8 {
            eventfd_count = 0;
        }
        // SAFETY: Closing our own eventfd.
        unsafe { libc::close(s.eventfd) };
        let submitted = s.submitted.load(Ordering::SeqCst);
        let seen: u64 = s
            .seen
            .iter()
            .flat_map(|bits| bits.iter())
            .map(|b| u64::from(b.load(Ordering::Relaxed).count_ones()))
            .sum();
        Report {
            submitted,
            reaped: s.reaped.load(Ordering::SeqCst),
            reaped_from_mapping: s.reaped_from_mapping.load(Ordering::SeqCst),
            duplicates: s.duplicates.load(Ordering::SeqCst),
            lost: submitted.saturating_sub(seen),
            bad_fields: s.bad_fields.load(Ordering::SeqCst),
            eventfd_count,
            first_error: self.failed(),
            seconds: self.start.elapsed().as_secs_f64(),
        }
    }
}

fn submitter(s: &Shared, t: usize) {
    let mut batch: Vec<iocb> = vec![iocb::default(); BATCH];
    s.batch_base[t].store(batch.as_ptr() as u64, Ordering::Release);
    let mut seq: u64 = 0;
    let mut rng: u64 = 0x1234_5678 ^ (t as u64) << 32;
    while !s.stop_submitting.load(Ordering::Relaxed) && seq + BATCH as u64 <= MAX_PER_SUBMITTER {
        // Fill the batch: event `seq` sits at index `seq % BATCH`.
        for (i, cb) in batch.iter_mut().enumerate() {
            let this = seq + i as u64;
            let data = (t as u64) << 56 | this;
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let roll = rng % 100;
            let (op, offset) = if roll < s.config.timer_percent {
                (CMD_TIMER, (rng >> 20) as i64 % 200_000)
            } else if roll < s.config.timer_percent + s.config.work_percent {
                (CMD_WORK, 0)
            } else {
                (IOCB_CMD_NOOP, 0)
            };
            *cb = make_iocb(op, data, expected_res(data) as u64, offset);
            cb.aio_flags = crate::uapi::IOCB_FLAG_RESFD;
            cb.aio_resfd = s.eventfd as u32;
        }
        let ptrs: Vec<*const iocb> = batch.iter().map(|c| c as *const iocb).collect();
        let mut done = 0usize;
        while done < BATCH {
            match s.dev.submit(s.ctx, &ptrs[done..]) {
                Ok(n) => {
                    done += n as usize;
                    s.submitted.fetch_add(n as u64, Ordering::SeqCst);
                }
                Err(libc::EAGAIN) => {
                    if s.first_error.lock().unwrap().is_some() {
                        return;
                    }
                    std::thread::yield_now();
                }
                Err(e) => {
                    s.error(format!("submitter {t}: submit failed with errno {e}"));
                    return;
                }
            }
        }
        seq += BATCH as u64;
    }
}

fn all_reaped(s: &Shared) -> bool {
    s.submitting_done.load(Ordering::SeqCst)
        && s.reaped.load(Ordering::SeqCst) >= s.submitted.load(Ordering::SeqCst)
}

fn ioctl_reaper(s: &Shared) {
    let mut events = vec![io_event::default(); 256];
    while !all_reaped(s) && !s.quit.load(Ordering::SeqCst) {
        let n = {
            let _consumer = s.consumers.read().unwrap();
            s.dev.getevents(s.ctx, 1, &mut events, Some((0, 5_000_000)))
        };
        match n {
            Ok(n) => {
                for e in &events[..n as usize] {
                    s.account(e);
                }
                s.reaped.fetch_add(n as u64, Ordering::SeqCst);
            }
            Err(e) => {
                s.error(format!("getevents failed with errno {e}"));
                return;
            }
        }
    }
}

fn mapping_reaper(s: &Shared, phase: Duration) {
    let mut out = Vec::with_capacity(256);
    while !all_reaped(s) && !s.quit.load(Ordering::SeqCst) {
        {
            let _consumer = s.consumers.write().unwrap();
            let end = Instant::now() + phase;
            while Instant::now() < end && !all_reaped(s) && !s.quit.load(Ordering::SeqCst) {
                out.clear();
                let n = s.ring.reap(&mut out, s.config.mapping_batch);
                for e in &out {
                    s.account(e);
                }
                s.reaped.fetch_add(n as u64, Ordering::SeqCst);
                s.reaped_from_mapping.fetch_add(n as u64, Ordering::SeqCst);
                if n == 0 {
                    std::thread::yield_now();
                }
            }
        }
        // The ioctl reapers' turn; checked often, so that a long phase does not hold up stop().
        let end = Instant::now() + phase;
        while Instant::now() < end && !all_reaped(s) && !s.quit.load(Ordering::SeqCst) {
            std::thread::sleep(phase.min(Duration::from_millis(10)));
        }
    }
}
