// SPDX-License-Identifier: GPL-2.0

//! rust_aio: Linux AIO's completion ring as a misc device, with ring pages that can migrate.
//!
//! `/dev/rust_aio` answers ioctls that behave like `io_setup`, `io_submit`, `io_getevents`,
//! `io_cancel` and `io_destroy` (see `include/uapi/rust_aio.h`, the ABI's single source). A
//! context dies when it is destroyed, when the file it was made through is closed, or when the
//! address space that made it dies (exit, exec), whichever comes first.
//!
//! How the pieces fit, in layers from the ioctl down; each names only what is below it:
//!
//! 1. `rust_aio.rs` (this file): the module, the device and its ioctls.
//! 2. The ring callbacks, which the kernel calls on a ring: `migrate.rs` (the ring inode's
//!    address-space operations: how ring pages migrate) and `ring_file.rs` (the ring file's
//!    operations and the ring mapping's: `mmap`, `mremap`). The crate root hands their tables
//!    down to the contexts ([`context::Shared`]), which give them to every ring file they make.
//! 3. `context.rs` and `context/`: a context and everything that may name it — `table.rs` (one
//!    open device file and the contexts it made, `io_setup`), `submit.rs` (`io_submit` of one
//!    iocb), `reap.rs` (`io_getevents`), `destroy.rs` (`io_cancel`, `io_destroy`, teardown),
//!    `owner.rs` (contexts die with their address space), and the kinds of request:
//!    `request.rs` (what completes a request, NOOP batches, TIMER, WORK, FSYNC), `rw.rs` (reads
//!    and writes), `poll.rs` (POLL). Inside this folder a request holds its context and the
//!    context lists its pending requests.
//! 4. `ring.rs` and `ring/`: the completion ring, generic over what its `ring_lock` guards
//!    (it never names a context): its header, its locks and the rule they keep, posting and
//!    reaping, migration's second copy. **The module's lock order is stated there, once.**
//! 5. `stats.rs`: the module-wide counters and test knobs (debugfs).
//! 6. `kapi.rs` and `kapi/`: thin wrappers of the kernel objects used, one file per kernel
//!    abstraction, named after the upstream Rust abstraction where newer kernels have one: the
//!    only code that calls C (`scripts/check-raw-calls`). `kapi/sys.rs` holds the raw bindings:
//!    `kernel::bindings`, what bindgen generates on top of it, and the ABI (`sys::uapi`).

use core::mem::size_of;
use kernel::{
    c_str,
    error::from_result,
    ffi::{c_int, c_long, c_uint, c_ulong},
    prelude::*,
    types::ForeignOwnable,
    uaccess::{UserPtr, UserSlice},
};

mod context;
mod kapi;
mod migrate;
mod ring;
mod ring_file;
mod stats;

use context::{table::FileContexts, Shared};
use kapi::{
    miscdevice::{FileOperations, MiscRegistration},
    pseudo_fs::RingOps,
    sys,
};

module! {
    type: RustAio,
    name: "rust_aio",
    author: "rust_aio developers",
    description: "Linux AIO's completion ring with migratable ring pages",
    license: "GPL",
}

/// The module: its device, with what contexts share (the device's files are opened with it),
/// and its counters.
struct RustAio {
    // Dropped in this order: no new files, then the shared state, then no more counters.
    _device: Pin<KBox<MiscRegistration<Shared>>>,
    _debugfs: stats::DebugFs,
}

impl kernel::Module for RustAio {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let debugfs = stats::DebugFs::create();
        // The ring files setup makes get the operations of the layer above the contexts: how
        // their pages migrate and how their mappings move.
        let shared = Shared::new(RingOps {
            aops: &migrate::RING_AOPS,
            fops: &ring_file::RING_FOPS,
        });
        // Mode 0666: like the aio system calls, the device is open to every user. The shared
        // state is ready before the device can be opened.
        let device = KBox::pin_init(
            MiscRegistration::register(c_str!("rust_aio"), 0o666, &DEVICE_FOPS, shared),
            GFP_KERNEL,
        )?;
        Ok(Self {
            _device: device,
            _debugfs: debugfs,
        })
    }
}

