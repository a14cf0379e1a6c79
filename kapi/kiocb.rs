// SPDX-License-Identifier: GPL-2.0

//! Thin wrapper: the kernel's `struct kiocb` and `struct iov_iter`, for the read and write
//! requests (`rw.rs`), and the file operations that take them. 7.3's `kernel::fs::Kiocb` and
//! `kernel::iov` serve a file's own `read_iter`; issuing I/O on another file they do not cover.

use core::{marker::PhantomData, mem::MaybeUninit};
use kernel::{
    error::to_result,
    ffi::{c_int, c_long, c_void},
    prelude::*,
    sync::Arc,
    types::Opaque,
};

use crate::kapi::{file::FileRef, sys};

/// Which way a request moves data.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// From the file into user memory (`READ`, `ITER_DEST`).
    Read,
    /// From user memory into the file (`WRITE`, `ITER_SOURCE`).
    Write,
}

impl Direction {
    /// `READ` or `WRITE`, which are also `ITER_DEST` and `ITER_SOURCE`.
    fn raw(self) -> c_int {
        match self {
            Direction::Read => sys::READ as c_int,
            Direction::Write => sys::WRITE as c_int,
        }
    }
}

/// A request that holds a [`Kiocb<Self>`].
///
/// # Safety
///
/// `OFFSET` must be the offset in bytes of a field of type `Kiocb<Self>` in `Self`.
pub(crate) unsafe trait HasKiocb: Sized {
    const OFFSET: usize;
}

/// What happens when the file system is done with a request ([`issue`]).
pub(crate) trait KiocbCompletion: HasKiocb + Send + Sync {
    /// The file system is done with the request, with `res` (a byte count or a negative errno);
    /// `this` is the reference it held ([`issue`]). Any context, hard IRQ included.
    fn completed(this: Arc<Self>, res: i64);
}

/// How a request's kiocb is set up (fs/aio.c's `aio_prep_rw()`).
pub(crate) struct Setup {
    /// The file offset (`aio_offset`).
    pub(crate) pos: i64,
    /// `IOCB_FLAG_RESFD` was given.
    pub(crate) eventfd: bool,
    /// The I/O priority: checked by the caller when user space chose it.
    pub(crate) ioprio: u16,
    /// `aio_rw_flags` (`RWF_*`).
    pub(crate) rw_flags: i32,
}

/// A `struct kiocb`, embedded in a request `T` that the file system completes through it.
///
/// # Invariants
///
/// Once [`Kiocb::prep`] succeeded, the kiocb names a file that its request holds a reference to,
/// and its completion function is `T`'s.
#[repr(transparent)]
pub(crate) struct Kiocb<T>(Opaque<sys::kiocb>, PhantomData<T>);

// SAFETY: A kiocb is handed between the submitter and the file system, which completes it from
// any context; its pointers (the file, the completion function) are valid from any thread.
unsafe impl<T> Send for Kiocb<T> {}
// SAFETY: Shared references only read it or pass it to the file system, which serialises itself.
unsafe impl<T> Sync for Kiocb<T> {}

impl<T: KiocbCompletion> Kiocb<T> {
    /// A kiocb that [`Kiocb::prep`] has still to fill in.
    pub(crate) const fn uninit() -> Self {
        Self(Opaque::uninit(), PhantomData)
    }

    fn as_ptr(&self) -> *mut sys::kiocb {
        self.0.get()
    }

    /// The kiocb's `ki_complete`: the file system finished a request it queued.
    ///
    /// # Safety
    ///
    /// Called by the file system, once, with the kiocb of a `T` that [`issue`] gave it, and its
    /// reference to that `T`.
    unsafe extern "C" fn complete(kiocb: *mut sys::kiocb, res: c_long) {
        // SAFETY: The kiocb is the `Kiocb<T>` field of a `T`, at `T::OFFSET` (`HasKiocb`), on
        // which `issue` leaked one reference for the file system (`Arc::into_raw`): it is taken
        // back here. `Kiocb` is `repr(transparent)` over `Opaque`, itself over the C struct.
        let owner = unsafe { Arc::from_raw(kiocb.cast::<u8>().sub(T::OFFSET).cast::<T>()) };
        T::completed(owner, res as i64);
    }

