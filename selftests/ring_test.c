// SPDX-License-Identifier: GPL-2.0
/*
 * The ring's ABI, one errno at a time: io_setup, io_submit, io_getevents,
 * io_cancel and io_destroy as fs/aio.c answers them (cases adapted from
 * libaio's harness and LTP), plus the ring-specific hardening: a hostile
 * header, fork, mremap, munmap and the never-executable ring.
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

#define KERNEL_ADDR ((void *)0xffffffff81000000UL)

static struct iocb make_iocb(__u16 opcode, __u64 data, __u64 nbytes, __s64 offset)
{
	struct iocb cb = {
		.aio_data = data,
		.aio_lio_opcode = opcode,
		.aio_nbytes = nbytes,
		.aio_offset = offset,
	};
	return cb;
}

/* Slots of a ring for nr_events, as fs/aio.c sizes it: +2, whole pages. */
static unsigned int ring_slots(unsigned int nr_events)
{
	size_t pages = (32 + ((size_t)nr_events + 2) * 32 + 4095) / 4096;

	return (pages * 4096 - 32) / 32;
}

/* Reaps from the mapping, as libaio's user_getevents() does. */
#define user_reap rust_aio_user_reap

static long submit_one(int fd, aio_context_t ctx, struct iocb *cb)
{
	struct iocb *list[1] = { cb };

	return rust_aio_submit(fd, ctx, 1, list);
}

/* Bytes of the ring mapping for nr_events. */
static size_t ring_size(unsigned int nr_events)
{
	return 32 + ((size_t)ring_slots(nr_events)) * 32;
}

FIXTURE(ring) {
	int fd;
	aio_context_t ctx;
	size_t size;
};

/* 200 events: a ring of two pages, so that partial moves can be tried. */
FIXTURE_SETUP(ring)
{
	self->fd = rust_aio_open();
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, rust_aio_setup(self->fd, 200, &self->ctx));
	self->size = ring_size(200);
	ASSERT_EQ(8192, self->size);
}

FIXTURE_TEARDOWN(ring)
{
	close(self->fd);
}

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

/* ---- io_cancel ---------------------------------------------------------- */

TEST_F(ring, cancel_pending_timer)
{
	struct iocb cb = make_iocb(RUST_AIO_CMD_TIMER, 5, 55, 60LL * 1000 * 1000 * 1000);
	struct io_event events[1];

	ASSERT_EQ(1, submit_one(self->fd, self->ctx, &cb));
	errno = 0;
	EXPECT_EQ(-1, rust_aio_cancel(self->fd, self->ctx, &cb));
	EXPECT_EQ(EINPROGRESS, errno);
	ASSERT_EQ(1, rust_aio_getevents(self->fd, self->ctx, 1, 1, events, NULL));
	EXPECT_EQ(5, events[0].data);
	EXPECT_EQ((unsigned long)&cb, events[0].obj);
	EXPECT_EQ(-ECANCELED, events[0].res);
	EXPECT_EQ(0, events[0].res2);
	/* Not pending any more. */
	errno = 0;
	EXPECT_EQ(-1, rust_aio_cancel(self->fd, self->ctx, &cb));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(ring, cancel_errnos)
{
	struct iocb cb = make_iocb(IOCB_CMD_NOOP, 5, 0, 0), other = cb;
	struct io_event events[1];

	/* Completed at once: nothing to cancel. */
	ASSERT_EQ(1, submit_one(self->fd, self->ctx, &cb));
	errno = 0;
	EXPECT_EQ(-1, rust_aio_cancel(self->fd, self->ctx, &cb));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(1, rust_aio_getevents(self->fd, self->ctx, 1, 1, events, NULL));
	/* Never submitted, unknown context, bad pointers, non-zero key. */
	errno = 0;
	EXPECT_EQ(-1, rust_aio_cancel(self->fd, self->ctx, &other));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, rust_aio_cancel(self->fd, 0, &other));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, rust_aio_cancel(self->fd, self->ctx, NULL));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, RUST_AIO_IOC_CANCEL, NULL));
	EXPECT_EQ(EFAULT, errno);
	other.aio_key = 1;
	errno = 0;
	EXPECT_EQ(-1, rust_aio_cancel(self->fd, self->ctx, &other));
	EXPECT_EQ(EINVAL, errno);
	/* &iocb->aio_key wraps around: unreadable, as get_user() finds it. */
	errno = 0;
	EXPECT_EQ(-1, rust_aio_cancel(self->fd, self->ctx, (struct iocb *)~3UL));
	EXPECT_EQ(EFAULT, errno);
}