impl Drop for RustAio {
    /// Runs before the fields are dropped. Every context is gone (each open file holds the
    /// module), but the address-space tables they gave back are freed after an SRCU grace
    /// period, by module code: wait for that.
    fn drop(&mut self) {
        context::owner::synchronize();
    }
}

/// The operations of `/dev/rust_aio`. 32-bit processes are not supported: `iocbpp` holds
/// 64-bit pointers, so there is no `compat_ioctl`.
static DEVICE_FOPS: FileOperations = FileOperations(sys::file_operations {
    owner: kapi::miscdevice::this_module(),
    open: Some(device_open),
    release: Some(device_release),
    unlocked_ioctl: Some(device_ioctl),
    // SAFETY: All-zero is a valid `file_operations`: every other operation is absent.
    ..unsafe { core::mem::zeroed() }
});

/// `open` of `/dev/rust_aio`: the file's contexts become its `private_data`.
///
/// # Safety
///
/// Called by `misc_open()` (which holds the misc-device lock) for a file of the device that the
/// module's `MiscRegistration<Shared>` registered, being opened.
unsafe extern "C" fn device_open(_inode: *mut sys::inode, file: *mut sys::file) -> c_int {
    // SAFETY: `misc_open()` is opening `file` on our device, registered by the module's
    // `MiscRegistration<Shared>` (`DEVICE_FOPS` are only its operations). That lives until the
    // module is unloaded, which cannot happen while a file of the module is open: the shared
    // state outlives the file, and so every context it makes.
    let shared: &'static Shared = unsafe { MiscRegistration::of_opening_file(file) }.data();
    from_result(|| {
        let contexts = open(shared)?;
        // SAFETY: The file is being opened and is ours to set up: from now on its
        // `private_data` is its contexts, which `device_ioctl` borrows and `device_release`
        // takes back.
        unsafe { (*file).private_data = contexts.into_foreign().cast_mut() };
        Ok(0)
    })
}

/// A file of the device is opened: it starts with no context.
fn open(shared: &'static Shared) -> Result<KBox<FileContexts>> {
    Ok(KBox::new(FileContexts::new(shared)?, GFP_KERNEL)?)
}

/// `release` of `/dev/rust_aio`.
///
/// # Safety
///
/// Called by the VFS once per file that [`device_open`] set up, when its last reference is gone.
unsafe extern "C" fn device_release(_inode: *mut sys::inode, file: *mut sys::file) -> c_int {
    // SAFETY: `private_data` was set by `device_open`, and no ioctl runs any more.
    let contexts = unsafe { KBox::<FileContexts>::from_foreign((*file).private_data) };
    release(contexts);
    0
}

/// A file of the device is closed: every context it made is destroyed (`FileContexts`' drop).
fn release(contexts: KBox<FileContexts>) {
    drop(contexts);
}

/// `unlocked_ioctl` of `/dev/rust_aio`.
///
/// # Safety
///
/// Called by the VFS for a file that [`device_open`] set up, which stays open during the call.
unsafe extern "C" fn device_ioctl(file: *mut sys::file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: `private_data` was set by `device_open` and stays until release, which cannot run
    // while an ioctl does.
    let contexts = unsafe { KBox::<FileContexts>::borrow((*file).private_data) };
    from_result(|| Ok(ioctl(contexts, cmd, arg as UserPtr)? as c_long))
}

