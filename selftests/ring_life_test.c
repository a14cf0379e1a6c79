// SPDX-License-Identifier: GPL-2.0
/*
 * A context's life after its setup, as fs/aio.c answers it (cases adapted
 * from libaio's harness and LTP): io_cancel and io_destroy one errno at a
 * time and racing the rest, a hostile ring header, fork, mremap and munmap of
 * the ring, and contexts dying with their address space (exit, exec).
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
		/*
		 * CVE-2023-52646: the child cannot move the parent's ring. As 7.x's
		 * fs/aio.c's, the ring is VM_DONTCOPY: the child does not even have it.
		 */
		moved = mremap((void *)self->ctx, self->size, self->size, MREMAP_MAYMOVE | MREMAP_FIXED,
			       (void *)(self->ctx + (1UL << 30)));
		bad |= (moved != MAP_FAILED || errno != EFAULT) << 3;
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
