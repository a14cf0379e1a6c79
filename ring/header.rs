// SPDX-License-Identifier: GPL-2.0

//! The ring's layout: its sizes, and the header (`struct aio_ring`) as the kernel sees it in
//! the shared page, where user space may write every field.

use core::{
    mem::size_of,
    sync::atomic::{AtomicU32, Ordering},
};

use crate::kapi::{folio::Folio, sys};

/// Bytes in a ring page.
pub(crate) const PAGE_SIZE: usize = sys::PAGE_SIZE;
/// Size of the ring header and of an event slot: both 32 bytes, as in fs/aio.c.
pub(crate) const HEADER_SIZE: usize = size_of::<sys::rust_aio_ring>();
pub(crate) const EVENT_SIZE: usize = size_of::<sys::io_event>();
/// Event slots per page, and the header's size in slots (`AIO_EVENTS_OFFSET`).
pub(super) const EVENTS_PER_PAGE: usize = PAGE_SIZE / EVENT_SIZE;
pub(super) const EVENTS_OFFSET: usize = HEADER_SIZE / EVENT_SIZE;
/// fs/aio.c doubles `nr_events` and refuses more than `0x10000000 / sizeof(struct io_event)`
/// with EINVAL: beyond that a ring would be absurdly large.
pub(crate) const MAX_DOUBLED_EVENTS: u32 = (0x1000_0000 / EVENT_SIZE) as u32;

const _: () = assert!(HEADER_SIZE == EVENT_SIZE && PAGE_SIZE % EVENT_SIZE == 0);

/// The ring header as the kernel sees it in the shared page: every field may change under it
/// (user space can write the mapping), so each is an atomic.
#[repr(C)]
pub(crate) struct SharedHeader {
    id: AtomicU32,
    nr: AtomicU32,
    pub(super) head: AtomicU32,
    pub(super) tail: AtomicU32,
    magic: AtomicU32,
    compat_features: AtomicU32,
    incompat_features: AtomicU32,
    header_length: AtomicU32,
}

const _: () = assert!(size_of::<SharedHeader>() == HEADER_SIZE);

impl SharedHeader {
    pub(crate) fn of(page0: &Folio) -> &SharedHeader {
        // SAFETY: A ring folio is a page of at least `HEADER_SIZE` bytes that lives while the
        // borrowed `Folio` reference does; the header is a plain array of naturally aligned u32s.
        unsafe { &*page0.address().cast::<SharedHeader>() }
    }

    /// Fills in the header of a new ring of `nr_events` slots (setup, before the ring is
    /// installed); `id` is information only: nothing reads it back.
    pub(crate) fn init(&self, id: u32, nr_events: u32) {
        self.id.store(id, Ordering::Relaxed);
        self.nr.store(nr_events, Ordering::Relaxed);
        self.head.store(0, Ordering::Relaxed);
        self.tail.store(0, Ordering::Relaxed);
        self.magic
            .store(sys::RUST_AIO_RING_MAGIC, Ordering::Relaxed);
        self.compat_features
            .store(sys::RUST_AIO_RING_COMPAT_FEATURES, Ordering::Relaxed);
        self.incompat_features
            .store(sys::RUST_AIO_RING_INCOMPAT_FEATURES, Ordering::Relaxed);
        self.header_length
            .store(HEADER_SIZE as u32, Ordering::Relaxed);
    }

    /// Sets `id` (setup, once the context has its index in its address space's table).
    pub(crate) fn set_id(&self, id: u32) {
        self.id.store(id, Ordering::Relaxed);
    }
}
