// SPDX-License-Identifier: GPL-2.0

//! Ring pages migrating under traffic (TAP): move_pages ping-pong between the nodes,
//! numactl's migratepages, compaction, offlining node 1's memory blocks, and teardown racing
//! migration. Every event of the traffic must come back exactly once and intact, and every
//! move is checked by asking the kernel where the page is.
//!
//! usage: migrate_test [NAME_SUBSTRING...]   (no argument: every test)
//!
//! Each stress phase runs for its time budget (as many rounds as fit) and at least its stated
//! minimum, and reports what it reached: a slower machine does fewer rounds in about the same
//! time. STRESS_SECONDS=N makes each budget at least N seconds.

use rust_aio_tests::numa::{self, Counters, Knob, PAGE_SIZE};
use rust_aio_tests::traffic::{Config, Report, Traffic};
use rust_aio_tests::{ensure, ensure_eq, make_iocb, Budget, Device, Outcome, RingView, Tap};
use rust_aio_tests::{io_event, iocb, CMD_TIMER, CMD_WORK, IOCB_CMD_NOOP as IOCB_NOOP};
use std::time::{Duration, Instant};

/// A 64-page ring: 8189 events + 2 spare slots + the header fill exactly 64 pages.
const RING_EVENTS: u32 = 8189;
const RING_PAGES: usize = 64;
/// What the ping-pong must reach in a `make check` run, whatever the machine's speed, and its
/// budget (on a quiet machine of the kind the project is tested on: ~120,000 moves and
/// ~800,000 events).
const MIN_MOVES: u64 = 10_000;
const MIN_EVENTS: u64 = 200_000;
const PING_PONG_SECONDS: u64 = 40;
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

