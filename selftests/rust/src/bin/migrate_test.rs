// SPDX-License-Identifier: GPL-2.0

//! Ring pages migrating under traffic (TAP): move_pages ping-pong between the nodes,
//! numactl's migratepages, compaction, offlining node 1's memory blocks, and teardown racing
//! migration. Every event of the traffic must come back exactly once and intact, and every
//! move is checked by asking the kernel where the page is.
//!
//! usage: migrate_test [NAME_SUBSTRING...]   (no argument: every test)
//! STRESS_SECONDS=N makes each traffic phase last at least N seconds.

use rust_aio_tests::numa::{self, Counters, PAGE_SIZE};
use rust_aio_tests::traffic::{Config, Report, Traffic};
use rust_aio_tests::{
    ensure, ensure_eq, make_iocb, stress_seconds, Device, Outcome, RingView, Tap,
};
use rust_aio_tests::{iocb, CMD_TIMER, CMD_WORK};
use std::time::{Duration, Instant};

/// A 64-page ring: 8189 events + 2 spare slots + the header fill exactly 64 pages.
const RING_EVENTS: u32 = 8189;
const RING_PAGES: usize = 64;
/// What the ping-pong test must reach in a `make check` run.
const MIN_MOVES: u64 = 10_000;
const MIN_EVENTS: u64 = 1_000_000;
/// A phase that has not reached its minimum by then has failed.
const HARD_LIMIT: Duration = Duration::from_secs(900);

