// SPDX-License-Identifier: GPL-2.0

//! Thin wrapper: polling a file for the poll requests (`poll.rs`) — `vfs_poll()` with fs/aio.c's
//! queueing procedure, wait-queue entries with a wake function of their own, the wait-queue head
//! a request waits on (which `POLLFREE` may take away, RCU-delayed), and the poll masks' user
//! encoding. 7.3's `kernel::sync::poll` is for a
//! file's own `poll`; none of these.

use core::{
    marker::PhantomData,
    ptr::null_mut,
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{
    ffi::{c_int, c_uint, c_void},
    prelude::*,
    types::Opaque,
};

use crate::kapi::{file::FileRef, sys};

/// A type that holds a [`WaitEntry<Self>`].
///
/// # Safety
///
/// `OFFSET` must be the offset in bytes of a field of type `WaitEntry<Self>` in `Self`.
pub(crate) unsafe trait HasWaitEntry: Sized {
    const OFFSET: usize;
}

/// What a wake-up of the queue a [`WaitEntry`] is on does.
pub(crate) trait WakeCallback: HasWaitEntry + Sync {
    /// The queue is woken with the events `mask` (0 if the wake-up names none), by whoever wakes
    /// it, holding the queue's lock, in any context (hard IRQ included); `waking` is that
    /// wake-up. Returns whether it was for us.
    fn woken(&self, mask: u32, waking: &Waking<'_>) -> bool;
}

/// A wake-up in progress: the entry being woken, whose queue's lock the waker holds.
///
/// # Invariants
///
/// Made only by [`WaitEntry`]'s wake function, for the entry it is called with, and borrowed
/// for that call only, while the waker holds the entry's queue's lock.
pub(crate) struct Waking<'a> {
    entry: *mut sys::wait_queue_entry,
    _call: PhantomData<&'a ()>,
}

impl Waking<'_> {
    /// Takes the woken entry off its queue, under the lock the waker holds.
    pub(crate) fn remove_entry(&self) {
        // SAFETY: The entry is initialised and its queue's lock is held (type invariant).
        unsafe { sys::rust_aio_wait_entry_del_init(self.entry) };
    }
}

/// A `struct wait_queue_entry` in a `T`, whose wake function calls `T`'s [`WakeCallback`].
///
/// # Invariants
///
/// The entry is initialised with `T`'s wake function; its list links are only touched under the
/// lock of the queue it is on (or before it is added to one).
#[repr(transparent)]
#[pin_data]
pub(crate) struct WaitEntry<T> {
    #[pin]
    entry: Opaque<sys::wait_queue_entry>,
    _owner: PhantomData<T>,
}

// SAFETY: The entry is only touched under its queue's lock, or by the wait-queue code, from any
// thread.
unsafe impl<T> Send for WaitEntry<T> {}
// SAFETY: See above.
unsafe impl<T> Sync for WaitEntry<T> {}

impl<T: WakeCallback> WaitEntry<T> {
    /// An entry on no queue.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: The helper initialises every field of the entry in place.
            entry <- Opaque::ffi_init(|slot| unsafe {
                sys::rust_aio_init_wait_func_entry(slot, Some(Self::wake))
            }),
            _owner: PhantomData,
        })
    }

    /// The entry's wake function. Returns 1 if the wake-up was for us.
    ///
    /// # Safety
    ///
    /// Called by the wait-queue code, under the queue's lock, with the entry of a `T` that is on
    /// the queue.
    unsafe extern "C" fn wake(
        wait: *mut sys::wait_queue_entry,
        _mode: c_uint,
        _sync: c_int,
        key: *mut c_void,
    ) -> c_int {
        // SAFETY: The entry is the `WaitEntry<T>` field of a `T`, at `T::OFFSET`
        // (`HasWaitEntry`), alive while its entry is on the queue (`poll_and_queue()`'s
        // guarantee). `WaitEntry` is `repr(transparent)` over `Opaque`, itself over the C struct.
        let owner = unsafe { &*wait.cast::<u8>().sub(T::OFFSET).cast::<T>() };
        // INVARIANT: For the entry being woken, under its queue's lock, for this call.
        let waking = Waking {
            entry: wait,
            _call: PhantomData,
        };
        c_int::from(owner.woken(key as usize as u32, &waking))
    }
}

impl<T> WaitEntry<T> {
    fn as_ptr(&self) -> *mut sys::wait_queue_entry {
        self.entry.get()
    }

    /// Whether the entry is on its queue; the caller holds the queue's lock (`_locked`).
    pub(crate) fn is_queued(&self, _locked: &HeadLocked<'_>) -> bool {
        // SAFETY: The entry is initialised, and its queue's lock is held (type invariant).
        unsafe { sys::rust_aio_wait_entry_queued(self.as_ptr()) }
    }

    /// Takes the entry off its queue, under the queue's lock (`_locked`); harmless if it is not
    /// on it.
    pub(crate) fn remove(&self, _locked: &HeadLocked<'_>) {
        // SAFETY: As above.
        unsafe { sys::rust_aio_wait_entry_del_init(self.as_ptr()) };
    }
}

