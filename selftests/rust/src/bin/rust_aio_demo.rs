// SPDX-License-Identifier: GPL-2.0

//! `make run`: shows, in plain words, what rust_aio does in the guest.

use rust_aio_tests::{
    io_event, iocb, make_iocb, Device, RingView, CMD_TIMER, CMD_WORK, IOCB_CMD_NOOP,
};
use std::time::Instant;

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
}
