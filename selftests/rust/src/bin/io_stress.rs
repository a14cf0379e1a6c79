// SPDX-License-Identifier: GPL-2.0

//! Data integrity of real I/O through one ring whose pages migrate (issue 11): 4 threads do
//! O_DIRECT random reads and writes of checksummed 4 KiB blocks, on the ext4 scratch disk
//! (virtio-blk: reads complete in the disk's interrupt, writes from a workqueue) and on tmpfs
//! (inline), all through one 64-page ring; meanwhile the ring's pages are ping-ponged between
//! the nodes with move_pages(2), then node 1's memory blocks go offline and online under it.
//! Every event must come back exactly once with the full block, every read must find the
//! version of the block last written, and at the end every block of both files is read back
//! and checked.
//!
//! Each phase runs for 20 s (or `STRESS_SECONDS`) and until it has done half the minimum of
//! `IO_STRESS_MIN_IOS` I/Os (default 30000), the offlining phase at least 4 cycles.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_aio_tests::numa::{self, Counters};
use rust_aio_tests::{ensure, ensure_eq, io_event, iocb, uapi, Budget, Device, Outcome, Tap};

const BLOCK: usize = 4096;
const THREADS: usize = 4;
const DEPTH: usize = 8;
const SLOTS: usize = THREADS * DEPTH;
/// Blocks per file; each thread owns a quarter of each file.
const BLOCKS: usize = 1024;
const FILES: usize = 2;
/// 64 ring pages, as migrate_test's ring.
const RING_EVENTS: u32 = 8189;
const RING_PAGES: usize = 64;
const OFFLINE_CYCLES: u32 = 4;