fn ioctl(contexts: &FileContexts, cmd: c_uint, arg: UserPtr) -> Result<usize> {
    match cmd {
        sys::RUST_AIO_IOC_VERSION => {
            let version: u32 = sys::RUST_AIO_ABI_VERSION;
            UserSlice::new(arg, size_of::<u32>())
                .writer()
                .write(&version)?;
            Ok(0)
        }
        sys::RUST_AIO_IOC_SETUP => {
            let (mut reader, mut writer) =
                UserSlice::new(arg, size_of::<sys::rust_aio_setup>()).reader_writer();
            let mut setup: sys::rust_aio_setup = reader.read()?;
            let ctx = contexts.setup(setup.nr_events, setup.flags)?;
            setup.ctx = ctx.id();
            if let Err(err) = writer.write(&setup) {
                // As io_setup(): a context the caller cannot learn of is destroyed (itself,
                // not whatever its id names by now).
                let _ = ctx.destroy();
                return Err(err);
            }
            Ok(0)
        }
        sys::RUST_AIO_IOC_IO_SETUP => {
            // As fs/aio.c's `io_setup()`: `*ctxp` read first (EFAULT), which must be 0 (EINVAL).
            let setup: sys::rust_aio_io_setup = crate::kapi::uaccess::read_user_words(arg)?;
            let ctxp = setup.ctxp as UserPtr;
            if crate::kapi::uaccess::read_user_u64(ctxp)? != 0 || setup.nr_events == 0 {
                return Err(EINVAL);
            }
            let ctx = contexts.setup(setup.nr_events, setup.flags)?;
            if let Err(err) = crate::kapi::uaccess::write_user_u64(ctxp, ctx.id()) {
                // A context the caller cannot learn of is destroyed (itself, not whatever its id
                // names by now).
                let _ = ctx.destroy();
                return Err(err);
            }
            Ok(0)
        }
        sys::RUST_AIO_IOC_SUBMIT => {
            let submit: sys::rust_aio_submit = crate::kapi::uaccess::read_user_words(arg)?;
            contexts.submit(submit.ctx, submit.nr, submit.iocbpp as UserPtr)
        }
        sys::RUST_AIO_IOC_GETEVENTS => {
            let get: sys::rust_aio_getevents = crate::kapi::uaccess::read_user_words(arg)?;
            let deadline = match get.timeout {
                0 => None,
                timeout => deadline_after(timeout as UserPtr)?,
            };
            contexts.get_events(get.ctx, get.min_nr, get.nr, get.events as UserPtr, deadline)
        }
        sys::RUST_AIO_IOC_PGETEVENTS => {
            // As fs/aio.c: the timeout, then the signal mask, then the events.
            let pget: sys::rust_aio_pgetevents = crate::kapi::uaccess::read_user_words(arg)?;
            let get = pget.get;
            let deadline = match get.timeout {
                0 => None,
                timeout => deadline_after(timeout as UserPtr)?,
            };
            contexts.pget_events(
                get.ctx,
                get.min_nr,
                get.nr,
                get.events as UserPtr,
                deadline,
                (pget.sigmask as usize, pget.sigsetsize as usize),
            )
        }
        sys::RUST_AIO_IOC_CANCEL => {
            let cancel: sys::rust_aio_cancel =
                UserSlice::new(arg, size_of::<sys::rust_aio_cancel>())
                    .reader()
                    .read()?;
            contexts.cancel(cancel.ctx, cancel.iocb as UserPtr)?;
            Ok(0)
        }
        sys::RUST_AIO_IOC_DESTROY => {
            let ctx: u64 = UserSlice::new(arg, size_of::<u64>()).reader().read()?;
            contexts.destroy(ctx)?;
            Ok(0)
        }
        _ => Err(ENOTTY),
    }
}

/// Reads a relative `struct __kernel_timespec` and turns it into an absolute monotonic deadline
/// in ns, as fs/aio.c does (`timespec64_to_ktime()`): `tv_sec * 10^9 + tv_nsec`, nothing
/// validated. A sum of 0 or less has already expired: `Some(0)`, poll without waiting; seconds
/// beyond `KTIME_SEC_MAX` wait for ever.
fn deadline_after(timeout: UserPtr) -> Result<Option<i64>> {
    const KTIME_SEC_MAX: i64 = i64::MAX / 1_000_000_000;
    let ts: sys::__kernel_timespec = UserSlice::new(timeout, size_of::<sys::__kernel_timespec>())
        .reader()
        .read()?;
    if ts.tv_sec >= KTIME_SEC_MAX {
        return Ok(None);
    }
    let relative = ts
        .tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec);
    if relative <= 0 {
        return Ok(Some(0));
    }
    Ok(Some(
        kernel::time::Ktime::ktime_get()
            .to_ns()
            .saturating_add(relative)
            .max(1),
    ))
}
