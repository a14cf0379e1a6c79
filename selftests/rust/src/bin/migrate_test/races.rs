// SPDX-License-Identifier: GPL-2.0

//! Teardown, setup and mremap racing migration, and completions lapping a ring between the two
//! copies of a migrating page.

use super::*;

/// Test 5: A child sets up a context with work in flight and tears it down (io_destroy, close, or
/// SIGKILL from us) while we migrate its ring pages as fast as we can: 30 s of rounds, at least
/// 240 (~600 on a quiet machine).
pub(super) fn teardown_races() -> Result<Outcome, String> {
    const MIN_ROUNDS: u32 = 240;
    const PAGES: usize = 8;
    let budget = Budget::new(30);
    let before = Counters::now();
    let aio_nr = numa::counter("aio_nr");
    let (mut migrated_live, mut rounds) = (0u64, 0u32);
    while rounds < MIN_ROUNDS || budget.left() {
        let round = rounds;
        rounds += 1;
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
        // Migrate a little first, each move verified, then let the child end while migrating
        // on.
        let mut where_now = numa::nodes_of(pid, &pages).map_err(|e| format!("errno {e}"))?;
        for i in 0..4 {
            migrated_live += numa::move_verified(pid, &pages, i % 2, &mut where_now)?;
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
        "# teardown races: {rounds} rounds, {migrated_live} pages moved while live; module: {} \
         migrated, {} ring_lock busy, {} teardown won",
        counters.migrated, counters.ring_lock_busy, counters.teardown_won
    );
    // The child's ring is idle between its setup and our word: the trylock may lose now and
    // then, but most of the 4 moves of its 8 pages must happen, each seen by the kernel.
    ensure!(
        migrated_live >= u64::from(rounds) * PAGES as u64 * 4 / 2,
        "only {migrated_live} verified moves of live rings in {rounds} rounds"
    );
    ensure!(
        counters.migrated >= migrated_live,
        "the module counted {} migrations, fewer than {migrated_live} seen",
        counters.migrated
    );
    // Every context died with its child: their events are all given back.
    ensure_eq!(aio_nr, numa::counter("aio_nr"));
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

/// Test 7: Migration racing setup: `migrate_pages(2)` moves every page of this process back
/// and forth while another thread keeps four contexts alive, destroying the oldest and setting up
/// a new one each round, so that rings are met both half built and whole. Every context must
/// come out whole: its header right, a NOOP round trip exact. 8 s of rounds, at least 100 (~260
/// on a quiet machine).
pub(super) fn migration_races_setup() -> Result<Outcome, String> {
    const MIN_ROUNDS: u32 = 100;
    const LIVE: usize = 4;
    let budget = Budget::new(8);
    let before = Counters::now();
    let dev = Device::open().map_err(|e| format!("open: {e}"))?;
    let done = std::sync::atomic::AtomicBool::new(false);
    let rounds = std::thread::scope(|scope| -> Result<u32, String> {
        let migrator = scope.spawn(|| {
            let (mut calls, mut node) = (0u64, 0u64);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let (from, to) = (1u64 << (node ^ 1), 1u64 << node);
                // SAFETY: Two 64-bit node masks.
                unsafe { libc::syscall(libc::SYS_migrate_pages, 0, 64usize, &from, &to) };
                node ^= 1;
                calls += 1;
            }
            calls
        });
        let result = (|| {
            let mut live = std::collections::VecDeque::new();
            let mut round = 0;
            while round < MIN_ROUNDS || budget.left() {
                if live.len() == LIVE {
                    let old = live.pop_front().unwrap_or(0);
                    ensure_eq!(Ok(0), dev.destroy(old), "round {round}");
                }
                let nr = 1 + (round * 97) % 2000;
                let ctx = dev
                    .setup(nr)
                    .map_err(|e| format!("round {round}: setup: errno {e}"))?;
                live.push_back(ctx);
                // SAFETY: The context is live and mapped in this process.
                let ring = unsafe { RingView::new(ctx) };
                ensure_eq!(rust_aio_tests::uapi::RUST_AIO_RING_MAGIC, ring.magic());
                ensure_eq!(0, ring.head(), "round {round}");
                ensure_eq!(0, ring.tail(), "round {round}");
                ensure_eq!(32, ring.header_length());
                for ctx in &live {
                    let op = make_iocb(IOCB_NOOP, u64::from(round), 3, 0);
                    ensure_eq!(Ok(1), dev.submit(*ctx, &[&op as *const iocb]));
                    let mut ev = [io_event::default(); 2];
                    ensure_eq!(Ok(1), dev.getevents(*ctx, 1, &mut ev, None));
                    ensure_eq!(u64::from(round), ev[0].data);
                    ensure_eq!(3, ev[0].res);
                }
                round += 1;
            }
            for ctx in live {
                ensure_eq!(Ok(0), dev.destroy(ctx));
            }
            Ok(round)
        })();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let calls = migrator
            .join()
            .map_err(|_| "migrator panicked".to_string())?;
        println!("# {calls} migrate_pages calls");
        result
    })?;
    let counters = Counters::now().since(&before);
    println!(
        "# migration vs setup: {rounds} contexts; module: {} migrated, {} ring_lock busy, {} \
         teardown won",
        counters.migrated, counters.ring_lock_busy, counters.teardown_won
    );
    ensure!(counters.migrated > 0, "no ring page migrated");
    Ok(Outcome::Pass)
}

/// Test 8: mremap of the ring racing migration and DESTROY: one thread moves the ring around
/// (the context id follows it), one migrates its pages wherever it is, and DESTROY comes at a
/// random moment. Exactly one DESTROY succeeds, and afterwards no mapping of the ring is left.
pub(super) fn mremap_races_migration_and_destroy() -> Result<Outcome, String> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const ROUNDS: u32 = 200;
    const PAGES: usize = 4;
    let dev = Device::open().map_err(|e| format!("open: {e}"))?;
    let mut moved_total = 0u64;
    for round in 0..ROUNDS {
        let ctx = dev
            .setup((PAGES * 128 - 3) as u32)
            .map_err(|e| format!("setup: errno {e}"))?;
        numa::touch_pages(ctx, PAGES);
        let current = AtomicU64::new(ctx);
        let destroyed = AtomicBool::new(false);
        let moved = std::thread::scope(|scope| -> Result<u64, String> {
            let mover = scope.spawn(|| {
                let mut moved = 0u64;
                while !destroyed.load(Ordering::Acquire) {
                    let from = current.load(Ordering::Acquire);
                    let len = PAGES * PAGE_SIZE;
                    // SAFETY: A fresh reservation to move the ring into; mremap checks the rest.
                    // A failed MREMAP_FIXED has usually unmapped the reservation already, and
                    // another thread may have mapped something there since: it is not unmapped
                    // again (at worst a few pages of address space stay reserved).
                    let to = unsafe {
                        let dest = libc::mmap(
                            std::ptr::null_mut(),
                            len,
                            libc::PROT_NONE,
                            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                            -1,
                            0,
                        );
                        libc::mremap(
                            from as *mut libc::c_void,
                            len,
                            len,
                            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                            dest,
                        )
                    };
                    if to == libc::MAP_FAILED {
                        break;
                    }
                    current.store(to as u64, Ordering::Release);
                    moved += 1;
                }
                moved
            });
            let migrator = scope.spawn(|| {
                let mut node = 0;
                while !destroyed.load(Ordering::Acquire) {
                    let base = current.load(Ordering::Acquire) as usize;
                    let pages: Vec<usize> = (0..PAGES).map(|i| base + i * PAGE_SIZE).collect();
                    let _ = numa::move_to(0, &pages, node);
                    node ^= 1;
                }
            });
            std::thread::sleep(Duration::from_micros(u64::from(round % 20) * 500));
            // The id may be stale by the time DESTROY looks: retry with the new one, for as
            // long as it takes the mover to leave one id in place long enough (bounded by
            // time: a kernel without debugging moves the ring faster than 1,000 tries).
            let mut result = Err(libc::EINVAL);
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                result = dev.destroy(current.load(Ordering::Acquire));
                if result.is_ok() {
                    break;
                }
            }
            destroyed.store(true, Ordering::Release);
            let moved = mover.join().map_err(|_| "mover panicked".to_string())?;
            migrator
                .join()
                .map_err(|_| "migrator panicked".to_string())?;
            ensure_eq!(Ok(0), result, "round {round}");
            // Once destroyed, the context is gone for every id it ever had.
            ensure_eq!(
                Err(libc::EINVAL),
                dev.destroy(current.load(Ordering::Acquire))
            );
            Ok(moved)
        })?;
        moved_total += moved;
        let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| e.to_string())?;
        ensure!(
            !maps.contains("rust_aio"),
            "round {round}: a ring mapping outlived DESTROY:\n{maps}"
        );
    }
    println!("# mremap vs migration vs destroy: {ROUNDS} rounds, {moved_total} mremaps");
    ensure!(moved_total > 0, "the ring never moved");
    Ok(Outcome::Pass)
}

