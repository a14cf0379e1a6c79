// SPDX-License-Identifier: GPL-2.0

//! The soak (TAP; `make soak`): event traffic through a 64-page ring for `SOAK_SECONDS` (default
//! 60) while its pages ping-pong between the nodes by `move_pages(2)` and node 1's memory blocks
//! go offline and online again, all at once. Every event must come back exactly once and intact,
//! every move is verified by asking the kernel where the page is, and a progress line is printed
//! every 30 s. The guest's kernel log is checked by the runner afterwards.

use rust_aio_tests::numa::{self, Counters};
use rust_aio_tests::traffic::{Config, Traffic};
use rust_aio_tests::{ensure, stress_seconds, Outcome, Tap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// A 64-page ring: 8189 events + 2 spare slots + the header fill exactly 64 pages.
const RING_EVENTS: u32 = 8189;
const RING_PAGES: usize = 64;

fn soak_seconds() -> u64 {
    std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| stress_seconds(60))
}

/// Offlines and onlines node 1's memory blocks until `stop`; counts the cycles in which every
/// block went offline and came back. Holds `node1` for writing meanwhile: a move *to* node 1
/// while its memory is going away fails to allocate, and the kernel warns about it
/// (`warn_alloc`); moves to node 0, traffic and the offlining's own migrations go on.
fn offline_loop(
    blocks: &[u32],
    stop: &AtomicBool,
    cycles: &AtomicU64,
    node1: &RwLock<()>,
) -> Result<(), String> {
    while !stop.load(Ordering::Relaxed) {
        let _offlining = node1.write().map_err(|_| "lock poisoned".to_string())?;
        let mut all = true;
        for &b in blocks {
            // Offlining may lose to a busy page now and then (the kernel retries until the
            // timeout kills it): that cycle does not count, the next one tries again.
            if numa::set_block_state(b, "offline", Duration::from_secs(30)).is_err() {
                all = false;
            }
        }
        for &b in blocks {
            if numa::block_state(b) == "offline" {
                numa::set_block_state(b, "online_movable", Duration::from_secs(60))?;
            }
        }
        if all {
            cycles.fetch_add(1, Ordering::Relaxed);
        }
        drop(_offlining);
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

fn soak() -> Result<Outcome, String> {
    let seconds = soak_seconds();
    let blocks = numa::memory_blocks(1);
    let before = Counters::now();
    let config = Config {
        submitters: 2,
        ioctl_reapers: 2,
        ..Config::default()
    };
    let traffic = Traffic::start_on_node(1, RING_EVENTS, config)?;
    let pages = numa::touch_pages(traffic.ctx(), RING_PAGES);
    let stop = AtomicBool::new(false);
    let cycles = AtomicU64::new(0);
    let node1 = RwLock::new(());
    let start = Instant::now();
    let mut moves = 0u64;
    std::thread::scope(|scope| -> Result<(), String> {
        let offliner = scope.spawn(|| offline_loop(&blocks, &stop, &cycles, &node1));
        let result = (|| {
            let mut where_now =
                numa::nodes_of(0, &pages).map_err(|e| format!("move_pages query: errno {e}"))?;
            let (mut target, mut next_report) = (0, 30);
            while start.elapsed().as_secs() < seconds {
                if let Some(e) = traffic.failed() {
                    return Err(e);
                }
                if target == 1 {
                    let _online = node1.read().map_err(|_| "lock poisoned".to_string())?;
                    moves += numa::move_verified(0, &pages, target, &mut where_now)?;
                } else {
                    moves += numa::move_verified(0, &pages, target, &mut where_now)?;
                }
                target ^= 1;
                if start.elapsed().as_secs() >= next_report {
                    println!(
                        "# soak: {} s, {} events, {moves} verified moves, {} offline cycles",
                        start.elapsed().as_secs(),
                        traffic.submitted(),
                        cycles.load(Ordering::Relaxed)
                    );
                    next_report += 30;
                }
            }
            Ok(())
        })();
        stop.store(true, Ordering::Relaxed);
        let offlined = offliner
            .join()
            .map_err(|_| "offline thread panicked".to_string())?;
        result.and(offlined)
    })?;
    let report = traffic.stop(Duration::from_secs(120));
    let counters = Counters::now().since(&before);
    println!(
        "# soak: {:.0} s: {} events ({} lost, {} duplicated, {} corrupted), {moves} verified \
         moves, {} offline cycles of {} blocks; module: {} migrated, {} ring_lock busy, \
         IRQ-off copy mean {} ns, longest {} ns",
        report.seconds,
        report.submitted,
        report.lost,
        report.duplicates,
        report.bad_fields,
        cycles.load(Ordering::Relaxed),
        blocks.len(),
        counters.migrated,
        counters.ring_lock_busy,
        counters.mean_irqoff_ns(),
        counters.max_irqoff_ns
    );
    report.check()?;
    ensure!(moves > 0, "no verified move");
    ensure!(
        blocks.is_empty() || cycles.load(Ordering::Relaxed) > 0,
        "no offline cycle completed"
    );
    Ok(Outcome::Pass)
}

fn main() {
    let mut tap = Tap::new();
    tap.run("soak_traffic_migration_offline", soak);
    tap.finish();
}