/* io_cancel() reads only aio_key (get_user), and before it looks the context
 * up: an iocb whose other fields are unreadable is looked for, not EFAULT. */
TEST_F(ring, cancel_reads_only_aio_key)
{
	long page = sysconf(_SC_PAGESIZE);
	struct iocb *cb;
	struct io_event events[1];
	char *buf;

	errno = 0;
	EXPECT_EQ(-1, rust_aio_cancel(self->fd, 0, NULL));
	EXPECT_EQ(EFAULT, errno);
	buf = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	/* aio_data and aio_key before the page end, the rest after it. */
	cb = (struct iocb *)(buf + page - 12);
	*cb = make_iocb(RUST_AIO_CMD_TIMER, 8, 0, 60LL * 1000 * 1000 * 1000);
	ASSERT_EQ(1, submit_one(self->fd, self->ctx, cb));
	ASSERT_EQ(0, mprotect(buf + page, page, PROT_NONE));
	errno = 0;
	EXPECT_EQ(-1, rust_aio_cancel(self->fd, self->ctx, cb));
	EXPECT_EQ(EINPROGRESS, errno);
	ASSERT_EQ(1, rust_aio_getevents(self->fd, self->ctx, 1, 1, events, NULL));
	EXPECT_EQ(-ECANCELED, events[0].res);
	/* Not pending: looked for, not found. */
	errno = 0;
	EXPECT_EQ(-1, rust_aio_cancel(self->fd, self->ctx, cb));
	EXPECT_EQ(EINVAL, errno);
	munmap(buf, 2 * page);
}

/* CANCEL racing the timer's expiry: exactly one event per timer, -ECANCELED
 * if and only if CANCEL said EINPROGRESS. */
TEST_F(ring, cancel_races_expiry)
{
	struct iocb cb;
	struct io_event events[2];
	int round, cancelled = 0, fired = 0, err;
	long ret;

	for (round = 0; round < 3000; round++) {
		cb = make_iocb(RUST_AIO_CMD_TIMER, round, 7, (round % 50) * 2000);
		ASSERT_EQ(1, submit_one(self->fd, self->ctx, &cb));
		for (volatile int spin = 0; spin < (round * 37) % 2000; spin++)
			;
		errno = 0;
		ret = rust_aio_cancel(self->fd, self->ctx, &cb);
		err = errno;
		ASSERT_EQ(-1, ret);
		ASSERT_TRUE(err == EINPROGRESS || err == EINVAL) TH_LOG("errno %d", err);
		ASSERT_EQ(1, rust_aio_getevents(self->fd, self->ctx, 1, 2, events, NULL));
		ASSERT_EQ((__u64)round, events[0].data);
		if (err == EINPROGRESS) {
			ASSERT_EQ(-ECANCELED, events[0].res) TH_LOG("round %d", round);
			cancelled++;
		} else {
			ASSERT_EQ(7, events[0].res) TH_LOG("round %d", round);
			fired++;
		}
		ASSERT_EQ(0, rust_aio_getevents(self->fd, self->ctx, 0, 2, events,
						&(struct timespec){ 0 }));
	}
	TH_LOG("%d cancelled, %d fired first", cancelled, fired);
	EXPECT_LT(0, cancelled);
	EXPECT_LT(0, fired);
}

/* ---- io_destroy --------------------------------------------------------- */

