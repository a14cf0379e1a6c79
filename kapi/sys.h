/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What bindgen turns into sys_generated.rs (see Kbuild and sys.rs): the
 * kernel headers the 7.3 kernel crate does not bind and the C helpers.
 * sys_allowlist says which items are generated: only those the kernel
 * crate's bindings lack.  The uapi header is bound on its own
 * (uapi_generated.rs).
 */
#include <linux/eventfd.h>
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/hrtimer.h>
#include <linux/ioprio.h>
#include <linux/irq_work.h>
#include <linux/migrate.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mmu_notifier.h>
#include <linux/mount.h>
#include <linux/pagemap.h>
#include <linux/poll.h>
#include <linux/pseudo_fs.h>
#include <linux/sched.h>
#include <linux/time64.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "helpers.h"

/*
 * Kernel macros bindgen cannot evaluate, as constants it can; the Kbuild
 * rule strips the RUST_AIO_CONST_ prefix (the kernel crate has GFP_KERNEL
 * and PAGE_SIZE; the ioctl numbers are in include/rust_aio_ioctls.h).
 */
/*
 * Ring pages: movable (GFP_USER | __GFP_MOVABLE alone would never reach
 * ZONE_MOVABLE), zeroed, and quiet on failure: their number is the user's
 * choice, and io_setup() reports ENOMEM.
 */
const gfp_t RUST_AIO_CONST_GFP_RING = GFP_HIGHUSER_MOVABLE | __GFP_ZERO | __GFP_NOWARN;
const fgf_t RUST_AIO_CONST_FGP_RING = FGP_LOCK | FGP_ACCESSED | FGP_CREAT;
const int RUST_AIO_CONST_WORK_CPU_UNBOUND = WORK_CPU_UNBOUND;
const unsigned long RUST_AIO_CONST_PROT_RW = PROT_READ | PROT_WRITE;
const unsigned long RUST_AIO_CONST_RING_FS_MAGIC = 0xa10a10a1;
const unsigned int RUST_AIO_CONST_FMODE_READ = (__force unsigned int)FMODE_READ;
const unsigned int RUST_AIO_CONST_FMODE_WRITE = (__force unsigned int)FMODE_WRITE;
const unsigned int RUST_AIO_CONST_EPOLLERR = (__force unsigned int)EPOLLERR;
const unsigned int RUST_AIO_CONST_EPOLLHUP = (__force unsigned int)EPOLLHUP;
const unsigned int RUST_AIO_CONST_POLLFREE = (__force unsigned int)POLLFREE;

/*
 * The C sizes of the structs sys_generated.rs defines with kernel crate
 * types inside (sys.rs asserts that the Rust ones match).
 */
const size_t RUST_AIO_CONST_SIZEOF_IRQ_WORK = sizeof(struct irq_work);
const size_t RUST_AIO_CONST_SIZEOF_MISCDEVICE = sizeof(struct miscdevice);
