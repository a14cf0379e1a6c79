// SPDX-License-Identifier: GPL-2.0

//! Ending a context's requests early and the context itself: `io_cancel()` and `io_destroy()`
//! (fs/aio.c's `kill_ioctx()` and what follows it), and the teardown of its ring in the seed
//! patch's order.

use core::sync::atomic::Ordering;
use kernel::{
    ffi::c_int,
    list::List,
    prelude::*,
    rbtree::RBTree,
    sync::{Arc, SpinLock},
};

use crate::{
    context::{owner::MmContextsRef, request::TimerRequest, Context},
    kapi::{hrtimer::Cancel, mm::is_current, ring_file::RingFile, sys, uaccess::UserAddr},
    ring::PAGE_SIZE,
};

impl Context {
    /// Cancels the pending timer or poll operation submitted from user address `user_iocb`
    /// (7.3's `io_cancel()`): its event arrives through the ring, with `-ECANCELED` (a timer)
    /// or `res` 0 (a poll, as fs/aio.c's; unless a wake-up got there first, whose events the
    /// event then carries). Other requests, and polls a wake-up has completed, cannot be
    /// cancelled: EINVAL.
    pub(crate) fn cancel(&self, user_iocb: UserAddr) -> Result {
        let in_progress = Error::from_errno(-(sys::EINPROGRESS as c_int));
        {
            let mut polls = self.pending_polls.lock();
            let found = {
                let mut cursor = polls.cursor_front();
                loop {
                    let Some(next) = cursor.peek_next() else {
                        break None;
                    };
                    if next.is_cancellable(user_iocb as u64) {
                        break Some(next.remove());
                    }
                    cursor.move_next();
                }
            };
            if let Some(req) = found {
                req.cancel(&polls);
                drop(polls);
                drop(req);
                return Err(in_progress);
            }
        }
        let mut pending = self.pending_timers.lock();
        let found = {
            let mut cursor = pending.cursor_front();
            loop {
                let Some(next) = cursor.peek_next() else {
                    break None;
                };
                if next.completion.event.obj == user_iocb as u64 {
                    // Only tries: the timer may be expiring right now.
                    if next.timer.try_cancel() == Cancel::TooLate {
                        // Fired: its own event is on the way.
                        return Err(EINVAL);
                    }
                    break Some(next.remove());
                }
                cursor.move_next();
            }
        };
        let Some(req) = found else {
            return Err(EINVAL);
        };
        drop(pending);
        self.complete(&req.completion, Some(-i64::from(sys::ECANCELED)));
        Err(in_progress)
    }

    /// DESTROY (fs/aio.c's `io_destroy()`): destroys the context and returns once it is gone.
    /// Of concurrent calls, one destroys; the others fail with EINVAL at once, as in fs/aio.c.
    /// Process context only.
    pub(crate) fn destroy(&self) -> Result {
        if self.dead.swap(true, Ordering::SeqCst) {
            return Err(EINVAL);
        }
        self.kill();
        Ok(())
    }

    /// Destroys the context for a file being closed or an address space dying, and returns once
    /// it is gone, whoever destroys it: if another task got there first, this waits for it to
    /// finish, as `exit_aio()` waits for every context's requests. Process context only.
    pub(crate) fn destroy_and_wait(&self) {
        if !self.dead.swap(true, Ordering::SeqCst) {
            self.kill();
            return;
        }
        while !self.torn_down.load(Ordering::Acquire) {
            self.wait
                .wait(None, false, || self.torn_down.load(Ordering::Acquire));
        }
    }

