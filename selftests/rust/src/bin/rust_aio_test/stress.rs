// SPDX-License-Identifier: GPL-2.0

//! Concurrency: four submitters of NOOP, TIMER and WORK operations, two ioctl reapers and a
//! thread that reaps from the mapping in phases, through one context, for 25 s (or
//! `STRESS_SECONDS`) and at least 250,000 events. Every event must come back once, intact.

use rust_aio_tests::traffic::{Config, Traffic};
use rust_aio_tests::{ensure, Budget, Outcome, Tap};
use std::time::Duration;

/// Events a `make check` run must see at least, whatever the machine's speed.
const MIN_EVENTS: u64 = 250_000;
/// Seconds the traffic runs when it has reached that (about 800,000 events on a quiet
/// machine of the kind the project is tested on).
const SECONDS: u64 = 25;

pub fn run(tap: &mut Tap) {
    tap.run("concurrent_submit_and_reap_every_event_once", || {
        let traffic = Traffic::start(1024, Config::default())?;
        let budget = Budget::new(SECONDS);
        while (traffic.submitted() < MIN_EVENTS || budget.left()) && traffic.failed().is_none() {
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
