// SPDX-License-Identifier: GPL-2.0
/*
 * The ring's ABI, one errno at a time: io_setup, io_submit and io_getevents
 * as fs/aio.c answers them (cases adapted from libaio's harness and LTP), the
 * never-executable ring, and GETEVENTS into memory that faults. io_cancel,
 * io_destroy and the rest of a context's life are ring_life_test's.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "rust_aio_test.h"
#include "ring_fixture.h"

/* ---- io_setup ---------------------------------------------------------- */

/* Writes a module parameter; 0 or -1. */
static int write_param(const char *name, const char *value)
{
	char path[128];
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), "/sys/module/rust_aio/parameters/%s", name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	ret = fputs(value, f) < 0 ? -1 : 0;
	return fclose(f) ? -1 : ret;
}

TEST(setup_errnos)
{
	struct rust_aio_setup setup = { .nr_events = 1 };
	aio_context_t ctx = 0;
	int fd = rust_aio_open();

	ASSERT_LE(0, fd);
	errno = 0;
	EXPECT_EQ(-1, rust_aio_setup(fd, 0, &ctx));
	EXPECT_EQ(EINVAL, errno);
	/* Too large for any ring (fs/aio.c's overflow check). */
	errno = 0;
	EXPECT_EQ(-1, rust_aio_setup(fd, 0x10000000U / 32 + 1, &ctx));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, rust_aio_setup(fd, ~0U, &ctx));
	EXPECT_EQ(EINVAL, errno);
	/* fs/aio.c doubles nr_events before that check: EINVAL, not EAGAIN, from
	 * 0x10000000 / 32 / 2 + 1 on. */
	errno = 0;
	EXPECT_EQ(-1, rust_aio_setup(fd, 0x10000000U / 32 / 2 + 1, &ctx));
	EXPECT_EQ(EINVAL, errno);
	/* ...as a u32: from 2^31 on it wraps past that check, into EAGAIN. */
	errno = 0;
	EXPECT_EQ(-1, rust_aio_setup(fd, 0x80000000U, &ctx));
	EXPECT_EQ(EAGAIN, errno);
	errno = 0;
	EXPECT_EQ(-1, rust_aio_setup(fd, 0x80000000U + 0x10000000U / 32 / 2, &ctx));
	EXPECT_EQ(EAGAIN, errno);
	/* Whatever the limit: no ring of 2^31 events is ever attempted. */
	if (write_param("max_events", "4294967295") == 0) {
		errno = 0;
		EXPECT_EQ(-1, rust_aio_setup(fd, 0x80000000U, &ctx));
		EXPECT_EQ(EAGAIN, errno);
		ASSERT_EQ(0, write_param("max_events", "65536"));
	}
	/* Flags are reserved. */
	setup.flags = 1;
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, RUST_AIO_IOC_SETUP, &setup));
	EXPECT_EQ(EINVAL, errno);
	/* Over the module-wide limit (max_events, 65536 by default). */
	errno = 0;
	EXPECT_EQ(-1, rust_aio_setup(fd, 65537, &ctx));
	EXPECT_EQ(EAGAIN, errno);
	/* Bad pointers. */
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, RUST_AIO_IOC_SETUP, NULL));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, RUST_AIO_IOC_SETUP, KERNEL_ADDR));
	EXPECT_EQ(EFAULT, errno);
	close(fd);
}

/* io_setup() whose result cannot be written back leaves no context behind. */
TEST(setup_readonly_result)
{
	struct rust_aio_setup *setup;
	aio_context_t ctx;
	int fd = rust_aio_open(), i;

	ASSERT_LE(0, fd);
	setup = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, setup);
	setup->nr_events = 60000;
	ASSERT_EQ(0, mprotect(setup, 4096, PROT_READ));
	/* If the failed setups leaked their events, the limit would stop this loop. */
	for (i = 0; i < 4; i++) {
		errno = 0;
		EXPECT_EQ(-1, ioctl(fd, RUST_AIO_IOC_SETUP, setup));
		EXPECT_EQ(EFAULT, errno);
	}
	ASSERT_EQ(0, rust_aio_setup(fd, 60000, &ctx));
	EXPECT_EQ(0, rust_aio_destroy(fd, ctx));
	munmap(setup, 4096);
	close(fd);
}

