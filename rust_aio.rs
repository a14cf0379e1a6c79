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
//!    address-space operations: how ring pages migrate) and `mremap.rs` (what moving the ring
//!    mapping does). The crate root builds the ring files' operation tables from them and hands
//!    them down to the contexts ([`context::Shared`]), which give them to every ring file they
//!    make.
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
//!    only code that calls C or that C calls (`scripts/check-raw-calls`). The layers above
//!    implement safe traits (`MiscDevice`, `AddressSpaceOps`, `VmOps`, `MmuNotifierOps`,
//!    `HrTimerCallback`, `IrqWorkCallback`, `KiocbCompletion`, `WakeCallback`) from which the
//!    wrappers build the C callbacks and tables. `kapi/sys.rs` holds the raw bindings:
//!    `kernel::bindings`, what bindgen generates on top of it, and the ABI (`sys::uapi`).

use core::mem::size_of;
use kernel::{c_str, prelude::*};

mod context;
mod kapi;
mod migrate;
mod mremap;
mod ring;
mod stats;

use context::{table::FileContexts, Shared};
use kapi::uaccess::{user_slice, UserAddr};
use kapi::{
    miscdevice::{MiscDevice, MiscRegistration},
    ring_file::RingOps,
    sys,
};

module! {
    type: RustAio,
    name: "rust_aio",
    authors: ["rust_aio developers"],
    description: "Linux AIO's completion ring with migratable ring pages",
    license: "GPL",
}

/// The module: its device, with what contexts share (the device's files are opened with it),
/// and its counters.
struct RustAio {
    // Dropped in this order: no new files, then the shared state, then no more counters.
    _device: Pin<KBox<MiscRegistration<Device>>>,
    _debugfs: stats::DebugFs,
}

impl kernel::Module for RustAio {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let debugfs = stats::DebugFs::create()?;
        // The ring files setup makes get the operations of the layer above the contexts: how
        // their pages migrate and how their mappings move.
        let shared = Shared::new(RingOps::new::<migrate::RingAddressSpace, mremap::RingVm>());
        // Mode 0666: like the aio system calls, the device is open to every user. The shared
        // state is ready before the device can be opened.
        // SAFETY: The registration is the module's (`RustAio::_device`), dropped only when the
        // module is unloaded.
        let registration = unsafe { MiscRegistration::register(c_str!("rust_aio"), 0o666, shared) };
        let device = KBox::pin_init(registration, GFP_KERNEL)?;
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

/// `/dev/rust_aio`: each open file holds the contexts it made ([`FileContexts`]), and closing
/// it destroys them (`FileContexts`' drop). 32-bit processes are not supported: `iocbpp` holds
/// 64-bit pointers, so there is no `compat_ioctl`.
struct Device;

impl MiscDevice for Device {
    type Ptr = KBox<FileContexts>;
    type Data = Shared;

    /// A file of the device is opened: it starts with no context.
    fn open(shared: &'static Shared) -> Result<KBox<FileContexts>> {
        Ok(KBox::new(FileContexts::new(shared)?, GFP_KERNEL)?)
    }

    #[inline(always)]
    fn ioctl(contexts: &FileContexts, cmd: u32, arg: usize) -> Result<isize> {
        Ok(ioctl(contexts, cmd, arg)? as isize)
    }
}

#[inline(always)]
fn ioctl(contexts: &FileContexts, cmd: u32, arg: UserAddr) -> Result<usize> {
    match cmd {
        sys::RUST_AIO_IOC_VERSION => {
            let version: u32 = sys::RUST_AIO_ABI_VERSION;
            user_slice(arg, size_of::<u32>()).writer().write(&version)?;
            Ok(0)
        }
        sys::RUST_AIO_IOC_SETUP => {
            let (mut reader, mut writer) =
                user_slice(arg, size_of::<sys::rust_aio_setup>()).reader_writer();
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
            let ctxp = setup.ctxp as UserAddr;
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
            contexts.submit(submit.ctx, submit.nr, submit.iocbpp as UserAddr)
        }
        sys::RUST_AIO_IOC_GETEVENTS => {
            let get: sys::rust_aio_getevents = crate::kapi::uaccess::read_user_words(arg)?;
            let deadline = match get.timeout {
                0 => None,
                timeout => deadline_after(timeout as UserAddr)?,
            };
            contexts.get_events(
                get.ctx,
                get.min_nr,
                get.nr,
                get.events as UserAddr,
                deadline,
            )
        }
        sys::RUST_AIO_IOC_PGETEVENTS => {
            // As fs/aio.c: the timeout, then the signal mask, then the events.
            let pget: sys::rust_aio_pgetevents = crate::kapi::uaccess::read_user_words(arg)?;
            let get = pget.get;
            let deadline = match get.timeout {
                0 => None,
                timeout => deadline_after(timeout as UserAddr)?,
            };
            contexts.pget_events(
                get.ctx,
                get.min_nr,
                get.nr,
                get.events as UserAddr,
                deadline,
                (pget.sigmask as usize, pget.sigsetsize as usize),
            )
        }
        sys::RUST_AIO_IOC_CANCEL => {
            let cancel: sys::rust_aio_cancel = user_slice(arg, size_of::<sys::rust_aio_cancel>())
                .reader()
                .read()?;
            contexts.cancel(cancel.ctx, cancel.iocb as UserAddr)?;
            Ok(0)
        }
        sys::RUST_AIO_IOC_DESTROY => {
            let ctx: u64 = user_slice(arg, size_of::<u64>()).reader().read()?;
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
fn deadline_after(timeout: UserAddr) -> Result<Option<i64>> {
    const KTIME_SEC_MAX: i64 = i64::MAX / 1_000_000_000;
    let ts: sys::__kernel_timespec = user_slice(timeout, size_of::<sys::__kernel_timespec>())
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
        kapi::hrtimer::monotonic_ns()
            .saturating_add(relative)
            .max(1),
    ))
}
