// SPDX-License-Identifier: GPL-2.0

//! Placeholder, replaced by the concurrency stress below.

pub fn run(_tap: &mut rust_aio_tests::Tap) {}