/// Test 9: completions lap a two-page ring while one page is between the two copies of a
/// two-phase migration (widened to 50 ms by the debugfs knob `copy_delay_us`): the user-space
/// reaper drains the other page, stops at the migrating one, and the submitters fill the ring
/// round again. The second copy must take every slot written since the first, however far
/// `tail` went round.
pub(super) fn ring_laps_between_copies() -> Result<Outcome, String> {
    // 255 slots: 127 in page 0 (after the header), 128 in page 1.
    const EVENTS: u32 = 250;
    const ROUNDS: u64 = 100;
    let before = Counters::now();
    let _delay = Knob::set("copy_delay_us", 50_000)?;
    let config = Config {
        submitters: 1,
        ioctl_reapers: 0,
        mapping_phase: Some(Duration::from_secs(3600)),
        timer_percent: 0,
        work_percent: 0,
        // `head` moves on a few events at a time, up to the migrating page.
        mapping_batch: 4,
    };
    let traffic = Traffic::start(EVENTS, config)?;
    let pages = numa::touch_pages(traffic.ctx(), 2);
    let mut where_now = numa::nodes_of(0, &pages).map_err(|e| format!("errno {e}"))?;
    let (mut moves, mut target) = (0u64, 1);
    for round in 0..ROUNDS {
        if traffic.failed().is_some() {
            break;
        }
        // Mostly page 1, whose slots the reaper cannot pass while it migrates; page 0 (the
        // header) every fourth round.
        let page = usize::from(round % 4 != 3);
        moves += numa::move_verified(0, &pages[page..=page], target, &mut where_now[page..=page])?;
        if page == 1 {
            target ^= 1;
        }
    }
    finish(traffic, "ring laps between copies", moves, &before)?;
    ensure!(moves >= ROUNDS / 2, "only {moves} verified moves");
    Ok(Outcome::Pass)
}