/// The wait-queue head a poll request's entry was added to (fs/aio.c's `poll_iocb.head`): set
/// while the file is polled, cleared by the wake function on `POLLFREE`, after which the queue
/// may be freed once an RCU grace period has passed.
pub(crate) struct PolledHead(AtomicPtr<sys::wait_queue_head>);

impl PolledHead {
    pub(crate) fn new() -> Self {
        Self(AtomicPtr::new(null_mut()))
    }

    /// Locks the queue if `entry` is still on it (fs/aio.c's `poll_iocb_lock_wq()`): inside an RCU
    /// read section, so that a queue going away (`POLLFREE`) cannot be freed under the lock; the
    /// guard keeps both until it is dropped.
    pub(crate) fn lock<T>(&self, entry: &WaitEntry<T>) -> Option<HeadLocked<'_>> {
        // SAFETY: RCU read sections nest and may be entered anywhere; the guard or the code below
        // leaves it.
        unsafe { sys::rust_aio_rcu_read_lock() };
        let head = self.0.load(Ordering::Acquire);
        if !head.is_null() {
            // SAFETY: A queue set here and not yet cleared is alive: one that goes away clears
            // this first (under its lock) and is freed only after an RCU grace period, and we
            // are inside a read section.
            unsafe { sys::rust_aio_spin_lock(&raw mut (*head).lock) };
            // INVARIANT: The queue's lock is held.
            let locked = HeadLocked {
                head,
                _owner: core::marker::PhantomData,
            };
            if entry.is_queued(&locked) {
                return Some(locked);
            }
            drop(locked);
            return None;
        }
        // SAFETY: Leaves the section entered above.
        unsafe { sys::rust_aio_rcu_read_unlock() };
        None
    }

    /// Forgets the queue (`POLLFREE`): after this nobody locks it through us. The release
    /// orders the entry's removal before.
    ///
    /// # Safety
    ///
    /// Only from the entry's wake function (under the queue's lock), after taking the entry off.
    pub(crate) unsafe fn clear_in_wake(&self) {
        self.0.store(null_mut(), Ordering::Release);
    }

    fn as_ptr(&self) -> *mut *mut sys::wait_queue_head {
        self.0.as_ptr()
    }
}

/// The lock of a polled queue, and the RCU read section it was taken in.
///
/// # Invariants
///
/// `head`'s lock is held, inside an RCU read section, both left on drop.
pub(crate) struct HeadLocked<'a> {
    head: *mut sys::wait_queue_head,
    _owner: core::marker::PhantomData<&'a PolledHead>,
}

impl Drop for HeadLocked<'_> {
    fn drop(&mut self) {
        // SAFETY: The lock is held and the queue alive inside the read section (type invariant).
        unsafe {
            sys::rust_aio_spin_unlock(&raw mut (*self.head).lock);
            sys::rust_aio_rcu_read_unlock();
        }
    }
}

/// What polling a file and queueing on it found.
pub(crate) struct Polled {
    /// The events ready now (all of them, not only those asked for).
    pub(crate) mask: u32,
    /// The entry was added to a queue of the file.
    pub(crate) queued: bool,
    /// `-EINVAL` if the file has no queue for us (it cannot be polled, or it offered a second
    /// queue: fs/aio.c supports one), else 0.
    pub(crate) error: c_int,
}

/// Polls `file` for `events` (`vfs_poll()`), adding `entry` to the file's wait queue and
/// recording the queue in `head` (fs/aio.c's `aio_poll_queue_proc()`).
///
/// # Safety
///
/// `entry` must stay alive and pinned until it has been taken off the queue, and its wake
/// function must be ready for wakes as soon as this starts.
pub(crate) unsafe fn poll_and_queue<T>(
    file: &FileRef,
    events: u32,
    entry: &WaitEntry<T>,
    head: &PolledHead,
) -> Polled {
    let (mut queued, mut error) = (false, 0);
    // SAFETY: The file is referenced; `entry` outlives its time on the queue (the caller's
    // guarantee), `head`, `queued` and `error` outlive the call.
    let mask = unsafe {
        sys::rust_aio_poll_queue(
            file.as_ptr(),
            events,
            entry.as_ptr(),
            head.as_ptr(),
            &mut queued,
            &mut error,
        )
    };
    Polled {
        mask,
        queued,
        error,
    }
}

/// Polls `file` for `events` without queueing (`vfs_poll()`): the events ready now.
pub(crate) fn poll(file: &FileRef, events: u32) -> u32 {
    // SAFETY: The file is referenced for the call.
    unsafe { sys::rust_aio_poll(file.as_ptr(), events) }
}

/// A poll mask as user space spells it (`mangle_poll()`).
pub(crate) fn mangle(mask: u32) -> u16 {
    // SAFETY: Pure arithmetic.
    unsafe { sys::rust_aio_mangle_poll(mask) }
}

/// A poll mask from user space's spelling (`demangle_poll()`).
pub(crate) fn demangle(mask: u16) -> u32 {
    // SAFETY: Pure arithmetic.
    unsafe { sys::rust_aio_demangle_poll(mask) }
}
