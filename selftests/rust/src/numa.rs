// SPDX-License-Identifier: GPL-2.0

//! NUMA and memory-hotplug tools for the migration tests: `move_pages(2)`, memory policies,
//! the memory blocks of a node, and the module's debugfs counters.

use std::fs;
use std::time::{Duration, Instant};

pub const PAGE_SIZE: usize = 4096;
const MPOL_DEFAULT: i32 = 0;
const MPOL_BIND: i32 = 2;
const MPOL_MF_MOVE: i32 = 1 << 1;

/// `move_pages(2)`: with `nodes`, moves each page to its node; without, only asks. Returns each
/// page's status: its node, or a negative errno such as `-ENOENT` for a page that is not mapped.
/// `pid` 0 is the caller.
fn move_pages(pid: i32, pages: &[usize], nodes: Option<&[i32]>) -> Result<Vec<i32>, i32> {
    let mut status = vec![i32::MIN; pages.len()];
    let (nodes, flags) = match nodes {
        Some(nodes) => {
            assert_eq!(nodes.len(), pages.len());
            (nodes.as_ptr(), MPOL_MF_MOVE)
        }
        None => (std::ptr::null(), 0),
    };
    // SAFETY: The arrays have `pages.len()` entries each (or `nodes` is null); the kernel checks
    // the addresses.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_pages,
            pid,
            pages.len(),
            pages.as_ptr(),
            nodes,
            status.as_mut_ptr(),
            flags,
        )
    };
    if ret < 0 {
        return Err(crate::errno());
    }
    Ok(status)
}

/// Moves every page to `node`; returns each page's status.
pub fn move_to(pid: i32, pages: &[usize], node: i32) -> Result<Vec<i32>, i32> {
    move_pages(pid, pages, Some(&vec![node; pages.len()]))
}

/// The node each page is on, or a negative errno.
pub fn nodes_of(pid: i32, pages: &[usize]) -> Result<Vec<i32>, i32> {
    move_pages(pid, pages, None)
}

/// Moves every page to `node` and asks the kernel where each page is now: returns how many
/// pages went from another node to `node` (verified moves), updating `where_now`. A page that
/// is not mapped is an error: its move could not have happened.
pub fn move_verified(
    pid: i32,
    pages: &[usize],
    node: i32,
    where_now: &mut [i32],
) -> Result<u64, String> {
    move_to(pid, pages, node).map_err(|e| format!("move_pages: errno {e}"))?;
    let nodes = nodes_of(pid, pages).map_err(|e| format!("move_pages query: errno {e}"))?;
    let mut moves = 0;
    for (i, &n) in nodes.iter().enumerate() {
        if n < 0 {
            return Err(format!("page {i}: status {n} (not mapped?)"));
        }
        if n == node && where_now[i] != node {
            moves += 1;
        }
        where_now[i] = n;
    }
    Ok(moves)
}

/// How many pages are on `node`; fails on a page that is not mapped (`-ENOENT`: the move
/// could not have happened, and a test must not count it).
pub fn pages_on(pid: i32, pages: &[usize], node: i32) -> Result<usize, String> {
    let nodes = nodes_of(pid, pages).map_err(|e| format!("move_pages query: errno {e}"))?;
    let mut on = 0;
    for (i, n) in nodes.iter().enumerate() {
        if *n < 0 {
            return Err(format!("page {i} of the ring: status {n} (not mapped?)"));
        }
        on += usize::from(*n == node);
    }
    Ok(on)
}

/// The page frame number of each page, from `/proc/self/pagemap` (root only): it changes when
/// a page moves, even within a node.
pub fn pfns(pages: &[usize]) -> Result<Vec<u64>, String> {
    use std::os::unix::fs::FileExt;
    let pagemap = fs::File::open("/proc/self/pagemap").map_err(|e| format!("pagemap: {e}"))?;
    pages
        .iter()
        .map(|&addr| {
            let mut entry = [0u8; 8];
            pagemap
                .read_exact_at(&mut entry, (addr / PAGE_SIZE * 8) as u64)
                .map_err(|e| format!("pagemap: {e}"))?;
            let entry = u64::from_ne_bytes(entry);
            // Bit 63: present; bits 0-54: the PFN.
            if entry >> 63 == 0 {
                return Err(format!("page {addr:#x} is not present"));
            }
            Ok(entry & ((1 << 55) - 1))
        })
        .collect()
}