TEST_F(ring, destroy_errnos)
{
	errno = 0;
	EXPECT_EQ(-1, rust_aio_destroy(self->fd, 0));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, rust_aio_destroy(self->fd, self->ctx + 8));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, RUST_AIO_IOC_DESTROY, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(0, rust_aio_destroy(self->fd, self->ctx));
	/* Twice. */
	errno = 0;
	EXPECT_EQ(-1, rust_aio_destroy(self->fd, self->ctx));
	EXPECT_EQ(EINVAL, errno);
	/* The ring is unmapped. */
	errno = 0;
	EXPECT_EQ(-1, msync((void *)self->ctx, 4096, MS_ASYNC));
	EXPECT_EQ(ENOMEM, errno);
}

/* libaio 18.t: destroy waits for what is in flight; timers are cancelled. */
TEST_F(ring, destroy_completes_inflight)
{
	struct iocb cbs[20], *list[20];
	struct timespec start, end;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), i;
	__u64 count = 0;

	ASSERT_LE(0, efd);
	for (i = 0; i < 20; i++) {
		/* Long timers (cancelled) and work items (waited for). */
		cbs[i] = make_iocb(i % 2 ? RUST_AIO_CMD_TIMER : RUST_AIO_CMD_WORK, i, 0,
				   3600LL * 1000 * 1000 * 1000);
		cbs[i].aio_flags = IOCB_FLAG_RESFD;
		cbs[i].aio_resfd = efd;
		list[i] = &cbs[i];
	}
	ASSERT_EQ(20, rust_aio_submit(self->fd, self->ctx, 20, list));
	clock_gettime(CLOCK_MONOTONIC, &start);
	EXPECT_EQ(0, rust_aio_destroy(self->fd, self->ctx));
	clock_gettime(CLOCK_MONOTONIC, &end);
	EXPECT_GT(10, end.tv_sec - start.tv_sec);
	/* Every request completed before destroy returned: 20 signals, no more. */
	ASSERT_EQ(sizeof(count), read(efd, &count, sizeof(count)));
	EXPECT_EQ(20, count);
	close(efd);
	/* The context is gone for every call. */
	errno = 0;
	EXPECT_EQ(-1, submit_one(self->fd, self->ctx, &cbs[0]));
	EXPECT_EQ(EINVAL, errno);
}

struct destroy_race {
	int fd;
	aio_context_t ctx;
	pthread_barrier_t *start;
	long result;
	int err;
};

static void *race_destroy(void *arg)
{
	struct destroy_race *r = arg;

	pthread_barrier_wait(r->start);
	r->result = rust_aio_destroy(r->fd, r->ctx);
	r->err = errno;
	return NULL;
}

/* Uses the context until it is gone: submit, and wait for events without a
 * timeout, which destroy must end. */
static void *race_use(void *arg)
{
	struct destroy_race *r = arg;
	struct iocb cb = make_iocb(IOCB_CMD_NOOP, 1, 0, 0);
	struct io_event events[4];

	pthread_barrier_wait(r->start);
	for (;;) {
		if (submit_one(r->fd, r->ctx, &cb) < 0)
			break;
		if (rust_aio_getevents(r->fd, r->ctx, 2, 4, events, NULL) < 0)
			break;
	}
	r->result = -1;
	r->err = errno;
	return NULL;
}

/* libaio 18.t and the 2018 destroy/lookup race: eight threads destroy the same
 * context while eight use it, with work in flight.  Exactly one destroy
 * succeeds, after everything in flight finished; every other call gets EINVAL. */
TEST(concurrent_destroy_and_use)
{
	int fd = rust_aio_open(), round, i, winners;

	ASSERT_LE(0, fd);
	for (round = 0; round < 50; round++) {
		struct destroy_race races[16];
		pthread_t threads[16];
		pthread_barrier_t start;
		struct iocb cbs[16], *list[16];
		aio_context_t ctx;

		ASSERT_EQ(0, rust_aio_setup(fd, 256, &ctx));
		for (i = 0; i < 16; i++) {
			cbs[i] = make_iocb(i % 2 ? RUST_AIO_CMD_TIMER : RUST_AIO_CMD_WORK, i, 0,
					   i % 4 == 1 ? 3600LL * 1000 * 1000 * 1000 : 1000 * i);
			list[i] = &cbs[i];
		}
		ASSERT_EQ(16, rust_aio_submit(fd, ctx, 16, list));
		pthread_barrier_init(&start, NULL, 16);
		for (i = 0; i < 16; i++) {
			races[i] = (struct destroy_race){ .fd = fd, .ctx = ctx, .start = &start };
			ASSERT_EQ(0, pthread_create(&threads[i], NULL,
						    i < 8 ? race_destroy : race_use, &races[i]));
		}
		for (i = 0; i < 16; i++)
			pthread_join(threads[i], NULL);
		pthread_barrier_destroy(&start);
		winners = 0;
		for (i = 0; i < 16; i++) {
			if (races[i].result == 0) {
				winners++;
				EXPECT_GT(8, i);
			} else {
				EXPECT_EQ(EINVAL, races[i].err) TH_LOG("round %d thread %d", round, i);
			}
		}
		EXPECT_EQ(1, winners) TH_LOG("round %d", round);
	}
	close(fd);
}

