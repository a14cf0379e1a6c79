// SPDX-License-Identifier: GPL-2.0

//! Reaping through the ioctl: events copied to user space under `ring_lock`, without a page
//! fault, and `head` advanced past exactly those copied.

use crate::kapi::uaccess::UserAddr;
use core::sync::atomic::Ordering;

use super::{RingGuard, SharedHeader, EVENTS_OFFSET, EVENTS_PER_PAGE, EVENT_SIZE};

impl<R> RingGuard<'_, R> {
    /// Copies up to `nr` events to user space and advances the ring's `head` past exactly those
    /// copied (fs/aio.c's `aio_read_events_ring()`). Takes no page fault: a destination page that
    /// is not present ends the copy, and the caller faults it in after dropping `ring_lock`.
    /// Returns how many events were copied, and whether a fault stopped the copy.
    pub(crate) fn read_events(&self, out: UserAddr, nr: usize) -> (usize, bool) {
        let nr_slots = self.ring.nr_events;
        let nr_events = nr_slots.get();
        let folios = self.folios();
        let Some(page0) = folios.first() else {
            return (0, false);
        };
        let header = SharedHeader::of(page0);
        // Acquire (fs/aio.c's smp_rmb()): the events before `tail` are visible once it is read;
        // pairs with the Release in `CompletionGuard::post`. This is the kernel's own `tail`,
        // always below `nr_events`; the header's may hold anything.
        let tail = self.ring.tail.load(Ordering::Acquire);
        // User space may have written anything here: index with the trusted size
        // (CVE-2014-0206).
        let mut head = header.head.load(Ordering::Relaxed) % nr_slots;
        let mut copied = 0usize;
        let mut faulted = false;
        while copied < nr && head != tail {
            let contiguous = if head <= tail { tail } else { nr_events } - head;
            let pos = head as usize + EVENTS_OFFSET;
            let in_page = pos % EVENTS_PER_PAGE;
            let count = (contiguous as usize)
                .min(nr - copied)
                .min(EVENTS_PER_PAGE - in_page);
            let Some(folio) = folios.get(pos / EVENTS_PER_PAGE) else {
                break;
            };
            let mut whole = folio.copy_to_user_nofault(
                in_page * EVENT_SIZE,
                count * EVENT_SIZE,
                out + copied * EVENT_SIZE,
            ) / EVENT_SIZE;
            // The chunk stopped short (a copy may give up on a whole range it cannot check, and
            // only whole events count): go on one event at a time, so that the one that faults
            // is exactly the next, the one the caller faults in.
            while whole < count
                && folio.copy_to_user_nofault(
                    (in_page + whole) * EVENT_SIZE,
                    EVENT_SIZE,
                    out + (copied + whole) * EVENT_SIZE,
                ) == EVENT_SIZE
            {
                whole += 1;
            }
            copied += whole;
            head = (head + whole as u32) % nr_slots;
            if whole < count {
                faulted = true;
                break;
            }
        }
        if copied > 0 {
            // Release: the slots were read before they are handed back to the completion side.
            header.head.store(head, Ordering::Release);
        }
        (copied, faulted)
    }
}
