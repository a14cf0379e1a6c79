// SPDX-License-Identifier: GPL-2.0

//! The ring inode's address-space operations: how ring pages migrate (NUMA moves, compaction,
//! memory offlining) without losing an event or a `head` update.
//!
//! # The locks a migration takes (the seed patch's, "aio: v3 ensure access to ctx->ring_pages is
//! # correctly serialised for migration")
//!
//! In the order it takes them. Where they stand in the module's lock order is stated once, in
//! `ring.rs` (# Locking, Lock order); this tells why migration takes each.
//!
//! 1. `mapping->i_private_lock` (spinlock): held over the whole migration, so the context named
//!    by the ring inode's `i_private` cannot be torn down under us. Teardown clears it under
//!    this lock before it puts any folio (`RingFile`'s drop), so a migration either sees no
//!    context (`-EINVAL`: teardown won) or finishes before teardown goes on.
//! 2. `ring_lock` (mutex), by **trylock only** (`-EAGAIN` if busy): it keeps the reaper from
//!    writing `head` into a page that is being copied (the race the patch fixed: the new page
//!    kept a stale `head`), and keeps migration out of a context that is still being set up.
//!    It must not be waited for: migration may run under `mmap_lock` (a NUMA-hinting fault
//!    migrates the page it faulted on), which comes after `ring_lock` in the lock order
//!    (`ring.rs`), and under the folio locks and `i_private_lock` in any case — the deadlock
//!    Trinity found in v2. A failed migration is simply retried by the kernel.
//! 3. `completion_lock` (spinlock, interrupts off) around the last copy and the swap of the
//!    folio in the ring, so no event or `tail` is written to the old page after it was copied,
//!    even from hard IRQ.
//!
//! # Two-phase copy
//!
//! With `ring_lock` held, only completions still write the page: the event slot at `tail` and
//! the header's `tail`. So the page is copied whole with interrupts **on**, after noting where
//! completions are (`tail`, and how many were ever posted); then, under `completion_lock`, only
//! the slots of this page written since (and the header, for page 0) are copied again before
//! the swap. The interrupts-off window grows with the
//! completions that raced the first copy, not with the page size — the idea discussed in the
//! seed thread, which fs/aio.c never adopted. The debugfs knob `one_phase` switches to fs/aio.c's
//! way (the whole copy with interrupts off) for the benchmark's comparison; every window is
//! recorded (`irqoff_samples`, `max_irqoff_ns`, `total_irqoff_ns`), and `recopied_slots` counts
//! the events the second copy saved. The test-only mutant `single-copy-migrate`
//! (`selftests/mutants/`) skips it.
//!
//! User space cannot write the page meanwhile: migration has replaced its page-table entries
//! with migration entries before calling us.

use core::sync::atomic::Ordering;
use kernel::{prelude::*, sync::aref::ARef};

use crate::{
    context::Context,
    kapi::address_space::{AddressSpaceOps, RingMapping},
    kapi::folio::{Folio, LockedFolio},
    stats::{COPY_DELAY_US, ONE_PHASE, STATS},
};

/// How ring pages are read and migrate: the ring inode's address-space operations
/// (`kapi/address_space.rs` builds the table).
pub(crate) struct RingAddressSpace;

impl AddressSpaceOps for RingAddressSpace {
    type Owner = Context;

    /// The ring was truncated (its context is gone): a fault finds no page and gets `-EIO`, as
    /// fs/aio.c's `aio_read_folio()`.
    fn read_folio(folio: LockedFolio<'_>) -> Result {
        folio.unlock();
        Err(EIO)
    }

    fn migrate_folio(mapping: &RingMapping<Context>, dst: &Folio, src: &Folio) -> Result {
        migrate_folio(mapping, dst, src)
    }
}

fn migrate_folio(mapping: &RingMapping<Context>, dst: &Folio, src: &Folio) -> Result {
    // The copy below is done with interrupts off: it must stay one page.
    if src.is_large() {
        return Err(EINVAL);
    }

    // 1. `i_private_lock`: protects against the context's teardown.
    let private = mapping.lock_owner();
    let Some(ctx) = private.owner() else {
        STATS.teardown_won.fetch_add(1, Ordering::Relaxed);
        return Err(EINVAL);
    };

    // 2. `ring_lock`, never waited for.
    let Some(mut ring) = ctx.ring().try_lock() else {
        STATS.ring_lock_busy.fetch_add(1, Ordering::Relaxed);
        return Err(EAGAIN);
    };

    let index = src.index();
    let current = ring.folios().get(index).ok_or(EINVAL)?;
    // Make sure the folio has not been replaced meanwhile.
    if !core::ptr::eq(&**current, src) {
        return Err(EAGAIN);
    }
    // A ring folio is never written back (its dirtying is a no-op); fs/aio.c makes this a BUG.
    if src.is_under_writeback() {
        return Err(EBUSY);
    }

    // The ring's reference to the new folio; if the move fails it is dropped again.
    let dst_ref: ARef<Folio> = dst.into();
    // SAFETY: Both folios are valid and locked by the migration core; the extra count of 1 is
    // the ring's own reference to `src`.
    unsafe { mapping.migrate_mapping(dst, src, 1) }?;

    // 3. The copy. Two-phase (the default): the whole page with interrupts on, then, under
    // `completion_lock` with interrupts off, only what completions wrote since. One-phase (the
    // debugfs knob `one_phase`, for the benchmark): the whole page under the lock, as fs/aio.c.
    let one_phase = ONE_PHASE.load(Ordering::Relaxed) != 0;
    let mark = ring.completion_mark();
    if !one_phase {
        // SAFETY: Both folios are valid, locked, and the same size (order 0).
        unsafe { dst.migrate_copy_from(src) };
        // Tests widen the window between the copies (at most 100 ms: spinlocks are held).
        let delay = COPY_DELAY_US.load(Ordering::Relaxed);
        if delay > 0 {
            crate::kapi::task::busy_wait_us(delay.min(100_000));
        }
    }
    // `completion_lock`, interrupts off: no event or `tail` reaches the old folio after its
    // last copy. The window is measured from before the lock is taken to after it is dropped.
    let start = crate::kapi::hrtimer::monotonic_ns();
    let (old, recopied) = {
        let mut both = ring.lock_completions();
        let recopied = if one_phase {
            // SAFETY: As above.
            unsafe { dst.migrate_copy_from(src) };
            0
        } else {
            both.recopy_since(index, src, dst, mark)
        };
        (both.replace_folio(index, dst_ref), recopied)
    };
    let held = (crate::kapi::hrtimer::monotonic_ns() - start).max(0) as u64;
    STATS.record_irqoff(held, recopied);
    // The old folio is no longer reachable from the ring.
    drop(old);
    STATS.migrated.fetch_add(1, Ordering::Relaxed);
    Ok(())
}
