// SPDX-License-Identifier: GPL-2.0

//! A reader stuck in a userfaultfd fault must not pin the ring.

use super::*;

/// userfaultfd(2), as far as the stuck-reader test needs it (`linux/userfaultfd.h`).
mod uffd {
    pub const API: u64 = 0xaa;
    pub const IOC_API: u64 = 0xc018_aa3f;
    pub const IOC_REGISTER: u64 = 0xc020_aa00;
    pub const IOC_ZEROPAGE: u64 = 0xc020_aa04;
    pub const MODE_MISSING: u64 = 1;

    #[repr(C)]
    #[derive(Default)]
    pub struct Api {
        pub api: u64,
        pub features: u64,
        pub ioctls: u64,
    }

    #[repr(C)]
    #[derive(Default)]
    pub struct Register {
        pub start: u64,
        pub len: u64,
        pub mode: u64,
        pub ioctls: u64,
    }

    #[repr(C)]
    #[derive(Default)]
    pub struct ZeroPage {
        pub start: u64,
        pub len: u64,
        pub mode: u64,
        pub zeropage: i64,
    }
}

/// A page of anonymous memory registered with a userfaultfd for missing-page faults: whoever
/// touches it first waits until [`StuckPage::resolve`].
struct StuckPage {
    uffd: i32,
    addr: usize,
}

impl StuckPage {
    fn new() -> Result<Self, String> {
        // SAFETY: Plain system calls on fresh objects; the structs match the kernel's.
        unsafe {
            let uffd =
                libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) as i32;
            ensure!(uffd >= 0, "userfaultfd: errno {}", rust_aio_tests::errno());
            let mut api = uffd::Api {
                api: uffd::API,
                ..Default::default()
            };
            ensure!(
                libc::ioctl(uffd, uffd::IOC_API as _, &mut api) == 0,
                "UFFDIO_API: errno {}",
                rust_aio_tests::errno()
            );
            let addr = libc::mmap(
                std::ptr::null_mut(),
                PAGE_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            ensure!(addr != libc::MAP_FAILED, "mmap");
            let mut reg = uffd::Register {
                start: addr as u64,
                len: PAGE_SIZE as u64,
                mode: uffd::MODE_MISSING,
                ioctls: 0,
            };
            ensure!(
                libc::ioctl(uffd, uffd::IOC_REGISTER as _, &mut reg) == 0,
                "UFFDIO_REGISTER: errno {}",
                rust_aio_tests::errno()
            );
            Ok(Self {
                uffd,
                addr: addr as usize,
            })
        }
    }