/* A ring unmapped by user space: the context is still found by its id (the
 * address, never what is mapped there now: fs/aio.c would read the new
 * mapping's bytes as the header's id), and destroy must not unmap what is
 * there now. */
TEST_F(ring, destroy_after_munmap_spares_other_mappings)
{
	size_t size = self->size;
	char *other;

	ASSERT_EQ(0, munmap((void *)self->ctx, size));
	other = mmap((void *)self->ctx, size, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	ASSERT_EQ((void *)self->ctx, other);
	other[0] = 42;
	EXPECT_EQ(0, rust_aio_destroy(self->fd, self->ctx));
	EXPECT_EQ(42, other[0]);
	errno = 0;
	EXPECT_EQ(-1, rust_aio_destroy(self->fd, self->ctx));
	EXPECT_EQ(EINVAL, errno);
	munmap(other, size);
}

/* A ring moved onto the address of a ring that user space unmapped: the
 * address names the moved one now, and the unmapped one, which nothing can
 * name any more (as in fs/aio.c), is still destroyed when the file is
 * closed, its events given back. */
TEST(ring_moved_onto_unmapped_ring)
{
	__u64 before = rust_aio_debugfs_u64("aio_nr");
	struct iocb cb = make_iocb(IOCB_CMD_NOOP, 6, 0, 0);
	struct io_event events[1];
	aio_context_t a, b;
	size_t size = ring_size(200);
	unsigned int serial;
	void *moved;
	int fd = rust_aio_open();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rust_aio_setup(fd, 200, &a));
	ASSERT_EQ(0, rust_aio_setup(fd, 200, &b));
	ASSERT_EQ(before + 400, rust_aio_debugfs_u64("aio_nr"));
	serial = ((struct rust_aio_ring *)a)->id;
	ASSERT_EQ(0, munmap((void *)a, size));
	moved = mremap((void *)b, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)a);
	ASSERT_EQ((void *)a, moved);
	/* The address names the moved ring now. */
	ASSERT_EQ(1, submit_one(fd, a, &cb));
	ASSERT_EQ(1, user_reap(a, events, 1));
	EXPECT_EQ(6, events[0].data);
	errno = 0;
	EXPECT_EQ(-1, submit_one(fd, b, &cb));
	EXPECT_EQ(EINVAL, errno);
	/* Not by the id it is filed under now either: that is no address. */
	errno = 0;
	EXPECT_EQ(-1, rust_aio_destroy(fd, 1ULL << 63 | serial));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
	EXPECT_EQ(before, rust_aio_debugfs_u64("aio_nr"));
}

/* ---- the hostile header ------------------------------------------------- */

/* CVE-2014-0206 and friends: user space writes anything to id, nr, head and
 * tail, in every combination. The context is found by its id (the ring's
 * address) alone, never by what the header says: every ioctl still works or
 * fails with a clean errno, every event returned is a real slot's content,
 * and the context can still be destroyed. */