/// `PING_PONG_SECONDS=N` stops the ping-pong after N seconds whatever it reached (for the
/// mutant's detection rate, where only lost or duplicated events matter).
fn ping_pong_limit() -> Option<Duration> {
    std::env::var("PING_PONG_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
}

fn traffic_config() -> Config {
    Config {
        submitters: 2,
        ioctl_reapers: 2,
        ..Config::default()
    }
}

/// Traffic on a new ring whose pages are allocated on `node`. Only the setup runs under the
/// memory policy: the traffic's threads must not inherit it (they would be out of memory while
/// node 1 is offline).
fn traffic_on_node(node: u32) -> Result<Traffic, String> {
    let dev = Device::open().map_err(|e| format!("open: {e}"))?;
    numa::bind_to(Some(node)).map_err(|e| format!("set_mempolicy: errno {e}"))?;
    let ctx = dev.setup(RING_EVENTS);
    numa::bind_to(None).map_err(|e| format!("set_mempolicy: errno {e}"))?;
    let ctx = ctx.map_err(|e| format!("setup: errno {e}"))?;
    Traffic::start_on(dev, ctx, traffic_config())
}

/// Fills node 1's free memory from the top (where a fresh zone allocates first) with `bytes`
/// of anonymous memory, so that what is allocated next there lands lower in the zone.
fn node1_filler(bytes: usize) -> Result<(usize, usize), String> {
    numa::bind_to(Some(1)).map_err(|e| format!("set_mempolicy: errno {e}"))?;
    // SAFETY: A fresh private anonymous mapping.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
    numa::bind_to(None).map_err(|e| format!("set_mempolicy: errno {e}"))?;
    ensure!(addr != libc::MAP_FAILED, "filler mmap failed");
    Ok((addr as usize, bytes))
}

/// The ring's header must survive every move.
fn check_header(ring: &RingView) -> Result<(), String> {
    ensure_eq!(rust_aio_tests::uapi::RUST_AIO_RING_MAGIC, ring.magic());
    ensure_eq!(RING_EVENTS + 2, ring.nr());
    ensure_eq!(32, ring.header_length());
    Ok(())
}

/// How many pages are on `node`; fails on a page that is not mapped (`-ENOENT`: the move
/// could not have happened, and a test must not count it).
fn pages_on(pid: i32, pages: &[usize], node: i32) -> Result<usize, String> {
    let nodes = numa::nodes_of(pid, pages).map_err(|e| format!("move_pages query: errno {e}"))?;
    let mut on = 0;
    for (i, n) in nodes.iter().enumerate() {
        ensure!(*n >= 0, "page {i} of the ring: status {n} (not mapped?)");
        on += usize::from(*n == node);
    }
    Ok(on)
}

fn finish(traffic: Traffic, what: &str, moves: u64, before: &Counters) -> Result<Report, String> {
    let report = traffic.stop(Duration::from_secs(60));
    let counters = Counters::now().since(before);
    println!(
        "# {what}: {moves} verified page moves; {} events in {:.1} s ({} from the mapping); \
         module: {} migrated, {} ring_lock busy, {} teardown won, IRQ-off copy mean {} ns, \
         longest {} ns",
        report.submitted,
        report.seconds,
        report.reaped_from_mapping,
        counters.migrated,
        counters.ring_lock_busy,
        counters.teardown_won,
        counters.mean_irqoff_ns(),
        counters.max_irqoff_ns
    );
    report.check()?;
    ensure!(
        counters.migrated >= moves,
        "the module counted {} migrations, fewer than the {moves} moves seen",
        counters.migrated
    );
    Ok(report)
}

/// Test 1: move_pages(2) ping-pong of a 64-page ring between the nodes, under traffic.
fn ping_pong() -> Result<Outcome, String> {
    let min_seconds = stress_seconds(0);
    let before = Counters::now();
    let traffic = Traffic::start(RING_EVENTS, traffic_config())?;
    // SAFETY: The traffic's context is live and mapped in this process.
    let ring = unsafe { RingView::new(traffic.ctx()) };
    let pages = numa::touch_pages(traffic.ctx(), RING_PAGES);
    let mut where_now = numa::nodes_of(0, &pages).map_err(|e| format!("errno {e}"))?;
    let (mut moves, mut target, start) = (0u64, 1, Instant::now());
    let limit = ping_pong_limit();
    while (moves < MIN_MOVES
        || traffic.submitted() < MIN_EVENTS
        || start.elapsed().as_secs() < min_seconds)
        && traffic.failed().is_none()
        && start.elapsed() < limit.unwrap_or(HARD_LIMIT)
    {
        let status =
            numa::move_to(0, &pages, target).map_err(|e| format!("move_pages: errno {e}"))?;
        ensure!(
            status.iter().all(|&s| s != -libc::ENOENT),
            "a ring page was not mapped: {status:?}"
        );
        let nodes = numa::nodes_of(0, &pages).map_err(|e| format!("errno {e}"))?;
        for (i, &n) in nodes.iter().enumerate() {
            ensure!(n >= 0, "page {i}: status {n}");
            if n == target && where_now[i] != target {
                moves += 1;
            }
            where_now[i] = n;
        }
        check_header(&ring)?;
        target ^= 1;
    }
    let report = finish(traffic, "ping-pong", moves, &before)?;
    if limit.is_some() {
        return Ok(Outcome::Pass);
    }
    ensure!(moves >= MIN_MOVES, "only {moves} verified moves");
    ensure!(
        report.submitted >= MIN_EVENTS,
        "only {} events",
        report.submitted
    );
    Ok(Outcome::Pass)
}

/// Test 2: numactl's migratepages against this process, both ways, under traffic.
fn migratepages() -> Result<Outcome, String> {
    let min_seconds = stress_seconds(0);
    let before = Counters::now();
    let traffic = Traffic::start(RING_EVENTS, traffic_config())?;
    // SAFETY: The traffic's context is live and mapped in this process.
    let ring = unsafe { RingView::new(traffic.ctx()) };
    let pages = numa::touch_pages(traffic.ctx(), RING_PAGES);
    let pid = std::process::id().to_string();
    let (mut moves, mut rounds, start) = (0u64, 0u32, Instant::now());
    while (rounds < 40 || start.elapsed().as_secs() < min_seconds) && traffic.failed().is_none() {
        let (from, to) = if rounds % 2 == 0 { (0, 1) } else { (1, 0) };
        let was = pages_on(0, &pages, from)?;
        let status = std::process::Command::new("migratepages")
            .args([pid.as_str(), &from.to_string(), &to.to_string()])
            .status()
            .map_err(|e| format!("migratepages: {e}"))?;
        ensure!(status.success(), "migratepages {from} {to}: {status}");
        let now_on_from = pages_on(0, &pages, from)?;
        moves += was.saturating_sub(now_on_from) as u64;
        check_header(&ring)?;
        rounds += 1;
    }
    finish(traffic, "migratepages", moves, &before)?;
    // Each round must move most of the ring: a trylock may lose now and then, not always.
    ensure!(
        moves >= u64::from(rounds) * RING_PAGES as u64 / 2,
        "{moves} moves in {rounds} rounds"
    );
    Ok(Outcome::Pass)
}

/// Test 3: Compaction (`/proc/sys/vm/compact_memory`) under traffic. Full compaction migrates
/// movable pages from the bottom of each zone to free pages at its top; a fresh zone hands out
/// its top first, so each round first puts the ring low in node 1 (a filler holds the top while
/// the ring moves back there), frees the filler and compacts. A page moved by compaction stays
/// on its node: its page frame number, from `/proc/self/pagemap`, tells that it moved.
fn compaction() -> Result<Outcome, String> {
    let min_seconds = stress_seconds(0);
    let before = Counters::now();
    let traffic = traffic_on_node(1)?;
    let pages = numa::touch_pages(traffic.ctx(), RING_PAGES);
    let (mut rounds, mut by_compaction, start) = (0u32, 0u64, Instant::now());
    while (rounds < 5 || start.elapsed().as_secs() < min_seconds) && traffic.failed().is_none() {
        numa::move_to(0, &pages, 0).map_err(|e| format!("move_pages: errno {e}"))?;
        let (filler, len) = node1_filler(32 << 20)?;
        for _ in 0..100 {
            numa::move_to(0, &pages, 1).map_err(|e| format!("move_pages: errno {e}"))?;
            if pages_on(0, &pages, 1)? == RING_PAGES {
                break;
            }
        }
        // SAFETY: Unmapping the filler mapped above.
        unsafe { libc::munmap(filler as *mut libc::c_void, len) };
        let pfns = numa::pfns(&pages)?;
        std::fs::write("/proc/sys/vm/compact_memory", "1")
            .map_err(|e| format!("compact_memory: {e}"))?;
        let moved = numa::pfns(&pages)?
            .iter()
            .zip(&pfns)
            .filter(|(now, was)| now != was)
            .count();
        by_compaction += moved as u64;
        rounds += 1;
    }
    finish(
        traffic,
        &format!("compaction ({rounds} rounds)"),
        by_compaction,
        &before,
    )?;
    ensure!(
        by_compaction > 0,
        "compaction never moved a ring page in {rounds} rounds"
    );
    Ok(Outcome::Pass)
}

/// Test 4: Offline every node-1 memory block with the ring on it, under traffic; online them,
/// move the ring back; 20 cycles.
fn offline_cycles() -> Result<Outcome, String> {
    const CYCLES: u32 = 20;
    let blocks = numa::memory_blocks(1);
    if blocks.is_empty() {
        return Ok(Outcome::Skip("node 1 has no memory blocks".into()));
    }
    let before = Counters::now();
    let traffic = traffic_on_node(1)?;
    // SAFETY: The traffic's context is live and mapped in this process.
    let ring = unsafe { RingView::new(traffic.ctx()) };
    let pages = numa::touch_pages(traffic.ctx(), RING_PAGES);
    let mut moves = 0u64;
    for cycle in 0..CYCLES {
        ensure_eq!(
            RING_PAGES,
            pages_on(0, &pages, 1)?,
            "cycle {cycle}: ring not on node 1"
        );
        let reaped = traffic.reaped();
        for &b in &blocks {
            numa::set_block_state(b, "offline", Duration::from_secs(120))?;
        }
        ensure_eq!(
            RING_PAGES,
            pages_on(0, &pages, 0)?,
            "cycle {cycle}: offlined, ring not on node 0"
        );
        moves += RING_PAGES as u64;
        check_header(&ring)?;
        // Traffic went on through the offlining.
        let deadline = Instant::now() + Duration::from_secs(10);
        while traffic.reaped() == reaped && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        ensure!(traffic.reaped() > reaped, "cycle {cycle}: traffic stopped");
        for &b in &blocks {
            numa::set_block_state(b, "online_movable", Duration::from_secs(60))?;
        }
        for _ in 0..100 {
            numa::move_to(0, &pages, 1).map_err(|e| format!("move_pages: errno {e}"))?;
            if pages_on(0, &pages, 1)? == RING_PAGES {
                break;
            }
        }
        moves += RING_PAGES as u64;
        if let Some(e) = traffic.failed() {
            return Err(e);
        }
    }
    for &b in &blocks {
        ensure_eq!("online".to_string(), numa::block_state(b), "memory{b}");
    }
    finish(
        traffic,
        &format!("offline ({CYCLES} cycles of {} blocks)", blocks.len()),
        moves,
        &before,
    )?;
    Ok(Outcome::Pass)
}

/// How a teardown-race round ends its context.
#[derive(Clone, Copy, Debug)]
enum Ending {
    Destroy,
    Close,
    Kill,
}

/// Test 5: A child sets up a context with work in flight and tears it down (io_destroy, close, or
/// SIGKILL from us) while we migrate its ring pages as fast as we can.
fn teardown_races() -> Result<Outcome, String> {
    const ROUNDS: u32 = 1000;
    const PAGES: usize = 8;
    let before = Counters::now();
    let mut migrated_live = 0u64;
    for round in 0..ROUNDS {
        let ending = [Ending::Destroy, Ending::Close, Ending::Kill][round as usize % 3];
        let mut to_parent = [0i32; 2];
        let mut to_child = [0i32; 2];
        // SAFETY: Plain pipe(2) calls on local arrays.
        unsafe {
            ensure!(libc::pipe(to_parent.as_mut_ptr()) == 0, "pipe");
            ensure!(libc::pipe(to_child.as_mut_ptr()) == 0, "pipe");
        }
        // SAFETY: The child only makes system calls and exits.
        let pid = unsafe { libc::fork() };
        ensure!(pid >= 0, "fork");
        if pid == 0 {
            child_round(ending, to_parent[1], to_child[0], PAGES);
        }
        // SAFETY: Closing our copies of the child's pipe ends.
        unsafe {
            libc::close(to_parent[1]);
            libc::close(to_child[0]);
        }
        let mut base = 0u64;
        // SAFETY: Reads 8 bytes into a u64.
        let n = unsafe { libc::read(to_parent[0], (&raw mut base).cast(), 8) };
        ensure!(n == 8, "round {round}: the child did not set up");
        let pages: Vec<usize> = (0..PAGES).map(|i| base as usize + i * PAGE_SIZE).collect();
        // Migrate a little first, then let the child end while migrating on.
        for i in 0..4 {
            if let Ok(status) = numa::move_to(pid, &pages, i % 2) {
                migrated_live += status.iter().filter(|&&s| s >= 0).count() as u64;
            }
        }
        // SAFETY: Writing one byte to our pipe end, then signalling our own child.
        unsafe {
            libc::write(to_child[1], [0u8].as_ptr().cast(), 1);
            if let Ending::Kill = ending {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let mut status = 0;
        let mut node = 0;
        loop {
            // Keep migrating until the child is gone: the pages vanish under us.
            let _ = numa::move_to(pid, &pages, node);
            node ^= 1;
            // SAFETY: Reaping our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break;
            }
        }
        // SAFETY: Closing our pipe ends.
        unsafe {
            libc::close(to_parent[0]);
            libc::close(to_child[1]);
        }
        match ending {
            Ending::Kill => ensure!(
                libc::WIFSIGNALED(status)
                    || (libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0),
                "round {round}: status {status:#x}"
            ),
            _ => ensure!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "round {round} ({ending:?}): child status {status:#x}"
            ),
        }
    }
    let counters = Counters::now().since(&before);
    println!(
        "# teardown races: {ROUNDS} rounds, {migrated_live} pages moved while live; module: {} \
         migrated, {} ring_lock busy, {} teardown won",
        counters.migrated, counters.ring_lock_busy, counters.teardown_won
    );
    ensure!(counters.migrated > 0, "no migration happened");
    Ok(Outcome::Pass)
}

/// The child of a teardown-race round: set up, put work in flight, hand the ring's address to
/// the parent, wait for the word, end the context.
fn child_round(ending: Ending, to_parent: i32, from_parent: i32, pages: usize) -> ! {
    let code = (|| -> Option<()> {
        let dev = Device::open().ok()?;
        let ctx = dev.setup((pages * 128 - 3) as u32).ok()?;
        numa::touch_pages(ctx, pages);
        let ops: Vec<iocb> = (0..16)
            .map(|i| {
                make_iocb(
                    if i % 2 == 0 { CMD_TIMER } else { CMD_WORK },
                    i,
                    0,
                    1_000_000 * i as i64,
                )
            })
            .collect();
        let ptrs: Vec<*const iocb> = ops.iter().map(|o| o as *const iocb).collect();
        dev.submit(ctx, &ptrs).ok()?;
        // SAFETY: Writing 8 bytes from a u64, then reading one byte.
        unsafe {
            libc::write(to_parent, (&raw const ctx).cast(), 8);
            let mut byte = 0u8;
            libc::read(from_parent, (&raw mut byte).cast(), 1);
        }
        match ending {
            Ending::Destroy => {
                dev.destroy(ctx).ok()?;
            }
            Ending::Close => drop(dev),
            Ending::Kill => {
                // The parent kills us; until then, keep the ring busy.
                let mut events = [rust_aio_tests::io_event::default(); 16];
                loop {
                    let _ = dev.getevents(ctx, 1, &mut events, Some((0, 1_000_000)));
                }
            }
        }
        Some(())
    })();
    // SAFETY: Leaving the child without running the parent's destructors.
    unsafe { libc::_exit(if code.is_some() { 0 } else { 1 }) }
}

fn main() {
    let filters: Vec<String> = std::env::args().skip(1).collect();
    let wanted =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let mut tap = Tap::new();
    type Test = fn() -> Result<Outcome, String>;
    let tests: [(&str, Test); 5] = [
        ("move_pages_ping_pong", ping_pong),
        ("migratepages_both_ways", migratepages),
        ("compaction_under_traffic", compaction),
        ("offline_node1_under_traffic", offline_cycles),
        ("teardown_races_migration", teardown_races),
    ];
    for (name, test) in tests {
        if wanted(name) {
            tap.run(name, test);
        }
    }
    tap.finish();
}
