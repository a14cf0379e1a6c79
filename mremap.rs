// SPDX-License-Identifier: GPL-2.0

//! What `mremap` of a ring mapping does: it moves the context's id with the ring's header. The
//! mapping splits like any other (`munmap`, `mprotect`, `mbind` of a part of it), as fs/aio.c's
//! does; page-cache faults are the page cache's. The ring file and its mapping's operations are
//! `kapi/ring_file.rs` and `kapi/mm.rs`'s; how ring pages migrate is `migrate.rs`'s.

use kernel::prelude::*;

use crate::{
    context::Context,
    kapi::address_space::RingMapping,
    kapi::mm::{VmOps, Vma},
};

/// The ring mapping's operations beyond the page cache's.
pub(crate) struct RingVm;

impl VmOps for RingVm {
    type Owner = Context;

    /// The ring, or a piece of it, moved: a piece that holds the header takes the context id with
    /// it, as in fs/aio.c's `aio_ring_mremap()`; another piece leaves the id with the header
    /// (fs/aio.c moves the id to any piece, where no header is: the README's differences). Only
    /// the owner may move a live ring: a forked child sees the mapping but owns no context
    /// (CVE-2023-52646), and a dead context's ring stays dead.
    fn mremap(vma: &Vma, ring: &RingMapping<Context>) -> Result {
        let private = ring.lock_owner();
        let ctx = private.owner().ok_or(EINVAL)?;
        if !ctx.is_owned_by(vma.mm()) || ctx.is_dead() {
            return Err(EINVAL);
        }
        if vma.pgoff() == 0 && !ctx.move_to(vma.start() as u64) {
            return Err(EINVAL);
        }
        Ok(())
    }
}
