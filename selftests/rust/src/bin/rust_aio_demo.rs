// SPDX-License-Identifier: GPL-2.0

//! `make run`: shows, in plain words, what rust_aio does in the guest.

use rust_aio_tests::numa::{self, Counters};
use rust_aio_tests::traffic::{Config, Traffic};
use rust_aio_tests::{
    io_event, iocb, make_iocb, Device, RingView, CMD_TIMER, CMD_WORK, IOCB_CMD_NOOP,
};
use std::time::{Duration, Instant};

fn fail(what: &str, errno: i32) -> ! {
    println!(
        "{what} failed: {}",
        std::io::Error::from_raw_os_error(errno)
    );
    std::process::exit(1);
}

fn describe(event: &io_event, ops: &[iocb], start: Instant) {
    let what = match ops
        .iter()
        .position(|op| op as *const iocb as u64 == event.obj)
    {
        Some(0) => "NOOP  (completed at once, in the submitting task)",
        Some(1) => "TIMER (completed by an hrtimer, in hard-IRQ context)",
        Some(2) => "WORK  (completed by the module's workqueue)",
        _ => "?",
    };
    println!(
        "  event data={:#x} res={} after {:>5.1} ms: {what}",
        event.data,
        event.res,
        start.elapsed().as_secs_f64() * 1e3
    );
}

fn main() {
    println!("== rust_aio: Linux AIO's completion ring in a Rust kernel module ==\n");
    let dev = Device::open().unwrap_or_else(|e| {
        println!("cannot open /dev/rust_aio: {e}");
        std::process::exit(1)
    });
    let version = dev
        .version()
        .unwrap_or_else(|e| fail("RUST_AIO_IOC_VERSION", e));
    println!("/dev/rust_aio is open; the module speaks ABI version {version}.");

    let ctx = dev
        .setup(128)
        .unwrap_or_else(|e| fail("RUST_AIO_IOC_SETUP", e));
    // SAFETY: `ctx` is a live context of this process.
    let ring = unsafe { RingView::new(ctx) };
    println!(
        "\nio_setup(128): context {ctx:#x}. That is also where its ring is mapped: magic {:#x}, \
         {} event slots, head {} and tail {}.",
        ring.magic(),
        ring.nr(),
        ring.head(),
        ring.tail()
    );

    println!("\nOne operation of each kind, reaped with io_getevents:");
    let ops = [
        make_iocb(IOCB_CMD_NOOP, 0x1, 100, 0),
        make_iocb(CMD_TIMER, 0x2, 200, 20_000_000),
        make_iocb(CMD_WORK, 0x3, 300, 0),
    ];
    let ptrs: Vec<*const iocb> = ops.iter().map(|op| op as *const iocb).collect();
    let start = Instant::now();
    let n = dev.submit(ctx, &ptrs).unwrap_or_else(|e| fail("submit", e));
    println!("  io_submit queued {n} operations (the timer fires after 20 ms)");
    let mut events = [io_event::default(); 4];
    let mut got = 0;
    while got < 3 {
        let n = dev
            .getevents(ctx, 1, &mut events, None)
            .unwrap_or_else(|e| fail("getevents", e));
        for event in &events[..n as usize] {
            describe(event, &ops, start);
        }
        got += n;
    }

    println!("\nTen NOOPs, half reaped from the mapped ring without a system call:");
    let noops: Vec<iocb> = (0..10)
        .map(|i| make_iocb(IOCB_CMD_NOOP, 0x100 + i, i, 0))
        .collect();
    let ptrs: Vec<*const iocb> = noops.iter().map(|op| op as *const iocb).collect();
    dev.submit(ctx, &ptrs).unwrap_or_else(|e| fail("submit", e));
    println!(
        "  after io_submit: head {} tail {}",
        ring.head(),
        ring.tail()
    );
    let mut reaped = Vec::new();
    ring.reap(&mut reaped, 5);
    println!(
        "  read {} events from the mapping (data {:#x}..{:#x}) and stored head {}",
        reaped.len(),
        reaped[0].data,
        reaped[reaped.len() - 1].data,
        ring.head()
    );
    let mut rest = [io_event::default(); 10];
    let n = dev
        .getevents(ctx, 5, &mut rest, None)
        .unwrap_or_else(|e| fail("getevents", e));
    println!(
        "  io_getevents took the other {n} (data {:#x}..{:#x}); head {} tail {}",
        rest[0].data,
        rest[n as usize - 1].data,
        ring.head(),
        ring.tail()
    );

    dev.destroy(ctx).unwrap_or_else(|e| fail("destroy", e));
    println!("\nio_destroy: the context is gone and its ring unmapped.");

    migration();
}

