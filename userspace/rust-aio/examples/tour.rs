// SPDX-License-Identifier: GPL-2.0

//! A tour of the crate against the device, which `make check` runs in the test guest
//! (`selftests/crate-check`): every kind of request, reaped through the ioctl and from the ring,
//! an eventfd, cancel. Exits non-zero, saying why, if anything is not as documented.
//!
//! `cargo run --example tour [DIR]` on a machine with the module loaded; DIR (default `/tmp`)
//! holds the scratch file.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use rust_aio::{Context, Event, EventFd, Op};

fn check(what: &str, ok: bool) -> io::Result<()> {
    println!("{} - {what}", if ok { "ok" } else { "not ok" });
    if ok {
        Ok(())
    } else {
        Err(io::Error::other(what.to_string()))
    }
}

/// Waits for exactly `n` events.
fn wait(ctx: &Context, n: usize) -> io::Result<Vec<Event>> {
    let mut events = vec![Event::default(); n];
    let mut got = 0;
    while got < n {
        got += ctx.get_events(n - got, &mut events[got..], Some(Duration::from_secs(10)))?;
    }
    Ok(events)
}

fn main() -> io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/tmp".into());
    let path = format!("{dir}/rust-aio-tour.{}", std::process::id());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    let fd = file.as_raw_fd();
    let mut ctx = Context::new(64)?;

    // The module's own: a no-op, a timer, a work item; each echoes its data.
    let ops = [
        Op::noop().data(1),
        Op::timer(Duration::from_millis(5)).data(2),
        Op::work().data(3),
    ];
    // SAFETY: The ops live until their events are reaped below.
    let n = unsafe { ctx.submit(&ops.iter().collect::<Vec<_>>())? };
    let mut events = wait(&ctx, 3)?;
    events.sort_by_key(|e| e.data());
    check(
        "noop, timer and work complete",
        n == 3 && events.iter().map(|e| e.data()).eq(1..=3),
    )?;

    // A write, then a vectored read of it, and an fsync, with an eventfd.
    let efd = EventFd::new()?;
    let data: Vec<u8> = (0..8192u32).map(|i| (i * 7) as u8).collect();
    let write = Op::write(fd, data.as_ptr(), data.len(), 0)
        .data(10)
        .eventfd(efd.as_raw_fd());
    // SAFETY: `data` and `write` outlive the event.
    unsafe { ctx.submit(&[&write])? };
    let e = wait(&ctx, 1)?;
    check(
        "write: 8192 bytes",
        e[0].result()? == 8192 && e[0].data() == 10,
    )?;
    check("the eventfd counted it", efd.take()? == 1)?;
    let (mut a, mut b) = (vec![0u8; 4096], vec![0u8; 4096]);
    let iov = [
        libc::iovec {
            iov_base: a.as_mut_ptr().cast(),
            iov_len: a.len(),
        },
        libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        },
    ];
    let readv = Op::readv(fd, iov.as_ptr(), 2, 0).data(11);
    let sync = Op::fdatasync(fd).data(12);
    // SAFETY: The buffers, the iovecs and the ops outlive the events.
    unsafe { ctx.submit(&[&readv, &sync])? };
    let mut e = wait(&ctx, 2)?;
    e.sort_by_key(|e| e.data());
    check(
        "readv: 8192 bytes, the same",
        e[0].result()? == 8192 && [a, b].concat() == data,
    )?;
    check("fdatasync: 0", e[1].result()? == 0)?;
    let mut back = vec![0u8; 8192];
    file.read_exact_at(&mut back, 0)?;
    check("pread(2) reads what the write wrote", back == data)?;

    // A poll that waits, is cancelled, and one that a write wakes; reaped from the ring.
    let mut pipe = [0i32; 2];
    // SAFETY: Plain system call.
    check("pipe", unsafe { libc::pipe(pipe.as_mut_ptr()) } == 0)?;
    let (p1, p2) = (
        Op::poll(pipe[0], libc::POLLIN).data(20),
        Op::poll(pipe[0], libc::POLLIN).data(21),
    );
    // SAFETY: The ops outlive their events.
    unsafe { ctx.submit(&[&p1, &p2])? };
    ctx.cancel(&p1)?;
    // SAFETY: Plain system call on our pipe.
    unsafe { libc::write(pipe[1], b"x".as_ptr().cast(), 1) };
    let mut events = [Event::default(); 2];
    let mut got = 0;
    for _ in 0..1000 {
        got += ctx.reap(&mut events[got..]);
        if got == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    events.sort_by_key(|e| e.data());
    check(
        "from the ring: the cancelled poll (res 0) and the woken one (POLLIN)",
        got == 2 && events[0].res() == 0 && events[1].res() & i64::from(libc::POLLIN) != 0,
    )?;
    check("nothing more in the ring", ctx.ready() == 0)?;

    // Errors: a read of a closed descriptor fails at submit.
    let bad = Op::read(999, back.as_mut_ptr(), 1, 0);
    // SAFETY: Refused at once.
    let err = unsafe { ctx.submit(&[&bad]) }.unwrap_err();
    check(
        "a closed fd: EBADF",
        err.raw_os_error() == Some(libc::EBADF),
    )?;
    drop(ctx);
    std::fs::remove_file(&path)?;
    println!("tour: all ok");
    Ok(())
}
