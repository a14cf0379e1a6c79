// SPDX-License-Identifier: GPL-2.0

//! `io_getevents()` on one context (fs/aio.c's `read_events()`): events copied from the ring
//! without a page fault under `ring_lock`, the buffer faulted in outside it, and the wait.

use kernel::prelude::*;

use crate::{
    context::Context,
    kapi::{
        sync::Wakeup,
        uaccess::{self, UserAddr},
    },
    ring::EVENT_SIZE,
};

impl Context {
    /// Reaps up to `nr` events into user memory: as many as `ring_lock` lets us copy without a
    /// page fault, and, if the first one's destination is not present, faults it in without
    /// the lock (writing nothing: another reaper may take the event meanwhile, and a slot this
    /// call does not return must stay as it was) and tries again. EFAULT only when nothing could be delivered: the destination
    /// cannot be faulted in, or it was and still cannot be written, a few times over (it is
    /// taken away each time: the caller races itself).
    fn reap(&self, out: UserAddr, nr: usize) -> Result<usize> {
        const RETRIES: usize = 4;
        for _ in 0..RETRIES {
            let (copied, faulted) = self.ring.lock().read_events(out, nr);
            if copied > 0 || !faulted {
                return Ok(copied);
            }
            // Here a fault may wait as long as it likes (userfaultfd, FUSE, swap-in): nobody
            // waits for us.
            if crate::kapi::task::fatal_signal_pending()
                || !uaccess::fault_in_for_write(out, EVENT_SIZE)
            {
                return Err(EFAULT);
            }
        }
        Err(EFAULT)
    }

    /// Reaps between `min_nr` and `nr` events into user memory, waiting until `deadline` (an
    /// absolute monotonic time in ns; `Some(0)` means do not wait) or for ever (fs/aio.c's
    /// `read_events()`). Events once taken from the ring are always returned: a later fault or a
    /// signal ends the call with the number already delivered.
    pub(crate) fn get_events(
        &self,
        min_nr: usize,
        nr: usize,
        out: UserAddr,
        deadline: Option<i64>,
    ) -> Result<usize> {
        let mut got = 0usize;
        loop {
            match self.reap(out + got * EVENT_SIZE, nr - got) {
                Ok(n) => got += n,
                Err(err) if got == 0 => return Err(err),
                Err(_) => return Ok(got),
            }
            if got >= min_nr || deadline == Some(0) {
                return Ok(got);
            }
            if self.is_dead() {
                return if got > 0 { Ok(got) } else { Err(EINVAL) };
            }
            match self
                .wait
                .wait(deadline, true, || self.ring.has_events() || self.is_dead())
            {
                Wakeup::Woken => {}
                Wakeup::TimedOut | Wakeup::Signal => {
                    // What arrived by now is returned, as fs/aio.c's wait condition reads it.
                    if let Ok(n) = self.reap(out + got * EVENT_SIZE, nr - got) {
                        got += n;
                    }
                    return Ok(got);
                }
            }
        }
    }
}