TEST_F(ring, hostile_header)
{
	const unsigned int evil[] = { 0xffffffff, 0x80000000, 4096, 0x7fffffff, 31, 33, 0 };
	struct rust_aio_ring *ring = (struct rust_aio_ring *)self->ctx;
	unsigned int slots = ring->nr, fields, i, ours = 0, tail;
	struct iocb cbs[8], *list[8];
	struct io_event events[300];
	long n;

	for (i = 0; i < 8; i++) {
		cbs[i] = make_iocb(IOCB_CMD_NOOP, 1000 + i, i, 0);
		list[i] = &cbs[i];
	}
	for (fields = 1; fields < 16; fields++) {
		for (i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
			unsigned int v = evil[i] ^ (fields * 0x01010101);

			if (fields & 1)
				ring->id = v;
			if (fields & 2)
				ring->nr = v;
			if (fields & 4)
				ring->head = v;
			if (fields & 8)
				ring->tail = v ^ 0x5a5a5a5a;
			n = rust_aio_submit(self->fd, self->ctx, 8, list);
			if (n < 0) {
				EXPECT_EQ(EAGAIN, errno) TH_LOG("fields %#x evil %#x", fields, v);
			} else {
				EXPECT_EQ(8, n) TH_LOG("fields %#x evil %#x", fields, v);
			}
			n = rust_aio_getevents(self->fd, self->ctx, 0, 300, events,
					       &(struct timespec){ 0 });
			ASSERT_LE(0, n) TH_LOG("fields %#x evil %#x: errno %d", fields, v, errno);
			ASSERT_GE(300, n);
			/* Every event returned is a real slot's content: ours, or zeros. */
			while (n-- > 0) {
				EXPECT_TRUE(events[n].data == 0 ||
					    (events[n].data >= 1000 && events[n].data < 1008))
					TH_LOG("data %llu", (unsigned long long)events[n].data);
				ours += events[n].data != 0;
			}
			errno = 0;
			EXPECT_EQ(-1, rust_aio_cancel(self->fd, self->ctx, &cbs[0]));
			EXPECT_EQ(EINVAL, errno);
		}
	}
	EXPECT_LT(0, ours);
	/* With only nr put back, the ring works exactly: the kernel rewrote tail,
	 * and a head just before it reaps exactly the last event. */
	ring->nr = slots;
	ASSERT_EQ(1, submit_one(self->fd, self->ctx, &cbs[3]));
	tail = ring->tail;
	ASSERT_GT(slots, tail);
	ring->head = (tail + slots - 1) % slots;
	ASSERT_EQ(1, rust_aio_getevents(self->fd, self->ctx, 1, 8, events, NULL));
	EXPECT_EQ(1003, events[0].data);
	EXPECT_EQ((unsigned long)&cbs[3], events[0].obj);
	EXPECT_EQ(3, events[0].res);
	EXPECT_EQ(tail, ring->head);
	/* Whatever id says, DESTROY finds the context and unmaps the ring. */
	ring->id = 0xdeadbeef;
	EXPECT_EQ(0, rust_aio_destroy(self->fd, self->ctx));
	errno = 0;
	EXPECT_EQ(-1, msync((void *)self->ctx, 4096, MS_ASYNC));
	EXPECT_EQ(ENOMEM, errno);
}

/* User space reaps from the mapping and never tells: submission still finds
 * free slots (f8567a3845ac, d856f32a86b2). */
TEST(user_reaping_frees_slots)
{
	struct iocb cb = make_iocb(IOCB_CMD_NOOP, 3, 0, 0);
	struct io_event events[4];
	aio_context_t ctx;
	int fd = rust_aio_open(), i;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rust_aio_setup(fd, 1, &ctx));
	for (i = 0; i < 10000; i++) {
		ASSERT_EQ(1, submit_one(fd, ctx, &cb)) TH_LOG("round %d: errno %d", i, errno);
		ASSERT_EQ(1, user_reap(ctx, events, 4));
	}
	close(fd);
}

/* ---- fork, mremap ------------------------------------------------------- */

