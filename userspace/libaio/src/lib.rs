// SPDX-License-Identifier: GPL-2.0

//! libaio's C ABI on rust_aio: built as `libaio.so.1` (soname, symbols and symbol versions of
//! Debian's libaio 0.3.113, `libaio.map`) and `libaio.a`, so that a program written against
//! libaio runs on the module unchanged (`LD_LIBRARY_PATH`/`LD_PRELOAD`, or linked statically).
//!
//! As libaio: every function returns a negative errno on failure and leaves `errno` as it found
//! it; `io_getevents()` with a zero timeout looks at the ring first and returns 0 without a
//! system call when it is empty; `io_context_t` is the ring's address, whose header user-space
//! reapers (libaio's own check, fio's `userspace_reap`) read. The calls go to one
//! `/dev/rust_aio` file per process, opened on first use (close-on-exec, descriptor 256 or above
//! if the limit allows); if the device cannot be opened (the module is not loaded), they fail
//! with `-ENOSYS`, as on a kernel without AIO.
//!
//! Not as the kernel: contexts belong to that descriptor, not only to the address space. A
//! program that closes it (`close_range()` of everything above stderr, say) destroys them.
//!
//! Every pointer the system calls take is handed to the module, which reads and writes it as
//! the kernel does: a bad one is `-EFAULT`, never a fault in the library (`io_setup()`'s
//! `ctxp`, the getevents calls' `timeout`). The library itself reads only what libaio reads: the
//! ring's header at `ctx`, and then a zero `timeout`, for its empty-ring shortcut.

use core::ffi::{c_int, c_long, c_void};
use std::sync::{Mutex, OnceLock};

use rust_aio::raw::{Device, RingView, SysResult};
use rust_aio::uapi::{io_event, iocb, RUST_AIO_RING_MAGIC};

/// `io_context_t`: libaio's `struct io_context *`, the context's id.
type IoContext = *mut c_void;

/// libaio's `io_callback_t`, which `io_queue_run()` calls with each event.
type IoCallback = unsafe extern "C" fn(IoContext, *mut iocb, c_long, c_long);

static DEVICE: OnceLock<Device> = OnceLock::new();
static OPENING: Mutex<()> = Mutex::new(());

/// The device's descriptor is moved at or above this (if the limit allows), out of the way of
/// programs that close or reuse low descriptors: closing it would destroy every context.
const FD_FLOOR: i32 = 256;

/// The process's device file, opened on first use. A failure is not remembered (the next call
/// tries again): out of descriptors or memory is `EAGAIN`, as `io_setup()` says when it lacks
/// resources; anything else (no module, no permission) is `ENOSYS`, as on a kernel without AIO.
fn device() -> Result<&'static Device, i32> {
    if let Some(dev) = DEVICE.get() {
        return Ok(dev);
    }
    let _opening = OPENING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dev) = DEVICE.get() {
        return Ok(dev);
    }
    let dev = Device::open_above(FD_FLOOR).map_err(|e| match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM) => libc::EAGAIN,
        _ => libc::ENOSYS,
    })?;
    Ok(DEVICE.get_or_init(|| dev))
}

fn errno_location() -> *mut c_int {
    // SAFETY: Always valid for the calling thread.
    unsafe { libc::__errno_location() }
}

/// Runs `f` on the device, with libaio's conventions: `-errno` on failure, `errno` unchanged.
fn call(f: impl FnOnce(&Device) -> SysResult) -> i64 {
    // SAFETY: The calling thread's errno.
    let saved = unsafe { *errno_location() };
    let result = device().and_then(f);
    // SAFETY: As above.
    unsafe { *errno_location() = saved };
    match result {
        Ok(n) => n,
        Err(e) => -i64::from(e),
    }
}

/// libaio's `aio_ring_is_empty()`: with a zero timeout, an empty ring answers 0 at once. As
/// there, the ring's header is looked at first, and the timeout only if `ctx` is a ring.
///
/// # Safety
///
/// `ctx` must be null, a context of this process, or anything whose first 32 bytes are readable;
/// if it is a ring, `timeout` must be null or valid (libaio's contract).
unsafe fn ring_is_empty(ctx: IoContext, timeout: *const libc::timespec) -> bool {
    if ctx.is_null() {
        return false;
    }
    // SAFETY: `ctx` is readable (the caller's guarantee).
    let ring = unsafe { RingView::new(ctx as u64) };
    if ring.magic() != RUST_AIO_RING_MAGIC {
        return false;
    }
    // SAFETY: The caller's guarantee, as `ctx` is a ring.
    let zero = unsafe { timeout.as_ref() }.is_some_and(|t| t.tv_sec == 0 && t.tv_nsec == 0);
    zero && ring.head() == ring.tail()
}

