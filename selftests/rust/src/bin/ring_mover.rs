// SPDX-License-Identifier: GPL-2.0

//! `ring_mover PID SECONDS`: moves the pages of every rust_aio ring mapped in process PID or any
//! of its descendants (fio runs its jobs in child processes) between NUMA nodes 0 and 1 with
//! move_pages(2), over and over, for SECONDS or until PID is gone, and prints how many page
//! moves it verified (asking the kernel where each page is after each move). For running
//! unmodified programs (fio through the libaio drop-in) while their rings migrate.

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

/// PID and its descendants, from every process's parent in `/proc/N/stat`.
fn family(pid: i32) -> Vec<i32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": the command may hold spaces and parentheses.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<i32>().ok());
        if let Some(ppid) = ppid {
            parents.push((p, ppid));
        }
    }
    let mut members = vec![pid];
    let mut grew = true;
    while grew {
        grew = false;
        for &(p, ppid) in &parents {
            if members.contains(&ppid) && !members.contains(&p) {
                members.push(p);
                grew = true;
            }
        }
    }
    members
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
        if std::fs::metadata(format!("/proc/{pid}")).is_err() {
            break;
        }
        let mut found = false;
        for p in family(pid) {
            let pages = ring_pages(p);
            if pages.is_empty() {
                continue;
            }
            found = true;
            // move_pages(2) sees only pages in the process's page tables, and a libaio program
            // may never touch its ring: reading them through /proc/PID/mem faults them in.
            if let Ok(mem) = std::fs::File::open(format!("/proc/{p}/mem")) {
                use std::os::unix::fs::FileExt;
                for &page in &pages {
                    let _ = mem.read_at(&mut [0u8; 1], page as u64);
                }
            }
            // A ring torn down meanwhile is simply not counted (-ENOENT, -EFAULT).
            let mut where_now = numa::nodes_of(p, &pages).unwrap_or_default();
            if where_now.len() != pages.len() {
                continue;
            }
            if let Ok(n) = numa::move_verified(p, &pages, node, &mut where_now) {
                moves += n;
            }
        }
        if found {
            rounds += 1;
            node ^= 1;
        } else {
            // Not set up yet, or gone.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    println!("ring_mover: {moves} verified ring page moves in {rounds} rounds");
}