/* A mapping that cannot be made is ENOMEM (the seed patch's errno). */
TEST(setup_mapping_fails)
{
	struct rlimit old, tiny;
	aio_context_t ctx;
	int fd = rust_aio_open();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, getrlimit(RLIMIT_AS, &old));
	tiny.rlim_cur = 1;
	tiny.rlim_max = old.rlim_max;
	ASSERT_EQ(0, setrlimit(RLIMIT_AS, &tiny));
	errno = 0;
	EXPECT_EQ(-1, rust_aio_setup(fd, 1024, &ctx));
	EXPECT_EQ(ENOMEM, errno);
	ASSERT_EQ(0, setrlimit(RLIMIT_AS, &old));
	/* ...and gave its events back. */
	ASSERT_EQ(0, rust_aio_setup(fd, 65536, &ctx));
	EXPECT_EQ(0, rust_aio_destroy(fd, ctx));
	close(fd);
}

TEST(setup_ring_header)
{
	const unsigned int sizes[] = { 1, 2, 126, 127, 128, 255, 1000, 65536 };
	aio_context_t ctx;
	size_t i;
	int fd = rust_aio_open();

	ASSERT_LE(0, fd);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct rust_aio_ring *ring;

		ASSERT_EQ(0, rust_aio_setup(fd, sizes[i], &ctx)) TH_LOG("nr %u", sizes[i]);
		ring = (struct rust_aio_ring *)ctx;
		EXPECT_EQ(ring_slots(sizes[i]), ring->nr);
		EXPECT_EQ(0, ring->head);
		EXPECT_EQ(0, ring->tail);
		EXPECT_EQ(RUST_AIO_RING_MAGIC, ring->magic);
		EXPECT_EQ(RUST_AIO_RING_COMPAT_FEATURES, ring->compat_features);
		EXPECT_EQ(RUST_AIO_RING_INCOMPAT_FEATURES, ring->incompat_features);
		EXPECT_EQ(sizeof(struct rust_aio_ring), ring->header_length);
		EXPECT_EQ(0, rust_aio_destroy(fd, ctx));
	}
	close(fd);
}

/* The ring is never executable (CVE-2016-10044). */
TEST(ring_never_executable)
{
	aio_context_t ctx;
	int fd = rust_aio_open(), persona = personality(0xffffffff);
	char line[256];
	FILE *maps;
	int found = 0;

	ASSERT_LE(0, fd);
	/* READ_IMPLIES_EXEC would make a PROT_READ mapping executable. */
	ASSERT_NE(-1, personality(persona | READ_IMPLIES_EXEC));
	ASSERT_EQ(0, rust_aio_setup(fd, 8, &ctx));
	personality(persona);
	maps = fopen("/proc/self/maps", "r");
	ASSERT_NE(NULL, maps);
	while (fgets(line, sizeof(line), maps)) {
		if (strtoul(line, NULL, 16) == ctx) {
			found = 1;
			EXPECT_EQ(0, strncmp(strchr(line, ' ') + 1, "rw-s", 4)) TH_LOG("%s", line);
		}
	}
	fclose(maps);
	EXPECT_TRUE(found);
	errno = 0;
	EXPECT_EQ(-1, mprotect((void *)ctx, 4096, PROT_READ | PROT_EXEC));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(0, rust_aio_destroy(fd, ctx));
	close(fd);
}

/* libaio 20.t: the event limit is whole again after many setup/destroy rounds. */
TEST(limit_accounting)
{
	aio_context_t ctx, ctx2;
	int fd = rust_aio_open(), i;

	ASSERT_LE(0, fd);
	for (i = 0; i < 500; i++) {
		ASSERT_EQ(0, rust_aio_setup(fd, 1000, &ctx)) TH_LOG("round %d", i);
		ASSERT_EQ(0, rust_aio_destroy(fd, ctx));
	}
	/* The whole limit is available, and not one more event. */
	ASSERT_EQ(0, rust_aio_setup(fd, 65000, &ctx));
	ASSERT_EQ(0, rust_aio_setup(fd, 536, &ctx2));
	errno = 0;
	EXPECT_EQ(-1, rust_aio_setup(fd, 1, &ctx));
	EXPECT_EQ(EAGAIN, errno);
	/* Closing the file destroys its contexts and gives their events back. */
	close(fd);
	fd = rust_aio_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rust_aio_setup(fd, 65536, &ctx));
	close(fd);
}