    /// Tears down a context that this call marked dead (fs/aio.c's `kill_ioctx()` and what
    /// follows it): cancels the timers and polls, waits for everything in flight (every request
    /// has put its file before it ends), unmaps the ring if the caller owns it, frees the ring,
    /// and only then takes it off its file's table and its address space's, so that a close of
    /// the file and the address space's death, meanwhile, wait for all of it.
    fn kill(&self) {
        // Stop every timer that has not fired; complete those outside `ctx_lock`. A timer that
        // has fired stays on the list, where the irq_work will look for it.
        let mut cancelled = List::<TimerRequest>::new();
        {
            let mut pending = self.pending_timers.lock();
            let mut fired = List::<TimerRequest>::new();
            while let Some(req) = pending.pop_front() {
                if req.timer.try_cancel() == Cancel::Stopped {
                    cancelled.push_back(req);
                } else {
                    fired.push_back(req);
                }
            }
            pending.push_all_back(&mut fired);
        }
        while let Some(req) = cancelled.pop_front() {
            self.complete(&req.completion, Some(-i64::from(sys::ECANCELED)));
        }
        // Cancel every poll: their work completes them (fs/aio.c's `free_ioctx_users()`). Taken
        // off the list, never onto another (their work takes them off this one), and the last
        // reference dropped outside the lock.
        loop {
            let mut polls = self.pending_polls.lock();
            let Some(req) = polls.pop_front() else {
                break;
            };
            req.cancel(&polls);
            drop(polls);
            drop(req);
        }
        // Reapers asleep in getevents see the context dead.
        self.wait.wake_up_all();
        self.wait_idle();
        let (file, mm_contexts) = self.teardown();
        // Only now off the tables: a file closed or an address space dying meanwhile found it
        // there, and waits for it (`destroy_and_wait`). Lookups refused it since it died.
        self.unfile();
        if let Some(mm_contexts) = mm_contexts {
            drop(mm_contexts.remove(self.mm_index(), self));
        }
        self.shared.unaccount_events(self.max_reqs);
        self.torn_down.store(true, Ordering::Release);
        self.wait.wake_up_all();
        // Last, as the ring file may hold the last references to the module.
        drop(file);
    }

    /// Takes the context off the file's table (at the end of its teardown).
    fn unfile(&self) {
        let from_file = {
            let mut table = self.table.lock();
            let key = self.key();
            match table.get(&key) {
                Some(ctx) if core::ptr::eq(&**ctx, self) => table.remove(&key),
                _ => None,
            }
        };
        drop(from_file);
    }

    /// Waits, uninterruptibly, until no request is in flight.
    fn wait_idle(&self) {
        while self.inflight.load(Ordering::SeqCst) != 0 {
            self.wait
                .wait(None, false, || self.inflight.load(Ordering::SeqCst) == 0);
        }
    }

    /// Takes the ring apart in the seed patch's order: under `ring_lock`, unmap what is left of
    /// the ring's mapping at its address (if this is the owner), disconnect the ring file from
    /// the context (no migration can reach it afterwards), then take the folios out and put
    /// them. Returns the disconnected file, for the caller to drop last, and the address
    /// space's table, to take the context off.
    fn teardown(&self) -> (Option<RingFile<Context>>, Option<MmContextsRef>) {
        let mut guard = self.ring.lock();
        let resources = guard.resources();
        if let (Some(file), Some(owner)) = (&resources.file, &resources.owner_mm) {
            if is_current(owner) {
                // The id, final once read under the table's lock after the context died: a
                // `mremap` that moves the ring from now on is refused (`move_to`) and undone.
                let id = {
                    let _table = self.table.lock();
                    self.user_id.load(Ordering::Acquire)
                };
                // Failing to unmap leaves a dead mapping (SIGBUS on access), nothing worse.
                let _ = file.unmap_pieces(id as usize, self.nr_pages * PAGE_SIZE);
            }
        }
        let file = guard.resources().file.take();
        if let Some(file) = &file {
            file.disconnect();
        }
        let folios = guard.lock_completions().take_folios();
        let owner_mm = guard.resources().owner_mm.take();
        let mm_contexts = guard.resources().mm_contexts.take();
        drop(guard);
        drop(folios);
        drop(owner_mm);
        (file, mm_contexts)
    }
}

/// Destroys every context of `table`, taking them off one at a time: destroying sleeps, so the
/// lock is not held meanwhile. A context that is already dead is being destroyed by another
/// thread: this waits until it is gone.
pub(crate) fn destroy_all<K: Ord + Copy + Unpin>(table: &SpinLock<RBTree<K, Arc<Context>>>) {
    loop {
        let next = {
            let mut table = table.lock();
            let key = table.keys().next().copied();
            key.and_then(|key| table.remove(&key))
        };
        let Some(ctx) = next else { break };
        ctx.destroy_and_wait();
    }
}
