// SPDX-License-Identifier: GPL-2.0

//! `ring_mover PID SECONDS`: moves the pages of every rust_aio ring mapped in process PID
//! between NUMA nodes 0 and 1 with move_pages(2), over and over, for SECONDS or until the process
//! is gone, and prints how many page moves it verified (asking the kernel where each page is
//! after each move). For running unmodified programs (fio through the libaio drop-in) while
//! their rings migrate.

use std::time::{Duration, Instant};

use rust_aio_tests::numa;

/// The page addresses of the rings mapped in `pid` (`[rust_aio]` mappings).
fn ring_pages(pid: i32) -> Vec<usize> {
    let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return Vec::new();
    };
    let mut pages = Vec::new();
    for line in maps.lines().filter(|l| l.contains("[rust_aio]")) {
        let Some((start, end)) = line
            .split_whitespace()
            .next()
            .and_then(|range| range.split_once('-'))
        else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        pages.extend((start..end).step_by(numa::PAGE_SIZE));
    }
    pages
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(pid), Some(seconds)) = (
        args.get(1).and_then(|a| a.parse::<i32>().ok()),
        args.get(2).and_then(|a| a.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: ring_mover PID SECONDS");
        std::process::exit(2);
    };
    let start = Instant::now();
    let (mut moves, mut rounds, mut node) = (0u64, 0u64, 1);
    while start.elapsed() < Duration::from_secs(seconds) {
        let pages = ring_pages(pid);
        if pages.is_empty() {
            // Not set up yet, or gone.
            if std::fs::metadata(format!("/proc/{pid}")).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        // Pages touched by their process only are what move_pages sees; a ring torn down
        // meanwhile is simply not counted (-ENOENT, -EFAULT).
        let mut where_now = numa::nodes_of(pid, &pages).unwrap_or_default();
        if where_now.len() != pages.len() {
            continue;
        }
        if let Ok(n) = numa::move_verified(pid, &pages, node, &mut where_now) {
            moves += n;
        }
        rounds += 1;
        node ^= 1;
    }
    println!("ring_mover: {moves} verified ring page moves in {rounds} rounds");
}