    /// Waits until somebody is blocked on the page (a fault message is readable).
    fn wait_for_fault(&self, timeout: Duration) -> Result<(), String> {
        let mut pfd = libc::pollfd {
            fd: self.uffd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: One valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
        ensure!(n == 1, "no fault on the registered page within {timeout:?}");
        let mut msg = [0u8; 32];
        // SAFETY: Reads one `struct uffd_msg` (32 bytes) into a local buffer.
        let n = unsafe { libc::read(self.uffd, msg.as_mut_ptr().cast(), 32) };
        ensure!(n == 32, "reading the fault message: {n}");
        Ok(())
    }

    /// Maps a zero page there: the blocked task goes on.
    fn resolve(&self) -> Result<(), String> {
        let mut zero = uffd::ZeroPage {
            start: self.addr as u64,
            len: PAGE_SIZE as u64,
            ..Default::default()
        };
        // SAFETY: A valid `struct uffdio_zeropage` for our registered page.
        let ret = unsafe { libc::ioctl(self.uffd, uffd::IOC_ZEROPAGE as _, &mut zero) };
        ensure!(
            ret == 0 || rust_aio_tests::errno() == libc::EEXIST,
            "UFFDIO_ZEROPAGE: errno {}",
            rust_aio_tests::errno()
        );
        Ok(())
    }
}

impl Drop for StuckPage {
    fn drop(&mut self) {
        let _ = self.resolve();
        // SAFETY: Our own mapping and descriptor.
        unsafe {
            libc::munmap(self.addr as *mut libc::c_void, PAGE_SIZE);
            libc::close(self.uffd);
        }
    }
}

/// Test 6: A reader whose events buffer is stuck in a userfaultfd fault must not pin the ring:
/// while it waits, the ring's pages still migrate (each move verified) and its memory blocks
/// still go offline; then the fault is resolved and the reader gets every event. A second
/// stuck reader must not hold up DESTROY either.
pub(super) fn stuck_reader() -> Result<Outcome, String> {
    const EVENTS: u32 = 1000;
    const PAGES: usize = 8;
    let blocks = numa::memory_blocks(1);
    let dev = Device::open().map_err(|e| format!("open: {e}"))?;
    numa::bind_to(Some(1)).map_err(|e| format!("set_mempolicy: errno {e}"))?;
    let ctx = dev.setup(EVENTS);
    numa::bind_to(None).map_err(|e| format!("set_mempolicy: errno {e}"))?;
    let ctx = ctx.map_err(|e| format!("setup: errno {e}"))?;
    let pages = numa::touch_pages(ctx, PAGES);
    let ops: Vec<iocb> = (0..10)
        .map(|i| make_iocb(IOCB_NOOP, 500 + i, i, 0))
        .collect();
    let ptrs: Vec<*const iocb> = ops.iter().map(|o| o as *const iocb).collect();
    ensure_eq!(Ok(10), dev.submit(ctx, &ptrs));

    let stuck = StuckPage::new()?;
    let (moves, offlined, got) = std::thread::scope(|scope| -> Result<_, String> {
        let reader = scope.spawn(|| dev.getevents_raw(ctx, 10, 10, stuck.addr, Some((60, 0))));
        let result = (|| -> Result<(u64, u32), String> {
            stuck.wait_for_fault(Duration::from_secs(10))?;
            let mut moves = 0u64;
            let mut target = 0;
            let mut where_now = numa::nodes_of(0, &pages).map_err(|e| format!("errno {e}"))?;
            for _ in 0..6 {
                moves += numa::move_verified(0, &pages, target, &mut where_now)?;
                target ^= 1;
            }
            println!("# stuck reader: {moves} verified moves while it waits");
            ensure_eq!(
                PAGES as u64 * 6,
                moves,
                "every page must move on every round"
            );
            // The ring is back on node 1 (6 moves, ending on 1): take its blocks offline.
            let mut offlined = 0;
            if !blocks.is_empty() {
                let mut result = Ok(());
                for &b in &blocks {
                    result = numa::set_block_state(b, "offline", Duration::from_secs(20));
                    if result.is_err() {
                        break;
                    }
                    offlined += 1;
                }
                let on_0 = numa::pages_on(0, &pages, 0)?;
                for &b in &blocks {
                    if numa::block_state(b) == "offline" {
                        numa::set_block_state(b, "online_movable", Duration::from_secs(30))?;
                    }
                }
                result?;
                ensure_eq!(PAGES, on_0, "offlined, but the ring stayed behind");
            }
            ensure!(
                !reader.is_finished(),
                "the reader returned before its fault was resolved"
            );
            Ok((moves, offlined))
        })();
        // Whatever happened, let the reader go before waiting for it.
        stuck.resolve()?;
        let got = reader.join().map_err(|_| "reader panicked".to_string())?;
        let (moves, offlined) = result?;
        Ok((moves, offlined, got))
    })?;
    println!("# stuck reader: {moves} verified moves, {offlined} blocks offlined meanwhile");
    ensure_eq!(Ok(10), got);
    // SAFETY: The buffer is mapped now and holds the 10 events just returned.
    let events = unsafe { std::slice::from_raw_parts(stuck.addr as *const io_event, 10) };
    for (i, ev) in events.iter().enumerate() {
        ensure_eq!(500 + i as u64, ev.data);
        ensure_eq!(ptrs[i] as u64, ev.obj);
        ensure_eq!(i as i64, ev.res);
    }

    // A second stuck reader, and DESTROY meanwhile: it must not wait for the reader.
    ensure_eq!(Ok(10), dev.submit(ctx, &ptrs));
    let stuck = StuckPage::new()?;
    let released = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| -> Result<(), String> {
        let reader = scope.spawn(|| dev.getevents_raw(ctx, 10, 10, stuck.addr, None));
        let faulted = stuck.wait_for_fault(Duration::from_secs(10));
        // Should DESTROY wait for the reader, the fault is resolved after 10 s anyway.
        let resolver = scope.spawn(|| {
            let start = Instant::now();
            while !released.load(std::sync::atomic::Ordering::Acquire)
                && start.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            stuck.resolve()
        });
        let start = Instant::now();
        let destroyed = faulted.and_then(|()| dev.destroy(ctx).map_err(|e| format!("errno {e}")));
        let took = start.elapsed();
        released.store(true, std::sync::atomic::Ordering::Release);
        resolver
            .join()
            .map_err(|_| "resolver panicked".to_string())??;
        let got = reader.join().map_err(|_| "reader panicked".to_string())?;
        ensure_eq!(Ok(0), destroyed);
        ensure!(
            took < Duration::from_secs(5),
            "DESTROY waited {took:?} for the reader"
        );
        // The reader finds the context gone.
        ensure!(
            got == Err(libc::EINVAL) || got == Ok(0),
            "reader after destroy: {got:?}"
        );
        Ok(())
    })?;
    Ok(Outcome::Pass)
}