/// `io_setup()` (LIBAIO_0.4): the module reads and writes `*ctxp`, as the kernel does.
///
/// # Safety
///
/// `ctxp`, if it points to writable memory, must be the caller's `io_context_t`.
#[no_mangle]
pub unsafe extern "C" fn io_setup(maxevents: c_int, ctxp: *mut IoContext) -> c_int {
    // SAFETY: The caller's guarantee.
    call(|dev| unsafe { dev.io_setup(maxevents as u32, ctxp as usize) }) as c_int
}

/// `io_destroy()` (LIBAIO_0.4).
#[no_mangle]
pub extern "C" fn io_destroy(ctx: IoContext) -> c_int {
    // SAFETY: libaio's contract: the caller is done with the context and its ring.
    call(|dev| unsafe { dev.destroy(ctx as u64) }) as c_int
}

/// `io_submit()` (LIBAIO_0.1): the kernel reads the array and the iocbs.
#[no_mangle]
pub extern "C" fn io_submit(ctx: IoContext, nr: c_long, iocbs: *mut *mut iocb) -> c_int {
    // SAFETY: libaio's contract: the iocbs and their buffers are the caller's, valid until their
    // events (as for the system call).
    call(|dev| unsafe { dev.submit_raw(ctx as u64, nr, iocbs as usize) }) as c_int
}

/// `io_cancel()` (LIBAIO_0.4): as in Linux 7.3, the event comes through the ring and a
/// cancelled request answers `-EINPROGRESS`; `event` is not written.
#[no_mangle]
pub extern "C" fn rust_aio_io_cancel_0_4(
    ctx: IoContext,
    iocb: *mut iocb,
    _event: *mut io_event,
) -> c_int {
    call(|dev| dev.cancel(ctx as u64, iocb)) as c_int
}

/// `io_cancel()` of LIBAIO_0.1, without the event argument.
#[no_mangle]
pub extern "C" fn rust_aio_io_cancel_0_1(ctx: IoContext, iocb: *mut iocb) -> c_int {
    let mut event = io_event::default();
    rust_aio_io_cancel_0_4(ctx, iocb, &mut event)
}

/// The GETEVENTS call itself: the module reads `timeout` (a `struct timespec` is the kernel's
/// `__kernel_timespec` on 64 bits).
fn getevents(
    ctx: IoContext,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *const libc::timespec,
) -> c_int {
    // SAFETY: libaio's contract: `events` holds `nr` events (the kernel checks the addresses).
    call(|dev| unsafe {
        dev.getevents_at(ctx as u64, min_nr, nr, events as usize, timeout as usize)
    }) as c_int
}

/// `io_getevents()` (LIBAIO_0.4): an empty ring with a zero timeout answers 0 without a call.
///
/// # Safety
///
/// `timeout` must be null or valid; `ctx` a context of this process (libaio's contract).
#[no_mangle]
pub unsafe extern "C" fn rust_aio_io_getevents_0_4(
    ctx: IoContext,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *mut libc::timespec,
) -> c_int {
    // SAFETY: The caller's guarantee.
    if unsafe { ring_is_empty(ctx, timeout) } {
        return 0;
    }
    getevents(ctx, min_nr, nr, events, timeout)
}

/// `io_getevents()` of LIBAIO_0.1: `min_nr` 1 (libaio's compat wrapper of the 0.4 one).
///
/// # Safety
///
/// `timeout` must be null or valid.
#[no_mangle]
pub unsafe extern "C" fn rust_aio_io_getevents_0_1(
    ctx: IoContext,
    nr: c_long,
    events: *mut io_event,
    timeout: *mut libc::timespec,
) -> c_int {
    // SAFETY: The caller's guarantee.
    unsafe { rust_aio_io_getevents_0_4(ctx, 1, nr, events, timeout) }
}