    /// Fills the kiocb in for a request on `file` (fs/aio.c's `aio_prep_rw()`, the I/O
    /// priority's check aside): the file's `f_iocb_flags`, the `RWF_*` flags through
    /// `kiocb_set_rw_flags()` (EOPNOTSUPP, EINVAL or EPERM), `IOCB_HIPRI` cleared. Never
    /// `IOCB_AIO_RW`: that flag says the kiocb is inside fs/aio.c's `struct aio_kiocb`.
    pub(crate) fn prep(&self, file: &FileRef, setup: &Setup, direction: Direction) -> Result {
        // SAFETY: The kiocb is ours and not in use; the file is referenced by `file`, which the
        // caller keeps with the kiocb (type invariant).
        to_result(unsafe {
            sys::rust_aio_kiocb_prep(
                self.as_ptr(),
                file.as_ptr(),
                setup.pos,
                setup.eventfd,
                setup.ioprio,
                setup.rw_flags,
                direction.raw(),
                Some(Self::complete),
            )
        })
    }

    /// The file position the kiocb starts at.
    fn pos(&self) -> *const i64 {
        // SAFETY: The kiocb is valid; only the field's address is taken.
        unsafe { &raw const (*self.as_ptr()).ki_pos }
    }

    /// Marks the kiocb a write (`IOCB_WRITE`) and, for a regular file, takes the superblock's
    /// freeze protection that [`Kiocb::end_write`] gives back (`kiocb_start_write()`).
    pub(crate) fn start_write(&self) {
        // SAFETY: The kiocb was prepared (type invariant).
        unsafe { sys::rust_aio_kiocb_start_write(self.as_ptr()) };
    }

    /// At completion: gives back the freeze protection of a write to a regular file
    /// (`kiocb_end_write()`); nothing for reads. Any context.
    pub(crate) fn end_write(&self) {
        // SAFETY: The kiocb was prepared (type invariant).
        unsafe { sys::rust_aio_kiocb_end_write(self.as_ptr()) };
    }
}

/// The calling task's I/O priority (`get_current_ioprio()`).
pub(crate) fn current_ioprio() -> u16 {
    // SAFETY: Reads the current task's I/O context; always allowed in process context.
    unsafe { sys::rust_aio_current_ioprio() }
}

/// An iterator over the user memory of one request (`struct iov_iter`).
#[repr(transparent)]
pub(crate) struct IovIter(sys::iov_iter);

impl IovIter {
    /// The bytes the iterator covers.
    pub(crate) fn count(&self) -> usize {
        // SAFETY: The iterator was set up by an import.
        unsafe { sys::rust_aio_iov_iter_count(&self.0) }
    }
}

/// Imports the user memory of a request (fs/aio.c's `aio_setup_rw()`): `len` bytes at `buf`, or
/// with `vectored` an array of `len` `struct iovec`s at `buf` (`import_iovec()`: EFAULT, EINVAL
/// for more than `UIO_MAXIOV` or a total that overflows), and runs `f` with the iterator; the
/// copy of the iovecs lives until `f` returns.
#[inline(never)]
pub(crate) fn with_user_iter<R>(
    direction: Direction,
    buf: u64,
    len: u64,
    vectored: bool,
    f: impl FnOnce(&mut IovIter) -> R,
) -> Result<R> {
    let mut iter = MaybeUninit::<sys::iov_iter>::uninit();
    if !vectored {
        // SAFETY: `import_ubuf()` checks the user range (`access_ok()`) and fills `iter` in.
        to_result(unsafe {
            sys::import_ubuf(
                direction.raw(),
                buf as usize as *mut c_void,
                len as usize,
                iter.as_mut_ptr(),
            )
        })?;
        // SAFETY: Initialised by the import; `IovIter` is transparent.
        return Ok(f(unsafe { &mut *iter.as_mut_ptr().cast::<IovIter>() }));
    }
    let mut fast = [const { MaybeUninit::<sys::iovec>::uninit() }; sys::UIO_FASTIOV as usize];
    let mut iovec = fast.as_mut_ptr().cast::<sys::iovec>();
    // SAFETY: `import_iovec()` copies `len` iovecs from user memory into `fast` (it has
    // `UIO_FASTIOV` entries) or into an array it allocates and returns in `iovec`, and points the
    // iterator at them. The count is truncated to `unsigned int` as fs/aio.c's call truncates
    // the `size_t` (what is left over `UIO_MAXIOV` is EINVAL).
    let imported = unsafe {
        sys::import_iovec(
            direction.raw(),
            buf as usize as *const sys::iovec,
            len as u32,
            sys::UIO_FASTIOV,
            &mut iovec,
            iter.as_mut_ptr(),
        )
    };
    if imported < 0 {
        // The import frees what it allocated on failure (and leaves `iovec` null).
        return Err(Error::from_errno(imported as c_int));
    }
    // SAFETY: Initialised by the import, and its iovecs (`fast` or `iovec`) live until the end
    // of this function; `IovIter` is transparent.
    let result = f(unsafe { &mut *iter.as_mut_ptr().cast::<IovIter>() });
    // SAFETY: `iovec` is null (the import used `fast`) or the array it allocated, which nothing
    // uses any more: the file system is done with the iterator when its call returns.
    unsafe { sys::kfree(iovec.cast()) };
    Ok(result)
}