/* ---- io_submit ---------------------------------------------------------- */

TEST_F(ring, submit_errnos)
{
	struct iocb cb = make_iocb(IOCB_CMD_NOOP, 1, 0, 0);
	struct iocb *list[1] = { &cb };
	struct rust_aio_submit submit = { .ctx = self->ctx, .nr = 1 };

	/* Unknown contexts. */
	errno = 0;
	EXPECT_EQ(-1, rust_aio_submit(self->fd, 0, 1, list));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, rust_aio_submit(self->fd, self->ctx + 4096, 1, list));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, rust_aio_submit(self->fd, (aio_context_t)KERNEL_ADDR, 1, list));
	EXPECT_EQ(EINVAL, errno);
	/* nr < 0 */
	errno = 0;
	EXPECT_EQ(-1, rust_aio_submit(self->fd, self->ctx, -1, list));
	EXPECT_EQ(EINVAL, errno);
	/* nr == 0 queues nothing. */
	EXPECT_EQ(0, rust_aio_submit(self->fd, self->ctx, 0, list));
	/* Bad pointers: the array, an element of it, the ioctl argument. */
	errno = 0;
	EXPECT_EQ(-1, rust_aio_submit(self->fd, self->ctx, 1, NULL));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, rust_aio_submit(self->fd, self->ctx, 1, KERNEL_ADDR));
	EXPECT_EQ(EFAULT, errno);
	list[0] = NULL;
	errno = 0;
	EXPECT_EQ(-1, rust_aio_submit(self->fd, self->ctx, 1, list));
	EXPECT_EQ(EFAULT, errno);
	list[0] = KERNEL_ADDR;
	errno = 0;
	EXPECT_EQ(-1, rust_aio_submit(self->fd, self->ctx, 1, list));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, RUST_AIO_IOC_SUBMIT, NULL));
	EXPECT_EQ(EFAULT, errno);
	submit.iocbpp = (unsigned long)list;
	list[0] = &cb;
	EXPECT_EQ(1, ioctl(self->fd, RUST_AIO_IOC_SUBMIT, &submit));
}

TEST_F(ring, submit_bad_iocbs)
{
	struct iocb cb;

	cb = make_iocb(IOCB_CMD_NOOP, 1, 0, 0);
	cb.aio_reserved2 = 1;
	errno = 0;
	EXPECT_EQ(-1, submit_one(self->fd, self->ctx, &cb));
	EXPECT_EQ(EINVAL, errno);

	cb = make_iocb(IOCB_CMD_NOOP, 1, 0, 0);
	cb.aio_rw_flags = 1;
	errno = 0;
	EXPECT_EQ(-1, submit_one(self->fd, self->ctx, &cb));
	EXPECT_EQ(EINVAL, errno);

	cb = make_iocb(IOCB_CMD_NOOP, 1, 0, 0);
	cb.aio_flags = 1 << 5;
	errno = 0;
	EXPECT_EQ(-1, submit_one(self->fd, self->ctx, &cb));
	EXPECT_EQ(EINVAL, errno);

	/* Opcodes nobody implements (4 was IOCB_CMD_PREADX), and junk. */
	cb = make_iocb(4, 1, 0, 0);
	errno = 0;
	EXPECT_EQ(-1, submit_one(self->fd, self->ctx, &cb));
	EXPECT_EQ(EINVAL, errno);
	cb = make_iocb(0xffff, 1, 0, 0);
	errno = 0;
	EXPECT_EQ(-1, submit_one(self->fd, self->ctx, &cb));
	EXPECT_EQ(EINVAL, errno);

	/* A result that would read as an error, and a timer in the past. */
	cb = make_iocb(IOCB_CMD_NOOP, 1, 1ULL << 63, 0);
	errno = 0;
	EXPECT_EQ(-1, submit_one(self->fd, self->ctx, &cb));
	EXPECT_EQ(EINVAL, errno);
	cb = make_iocb(RUST_AIO_CMD_TIMER, 1, 0, -1);
	errno = 0;
	EXPECT_EQ(-1, submit_one(self->fd, self->ctx, &cb));
	EXPECT_EQ(EINVAL, errno);

	/* aio_resfd must be an eventfd. */
	cb = make_iocb(IOCB_CMD_NOOP, 1, 0, 0);
	cb.aio_flags = IOCB_FLAG_RESFD;
	cb.aio_resfd = 1000;
	errno = 0;
	EXPECT_EQ(-1, submit_one(self->fd, self->ctx, &cb));
	EXPECT_EQ(EBADF, errno);
	cb.aio_resfd = self->fd;
	errno = 0;
	EXPECT_EQ(-1, submit_one(self->fd, self->ctx, &cb));
	EXPECT_EQ(EINVAL, errno);
}