/// The page addresses of a ring of `pages` pages at `base`, each touched (read) so that it is
/// mapped in this process: `move_pages()` only sees mapped pages.
pub fn touch_pages(base: u64, pages: usize) -> Vec<usize> {
    (0..pages)
        .map(|i| {
            let addr = base as usize + i * PAGE_SIZE;
            // SAFETY: The ring is mapped readable for `pages` pages.
            unsafe { std::ptr::read_volatile(addr as *const u8) };
            addr
        })
        .collect()
}

/// Binds this thread's future allocations to `node` (`None`: back to the default policy).
pub fn bind_to(node: Option<u32>) -> Result<(), i32> {
    let mask: u64 = node.map_or(0, |n| 1 << n);
    let (mode, maskp) = match node {
        Some(_) => (MPOL_BIND, &mask as *const u64),
        None => (MPOL_DEFAULT, std::ptr::null()),
    };
    // SAFETY: `maskp` is null or points to a 64-bit node mask.
    let ret = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, maskp, 64usize) };
    if ret < 0 {
        return Err(crate::errno());
    }
    Ok(())
}

/// The memory blocks of `node` (numbers N of `/sys/devices/system/memory/memoryN`).
pub fn memory_blocks(node: u32) -> Vec<u32> {
    let mut blocks: Vec<u32> = fs::read_dir(format!("/sys/devices/system/node/node{node}"))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.strip_prefix("memory")?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    blocks.sort();
    blocks
}

pub fn block_state(block: u32) -> String {
    fs::read_to_string(format!("/sys/devices/system/memory/memory{block}/state"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Writes `state` ("offline", "online_movable") to a memory block, in a child process that is
/// killed after `timeout`: offlining retries for as long as pages refuse to move, and a signal
/// is what makes it give up.
pub fn set_block_state(block: u32, state: &str, timeout: Duration) -> Result<(), String> {
    let path = format!("/sys/devices/system/memory/memory{block}/state");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("echo {state} > {path}"))
        .spawn()
        .map_err(|e| format!("sh: {e}"))?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return if status.success() {
                Ok(())
            } else {
                Err(format!("{state} of memory{block} failed ({status})"))
            };
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{state} of memory{block} took over {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A writable debugfs knob of the module, set for as long as this lives, then back to 0.
pub struct Knob(&'static str);

impl Knob {
    pub fn set(name: &'static str, value: u64) -> Result<Self, String> {
        fs::write(
            format!("/sys/kernel/debug/rust_aio/{name}"),
            value.to_string(),
        )
        .map_err(|e| format!("{name}: {e}"))?;
        Ok(Self(name))
    }
}

impl Drop for Knob {
    fn drop(&mut self) {
        let _ = fs::write(format!("/sys/kernel/debug/rust_aio/{}", self.0), "0");
    }
}

/// One of the module's migration counters in `/sys/kernel/debug/rust_aio/`.
pub fn counter(name: &str) -> u64 {
    fs::read_to_string(format!("/sys/kernel/debug/rust_aio/{name}"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The migration counters at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub migrated: u64,
    pub ring_lock_busy: u64,
    pub teardown_won: u64,
    pub max_irqoff_ns: u64,
    pub total_irqoff_ns: u64,
    /// Event slots the second copy of two-phase migrations took (completions that raced
    /// the first copy).
    pub recopied_slots: u64,
}

impl Counters {
    pub fn now() -> Self {
        Self {
            migrated: counter("migrated"),
            ring_lock_busy: counter("ring_lock_busy"),
            teardown_won: counter("teardown_won"),
            max_irqoff_ns: counter("max_irqoff_ns"),
            total_irqoff_ns: counter("total_irqoff_ns"),
            recopied_slots: counter("recopied_slots"),
        }
    }

    pub fn since(&self, before: &Counters) -> Counters {
        Counters {
            migrated: self.migrated - before.migrated,
            ring_lock_busy: self.ring_lock_busy - before.ring_lock_busy,
            teardown_won: self.teardown_won - before.teardown_won,
            max_irqoff_ns: self.max_irqoff_ns,
            total_irqoff_ns: self.total_irqoff_ns - before.total_irqoff_ns,
            recopied_slots: self.recopied_slots - before.recopied_slots,
        }
    }

    /// Mean time interrupts were off per migrated page, in ns.
    pub fn mean_irqoff_ns(&self) -> u64 {
        self.total_irqoff_ns.checked_div(self.migrated).unwrap_or(0)
    }
}