/// `rw_verify_area()`: whether `count` bytes at the kiocb's position may be read or written
/// (EINVAL for a negative or overflowing range, the file's locks, the security hooks).
pub(crate) fn verify_area<T: KiocbCompletion>(
    file: &FileRef,
    direction: Direction,
    kiocb: &Kiocb<T>,
    count: usize,
) -> Result {
    // SAFETY: The file is referenced and the kiocb's position is readable for the call.
    to_result(unsafe { sys::rw_verify_area(direction.raw(), file.as_ptr(), kiocb.pos(), count) })
}

/// Whether the file can be read or written at all (`FMODE_READ`/`FMODE_WRITE`): EBADF if not,
/// and whether it has the iterator operation (`read_iter`/`write_iter`): EINVAL if not.
pub(crate) fn check_file(file: &FileRef, direction: Direction) -> Result {
    let (mode, has_op) = match direction {
        Direction::Read => (sys::FMODE_READ, file.f_op().read_iter.is_some()),
        Direction::Write => (sys::FMODE_WRITE, file.f_op().write_iter.is_some()),
    };
    if file.mode() & mode == 0 {
        return Err(EBADF);
    }
    if !has_op {
        return Err(EINVAL);
    }
    Ok(())
}

/// What [`issue`] did with a request.
#[must_use = "a request the file system did not queue must be completed by the caller"]
pub(crate) enum Issued<T> {
    /// The file system queued it and will complete it ([`KiocbCompletion::completed`]).
    Queued,
    /// The file system is done with it, with this result (a byte count or a negative errno,
    /// `-EIOCBQUEUED` excluded): its completion is the caller's, with the reference the file
    /// system would have held.
    Done(Arc<T>, isize),
}

/// Starts the file system on `req` through its kiocb (`read_iter`/`write_iter`), giving it a
/// reference to the request until it completes it.
///
/// # Safety
///
/// `req`'s kiocb must be prepared for `file` ([`Kiocb::prep`]); `iter` must cover user memory of
/// the calling task, and [`check_file`] must have passed.
pub(crate) unsafe fn issue<T: KiocbCompletion>(
    req: &Arc<T>,
    file: &FileRef,
    direction: Direction,
    iter: &mut IovIter,
) -> Issued<T> {
    // SAFETY: The `Kiocb<T>` field of the request is at `T::OFFSET` (`HasKiocb`).
    let kiocb = unsafe {
        &*core::ptr::from_ref::<T>(req)
            .cast::<u8>()
            .add(T::OFFSET)
            .cast::<Kiocb<T>>()
    };
    let op = match direction {
        Direction::Read => file.f_op().read_iter,
        Direction::Write => file.f_op().write_iter,
    };
    let Some(op) = op else {
        return Issued::Done(req.clone(), -(sys::EINVAL as isize));
    };
    // The file system's reference, taken back by `Kiocb::complete` or below.
    let fs_ref = Arc::into_raw(req.clone());
    // SAFETY: The caller's guarantees are the operation's requirements; the kiocb lives as long
    // as the request, which the file system holds a reference to.
    let ret = unsafe { op(kiocb.as_ptr(), &mut iter.0) };
    if ret == -(sys::EIOCBQUEUED as isize) {
        return Issued::Queued;
    }
    // SAFETY: The file system did not queue the request: its reference is ours again.
    Issued::Done(unsafe { Arc::from_raw(fs_ref) }, ret)
}
