// SPDX-License-Identifier: GPL-2.0

//! Thin wrapper: an mmu notifier (`linux/mmu_notifier.h`) that carries data of the module's,
//! one per address space and type, found or made by `mmu_notifier_get()`, whose `release` runs
//! when the address space is torn down (`exit_mmap()`). The C callbacks are this file's; the
//! data implements [`MmuNotifierOps`].

use core::{marker::PhantomData, ops::Deref, ptr::NonNull};
use kernel::{error::from_err_ptr, prelude::*, types::Opaque};

use crate::kapi::sys;

/// What an mmu notifier does; its data is the implementing type.
pub(crate) trait MmuNotifierOps: Sized + Send + Sync + 'static {
    /// The data of a new notifier: the first [`MmuNotifierRef::current`] of an address space
    /// (`alloc_notifier`, with its `mmap_lock` held for writing).
    fn new() -> impl PinInit<Self, Error>;

    /// The address space is being torn down (`exit_mmap()`, before its mappings go): process
    /// context, no lock held; may sleep.
    fn release(&self);
}

/// The `mmu_notifier_ops` of a [`MmuNotifierOps`]. It must live in a `static`:
/// `mmu_notifier_get()` tells notifiers apart by the address of their operations.
pub(crate) struct MmuNotifierVTable<T>(sys::mmu_notifier_ops, PhantomData<T>);

// SAFETY: The table is never written; its function pointers may be read from any thread.
unsafe impl<T> Sync for MmuNotifierVTable<T> {}

/// A notifier and its data; the C struct first, so that its address is the whole one's.
///
/// # Invariants
///
/// Allocated by [`MmuNotifierVTable::alloc_notifier`] and freed only by its `free_notifier`.
#[pin_data]
#[repr(C)]
struct Notifier<T> {
    notifier: Opaque<sys::mmu_notifier>,
    #[pin]
    data: T,
}

impl<T: MmuNotifierOps> MmuNotifierVTable<T> {
    /// The table of `T`.
    ///
    /// # Safety
    ///
    /// It must initialise a `static`, the only table of `T`: `mmu_notifier_get()` tells notifiers
    /// apart by the address of their operations, and two tables would give one address space
    /// two notifiers of `T`.
    pub(crate) const unsafe fn new() -> Self {
        Self(
            sys::mmu_notifier_ops {
                release: Some(Self::release),
                alloc_notifier: Some(Self::alloc_notifier),
                free_notifier: Some(Self::free_notifier),
                // SAFETY: All-zero is a valid `mmu_notifier_ops`: every other callback is absent.
                ..unsafe { core::mem::zeroed() }
            },
            PhantomData,
        )
    }

    /// `alloc_notifier`: the first `mmu_notifier_get()` on an address space.
    ///
    /// # Safety
    ///
    /// Called by the notifier core, with the address space's `mmap_lock` held for writing.
    unsafe extern "C" fn alloc_notifier(_mm: *mut sys::mm_struct) -> *mut sys::mmu_notifier {
        let init = try_pin_init!(Notifier::<T> {
            // SAFETY: All-zero is a valid unregistered `mmu_notifier`; registering fills it in.
            notifier: Opaque::new(unsafe { core::mem::zeroed() }),
            data <- T::new(),
        }? Error);
        match KBox::pin_init(init, GFP_KERNEL) {
            // SAFETY: The box is handed to the notifier core until `free_notifier` takes it back;
            // it is never moved.
            Ok(notifier) => KBox::into_raw(unsafe { Pin::into_inner_unchecked(notifier) }).cast(),
            Err(err) => err.to_ptr(),
        }
    }

    /// `free_notifier`: the last reference is gone and an SRCU grace period has passed.
    ///
    /// # Safety
    ///
    /// Called by the notifier core with a notifier made by `alloc_notifier`, once.
    unsafe extern "C" fn free_notifier(notifier: *mut sys::mmu_notifier) {
        // SAFETY: `notifier` is the first field of a `Notifier<T>` boxed by `alloc_notifier`,
        // which nobody uses any more.
        drop(unsafe { KBox::from_raw(notifier.cast::<Notifier<T>>()) });
    }

    /// `release`: the address space is being torn down.
    ///
    /// # Safety
    ///
    /// Called by the notifier core with a registered notifier made by `alloc_notifier`.
    unsafe extern "C" fn release(notifier: *mut sys::mmu_notifier, _mm: *mut sys::mm_struct) {
        // SAFETY: The notifier is registered, so the `Notifier<T>` around it is alive until after
        // this returns (it is freed only after an SRCU grace period, and we are in an SRCU
        // reader).
        let this = unsafe { &*notifier.cast::<Notifier<T>>() };
        this.data.release();
    }
}

/// A counted reference to the calling process's notifier of type `T` (`mmu_notifier_get()`),
/// given back by `mmu_notifier_put()` on drop.
///
/// # Invariants
///
/// `ptr` is a live, registered [`Notifier<T>`] on which this reference is counted.
pub(crate) struct MmuNotifierRef<T: MmuNotifierOps> {
    ptr: NonNull<Notifier<T>>,
}

// SAFETY: The reference may be used and given back from any thread in process context; the data
// is shared as `T: Sync` allows.
unsafe impl<T: MmuNotifierOps> Send for MmuNotifierRef<T> {}
// SAFETY: See above.
unsafe impl<T: MmuNotifierOps> Sync for MmuNotifierRef<T> {}

impl<T: MmuNotifierOps> MmuNotifierRef<T> {
    /// The calling process's notifier of `ops`, made (and the address space registered) if it
    /// has none yet; EINVAL in a kernel thread. Takes `mmap_lock` for writing. The first
    /// registration fails with EINTR on any pending signal (`mm_take_all_locks()`).
    pub(crate) fn current(ops: &'static MmuNotifierVTable<T>) -> Result<Self> {
        let task = kernel::current!();
        let mm = task.mm().ok_or(EINVAL)?;
        let notifier =
            // SAFETY: `mm` is the caller's own, live address space; `ops` lives for ever.
            from_err_ptr(unsafe { sys::rust_aio_mmu_notifier_get(&ops.0, mm.as_raw()) })?;
        // INVARIANT: `mmu_notifier_get()` counted a reference on a notifier made by
        // `alloc_notifier()` of `ops`, the first field of a `Notifier<T>`.
        Ok(Self {
            ptr: NonNull::new(notifier).ok_or(ENOMEM)?.cast(),
        })
    }
}

impl<T: MmuNotifierOps> Deref for MmuNotifierRef<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: The reference keeps the notifier alive (type invariant).
        unsafe { &self.ptr.as_ref().data }
    }
}

impl<T: MmuNotifierOps> Drop for MmuNotifierRef<T> {
    fn drop(&mut self) {
        // SAFETY: The reference is counted (type invariant) and not used again. This may be the
        // last one; the notifier is then freed after an SRCU grace period, by `free_notifier`.
        unsafe { sys::mmu_notifier_put(self.ptr.cast().as_ptr()) };
    }
}

/// Waits until every notifier given back has been freed (`mmu_notifier_synchronize()`): module
/// unloading calls this, so that no `free_notifier` runs after the module is gone.
pub(crate) fn synchronize() {
    // SAFETY: Always allowed in process context.
    unsafe { sys::mmu_notifier_synchronize() };
}
