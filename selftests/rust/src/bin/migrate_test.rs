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

/// Test 3: Compaction (`/proc/sys/vm/compact_memory`) under traffic. Full compaction migrates
/// movable pages from the bottom of each zone to free pages at its top; a fresh zone hands out
/// its top first, so each round first puts the ring low in node 1 (a filler holds the top while
/// the ring moves back there), frees the filler and compacts. A page moved by compaction stays
/// on its node: its page frame number, from `/proc/self/pagemap`, tells that it moved. 6 s, and
/// at least 3 rounds.
fn compaction() -> Result<Outcome, String> {
    let budget = Budget::new(6);
    let before = Counters::now();
    let traffic = traffic_on_node(1)?;
    let pages = numa::touch_pages(traffic.ctx(), RING_PAGES);
    let (mut rounds, mut by_compaction) = (0u32, 0u64);
    while (rounds < 3 || budget.left()) && traffic.failed().is_none() {
        numa::move_to(0, &pages, 0).map_err(|e| format!("move_pages: errno {e}"))?;
        let (filler, len) = node1_filler(32 << 20)?;
        for _ in 0..100 {
            numa::move_to(0, &pages, 1).map_err(|e| format!("move_pages: errno {e}"))?;
            if numa::pages_on(0, &pages, 1)? == RING_PAGES {
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
        for _ in 0..100 {
            numa::move_to(0, &pages, 1).map_err(|e| format!("move_pages: errno {e}"))?;
            if numa::pages_on(0, &pages, 1)? == RING_PAGES {
                break;
            }
        }
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

/// Test 5: A child sets up a context with work in flight and tears it down (io_destroy, close, or
/// SIGKILL from us) while we migrate its ring pages as fast as we can: 30 s of rounds, at least
/// 240 (~600 on a quiet machine).
fn teardown_races() -> Result<Outcome, String> {
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

/// userfaultfd(2), as far as the stuck-reader test needs it (`linux/userfaultfd.h`).
mod uffd {
    pub const API: u64 = 0xaa;
    pub const IOC_API: u64 = 0xc018_aa3f;
    pub const IOC_REGISTER: u64 = 0xc020_aa00;
    pub const IOC_ZEROPAGE: u64 = 0xc020_aa04;
    pub const MODE_MISSING: u64 = 1;

    #[repr(C)]
    #[derive(Default)]
    pub struct Api {
        pub api: u64,
        pub features: u64,
        pub ioctls: u64,
    }

    #[repr(C)]
    #[derive(Default)]
    pub struct Register {
        pub start: u64,
        pub len: u64,
        pub mode: u64,
        pub ioctls: u64,
    }

    #[repr(C)]
    #[derive(Default)]
    pub struct ZeroPage {
        pub start: u64,
        pub len: u64,
        pub mode: u64,
        pub zeropage: i64,
    }
}

/// A page of anonymous memory registered with a userfaultfd for missing-page faults: whoever
/// touches it first waits until [`StuckPage::resolve`].
struct StuckPage {
    uffd: i32,
    addr: usize,
}

impl StuckPage {
    fn new() -> Result<Self, String> {
        // SAFETY: Plain system calls on fresh objects; the structs match the kernel's.
        unsafe {
            let uffd =
                libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) as i32;
            ensure!(uffd >= 0, "userfaultfd: errno {}", rust_aio_tests::errno());
            let mut api = uffd::Api {
                api: uffd::API,
                ..Default::default()
            };
            ensure!(
                libc::ioctl(uffd, uffd::IOC_API as _, &mut api) == 0,
                "UFFDIO_API: errno {}",
                rust_aio_tests::errno()
            );
            let addr = libc::mmap(
                std::ptr::null_mut(),
                PAGE_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            ensure!(addr != libc::MAP_FAILED, "mmap");
            let mut reg = uffd::Register {
                start: addr as u64,
                len: PAGE_SIZE as u64,
                mode: uffd::MODE_MISSING,
                ioctls: 0,
            };
            ensure!(
                libc::ioctl(uffd, uffd::IOC_REGISTER as _, &mut reg) == 0,
                "UFFDIO_REGISTER: errno {}",
                rust_aio_tests::errno()
            );
            Ok(Self {
                uffd,
                addr: addr as usize,
            })
        }
    }

    /// Waits until somebody is blocked on the page (a fault message is readable).
    fn wait_for_fault(&self, timeout: Duration) -> Result<(), String> {
        let mut pfd = libc::pollfd {
            fd: self.uffd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: One valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
        ensure!(n == 1, "no fault on the registered page within {timeout:?}");
        let mut msg = [0u8; 32];
        // SAFETY: Reads one `struct uffd_msg` (32 bytes) into a local buffer.
        let n = unsafe { libc::read(self.uffd, msg.as_mut_ptr().cast(), 32) };
        ensure!(n == 32, "reading the fault message: {n}");
        Ok(())
    }

    /// Maps a zero page there: the blocked task goes on.
    fn resolve(&self) -> Result<(), String> {
        let mut zero = uffd::ZeroPage {
            start: self.addr as u64,
            len: PAGE_SIZE as u64,
            ..Default::default()
        };
        // SAFETY: A valid `struct uffdio_zeropage` for our registered page.
        let ret = unsafe { libc::ioctl(self.uffd, uffd::IOC_ZEROPAGE as _, &mut zero) };
        ensure!(
            ret == 0 || rust_aio_tests::errno() == libc::EEXIST,
            "UFFDIO_ZEROPAGE: errno {}",
            rust_aio_tests::errno()
        );
        Ok(())
    }
}

impl Drop for StuckPage {
    fn drop(&mut self) {
        let _ = self.resolve();
        // SAFETY: Our own mapping and descriptor.
        unsafe {
            libc::munmap(self.addr as *mut libc::c_void, PAGE_SIZE);
            libc::close(self.uffd);
        }
    }
}

/// Test 6: A reader whose events buffer is stuck in a userfaultfd fault must not pin the ring:
/// while it waits, the ring's pages still migrate (each move verified) and its memory blocks
/// still go offline; then the fault is resolved and the reader gets every event. A second
/// stuck reader must not hold up DESTROY either.
fn stuck_reader() -> Result<Outcome, String> {
    const EVENTS: u32 = 1000;
    const PAGES: usize = 8;
    let blocks = numa::memory_blocks(1);
    let dev = Device::open().map_err(|e| format!("open: {e}"))?;
    numa::bind_to(Some(1)).map_err(|e| format!("set_mempolicy: errno {e}"))?;
    let ctx = dev.setup(EVENTS);
    numa::bind_to(None).map_err(|e| format!("set_mempolicy: errno {e}"))?;
    let ctx = ctx.map_err(|e| format!("setup: errno {e}"))?;
    let pages = numa::touch_pages(ctx, PAGES);
    let ops: Vec<iocb> = (0..10)
        .map(|i| make_iocb(IOCB_NOOP, 500 + i, i, 0))
        .collect();
    let ptrs: Vec<*const iocb> = ops.iter().map(|o| o as *const iocb).collect();
    ensure_eq!(Ok(10), dev.submit(ctx, &ptrs));

    let stuck = StuckPage::new()?;
    let (moves, offlined, got) = std::thread::scope(|scope| -> Result<_, String> {
        let reader = scope.spawn(|| dev.getevents_raw(ctx, 10, 10, stuck.addr, Some((60, 0))));
        let result = (|| -> Result<(u64, u32), String> {
            stuck.wait_for_fault(Duration::from_secs(10))?;
            let mut moves = 0u64;
            let mut target = 0;
            let mut where_now = numa::nodes_of(0, &pages).map_err(|e| format!("errno {e}"))?;
            for _ in 0..6 {
                moves += numa::move_verified(0, &pages, target, &mut where_now)?;
                target ^= 1;
            }
            println!("# stuck reader: {moves} verified moves while it waits");
            ensure_eq!(
                PAGES as u64 * 6,
                moves,
                "every page must move on every round"
            );
            // The ring is back on node 1 (6 moves, ending on 1): take its blocks offline.
            let mut offlined = 0;
            if !blocks.is_empty() {
                let mut result = Ok(());
                for &b in &blocks {
                    result = numa::set_block_state(b, "offline", Duration::from_secs(20));
                    if result.is_err() {
                        break;
                    }
                    offlined += 1;
                }
                let on_0 = numa::pages_on(0, &pages, 0)?;
                for &b in &blocks {
                    if numa::block_state(b) == "offline" {
                        numa::set_block_state(b, "online_movable", Duration::from_secs(30))?;
                    }
                }
                result?;
                ensure_eq!(PAGES, on_0, "offlined, but the ring stayed behind");
            }
            ensure!(
                !reader.is_finished(),
                "the reader returned before its fault was resolved"
            );
            Ok((moves, offlined))
        })();
        // Whatever happened, let the reader go before waiting for it.
        stuck.resolve()?;
        let got = reader.join().map_err(|_| "reader panicked".to_string())?;
        let (moves, offlined) = result?;
        Ok((moves, offlined, got))
    })?;
    println!("# stuck reader: {moves} verified moves, {offlined} blocks offlined meanwhile");
    ensure_eq!(Ok(10), got);
    // SAFETY: The buffer is mapped now and holds the 10 events just returned.
    let events = unsafe { std::slice::from_raw_parts(stuck.addr as *const io_event, 10) };
    for (i, ev) in events.iter().enumerate() {
        ensure_eq!(500 + i as u64, ev.data);
        ensure_eq!(ptrs[i] as u64, ev.obj);
        ensure_eq!(i as i64, ev.res);
    }

    // A second stuck reader, and DESTROY meanwhile: it must not wait for the reader.
    ensure_eq!(Ok(10), dev.submit(ctx, &ptrs));
    let stuck = StuckPage::new()?;
    let released = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| -> Result<(), String> {
        let reader = scope.spawn(|| dev.getevents_raw(ctx, 10, 10, stuck.addr, None));
        let faulted = stuck.wait_for_fault(Duration::from_secs(10));
        // Should DESTROY wait for the reader, the fault is resolved after 10 s anyway.
        let resolver = scope.spawn(|| {
            let start = Instant::now();
            while !released.load(std::sync::atomic::Ordering::Acquire)
                && start.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            stuck.resolve()
        });
        let start = Instant::now();
        let destroyed = faulted.and_then(|()| dev.destroy(ctx).map_err(|e| format!("errno {e}")));
        let took = start.elapsed();
        released.store(true, std::sync::atomic::Ordering::Release);
        resolver
            .join()
            .map_err(|_| "resolver panicked".to_string())??;
        let got = reader.join().map_err(|_| "reader panicked".to_string())?;
        ensure_eq!(Ok(0), destroyed);
        ensure!(
            took < Duration::from_secs(5),
            "DESTROY waited {took:?} for the reader"
        );
        // The reader finds the context gone.
        ensure!(
            got == Err(libc::EINVAL) || got == Ok(0),
            "reader after destroy: {got:?}"
        );
        Ok(())
    })?;
    Ok(Outcome::Pass)
}

/// Test 7: Migration racing setup: `migrate_pages(2)` moves every page of this process back
/// and forth while another thread keeps four contexts alive, destroying the oldest and setting up
/// a new one each round, so that rings are met both half built and whole. Every context must
/// come out whole: its header right, a NOOP round trip exact. 8 s of rounds, at least 100 (~260
/// on a quiet machine).
fn migration_races_setup() -> Result<Outcome, String> {
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
fn mremap_races_migration_and_destroy() -> Result<Outcome, String> {
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
fn ring_laps_between_copies() -> Result<Outcome, String> {
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
