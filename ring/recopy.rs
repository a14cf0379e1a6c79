// SPDX-License-Identifier: GPL-2.0

//! Migration's second copy (`migrate.rs`): where completions were when the first copy began, and
//! the slots posted since, copied again under `completion_lock`.

use core::sync::atomic::Ordering;

use super::{BothGuard, RingGuard, EVENTS_OFFSET, EVENTS_PER_PAGE, EVENT_SIZE, HEADER_SIZE};
use crate::kapi::folio::Folio;

/// Where completions were when migration's first copy began ([`RingGuard::completion_mark`]).
#[derive(Clone, Copy)]
pub(crate) struct CompletionMark {
    posted: u64,
    tail: u32,
}

impl<R> RingGuard<'_, R> {
    /// Where completions are now: migration's first copy has every event before this mark in
    /// it (`migrate.rs`).
    pub(crate) fn completion_mark(&self) -> CompletionMark {
        // Acquire, `posted` first: a post counted in it has its `tail` visible, so `tail` is at
        // least where `posted` says, and its events are in the page when it is copied.
        let posted = self.ring.posted.load(Ordering::Acquire);
        let tail = self.ring.tail.load(Ordering::Acquire);
        CompletionMark { posted, tail }
    }
}

impl<R> BothGuard<'_, R> {
    /// Migration's second copy: copies from `src` to `dst`, the old and new folio of ring page
    /// `index`, what was written to that page since `mark` — the event slots of the events
    /// posted since, from the marked `tail` on, that lie in the page and, for page 0, the
    /// header. Returns the number of slots copied.
    ///
    /// Nothing else in the page can have changed: `head` is written by reapers holding
    /// `ring_lock` (as the caller does) and by user space, whose page-table entries for this page
    /// migration has replaced. But user space may still reap the other pages and store `head`,
    /// so `tail` may have gone round the ring meanwhile: the number of events posted, not the
    /// new `tail`, says how many slots were written (`ring_laps_between_copies` in
    /// migrate_test). Counting from a `posted` read before the marked `tail` may overcount,
    /// which only copies unchanged slots again.
    pub(crate) fn recopy_since(
        &self,
        index: usize,
        src: &Folio,
        dst: &Folio,
        mark: CompletionMark,
    ) -> u32 {
        let nr_events = self.ring.nr_events.get() as usize;
        if index == 0 {
            dst.copy_range_from(src, 0, HEADER_SIZE);
        }
        let posted = self.ring.posted.load(Ordering::Relaxed);
        let written = posted.wrapping_sub(mark.posted).min(nr_events as u64) as usize;
        let start = (mark.tail % self.ring.nr_events) as usize;
        let end = start + written;
        let ranges: [(usize, usize); 2] = if written == nr_events {
            [(0, nr_events), (0, 0)]
        } else if end <= nr_events {
            [(start, end), (0, 0)]
        } else {
            [(start, nr_events), (0, end - nr_events)]
        };
        // The slots whose events live in this page.
        let first = (index * EVENTS_PER_PAGE).saturating_sub(EVENTS_OFFSET);
        let last = ((index + 1) * EVENTS_PER_PAGE - EVENTS_OFFSET).min(nr_events);
        let mut copied = 0;
        for (from, to) in ranges {
            let (from, to) = (from.max(first), to.min(last));
            if from < to {
                let offset = ((from + EVENTS_OFFSET) % EVENTS_PER_PAGE) * EVENT_SIZE;
                dst.copy_range_from(src, offset, (to - from) * EVENT_SIZE);
                copied += (to - from) as u32;
            }
        }
        copied
    }
}