/// `io_queue_init()` (LIBAIO_0.1).
///
/// # Safety
///
/// `ctxp` must be valid.
#[no_mangle]
pub unsafe extern "C" fn io_queue_init(maxevents: c_int, ctxp: *mut IoContext) -> c_int {
    if maxevents <= 0 {
        return -libc::EINVAL;
    }
    // SAFETY: The caller's guarantee.
    unsafe {
        *ctxp = core::ptr::null_mut();
        io_setup(maxevents, ctxp)
    }
}

/// `io_queue_release()` (LIBAIO_0.1).
#[no_mangle]
pub extern "C" fn io_queue_release(ctx: IoContext) -> c_int {
    io_destroy(ctx)
}

/// `io_queue_run()` (LIBAIO_0.1): calls each ready event's callback (`data`) until none is
/// left.
///
/// # Safety
///
/// Every event's `data` must be an `io_callback_t` (libaio's `io_set_callback()`).
#[no_mangle]
pub unsafe extern "C" fn io_queue_run(ctx: IoContext) -> c_int {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        let mut event = io_event::default();
        // SAFETY: `zero` is valid; `ctx` is the caller's.
        let ret = unsafe {
            rust_aio_io_getevents_0_4(ctx, 0, 1, &mut event, &zero as *const _ as *mut _)
        };
        if ret != 1 {
            return ret;
        }
        if event.data == 0 {
            // No callback (libaio would call address 0).
            continue;
        }
        // SAFETY: The caller's guarantee: `data` is the callback.
        let callback: IoCallback = unsafe { core::mem::transmute(event.data as usize) };
        // SAFETY: As libaio calls it.
        unsafe {
            callback(
                ctx,
                event.obj as *mut iocb,
                event.res as c_long,
                event.res2 as c_long,
            )
        };
    }
}

/// `io_queue_wait()` (LIBAIO_0.4): waits for an event without taking it.
///
/// # Safety
///
/// `timeout` must be null or valid.
#[no_mangle]
pub unsafe extern "C" fn rust_aio_io_queue_wait_0_4(
    ctx: IoContext,
    timeout: *mut libc::timespec,
) -> c_int {
    // SAFETY: The caller's guarantee.
    unsafe { rust_aio_io_getevents_0_4(ctx, 0, 0, core::ptr::null_mut(), timeout) }
}

/// `io_queue_wait()` of LIBAIO_0.1.
///
/// # Safety
///
/// `timeout` must be null or valid.
#[no_mangle]
pub unsafe extern "C" fn rust_aio_io_queue_wait_0_1(
    ctx: IoContext,
    timeout: *mut libc::timespec,
) -> c_int {
    // SAFETY: The caller's guarantee.
    unsafe { rust_aio_io_queue_wait_0_4(ctx, timeout) }
}

/// `io_pgetevents()` (LIBAIO_0.5): `io_getevents()` with `sigmask` in force, atomically,
/// while it waits (the device's PGETEVENTS, as the system call).
///
/// # Safety
///
/// `timeout` and `sigmask` must be null or valid.
#[no_mangle]
pub unsafe extern "C" fn io_pgetevents(
    ctx: IoContext,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *mut libc::timespec,
    sigmask: *mut libc::sigset_t,
) -> c_int {
    // SAFETY: The caller's guarantee.
    if unsafe { ring_is_empty(ctx, timeout) } {
        return 0;
    }
    // SAFETY: libaio's contract: `events` holds `nr` events (the kernel checks the addresses).
    call(|dev| unsafe {
        dev.pgetevents_at(
            ctx as u64,
            min_nr,
            nr,
            events as usize,
            timeout as usize,
            sigmask as usize,
        )
    }) as c_int
}

// The symbols exported under two versions, as libaio's compat-0_1.c does it.
core::arch::global_asm!(
    ".symver rust_aio_io_cancel_0_4, io_cancel@@LIBAIO_0.4",
    ".symver rust_aio_io_cancel_0_1, io_cancel@LIBAIO_0.1",
    ".symver rust_aio_io_getevents_0_4, io_getevents@@LIBAIO_0.4",
    ".symver rust_aio_io_getevents_0_1, io_getevents@LIBAIO_0.1",
    ".symver rust_aio_io_queue_wait_0_4, io_queue_wait@@LIBAIO_0.4",
    ".symver rust_aio_io_queue_wait_0_1, io_queue_wait@LIBAIO_0.1",
);
