// SPDX-License-Identifier: GPL-2.0

//! Concurrency: four submitters of NOOP, TIMER and WORK operations, two ioctl reapers and a
//! thread that reaps from the mapping in phases, through one context, until at least a million
//! events (or `STRESS_SECONDS`) went through. Every event must come back once, intact.

use rust_aio_tests::traffic::{Config, Traffic};
use rust_aio_tests::{ensure, stress_seconds, Outcome, Tap};
use std::time::{Duration, Instant};

/// Events a `make check` run must see at least.
const MIN_EVENTS: u64 = 1_000_000;

pub fn run(tap: &mut Tap) {
    tap.run("concurrent_submit_and_reap_every_event_once", || {
        let min_seconds = stress_seconds(0);
        let traffic = Traffic::start(1024, Config::default())?;
        let start = Instant::now();
        while (traffic.submitted() < MIN_EVENTS || start.elapsed().as_secs() < min_seconds)
            && traffic.failed().is_none()
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let report = traffic.stop(Duration::from_secs(30));
        println!(
            "# {} events in {:.1} s ({:.0}/s), {} reaped from the mapping, eventfd {}",
            report.submitted,
            report.seconds,
            report.submitted as f64 / report.seconds,
            report.reaped_from_mapping,
            report.eventfd_count
        );
        report.check()?;
        ensure!(
            report.submitted >= MIN_EVENTS,
            "only {} events",
            report.submitted
        );
        ensure!(
            report.reaped_from_mapping > 0,
            "no phase reaped from the mapping"
        );
        Ok(Outcome::Pass)
    });
}
