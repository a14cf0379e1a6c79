// SPDX-License-Identifier: GPL-2.0

//! What `mremap` of a ring mapping does: it moves the context's id with the ring's header. The
//! mapping splits like any other (`munmap`, `mprotect`, `mbind` of a part of it), as fs/aio.c's
//! does; page-cache faults are the page cache's. The ring file and its mapping's operations are
//! `kapi/ring_file.rs` and `kapi/mm.rs`'s; how ring pages migrate is `migrate.rs`'s.

use kernel::prelude::*;

use crate::{
    context::Context,
    kapi::address_space::RingMapping,
    kapi::mm::{vma_pgoff, VmOps, Vma},
};

/// The ring mapping's operations beyond the page cache's.
pub(crate) struct RingVm;

impl VmOps for RingVm {
    type Owner = Context;

    /// The ring moved: the context id moves with it, as in 7.x's fs/aio.c `aio_ring_mremap()`,
    /// which refuses to move a piece of the ring (only the whole, `mmap_size` long). Only the
    /// owner may move a live ring (CVE-2023-52646: a child does not even inherit the mapping, it
    /// is `VM_DONTCOPY`), and a dead context's ring stays dead.
    fn mremap(vma: &Vma, ring: &RingMapping<Context>) -> Result {
        let private = ring.lock_owner();
        let ctx = private.owner().ok_or(EINVAL)?;
        if !ctx.is_owned_by(vma.mm()) || ctx.is_dead() {
            return Err(EINVAL);
        }
        if vma_pgoff(vma) != 0 || vma.end() - vma.start() != ctx.ring_size() {
            return Err(EINVAL);
        }
        if !ctx.move_to(vma.start() as u64) {
            return Err(EINVAL);
        }
        Ok(())
    }
}