fn traffic_on_node(node: u32) -> Result<Traffic, String> {
    Traffic::start_on_node(node, RING_EVENTS, traffic_config())
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

fn finish(traffic: Traffic, what: &str, moves: u64, before: &Counters) -> Result<Report, String> {
    let report = traffic.stop(Duration::from_secs(60));
    let counters = Counters::now().since(before);
    println!(
        "# {what}: {moves} verified page moves; {} events in {:.1} s ({} from the mapping); \
         module: {} migrated, {} ring_lock busy, {} teardown won, IRQ-off window mean {} ns, \
         longest {} ns; {} slots recopied",
        report.submitted,
        report.seconds,
        report.reaped_from_mapping,
        counters.migrated,
        counters.ring_lock_busy,
        counters.teardown_won,
        counters.mean_irqoff_ns(),
        counters.max_irqoff_ns,
        counters.recopied_slots
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
    let before = Counters::now();
    let traffic = Traffic::start(RING_EVENTS, traffic_config())?;
    // SAFETY: The traffic's context is live and mapped in this process.
    let ring = unsafe { RingView::new(traffic.ctx()) };
    let pages = numa::touch_pages(traffic.ctx(), RING_PAGES);
    let mut where_now = numa::nodes_of(0, &pages).map_err(|e| format!("errno {e}"))?;
    let (mut moves, mut target, start) = (0u64, 1, Instant::now());
    let limit = ping_pong_limit();
    let budget = Budget::new(PING_PONG_SECONDS);
    while (moves < MIN_MOVES || traffic.submitted() < MIN_EVENTS || budget.left())
        && traffic.failed().is_none()
        && start.elapsed() < limit.unwrap_or(HARD_LIMIT)
    {
        moves += numa::move_verified(0, &pages, target, &mut where_now)?;
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

/// Test 2: numactl's migratepages against this process, both ways, under traffic: 10 s, and at
/// least 10 rounds (~40 on a quiet machine).
fn migratepages() -> Result<Outcome, String> {
    let budget = Budget::new(10);
    let before = Counters::now();
    let traffic = Traffic::start(RING_EVENTS, traffic_config())?;
    // SAFETY: The traffic's context is live and mapped in this process.
    let ring = unsafe { RingView::new(traffic.ctx()) };
    let pages = numa::touch_pages(traffic.ctx(), RING_PAGES);
    let pid = std::process::id().to_string();
    let (mut moves, mut rounds) = (0u64, 0u32);
    while (rounds < 10 || budget.left()) && traffic.failed().is_none() {
        let (from, to) = if rounds % 2 == 0 { (0, 1) } else { (1, 0) };
        let was = numa::pages_on(0, &pages, from)?;
        let status = std::process::Command::new("migratepages")
            .args([pid.as_str(), &from.to_string(), &to.to_string()])
            .status()
            .map_err(|e| format!("migratepages: {e}"))?;
        ensure!(status.success(), "migratepages {from} {to}: {status}");
        let now_on_from = numa::pages_on(0, &pages, from)?;
        moves += was.saturating_sub(now_on_from) as u64;
        check_header(&ring)?;
        rounds += 1;
    }
    finish(
        traffic,
        &format!("migratepages ({rounds} rounds)"),
        moves,
        &before,
    )?;
    // Each round must move most of the ring: a trylock may lose now and then, not always.
    ensure!(
        moves >= u64::from(rounds) * RING_PAGES as u64 / 2,
        "{moves} moves in {rounds} rounds"
    );
    Ok(Outcome::Pass)
}

/// Moves the ring's pages to node 1, trying up to 100 times (a page under migration or locked
/// stays where it is for that call); the caller checks where they ended.
fn move_ring_to_node1(pages: &[usize]) -> Result<(), String> {
    for _ in 0..100 {
        numa::move_to(0, pages, 1).map_err(|e| format!("move_pages: errno {e}"))?;
        if numa::pages_on(0, pages, 1)? == RING_PAGES {
            break;
        }
    }
    Ok(())
}

/// Test 3: Compaction (`/proc/sys/vm/compact_memory`) under traffic. Full compaction migrates
/// movable pages from the bottom of each zone to free pages at its top; a fresh zone hands out
/// its top first, so each round first puts the ring low in node 1 (a filler holds the top while
/// the ring moves back there), frees the filler and compacts. A page moved by compaction stays
/// on its node: its page frame number, from `/proc/self/pagemap`, tells that it moved. 6 s, and
/// at least 3 rounds; until 60 s while no ring page has moved yet (whether compaction picks the
/// ring's pages depends on where the filler and the ring landed: a slow machine's few rounds
/// could all miss).
fn compaction() -> Result<Outcome, String> {
    let budget = Budget::new(6);
    let until_a_move = Budget::new(60);
    let before = Counters::now();
    let traffic = traffic_on_node(1)?;
    let pages = numa::touch_pages(traffic.ctx(), RING_PAGES);
    let (mut rounds, mut by_compaction) = (0u32, 0u64);
    while (rounds < 3 || budget.left() || (by_compaction == 0 && until_a_move.left()))
        && traffic.failed().is_none()
    {
        numa::move_to(0, &pages, 0).map_err(|e| format!("move_pages: errno {e}"))?;
        let (filler, len) = node1_filler(32 << 20)?;
        move_ring_to_node1(&pages)?;
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
/// move the ring back: 40 s of cycles, at least 5 (~13 on a quiet machine).
fn offline_cycles() -> Result<Outcome, String> {
    const MIN_CYCLES: u32 = 5;
    let budget = Budget::new(40);
    let blocks = numa::memory_blocks(1);
    if blocks.is_empty() {
        return Ok(Outcome::Skip("node 1 has no memory blocks".into()));
    }
    let before = Counters::now();
    let traffic = traffic_on_node(1)?;
    // SAFETY: The traffic's context is live and mapped in this process.
    let ring = unsafe { RingView::new(traffic.ctx()) };
    let pages = numa::touch_pages(traffic.ctx(), RING_PAGES);
    let (mut moves, mut cycle) = (0u64, 0u32);
    while cycle < MIN_CYCLES || budget.left() {
        ensure_eq!(
            RING_PAGES,
            numa::pages_on(0, &pages, 1)?,
            "cycle {cycle}: ring not on node 1"
        );
        let reaped = traffic.reaped();
        for &b in &blocks {
            numa::set_block_state(b, "offline", Duration::from_secs(120))?;
        }
        ensure_eq!(
            RING_PAGES,
            numa::pages_on(0, &pages, 0)?,
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
        move_ring_to_node1(&pages)?;
        ensure_eq!(
            RING_PAGES,
            numa::pages_on(0, &pages, 1)?,
            "cycle {cycle}: onlined, ring not back on node 1"
        );
        moves += RING_PAGES as u64;
        check_header(&ring)?;
        if let Some(e) = traffic.failed() {
            return Err(e);
        }
        cycle += 1;
    }
    for &b in &blocks {
        let state = numa::block_state(b);
        ensure!(state.starts_with("online"), "memory{b}: {state}");
    }
    finish(
        traffic,
        &format!("offline ({cycle} cycles of {} blocks)", blocks.len()),
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

mod races;
mod stuck;

use races::{
    migration_races_setup, mremap_races_migration_and_destroy, ring_laps_between_copies,
    teardown_races,
};
use stuck::stuck_reader;

fn main() {
    // Which tests: the arguments, else MIGRATE_TESTS (comma-separated), else all.
    let mut filters: Vec<String> = std::env::args().skip(1).collect();
    if filters.is_empty() {
        if let Ok(list) = std::env::var("MIGRATE_TESTS") {
            filters = list
                .split(',')
                .filter(|f| !f.is_empty())
                .map(String::from)
                .collect();
        }
    }
    let wanted =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let mut tap = Tap::new();
    type Test = fn() -> Result<Outcome, String>;
    let tests: [(&str, Test); 9] = [
        ("move_pages_ping_pong", ping_pong),
        ("migratepages_both_ways", migratepages),
        ("compaction_under_traffic", compaction),
        ("offline_node1_under_traffic", offline_cycles),
        ("teardown_races_migration", teardown_races),
        ("stuck_reader_does_not_pin_ring", stuck_reader),
        ("migration_races_setup", migration_races_setup),
        (
            "mremap_races_migration_and_destroy",
            mremap_races_migration_and_destroy,
        ),
        ("ring_laps_between_copies", ring_laps_between_copies),
    ];
    for (name, test) in tests {
        if wanted(name) {
            tap.run(name, test);
        }
    }
    tap.finish();
}