/// "On node 0: N, node 1: M" for the ring's pages.
fn where_pages(pages: &[usize]) -> String {
    let nodes = numa::nodes_of(0, pages).unwrap_or_default();
    let on = |n| nodes.iter().filter(|&&x| x == n).count();
    format!("{} pages on node 0, {} on node 1", on(0), on(1))
}

fn show_progress(traffic: &Traffic, what: &str, since: &Counters) {
    let c = Counters::now().since(since);
    println!(
        "  {what}: {} events reaped so far; module: {} pages migrated, {} migrations refused \
         (ring_lock busy), longest IRQ-off copy {} us",
        traffic.reaped(),
        c.migrated,
        c.ring_lock_busy,
        c.max_irqoff_ns / 1000
    );
}

fn migration() {
    const PAGES: usize = 64;
    println!("\n== Ring pages on the move, under traffic ==\n");
    let dev = Device::open().unwrap_or_else(|e| {
        println!("open: {e}");
        std::process::exit(1)
    });
    // The ring goes to node 1, the hot-pluggable DIMM; only the setup runs under the policy.
    let _ = numa::bind_to(Some(1));
    let ctx = dev.setup(8189);
    let _ = numa::bind_to(None);
    let ctx = ctx.unwrap_or_else(|e| fail("setup", e));
    let before = Counters::now();
    let traffic = Traffic::start_on(dev, ctx, Config::default()).unwrap_or_else(|e| {
        println!("{e}");
        std::process::exit(1)
    });
    let pages = numa::touch_pages(ctx, PAGES);
    println!(
        "A 64-page ring set up with memory policy \"node 1\": {}. Four threads submit NOOP, \
         TIMER and WORK operations, two reap with io_getevents, one reaps from the mapping now \
         and then.",
        where_pages(&pages)
    );
    std::thread::sleep(Duration::from_secs(1));
    show_progress(&traffic, "after 1 s", &before);

    for (round, node) in [0, 1, 0, 1].into_iter().enumerate() {
        let _ = numa::move_to(0, &pages, node);
        println!(
            "move_pages to node {node} (round {}): {}",
            round + 1,
            where_pages(&pages)
        );
    }
    show_progress(&traffic, "after moving", &before);

    let blocks = numa::memory_blocks(1);
    println!("\nOffline node 1's memory blocks {blocks:?} while the ring is on them:");
    for &b in &blocks {
        match numa::set_block_state(b, "offline", Duration::from_secs(120)) {
            Ok(()) => println!("  memory{b}: {}", numa::block_state(b)),
            Err(e) => println!("  memory{b}: {e}"),
        }
    }
    println!("  the ring now: {}", where_pages(&pages));
    show_progress(&traffic, "during", &before);
    for &b in &blocks {
        let _ = numa::set_block_state(b, "online_movable", Duration::from_secs(60));
    }
    let _ = numa::move_to(0, &pages, 1);
    println!(
        "Blocks online again, ring moved back: {}",
        where_pages(&pages)
    );

    let report = traffic.stop(Duration::from_secs(30));
    let c = Counters::now().since(&before);
    println!(
        "\nTraffic stopped: {} events submitted, {} reaped ({} from the mapping), {} lost, {} \
         duplicated, {} damaged; the eventfd counted {}.",
        report.submitted,
        report.reaped,
        report.reaped_from_mapping,
        report.lost,
        report.duplicates,
        report.bad_fields,
        report.eventfd_count
    );
    println!(
        "The module migrated {} ring pages, refused {} times because ring_lock was busy \
         (the kernel retried), and kept interrupts off for at most {} us per page copy \
         (debugfs: /sys/kernel/debug/rust_aio/).",
        c.migrated,
        c.ring_lock_busy,
        c.max_irqoff_ns / 1000
    );
    match report.check() {
        Ok(()) => println!("Every event came back exactly once."),
        Err(e) => {
            println!("PROBLEM: {e}");
            std::process::exit(1);
        }
    }
}