/* io_submit() writes KIOCB_KEY (0) back to aio_key: a read-only iocb is
 * EFAULT, as in fs/aio.c, and queues nothing. */
TEST_F(ring, submit_readonly_iocb)
{
	struct iocb *cb = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);
	struct io_event events[1];

	ASSERT_NE(MAP_FAILED, cb);
	*cb = make_iocb(IOCB_CMD_NOOP, 1, 0, 0);
	cb->aio_key = 0;
	ASSERT_EQ(0, mprotect(cb, 4096, PROT_READ));
	errno = 0;
	EXPECT_EQ(-1, submit_one(self->fd, self->ctx, cb));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(0, rust_aio_getevents(self->fd, self->ctx, 0, 1, events, &(struct timespec){ 0 }));
	ASSERT_EQ(0, mprotect(cb, 4096, PROT_READ | PROT_WRITE));
	cb->aio_key = 12345;
	EXPECT_EQ(1, submit_one(self->fd, self->ctx, cb));
	EXPECT_EQ(0, cb->aio_key);
	munmap(cb, 4096);
}

/* io_submit_one()'s order: a free slot (EAGAIN) and the write of aio_key
 * (EFAULT) are checked before the opcode (EINVAL). */
TEST(submit_checks_in_fs_aio_order)
{
	struct iocb cbs[300], *list[300], bad = make_iocb(0xffff, 1, 0, 0), *ro;
	struct iocb *one[1] = { &bad };
	aio_context_t ctx;
	unsigned int slots;
	int fd = rust_aio_open(), i;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rust_aio_setup(fd, 100, &ctx));
	slots = ((struct rust_aio_ring *)ctx)->nr;
	for (i = 0; i < 300; i++) {
		cbs[i] = make_iocb(IOCB_CMD_NOOP, i, 0, 0);
		list[i] = &cbs[i];
	}
	ASSERT_EQ(slots - 1, rust_aio_submit(fd, ctx, slots - 1, list));
	errno = 0;
	EXPECT_EQ(-1, rust_aio_submit(fd, ctx, 1, one));
	EXPECT_EQ(EAGAIN, errno);
	ASSERT_EQ(slots - 1, rust_aio_getevents(fd, ctx, slots - 1, 300, (struct io_event *)cbs,
						NULL));
	ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	*ro = bad;
	ASSERT_EQ(0, mprotect(ro, 4096, PROT_READ));
	one[0] = ro;
	errno = 0;
	EXPECT_EQ(-1, rust_aio_submit(fd, ctx, 1, one));
	EXPECT_EQ(EFAULT, errno);
	one[0] = &bad;
	errno = 0;
	EXPECT_EQ(-1, rust_aio_submit(fd, ctx, 1, one));
	EXPECT_EQ(EINVAL, errno);
	munmap(ro, 4096);
	close(fd);
}

