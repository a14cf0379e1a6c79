/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * rust_aio: Linux AIO's completion ring, re-implemented as a misc device
 * whose ring pages can be migrated.
 *
 * This header is the single source of the module's ABI: the module's Rust
 * code is generated from it by bindgen at build time, and the tests include
 * it.  Each ioctl behaves like the AIO system call it is named after; the
 * differences are noted at each one.
 *
 * The ring is the one of fs/aio.c: page 0 starts with struct rust_aio_ring
 * (struct aio_ring), followed by struct io_event slots across the ring's
 * pages.  User space may reap events itself: read the events in
 * [head, tail) modulo nr, then store the new head.
 */
#ifndef _UAPI_RUST_AIO_H
#define _UAPI_RUST_AIO_H

#include <linux/aio_abi.h>
#include <linux/ioctl.h>
#include <linux/time_types.h>
#include <linux/types.h>

/* Bumped on every incompatible change of what this header describes. */
#define RUST_AIO_ABI_VERSION 3

#define RUST_AIO_DEVICE_NAME "rust_aio"

/* struct rust_aio_ring's constants, those of fs/aio.c. */
#define RUST_AIO_RING_MAGIC 0xa10a10a1
#define RUST_AIO_RING_COMPAT_FEATURES 1
#define RUST_AIO_RING_INCOMPAT_FEATURES 0

/* The ring header, struct aio_ring of fs/aio.c: 32 bytes. */
struct rust_aio_ring {
	__u32 id;	/* the context's index in its process's table of
			 * contexts (the first gets 0), as fs/aio.c's;
			 * for information: nothing reads it back */
	__u32 nr;	/* number of io_event slots */
	__u32 head;	/* next event to reap: written by the consumer */
	__u32 tail;	/* next slot to fill: written by the module only */
	__u32 magic;
	__u32 compat_features;
	__u32 incompat_features;
	__u32 header_length;	/* size of this header */
	struct io_event io_events[];
};

/*
 * Opcodes for iocb.aio_lio_opcode, in addition to IOCB_CMD_NOOP and, as
 * fs/aio.c does them, IOCB_CMD_PREAD, PWRITE, PREADV, PWRITEV (res: bytes
 * moved or -errno), IOCB_CMD_FSYNC and IOCB_CMD_FDSYNC (res: vfs_fsync()'s
 * result), IOCB_CMD_POLL (res: the events, user space's POLL* bits; 0 if
 * cancelled), with RWF_* in aio_rw_flags and IOCB_FLAG_IOPRIO as there.
 * Every other operation completes with io_event
 * { .data = aio_data, .obj = address of the iocb, .res = aio_nbytes,
 * .res2 = 0 }; all signal aio_resfd when IOCB_FLAG_RESFD is set.
 *
 * IOCB_CMD_NOOP	completes at once, in the submitting task.
 * RUST_AIO_CMD_TIMER	completes from an hrtimer (hard IRQ) after aio_offset
 *			nanoseconds; cancellable.
 * RUST_AIO_CMD_WORK	completes from a workqueue.
 */
#define RUST_AIO_CMD_TIMER 64
#define RUST_AIO_CMD_WORK 65

/*
 * RUST_AIO_IOC_SETUP: io_setup(nr_events, &ctx), with the id written back in
 * the argument.  RUST_AIO_IOC_IO_SETUP below is io_setup() as the system call
 * takes it, a pointer to the caller's aio_context_t.
 */
struct rust_aio_setup {
	__u32 nr_events;	/* in: at least this many events in flight */
	__u32 flags;		/* in: must be 0 */
	__u64 ctx;		/* out: the context id, the ring's address */
};

/*
 * RUST_AIO_IOC_IO_SETUP: io_setup(nr_events, ctxp) as the system call does it
 * (ABI 3): the aio_context_t at ctxp is read (EFAULT; EINVAL unless it is 0),
 * and the new context's id written there (EFAULT if it cannot be, and the
 * context is destroyed).  What libaio's io_setup() needs to answer -EFAULT
 * for a bad pointer as the kernel does.
 */
struct rust_aio_io_setup {
	__u32 nr_events;
	__u32 flags;		/* must be 0 */
	__u64 ctxp;		/* user address of an aio_context_t */
};

/* RUST_AIO_IOC_SUBMIT: io_submit(ctx, nr, iocbpp); returns the number queued. */
struct rust_aio_submit {
	__u64 ctx;
	__s64 nr;
	__u64 iocbpp;		/* user address of nr (struct iocb *) */
};

/* RUST_AIO_IOC_GETEVENTS: io_getevents(); returns the number reaped. */
struct rust_aio_getevents {
	__u64 ctx;
	__s64 min_nr;
	__s64 nr;
	__u64 events;		/* user address of nr struct io_event */
	__u64 timeout;		/* user address of a struct __kernel_timespec,
				 * or 0 to wait for ever */
};

/*
 * RUST_AIO_IOC_CANCEL: io_cancel(ctx, iocb, result).  As in Linux 7.3, a
 * cancelled operation's event arrives through the ring (res = -ECANCELED)
 * and the ioctl fails with EINPROGRESS; result is not written.
 */
struct rust_aio_cancel {
	__u64 ctx;
	__u64 iocb;		/* user address of the iocb to cancel */
	__u64 result;		/* unused, as in Linux */
};

/*
 * RUST_AIO_IOC_PGETEVENTS: io_pgetevents(); GETEVENTS with the signal mask
 * at sigmask (a sigset_t of sigsetsize bytes; 0: none) in force while it
 * waits, set and restored atomically as the system call does (ABI 2).
 */
struct rust_aio_pgetevents {
	struct rust_aio_getevents get;
	__u64 sigmask;
	__u64 sigsetsize;
};

#define RUST_AIO_IOC_MAGIC 0xA1
#define RUST_AIO_IOC_VERSION	_IOR(RUST_AIO_IOC_MAGIC, 0x10, __u32)
#define RUST_AIO_IOC_SETUP	_IOWR(RUST_AIO_IOC_MAGIC, 0x11, struct rust_aio_setup)
#define RUST_AIO_IOC_SUBMIT	_IOW(RUST_AIO_IOC_MAGIC, 0x12, struct rust_aio_submit)
#define RUST_AIO_IOC_GETEVENTS	_IOW(RUST_AIO_IOC_MAGIC, 0x13, struct rust_aio_getevents)
#define RUST_AIO_IOC_CANCEL	_IOW(RUST_AIO_IOC_MAGIC, 0x14, struct rust_aio_cancel)
/* RUST_AIO_IOC_DESTROY: io_destroy(ctx); the argument points to the ctx id. */
#define RUST_AIO_IOC_DESTROY	_IOW(RUST_AIO_IOC_MAGIC, 0x15, __u64)
#define RUST_AIO_IOC_PGETEVENTS	_IOW(RUST_AIO_IOC_MAGIC, 0x16, struct rust_aio_pgetevents)
#define RUST_AIO_IOC_IO_SETUP	_IOW(RUST_AIO_IOC_MAGIC, 0x17, struct rust_aio_io_setup)

#endif /* _UAPI_RUST_AIO_H */
