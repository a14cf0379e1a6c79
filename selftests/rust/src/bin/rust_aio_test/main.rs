// SPDX-License-Identifier: GPL-2.0

//! rust_aio's Rust selftests (TAP): the device, the ring's basic life, and the concurrent
//! stress of submitters and reapers (ioctl and mapping) that counts every event.

use rust_aio_tests::{
    ensure, ensure_eq, io_event, iocb, make_iocb, uapi, Device, Outcome, RingView, CMD_TIMER,
    CMD_WORK, IOCB_CMD_NOOP,
};
use std::time::{Duration, Instant};

mod stress;

fn dev() -> Result<Device, String> {
    Device::open().map_err(|e| format!("open {}: {e}", rust_aio_tests::DEVICE))
}

/// Ring slots for `nr_events` as fs/aio.c sizes them: +2, whole pages.
fn expected_slots(nr_events: u32) -> u32 {
    let pages = (32 + (nr_events as usize + 2) * 32).div_ceil(4096);
    ((pages * 4096 - 32) / 32) as u32
}

fn main() {
    let mut tap = Tap::new();

    tap.run("device_opens", || {
        dev()?;
        Ok(Outcome::Pass)
    });

    tap.run("version_matches_header", || {
        ensure_eq!(Ok(uapi::RUST_AIO_ABI_VERSION), dev()?.version());
        Ok(Outcome::Pass)
    });

    tap.run("unknown_ioctl_is_enotty", || {
        let dev = dev()?;
        let mut buf = [0u64; 8];
        for nr in [0x00u32, 0x0f, 0x16, 0x20, 0xff] {
            // _IOR(RUST_AIO_IOC_MAGIC, nr, __u32)
            let cmd = (2u32 << 30) | (4 << 16) | (uapi::RUST_AIO_IOC_MAGIC << 8) | nr;
            let ret = dev.ioctl(cmd, buf.as_mut_ptr() as usize);
            ensure!(ret == Err(libc::ENOTTY), "ioctl nr {nr:#x}: {ret:?}");
        }
        Ok(Outcome::Pass)
    });

    tap.run("ring_header_after_setup", || {
        let dev = dev()?;
        for nr_events in [1u32, 126, 127, 128, 1000, 4096] {
            let ctx = dev
                .setup(nr_events)
                .map_err(|e| format!("setup({nr_events}): errno {e}"))?;
            // SAFETY: `ctx` is a live context of this process.
            let ring = unsafe { RingView::new(ctx) };
            ensure_eq!(
                expected_slots(nr_events),
                ring.nr(),
                "nr_events {nr_events}"
            );
            ensure_eq!(uapi::RUST_AIO_RING_MAGIC, ring.magic());
            ensure_eq!(0, ring.head());
            ensure_eq!(0, ring.tail());
            ensure_eq!(1, ring.word(5).load(std::sync::atomic::Ordering::Relaxed));
            ensure_eq!(0, ring.word(6).load(std::sync::atomic::Ordering::Relaxed));
            ensure_eq!(32, ring.header_length());
            ensure_eq!(Ok(0), dev.destroy(ctx));
        }
        Ok(Outcome::Pass)
    });

    tap.run("each_operation_completes_with_its_event", || {
        let dev = dev()?;
        let ctx = dev.setup(16).map_err(|e| format!("setup: {e}"))?;
        let ops = [
            make_iocb(IOCB_CMD_NOOP, 0x1111, 11, 0),
            make_iocb(CMD_TIMER, 0x2222, 22, 2_000_000),
            make_iocb(CMD_WORK, 0x3333, 33, 0),
        ];
        let ptrs: Vec<*const iocb> = ops.iter().map(|i| i as *const iocb).collect();
        ensure_eq!(Ok(3), dev.submit(ctx, &ptrs));
        let mut events = [io_event::default(); 8];
        let mut got = Vec::new();
        while got.len() < 3 {
            let n = dev
                .getevents(ctx, 1, &mut events, Some((5, 0)))
                .map_err(|e| format!("getevents: errno {e}"))?;
            ensure!(n > 0, "timed out with {} of 3 events", got.len());
            got.extend_from_slice(&events[..n as usize]);
        }
        got.sort_by_key(|e| e.data);
        for (event, op) in got.iter().zip(ops.iter()) {
            ensure_eq!(op.aio_data, event.data);
            ensure_eq!(op as *const iocb as u64, event.obj);
            ensure_eq!(op.aio_nbytes as i64, event.res);
            ensure_eq!(0, event.res2);
        }
        ensure_eq!(Ok(0), dev.destroy(ctx));
        Ok(Outcome::Pass)
    });

    tap.run("timer_waits_its_delay", || {
        let dev = dev()?;
        let ctx = dev.setup(4).map_err(|e| format!("setup: {e}"))?;
        let op = make_iocb(CMD_TIMER, 7, 0, 50_000_000);
        let start = Instant::now();
        ensure_eq!(Ok(1), dev.submit(ctx, &[&op]));
        let mut events = [io_event::default(); 1];
        ensure_eq!(
            Ok(0),
            dev.getevents(ctx, 1, &mut events, Some((0, 0))),
            "at once"
        );
        ensure_eq!(Ok(1), dev.getevents(ctx, 1, &mut events, None));
        let waited = start.elapsed();
        ensure!(waited >= Duration::from_millis(50), "woke after {waited:?}");
        ensure_eq!(Ok(0), dev.destroy(ctx));
        Ok(Outcome::Pass)
    });

    tap.run("reap_from_mapping", || {
        let dev = dev()?;
        let ctx = dev.setup(64).map_err(|e| format!("setup: {e}"))?;
        // SAFETY: `ctx` is a live context of this process.
        let ring = unsafe { RingView::new(ctx) };
        let ops: Vec<iocb> = (0..40).map(|i| make_iocb(IOCB_CMD_NOOP, i, i, 0)).collect();
        let ptrs: Vec<*const iocb> = ops.iter().map(|i| i as *const iocb).collect();
        ensure_eq!(Ok(40), dev.submit(ctx, &ptrs));
        let mut out = Vec::new();
        ensure_eq!(40, ring.reap(&mut out, 100));
        let data: Vec<u64> = out.iter().map(|e| e.data).collect();
        ensure_eq!((0..40).collect::<Vec<u64>>(), data);
        ensure_eq!(ring.tail(), ring.head());
        let mut events = [io_event::default(); 4];
        ensure_eq!(Ok(0), dev.getevents(ctx, 0, &mut events, Some((0, 0))));
        ensure_eq!(Ok(0), dev.destroy(ctx));
        Ok(Outcome::Pass)
    });

    stress::run(&mut tap);

    tap.finish();
}

use rust_aio_tests::Tap;