/* A bad iocb after good ones: the good ones count, the bad one stops the batch. */
TEST_F(ring, submit_stops_at_first_bad)
{
	struct iocb good[3], bad = make_iocb(0xffff, 9, 0, 0);
	struct iocb *list[5] = { &good[0], &good[1], &bad, &good[2], &good[2] };
	struct io_event events[8];
	int i;

	for (i = 0; i < 3; i++)
		good[i] = make_iocb(IOCB_CMD_NOOP, i, 0, 0);
	EXPECT_EQ(2, rust_aio_submit(self->fd, self->ctx, 5, list));
	EXPECT_EQ(2, rust_aio_getevents(self->fd, self->ctx, 0, 8, events, &(struct timespec){ 0 }));
	list[2] = NULL;
	EXPECT_EQ(2, rust_aio_submit(self->fd, self->ctx, 5, list));
}

/* libaio 17.t: more submissions than the ring holds never hang; reaping
 * frees the slots, by ioctl and from the mapping alike. */
TEST(submit_more_than_ring_holds)
{
	struct iocb cbs[300], *list[300];
	struct io_event events[300];
	aio_context_t ctx;
	unsigned int slots;
	long queued;
	int fd = rust_aio_open(), round, i;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rust_aio_setup(fd, 100, &ctx));
	slots = ((struct rust_aio_ring *)ctx)->nr;
	for (i = 0; i < 300; i++) {
		cbs[i] = make_iocb(IOCB_CMD_NOOP, i, i, 0);
		list[i] = &cbs[i];
	}
	for (round = 0; round < 6; round++) {
		/* The ring holds slots - 1 events; nr is clamped to the ring. */
		queued = rust_aio_submit(fd, ctx, 300, list);
		ASSERT_EQ(slots - 1, queued) TH_LOG("round %d", round);
		errno = 0;
		EXPECT_EQ(-1, rust_aio_submit(fd, ctx, 1, list));
		EXPECT_EQ(EAGAIN, errno);
		if (round % 2) {
			EXPECT_EQ(queued, user_reap(ctx, events, 300));
		} else {
			EXPECT_EQ(queued, rust_aio_getevents(fd, ctx, queued, 300, events, NULL));
		}
		for (i = 0; i < queued; i++)
			ASSERT_EQ((__u64)i, events[i].data);
	}
	EXPECT_EQ(0, rust_aio_destroy(fd, ctx));
	close(fd);
}

/* libaio 16.t: an eventfd counts completions. */
TEST_F(ring, eventfd_counts_completions)
{
	struct iocb cbs[3], *list[3] = { &cbs[0], &cbs[1], &cbs[2] };
	struct io_event events[3];
	__u64 count = 0;
	int efd = eventfd(0, EFD_CLOEXEC), i;

	ASSERT_LE(0, efd);
	cbs[0] = make_iocb(IOCB_CMD_NOOP, 0, 0, 0);
	cbs[1] = make_iocb(RUST_AIO_CMD_TIMER, 1, 0, 1000000);
	cbs[2] = make_iocb(RUST_AIO_CMD_WORK, 2, 0, 0);
	for (i = 0; i < 3; i++) {
		cbs[i].aio_flags = IOCB_FLAG_RESFD;
		cbs[i].aio_resfd = efd;
	}
	ASSERT_EQ(3, rust_aio_submit(self->fd, self->ctx, 3, list));
	ASSERT_EQ(3, rust_aio_getevents(self->fd, self->ctx, 3, 3, events, NULL));
	ASSERT_EQ(sizeof(count), read(efd, &count, sizeof(count)));
	EXPECT_EQ(3, count);
	close(efd);
}

/* ---- io_getevents ------------------------------------------------------- */

TEST_F(ring, getevents_errnos)
{
	struct io_event events[4];
	struct timespec zero = { 0 };
	struct rust_aio_getevents get = { .ctx = self->ctx, .nr = 1, .events = (unsigned long)events };

	errno = 0;
	EXPECT_EQ(-1, rust_aio_getevents(self->fd, 0, 1, 1, events, &zero));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, rust_aio_getevents(self->fd, self->ctx, -1, 1, events, &zero));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, rust_aio_getevents(self->fd, self->ctx, 0, -1, events, &zero));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, rust_aio_getevents(self->fd, self->ctx, 2, 1, events, &zero));
	EXPECT_EQ(EINVAL, errno);
	get.timeout = (unsigned long)KERNEL_ADDR;
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, RUST_AIO_IOC_GETEVENTS, &get));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, RUST_AIO_IOC_GETEVENTS, NULL));
	EXPECT_EQ(EFAULT, errno);
	/* Nothing to reap: 0 at once. */
	EXPECT_EQ(0, rust_aio_getevents(self->fd, self->ctx, 1, 4, events, &zero));
}