/// The I/Os a run must do at least, whatever the machine's speed (`IO_STRESS_MIN_IOS`).
fn min_ios() -> u64 {
    std::env::var("IO_STRESS_MIN_IOS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30_000)
}

/// Seconds each phase runs once it has done its share of the minimum (about 36,000 I/Os each
/// on a quiet machine of the kind the project is tested on).
const PHASE_SECONDS: u64 = 20;

/// The contents of version `version` of block `block` of file `file`: every word derived from
/// all three, so a block from the wrong file, place or time does not pass.
fn fill(buf: &mut [u8], file: usize, block: usize, version: u64) {
    let mut x = (file as u64) << 56 ^ (block as u64) << 32 ^ version;
    for word in buf.chunks_exact_mut(8) {
        // splitmix64
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        word.copy_from_slice(&(z ^ (z >> 31)).to_ne_bytes());
    }
}

fn matches(buf: &[u8], file: usize, block: usize, version: u64) -> bool {
    let mut want = [0u8; BLOCK];
    fill(&mut want, file, block, version);
    buf == want
}

/// A 4 KiB-aligned buffer for O_DIRECT.
#[repr(C, align(4096))]
struct Aligned([u8; BLOCK]);

/// One request slot: owned by one thread, which fills it in and submits it; the reaper
/// completes it.
struct Slot {
    cb: iocb,
    buf: Aligned,
}

/// What the submitters and the reaper share.
struct Shared {
    dev: Device,
    ctx: u64,
    fds: [i32; FILES],
    slots: Vec<std::cell::UnsafeCell<Slot>>,
    /// Per slot: the sequence number of its request in flight (0: free).
    in_flight: Vec<AtomicU64>,
    /// Per slot: (file, block, version written or expected, is a write), packed.
    what: Vec<AtomicU64>,
    /// Per file and block: the version last written (0: the initial contents).
    versions: Vec<AtomicU64>,
    submitted: AtomicU64,
    reaped: AtomicU64,
    reads_checked: AtomicU64,
    stop: AtomicBool,
    error: std::sync::Mutex<Option<String>>,
}

// SAFETY: A slot is touched by its thread while free and by the reaper while in flight, with the
// hand-over through `in_flight` (Release/Acquire).
unsafe impl Sync for Shared {}

impl Shared {
    fn fail(&self, message: String) {
        let mut error = self.error.lock().unwrap();
        if error.is_none() {
            *error = Some(message);
        }
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn pack(file: usize, block: usize, version: u64, write: bool) -> u64 {
    (file as u64) << 62 | (block as u64) << 40 | version << 1 | u64::from(write)
}

fn unpack(what: u64) -> (usize, usize, u64, bool) {
    (
        (what >> 62) as usize,
        ((what >> 40) & 0x3f_ffff) as usize,
        (what & ((1 << 40) - 1)) >> 1,
        what & 1 != 0,
    )
}

/// A submitter: keeps its DEPTH slots busy with random reads and writes of its own blocks
/// (a block is never in two requests at once, so every read knows what it must find).
fn submitter(s: &Shared, t: usize, seed: u64) {
    let mut rng = seed | 1;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut busy = vec![false; FILES * BLOCKS];
    // The block (file * BLOCKS + block) of each of this thread's slots' last request.
    let mut slot_block: [Option<usize>; DEPTH] = [None; DEPTH];
    let mut seq = (t as u64) << 48 | 1;
    while !s.stop.load(Ordering::SeqCst) {
        let mut list: Vec<*const iocb> = Vec::new();
        for slot in t * DEPTH..(t + 1) * DEPTH {
            if s.in_flight[slot].load(Ordering::Acquire) != 0 {
                continue;
            }
            // The previous request of the slot is done: its block is free again.
            if let Some(b) = slot_block[slot - t * DEPTH].take() {
                busy[b] = false;
            }
            let (file, block) = loop {
                let file = (next() % FILES as u64) as usize;
                let block = t * (BLOCKS / THREADS) + (next() % (BLOCKS / THREADS) as u64) as usize;
                if !busy[file * BLOCKS + block] {
                    break (file, block);
                }
            };
            busy[file * BLOCKS + block] = true;
            slot_block[slot - t * DEPTH] = Some(file * BLOCKS + block);
            let write = next() % 2 == 0;
            let version =
                s.versions[file * BLOCKS + block].load(Ordering::Relaxed) + u64::from(write);
            // SAFETY: The slot is free: only this thread touches it until it is submitted.
            let slot_ref = unsafe { &mut *s.slots[slot].get() };
            if write {
                fill(&mut slot_ref.buf.0, file, block, version);
            } else {
                slot_ref.buf.0.fill(0xee);
            }
            seq += 1;
            slot_ref.cb = iocb {
                aio_data: seq << 8 | slot as u64,
                aio_lio_opcode: if write {
                    uapi::IOCB_CMD_PWRITE
                } else {
                    uapi::IOCB_CMD_PREAD
                } as u16,
                aio_fildes: s.fds[file] as u32,
                aio_buf: slot_ref.buf.0.as_ptr() as u64,
                aio_nbytes: BLOCK as u64,
                aio_offset: (block * BLOCK) as i64,
                ..Default::default()
            };
            s.what[slot].store(pack(file, block, version, write), Ordering::Relaxed);
            s.in_flight[slot].store(seq, Ordering::Release);
            list.push(&slot_ref.cb);
        }
        if list.is_empty() {
            std::thread::yield_now();
            continue;
        }
        match s.dev.submit(s.ctx, &list) {
            Ok(n) if n as usize == list.len() => {
                s.submitted.fetch_add(n as u64, Ordering::Relaxed);
            }
            other => {
                s.fail(format!(
                    "thread {t}: submit of {} gave {other:?}",
                    list.len()
                ));
                return;
            }
        }
    }
}

/// The reaper: every event must name a slot in flight with its sequence number, carry the full
/// block, and (a read) hold the version last written.
fn reaper(s: &Shared) {
    let mut events = vec![io_event::default(); 64];
    loop {
        let n = match s
            .dev
            .getevents(s.ctx, 1, &mut events, Some((0, 100_000_000)))
        {
            Ok(n) => n as usize,
            Err(e) => return s.fail(format!("getevents: errno {e}")),
        };
        if n == 0
            && s.stop.load(Ordering::SeqCst)
            && s.reaped.load(Ordering::SeqCst) == s.submitted.load(Ordering::SeqCst)
        {
            return;
        }
        for ev in &events[..n] {
            let slot = (ev.data & 0xff) as usize;
            let seq = ev.data >> 8;
            if slot >= SLOTS || s.in_flight[slot].load(Ordering::Acquire) != seq {
                return s.fail(format!(
                    "event {:#x}: not in flight (lost or duplicated)",
                    ev.data
                ));
            }
            // SAFETY: The slot is in flight: the reaper owns it until it frees it below.
            let slot_ref = unsafe { &*s.slots[slot].get() };
            if ev.obj != &slot_ref.cb as *const iocb as u64
                || ev.res != BLOCK as i64
                || ev.res2 != 0
            {
                return s.fail(format!(
                    "event {:#x}: obj {:#x} res {} res2 {}",
                    ev.data, ev.obj, ev.res, ev.res2
                ));
            }
            let (file, block, version, write) = unpack(s.what[slot].load(Ordering::Relaxed));
            if write {
                s.versions[file * BLOCKS + block].store(version, Ordering::Relaxed);
            } else if !matches(&slot_ref.buf.0, file, block, version) {
                return s.fail(format!("file {file} block {block}: not version {version}"));
            } else {
                s.reads_checked.fetch_add(1, Ordering::Relaxed);
            }
            s.reaped.fetch_add(1, Ordering::SeqCst);
            s.in_flight[slot].store(0, Ordering::Release);
        }
    }
}

fn run() -> Result<Outcome, String> {
    let Some(scratch) = std::env::var("RUST_AIO_SCRATCH")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        return Ok(Outcome::Skip("no scratch disk".into()));
    };
    let blocks = numa::memory_blocks(1);
    if blocks.is_empty() {
        return Ok(Outcome::Skip("node 1 has no memory blocks".into()));
    }
    let paths = [
        format!("{scratch}/io_stress.{}", std::process::id()),
        format!("/tmp/io_stress.{}", std::process::id()),
    ];
    let mut files = Vec::new();
    for (f, path) in paths.iter().enumerate() {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .map_err(|e| format!("{path}: {e}"))?;
        let mut buf = Aligned([0; BLOCK]);
        for b in 0..BLOCKS {
            fill(&mut buf.0, f, b, 0);
            file.write_all_at(&buf.0, (b * BLOCK) as u64)
                .map_err(|e| format!("{path}: {e}"))?;
        }
        files.push(file);
    }

    let dev = Device::open().map_err(|e| format!("open: {e}"))?;
    numa::bind_to(Some(1)).map_err(|e| format!("set_mempolicy: errno {e}"))?;
    let ctx = dev.setup(RING_EVENTS);
    numa::bind_to(None).map_err(|e| format!("set_mempolicy: errno {e}"))?;
    let ctx = ctx.map_err(|e| format!("setup: errno {e}"))?;
    let pages = numa::touch_pages(ctx, RING_PAGES);
    let shared = Arc::new(Shared {
        dev,
        ctx,
        fds: [files[0].as_raw_fd(), files[1].as_raw_fd()],
        slots: (0..SLOTS)
            .map(|_| {
                std::cell::UnsafeCell::new(Slot {
                    cb: iocb::default(),
                    buf: Aligned([0; BLOCK]),
                })
            })
            .collect(),
        in_flight: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        what: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        versions: (0..FILES * BLOCKS).map(|_| AtomicU64::new(0)).collect(),
        submitted: AtomicU64::new(0),
        reaped: AtomicU64::new(0),
        reads_checked: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        error: std::sync::Mutex::new(None),
    });
    let before = Counters::now();
    let hardirq_before = numa::counter("hardirq_completions");
    let mut threads = Vec::new();
    for t in 0..THREADS {
        let s = shared.clone();
        threads.push(std::thread::spawn(move || {
            submitter(&s, t, 0x9e37_79b9 * (t as u64 + 1))
        }));
    }
    let s = shared.clone();
    threads.push(std::thread::spawn(move || reaper(&s)));

    let target = min_ios();
    let start = Instant::now();
    let limit = Duration::from_secs(600);
    let failed = |s: &Shared| s.error.lock().unwrap().clone();
    // Phase 1: ping-pong for its budget and until half the I/Os are done.
    let mut where_now = numa::nodes_of(0, &pages).map_err(|e| format!("errno {e}"))?;
    let (mut moves, mut node) = (0u64, 0);
    let budget = Budget::new(PHASE_SECONDS);
    while (shared.reaped.load(Ordering::Relaxed) < target / 2 || budget.left())
        && failed(&shared).is_none()
        && start.elapsed() < limit
    {
        moves += numa::move_verified(0, &pages, node, &mut where_now)?;
        node ^= 1;
    }
    let ping_pong_ios = shared.reaped.load(Ordering::Relaxed);
    // Phase 2: node 1 offline and online under the I/O, for its budget, until all of it is done.
    let mut cycles = 0;
    let budget = Budget::new(PHASE_SECONDS);
    while (shared.reaped.load(Ordering::Relaxed) < ping_pong_ios + target / 2
        || cycles < OFFLINE_CYCLES
        || budget.left())
        && failed(&shared).is_none()
        && start.elapsed() < limit
    {
        for _ in 0..100 {
            moves += numa::move_verified(0, &pages, 1, &mut where_now)?;
            if numa::pages_on(0, &pages, 1)? == RING_PAGES {
                break;
            }
        }
        ensure_eq!(
            RING_PAGES,
            numa::pages_on(0, &pages, 1)?,
            "cycle {cycles}: ring not on node 1"
        );
        for &b in &blocks {
            numa::set_block_state(b, "offline", Duration::from_secs(120))?;
        }
        ensure_eq!(
            RING_PAGES,
            numa::pages_on(0, &pages, 0)?,
            "cycle {cycles}: offlined, ring not on node 0"
        );
        // Every page went from node 1 to node 0.
        moves += RING_PAGES as u64;
        where_now.fill(0);
        for &b in &blocks {
            numa::set_block_state(b, "online_movable", Duration::from_secs(60))?;
        }
        cycles += 1;
    }
    shared.stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().map_err(|_| "a thread panicked".to_string())?;
    }
    let counters = Counters::now().since(&before);
    let hardirq = numa::counter("hardirq_completions") - hardirq_before;
    let (submitted, reaped) = (
        shared.submitted.load(Ordering::SeqCst),
        shared.reaped.load(Ordering::SeqCst),
    );
    println!(
        "# {reaped} I/Os ({} reads verified) in {:.1} s, {ping_pong_ios} during the ping-pong, \
         the rest through {cycles} offline cycles of {} blocks; {moves} verified page moves \
         ({} migrations counted by the module), {hardirq} completions in hard IRQ, {} slots \
         recopied",
        shared.reads_checked.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64(),
        blocks.len(),
        counters.migrated,
        counters.recopied_slots,
    );
    if let Some(e) = failed(&shared) {
        return Err(e);
    }
    ensure_eq!(submitted, reaped, "events submitted and reaped");
    ensure!(reaped >= target, "only {reaped} I/Os of {target}");
    ensure!(hardirq > 0, "no completion came in hard IRQ");
    ensure!(
        counters.migrated >= moves,
        "the module counted fewer migrations than the moves seen"
    );
    // Every block of both files, read back with pread(2): the version last written.
    let mut buf = Aligned([0; BLOCK]);
    for (f, file) in files.iter().enumerate() {
        for b in 0..BLOCKS {
            file.read_exact_at(&mut buf.0, (b * BLOCK) as u64)
                .map_err(|e| format!("pread: {e}"))?;
            let version = shared.versions[f * BLOCKS + b].load(Ordering::Relaxed);
            ensure!(
                matches(&buf.0, f, b, version),
                "file {f} block {b}: not version {version} at the end"
            );
        }
    }
    shared
        .dev
        .destroy(ctx)
        .map_err(|e| format!("destroy: errno {e}"))?;
    for path in &paths {
        let _ = std::fs::remove_file(path);
    }
    Ok(Outcome::Pass)
}

fn main() {
    let mut tap = Tap::new();
    tap.run("odirect_io_through_migrating_ring", run);
    tap.finish();
}
