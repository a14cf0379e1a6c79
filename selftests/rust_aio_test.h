/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers for rust_aio's C selftests: the device, the ioctls as the
 * AIO system calls they mirror, and module loading.
 */
#ifndef RUST_AIO_TEST_H
#define RUST_AIO_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "uapi/rust_aio.h"

/*
 * kselftest_harness.h gives each test 30 s, which a machine at a third of
 * the speed of the quiet one the tests were timed on can use up: 120 s for
 * every test this file is included after the harness in.
 */
#ifdef TEST_TIMEOUT_DEFAULT
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 120
#endif

#define RUST_AIO_DEV "/dev/" RUST_AIO_DEVICE_NAME
/* Where qemu/init finds the module; RUST_AIO_KO overrides it. */
#define RUST_AIO_KO_DEFAULT "/lib/modules/rust_aio.ko"

static inline int rust_aio_open(void)
{
	return open(RUST_AIO_DEV, O_RDWR | O_CLOEXEC);
}

/* io_setup(): returns 0 or -1 with errno, like the system call. */
static inline int rust_aio_setup(int fd, unsigned int nr_events, aio_context_t *ctx)
{
	struct rust_aio_setup setup = { .nr_events = nr_events };
	int ret = ioctl(fd, RUST_AIO_IOC_SETUP, &setup);

	if (ret == 0)
		*ctx = setup.ctx;
	return ret;
}

static inline long rust_aio_submit(int fd, aio_context_t ctx, long nr, struct iocb **iocbs)
{
	struct rust_aio_submit submit = {
		.ctx = ctx, .nr = nr, .iocbpp = (unsigned long)iocbs,
	};

	return ioctl(fd, RUST_AIO_IOC_SUBMIT, &submit);
}

static inline long rust_aio_getevents(int fd, aio_context_t ctx, long min_nr, long nr,
				      struct io_event *events, struct timespec *timeout)
{
	struct __kernel_timespec ts;
	struct rust_aio_getevents get = {
		.ctx = ctx, .min_nr = min_nr, .nr = nr,
		.events = (unsigned long)events,
	};

	if (timeout) {
		ts.tv_sec = timeout->tv_sec;
		ts.tv_nsec = timeout->tv_nsec;
		get.timeout = (unsigned long)&ts;
	}
	return ioctl(fd, RUST_AIO_IOC_GETEVENTS, &get);
}

static inline int rust_aio_cancel(int fd, aio_context_t ctx, struct iocb *iocb)
{
	struct rust_aio_cancel cancel = { .ctx = ctx, .iocb = (unsigned long)iocb };

	return ioctl(fd, RUST_AIO_IOC_CANCEL, &cancel);
}

static inline int rust_aio_destroy(int fd, aio_context_t ctx)
{
	__u64 id = ctx;

	return ioctl(fd, RUST_AIO_IOC_DESTROY, &id);
}

/* Reaps up to max events straight from a context's mapped ring (its id is the
 * ring's address), as libaio's user_getevents() does; the layout is fs/aio.c's,
 * so this reaps a native aio ring too. */
static inline int rust_aio_user_reap(aio_context_t ctx, struct io_event *out, int max)
{
	struct rust_aio_ring *ring = (struct rust_aio_ring *)ctx;
	unsigned int head = ring->head, tail, nr = ring->nr;
	int n = 0;

	tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
	while (head != tail && n < max) {
		out[n++] = ring->io_events[head];
		head = (head + 1) % nr;
	}
	__atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);
	return n;
}

static inline const char *rust_aio_ko(void)
{
	const char *ko = getenv("RUST_AIO_KO");

	return ko ? ko : RUST_AIO_KO_DEFAULT;
}

static inline int rust_aio_module_loaded(void)
{
	return access("/sys/module/rust_aio", F_OK) == 0;
}

/* insmod: 0 or -1 with errno. */
static inline int rust_aio_load(const char *params)
{
	int fd = open(rust_aio_ko(), O_RDONLY | O_CLOEXEC);
	int ret, saved;

	if (fd < 0)
		return -1;
	ret = syscall(SYS_finit_module, fd, params ? params : "", 0);
	saved = errno;
	close(fd);
	errno = saved;
	return ret;
}

/* rmmod without waiting: 0 or -1 with errno (EWOULDBLOCK while in use). */
static inline int rust_aio_unload(void)
{
	return syscall(SYS_delete_module, "rust_aio", O_NONBLOCK);
}

/* The module's reference count, from sysfs, or -1. */
static inline int rust_aio_refcnt(void)
{
	FILE *f = fopen("/sys/module/rust_aio/refcnt", "r");
	int n = -1;

	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

/* A counter in /sys/kernel/debug/rust_aio/ (e.g. "aio_nr"), or ~0 if absent. */
static inline __u64 rust_aio_debugfs_u64(const char *name)
{
	char path[128];
	unsigned long long n = ~0ULL;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/debug/rust_aio/%s", name);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%llu", &n) != 1)
			n = ~0ULL;
		fclose(f);
	}
	return n;
}

#endif /* RUST_AIO_TEST_H */