/* fs/aio.c turns any timeout into tv_sec * 10^9 + tv_nsec ns and validates
 * nothing: negative or non-normalised values that add up to <= 0 have already
 * expired (ready events, or 0 at once), never EINVAL; a positive sum is
 * waited for, normalised or not. */
TEST_F(ring, getevents_odd_timeouts)
{
	const struct timespec expired[] = {
		{ .tv_sec = -1 }, { .tv_nsec = -1 }, { .tv_sec = -5, .tv_nsec = 999999999 },
		{ .tv_sec = -1, .tv_nsec = 1000000000 }, { .tv_sec = -(1L << 62) },
		{ .tv_sec = (long)(1UL << 63) }, { .tv_nsec = (long)(1UL << 63) },
	};
	struct timespec ts, start, end;
	struct iocb cb = make_iocb(IOCB_CMD_NOOP, 9, 0, 0);
	struct io_event events[2];
	size_t i;
	long ms;

	for (i = 0; i < sizeof(expired) / sizeof(expired[0]); i++) {
		ts = expired[i];
		errno = 0;
		EXPECT_EQ(0, rust_aio_getevents(self->fd, self->ctx, 1, 1, events, &ts))
			TH_LOG("{%ld, %ld}: errno %d", expired[i].tv_sec, expired[i].tv_nsec, errno);
		ASSERT_EQ(1, submit_one(self->fd, self->ctx, &cb));
		ts = expired[i];
		EXPECT_EQ(1, rust_aio_getevents(self->fd, self->ctx, 2, 2, events, &ts))
			TH_LOG("{%ld, %ld}", expired[i].tv_sec, expired[i].tv_nsec);
		EXPECT_EQ(9, events[0].data);
	}
	/* Non-normalised but positive: {0, 1.2e9} waits 1.2 s, {1, -950000000} 50 ms. */
	ts = (struct timespec){ .tv_nsec = 1200000000 };
	clock_gettime(CLOCK_MONOTONIC, &start);
	EXPECT_EQ(0, rust_aio_getevents(self->fd, self->ctx, 1, 1, events, &ts));
	clock_gettime(CLOCK_MONOTONIC, &end);
	ms = (end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000;
	EXPECT_LE(1200, ms);
	ts = (struct timespec){ .tv_sec = 1, .tv_nsec = -950000000 };
	clock_gettime(CLOCK_MONOTONIC, &start);
	EXPECT_EQ(0, rust_aio_getevents(self->fd, self->ctx, 1, 1, events, &ts));
	clock_gettime(CLOCK_MONOTONIC, &end);
	ms = (end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000;
	EXPECT_LE(50, ms);
	EXPECT_GT(1000, ms);
}

/* Room for `room` events, followed by a PROT_NONE page; *buf is the 2-page
 * mapping to unmap. */
static struct io_event *events_before_hole(char **buf, int room)
{
	*buf = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*buf == MAP_FAILED || mprotect(*buf + 4096, 4096, PROT_NONE))
		return NULL;
	return (struct io_event *)(*buf + 4096) - room;
}

/* Reaps until `total` events were seen, counting each by its data (< total)
 * in seen[]; returns how many were reaped, which stops short on a timeout. */
static int reap_counting(int fd, aio_context_t ctx, int got, int total, int *seen)
{
	struct io_event rest[16];
	long n, i;

	while (got < total) {
		n = rust_aio_getevents(fd, ctx, 1, 16, rest, &(struct timespec){ .tv_sec = 5 });
		if (n <= 0)
			break;
		for (i = 0; i < n; i++)
			if (rest[i].data < (__u64)total)
				seen[rest[i].data]++;
		got += n;
	}
	return got;
}

/* Events consumed before a later copy faults are returned by this call, never
 * lost (fs/aio.c returns what it already delivered and never moves head past
 * an event it did not copy). Two batches: four events ready at once fit the
 * buffer; four more come from timers into the unmapped half. */
TEST_F(ring, getevents_fault_after_first_batch)
{
	struct iocb cbs[8], *list[8];
	struct io_event *events;
	int seen[8] = { 0 }, i;
	char *buf;
	long n;

	events = events_before_hole(&buf, 4);
	ASSERT_NE(NULL, events);
	for (i = 0; i < 8; i++) {
		cbs[i] = make_iocb(i < 4 ? IOCB_CMD_NOOP : RUST_AIO_CMD_TIMER, i, 100 + i,
				   20 * 1000 * 1000);
		list[i] = &cbs[i];
	}
	ASSERT_EQ(8, rust_aio_submit(self->fd, self->ctx, 8, list));
	n = rust_aio_getevents(self->fd, self->ctx, 8, 8, events, NULL);
	ASSERT_EQ(4, n) TH_LOG("errno %d", errno);
	for (i = 0; i < n; i++) {
		ASSERT_GT(8, events[i].data);
		seen[events[i].data]++;
		EXPECT_EQ(100 + events[i].data, events[i].res);
	}
	EXPECT_EQ(8, reap_counting(self->fd, self->ctx, n, 8, seen));
	for (i = 0; i < 8; i++)
		EXPECT_EQ(1, seen[i]) TH_LOG("event %d", i);
	EXPECT_EQ(0, rust_aio_getevents(self->fd, self->ctx, 0, 8, events - 4,
					&(struct timespec){ 0 }));
	munmap(buf, 8192);
}

/* One batch that runs into the hole: each event comes back exactly once,
 * from this call (those that fit) or a later one. */
TEST_F(ring, getevents_fault_within_batch)
{
	struct iocb cbs[8], *list[8];
	struct io_event *events;
	int seen[8] = { 0 }, i;
	char *buf;
	long n;

	events = events_before_hole(&buf, 3);
	ASSERT_NE(NULL, events);
	for (i = 0; i < 8; i++) {
		cbs[i] = make_iocb(IOCB_CMD_NOOP, i, 0, 0);
		list[i] = &cbs[i];
	}
	ASSERT_EQ(8, rust_aio_submit(self->fd, self->ctx, 8, list));
	n = rust_aio_getevents(self->fd, self->ctx, 1, 8, events, NULL);
	if (n < 0) {
		EXPECT_EQ(EFAULT, errno);
		n = 0;
	}
	ASSERT_GE(3, n);
	for (i = 0; i < n; i++)
		seen[events[i].data]++;
	EXPECT_EQ(8, reap_counting(self->fd, self->ctx, n, 8, seen));
	for (i = 0; i < 8; i++)
		EXPECT_EQ(1, seen[i]) TH_LOG("event %d", i);
	munmap(buf, 8192);
}

/* Events whose buffer ends exactly at the top of user space: a copy of two
 * events there is refused whole (access_ok), one at a time is not. The call
 * returns what fits and never spins (a fault-in that succeeds must lead to
 * progress). */
TEST_F(ring, getevents_at_top_of_user_space)
{
	const unsigned long top = 0x7ffffffff000UL; /* TASK_SIZE_MAX, 4-level paging */
	struct iocb cbs[2], *list[2] = { &cbs[0], &cbs[1] };
	struct io_event rest[2], *events;
	char *page;

	page = mmap((void *)(top - 4096), 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (page != (void *)(top - 4096))
		SKIP(return, "the top page of user space is taken");
	events = (struct io_event *)(top - sizeof(struct io_event));
	cbs[0] = make_iocb(IOCB_CMD_NOOP, 1, 0, 0);
	cbs[1] = make_iocb(IOCB_CMD_NOOP, 2, 0, 0);
	ASSERT_EQ(2, rust_aio_submit(self->fd, self->ctx, 2, list));
	EXPECT_EQ(1, rust_aio_getevents(self->fd, self->ctx, 2, 2, events, NULL));
	EXPECT_EQ(1, events[0].data);
	EXPECT_EQ(1, rust_aio_getevents(self->fd, self->ctx, 1, 2, rest, NULL));
	EXPECT_EQ(2, rest[0].data);
	munmap(page, 4096);
}

/* An event the caller cannot receive is EFAULT, and stays in the ring. */
TEST_F(ring, getevents_bad_buffer)
{
	struct iocb cb = make_iocb(IOCB_CMD_NOOP, 77, 0, 0);
	struct io_event events[1];

	ASSERT_EQ(1, submit_one(self->fd, self->ctx, &cb));
	errno = 0;
	EXPECT_EQ(-1, rust_aio_getevents(self->fd, self->ctx, 1, 1, KERNEL_ADDR, NULL));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, rust_aio_getevents(self->fd, self->ctx, 1, 1, NULL, NULL));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(1, rust_aio_getevents(self->fd, self->ctx, 1, 1, events, NULL));
	EXPECT_EQ(77, events[0].data);
}

TEST_F(ring, getevents_times_out)
{
	struct timespec timeout = { .tv_nsec = 30 * 1000 * 1000 }, start, end;
	struct io_event events[1];
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &start);
	EXPECT_EQ(0, rust_aio_getevents(self->fd, self->ctx, 1, 1, events, &timeout));
	clock_gettime(CLOCK_MONOTONIC, &end);
	ms = (end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000;
	EXPECT_LE(30, ms);
	EXPECT_GT(5000, ms);
}

static void on_alarm(int sig)
{
}

TEST_F(ring, getevents_interrupted)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct io_event events[1];

	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	alarm(1);
	errno = 0;
	EXPECT_EQ(-1, rust_aio_getevents(self->fd, self->ctx, 1, 1, events, NULL));
	EXPECT_EQ(EINTR, errno);
}