/* libaio 12.t: a forked child has the file and the mapping, not the context. */
TEST_F(ring, context_unusable_after_fork)
{
	struct iocb cb = make_iocb(IOCB_CMD_NOOP, 1, 0, 0);
	int status;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct io_event ev[1];
		void *moved;
		int bad = 0;

		bad |= submit_one(self->fd, self->ctx, &cb) != -1 || errno != EINVAL;
		bad |= (rust_aio_getevents(self->fd, self->ctx, 0, 1, ev, NULL) != -1 || errno != EINVAL) << 1;
		bad |= (rust_aio_destroy(self->fd, self->ctx) != -1 || errno != EINVAL) << 2;
		/* CVE-2023-52646: moving the inherited ring must fail, not crash. */
		moved = mremap((void *)self->ctx, self->size, self->size, MREMAP_MAYMOVE | MREMAP_FIXED,
			       (void *)(self->ctx + (1UL << 30)));
		bad |= (moved != MAP_FAILED || errno != EINVAL) << 3;
		_exit(bad);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* The parent's context is untouched. */
	EXPECT_EQ(1, submit_one(self->fd, self->ctx, &cb));
}

/* libaio 19.t: the ring moves, and the context id moves with it; reaping
 * from the new mapping works. */
TEST_F(ring, mremap_moves_context)
{
	struct iocb cb = make_iocb(IOCB_CMD_NOOP, 42, 0, 0);
	struct io_event events[2];
	void *dest, *moved;
	aio_context_t old = self->ctx;

	/* Between setup and submit. */
	dest = mmap(NULL, self->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, dest);
	moved = mremap((void *)old, self->size, self->size, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
	ASSERT_EQ(dest, moved);
	self->ctx = (aio_context_t)moved;
	errno = 0;
	EXPECT_EQ(-1, submit_one(self->fd, old, &cb));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(1, submit_one(self->fd, self->ctx, &cb));

	/* Between submit and reap, then reap from the mapping. */
	dest = mmap(NULL, self->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, dest);
	moved = mremap((void *)self->ctx, self->size, self->size, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
	ASSERT_EQ(dest, moved);
	self->ctx = (aio_context_t)moved;
	ASSERT_EQ(1, user_reap(self->ctx, events, 2));
	EXPECT_EQ(42, events[0].data);

	/* Destroy unmaps the ring where it is now. */
	EXPECT_EQ(0, rust_aio_destroy(self->fd, self->ctx));
	errno = 0;
	EXPECT_EQ(-1, msync((void *)self->ctx, 4096, MS_ASYNC));
	EXPECT_EQ(ENOMEM, errno);
}

/* Exit with work in flight (libaio 14.t): the process just goes, and its
 * contexts with it: every request completes (16 eventfd signals) and the
 * events it asked for are given back. */
TEST(exit_with_inflight)
{
	__u64 before = rust_aio_debugfs_u64("aio_nr"), count;
	int round, status;

	for (round = 0; round < 20; round++) {
		int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		pid_t pid;

		ASSERT_LE(0, efd);
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			struct iocb cbs[16], *list[16];
			aio_context_t ctx;
			int fd = rust_aio_open(), i;

			if (fd < 0 || rust_aio_setup(fd, 64, &ctx))
				_exit(1);
			for (i = 0; i < 16; i++) {
				cbs[i] = make_iocb(RUST_AIO_CMD_TIMER + (i & 1), i, 0,
						   i % 4 ? 1000 : 3600LL * 1000 * 1000 * 1000);
				cbs[i].aio_flags = IOCB_FLAG_RESFD;
				cbs[i].aio_resfd = efd;
				list[i] = &cbs[i];
			}
			_exit(rust_aio_submit(fd, ctx, 16, list) == 16 ? 0 : 2);
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_EQ(0, WEXITSTATUS(status));
		count = 0;
		ASSERT_EQ(sizeof(count), read(efd, &count, sizeof(count)));
		EXPECT_EQ(16, count) TH_LOG("round %d", round);
		EXPECT_EQ(before, rust_aio_debugfs_u64("aio_nr")) TH_LOG("round %d", round);
		close(efd);
	}
}

/* ---- contexts die with their address space ------------------------------ */

/* As fs/aio.c's exit_aio() on the last mmput(): forked children that share
 * the device file set up contexts and exit without destroying them; their
 * events are given back at once, not when the shared file is closed. */
TEST(contexts_die_with_process)
{
	__u64 before = rust_aio_debugfs_u64("aio_nr");
	aio_context_t ctx;
	int fd = rust_aio_open(), child, status;

	ASSERT_LE(0, fd);
	for (child = 0; child < 80; child++) {
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (pid == 0) {
			struct iocb cbs[8], *list[8];
			int i;

			if (rust_aio_setup(fd, 1000, &ctx))
				_exit(10 + errno);
			for (i = 0; i < 8; i++) {
				cbs[i] = make_iocb(i & 1 ? RUST_AIO_CMD_WORK : RUST_AIO_CMD_TIMER,
						   i, 0, 3600LL * 1000 * 1000 * 1000);
				list[i] = &cbs[i];
			}
			_exit(rust_aio_submit(fd, ctx, 8, list) == 8 ? 0 : 2);
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_EQ(0, WEXITSTATUS(status)) TH_LOG("child %d", child);
		ASSERT_EQ(before, rust_aio_debugfs_u64("aio_nr")) TH_LOG("child %d", child);
	}
	ASSERT_EQ(0, rust_aio_setup(fd, 1000, &ctx));
	EXPECT_EQ(before + 1000, rust_aio_debugfs_u64("aio_nr"));
	EXPECT_EQ(0, rust_aio_destroy(fd, ctx));
	EXPECT_EQ(before, rust_aio_debugfs_u64("aio_nr"));
	close(fd);
}

/* exec() replaces the address space: the old one's contexts die with it,
 * while the process (and its copy of the device file) lives on. */
TEST(contexts_die_on_exec)
{
	__u64 before = rust_aio_debugfs_u64("aio_nr");
	int fd = rust_aio_open(), exec_pipe[2], hold[2], status;
	char byte;
	pid_t pid;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pipe2(exec_pipe, O_CLOEXEC));
	ASSERT_EQ(0, pipe(hold));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct iocb cb = make_iocb(RUST_AIO_CMD_TIMER, 1, 0, 3600LL * 1000 * 1000 * 1000);
		struct iocb *list[1] = { &cb };
		aio_context_t ctx;

		close(exec_pipe[0]);
		close(hold[1]);
		if (rust_aio_setup(fd, 500, &ctx) || rust_aio_submit(fd, ctx, 1, list) != 1)
			_exit(1);
		/* Not CLOEXEC: the device file survives the exec. */
		if (fcntl(fd, F_SETFD, 0))
			_exit(2);
		dup2(hold[0], 0);
		execl("/bin/sh", "sh", "-c", "read x; true", (char *)NULL);
		_exit(3);
	}
	close(exec_pipe[1]);
	close(hold[0]);
	/* EOF once the child has exec'd (or died). */
	EXPECT_EQ(0, read(exec_pipe[0], &byte, 1));
	EXPECT_EQ(0, waitpid(pid, &status, WNOHANG));
	EXPECT_EQ(before, rust_aio_debugfs_u64("aio_nr"));
	close(hold[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	close(exec_pipe[0]);
	close(fd);
}

/* A thread's exit is not the address space's: the context lives on. */
static void *setup_in_thread(void *arg)
{
	int fd = *(int *)arg;
	aio_context_t ctx = 0;

	if (rust_aio_setup(fd, 16, &ctx))
		return NULL;
	return (void *)ctx;
}

TEST(context_outlives_its_thread)
{
	struct iocb cb = make_iocb(IOCB_CMD_NOOP, 4, 0, 0);
	struct io_event events[1];
	pthread_t thread;
	aio_context_t ctx;
	void *ret;
	int fd = rust_aio_open();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pthread_create(&thread, NULL, setup_in_thread, &fd));
	ASSERT_EQ(0, pthread_join(thread, &ret));
	ctx = (aio_context_t)ret;
	ASSERT_NE(0, ctx);
	ASSERT_EQ(1, submit_one(fd, ctx, &cb));
	ASSERT_EQ(1, rust_aio_getevents(fd, ctx, 1, 1, events, NULL));
	EXPECT_EQ(4, events[0].data);
	EXPECT_EQ(0, rust_aio_destroy(fd, ctx));
	close(fd);
}

TEST_HARNESS_MAIN