/* A signal ends the wait: what was gathered is returned, EINTR only if
 * nothing was (io_getevents: `if (!ret && signal_pending(current))`). */
TEST_F(ring, getevents_interrupted_returns_gathered)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct iocb cb = make_iocb(IOCB_CMD_NOOP, 31, 0, 0);
	struct io_event events[2];

	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	ASSERT_EQ(1, submit_one(self->fd, self->ctx, &cb));
	alarm(1);
	EXPECT_EQ(1, rust_aio_getevents(self->fd, self->ctx, 2, 2, events, NULL));
	EXPECT_EQ(31, events[0].data);
	alarm(1);
	EXPECT_EQ(-1, rust_aio_getevents(self->fd, self->ctx, 1, 2, events,
					 &(struct timespec){ .tv_sec = 30 }));
	EXPECT_EQ(EINTR, errno);
}

/* min_nr events are waited for, and up to nr taken. */
TEST_F(ring, getevents_min_nr)
{
	struct iocb cbs[4], *list[4];
	struct io_event events[8];
	int i;

	for (i = 0; i < 4; i++) {
		cbs[i] = make_iocb(RUST_AIO_CMD_TIMER, i, 0, (i + 1) * 10 * 1000 * 1000);
		list[i] = &cbs[i];
	}
	ASSERT_EQ(4, rust_aio_submit(self->fd, self->ctx, 4, list));
	EXPECT_EQ(4, rust_aio_getevents(self->fd, self->ctx, 4, 8, events, NULL));
}

/* Timer requests complete in hard-IRQ context (their hrtimer hands them to an
 * irq_work): the case completion_lock is taken with interrupts off for. The
 * test kernel is not PREEMPT_RT, where they would complete in a thread. */
TEST_F(ring, timers_complete_in_hardirq)
{
	__u64 before = rust_aio_debugfs_u64("hardirq_completions");
	struct iocb cbs[50], *list[50];
	struct io_event events[50];
	int i, got;
	long n;

	ASSERT_NE(~0ULL, before);
	for (i = 0; i < 50; i++) {
		cbs[i] = make_iocb(RUST_AIO_CMD_TIMER, i, 0, (i % 5) * 100 * 1000);
		list[i] = &cbs[i];
	}
	ASSERT_EQ(50, rust_aio_submit(self->fd, self->ctx, 50, list));
	for (got = 0; got < 50; got += n) {
		n = rust_aio_getevents(self->fd, self->ctx, 1, 50, events, NULL);
		ASSERT_LT(0, n);
	}
	EXPECT_EQ(before + 50, rust_aio_debugfs_u64("hardirq_completions"));
}

TEST_HARNESS_MAIN
