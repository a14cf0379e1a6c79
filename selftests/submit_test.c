// SPDX-License-Identifier: GPL-2.0
/*
 * What a program sees of SUBMIT and GETEVENTS while they run, against native
 * aio as the oracle wherever it has the case:
 *
 * - an iocb that completes during SUBMIT has its event in the ring, and its
 *   eventfd signalled, before SUBMIT goes on to the next iocb (a later one may
 *   block: a reaper that waits for the first event must not deadlock);
 * - each iocb pointer is read just before its iocb is submitted, so an
 *   earlier iocb may rewrite a later pointer: by reading into it, or by its
 *   own aio_key write;
 * - the ring header's id is the context's index in its process's table;
 * - a poll whose wake-up names its events is completed by the wake-up: the
 *   event is in the ring when write() to the polled file returns;
 * - GETEVENTS writes no event slot it does not return, even when it must
 *   fault the buffer in and another reaper takes the event meanwhile.
 */
#define _GNU_SOURCE
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "rust_aio_test.h"
#include "aio_way.h"

/* Submits n iocbs through a way: the count, or -errno. */
static long way_submit_n(struct aio_way *w, long n, struct iocb **list)
{
	long r = w->rust ? rust_aio_submit(w->dev, w->ctx, n, list) :
			   syscall(SYS_io_submit, w->ctx, n, list);

	return r < 0 ? -errno : r;
}

/* Reaps up to n events without waiting: the count, or -errno. */
static long way_peek(struct aio_way *w, struct io_event *ev, long n)
{
	struct timespec zero = { 0 };
	long r = w->rust ? rust_aio_getevents(w->dev, w->ctx, 0, n, ev, &zero) :
			   syscall(SYS_io_getevents, w->ctx, 0, n, ev, &zero);

	return r < 0 ? -errno : r;
}

static __u64 eventfd_count(int efd)
{
	__u64 n = 0;

	if (read(efd, &n, sizeof(n)) != sizeof(n))
		n = 0;
	return n;
}

/* ---- events are posted as SUBMIT goes ------------------------------------ */

struct blocking_submit {
	struct aio_way *w;
	struct iocb **list;
	long result;
};

static void *run_submit(void *arg)
{
	struct blocking_submit *b = arg;

	b->result = way_submit_n(b->w, 2, b->list);
	return NULL;
}

struct early {
	long submitted;		/* SUBMIT's result */
	long seen;		/* events reaped while the second iocb blocked */
	__u64 signalled;	/* the first iocb's eventfd meanwhile */
	long later;		/* events reaped after the pipe was fed */
	__u64 first_data, second_res;
};

/*
 * SUBMIT [first, PREAD of an empty blocking pipe] in a thread: while the read
 * blocks in SUBMIT, the first iocb's event must already be in the ring and its
 * eventfd signalled. Only then is the pipe fed, which lets SUBMIT return.
 */
static struct early submit_then_block(bool rust, __u16 first_opcode)
{
	struct iocb first = { .aio_lio_opcode = first_opcode, .aio_data = 0xf1,
			      .aio_flags = IOCB_FLAG_RESFD };
	struct iocb second = { .aio_lio_opcode = IOCB_CMD_PREAD, .aio_data = 0xf2,
			       .aio_nbytes = 1 };
	struct iocb *list[2] = { &first, &second };
	struct early e = { 0 };
	struct io_event ev[2];
	struct aio_way w;
	int p[2], ready = eventfd(1, 0), signal = eventfd(0, EFD_NONBLOCK), i;
	struct blocking_submit b = { .w = &w, .list = list };
	pthread_t thread;
	char byte = 'x', buf = 0;

	if (pipe(p) || ready < 0 || signal < 0)
		exit(1);
	first.aio_resfd = signal;
	if (first_opcode == IOCB_CMD_POLL) {
		first.aio_fildes = ready;
		first.aio_buf = POLLIN;
	}
	second.aio_fildes = p[0];
	second.aio_buf = (unsigned long)&buf;
	way_setup(&w, rust);
	pthread_create(&thread, NULL, run_submit, &b);
	/* Up to 1.5 s for the first event and its signal. */
	for (i = 0; i < 150 && (e.seen == 0 || e.signalled == 0); i++) {
		usleep(10000);
		if (e.seen == 0)
			e.seen = way_peek(&w, ev, 2);
		if (e.seen == 1)
			e.first_data = ev[0].data;
		if (e.signalled == 0)
			e.signalled = eventfd_count(signal);
	}
	if (write(p[1], &byte, 1) != 1)
		exit(1);
	pthread_join(thread, NULL);
	e.submitted = b.result;
	if (way_reap(&w, &ev[0]) == 1) {
		e.later = 1;
		e.second_res = ev[0].res;
	}
	way_teardown(&w);
	close(p[0]);
	close(p[1]);
	close(ready);
	close(signal);
	return e;
}

TEST(completed_iocb_posted_before_next_iocb)
{
	struct early aio = submit_then_block(false, IOCB_CMD_POLL);
	struct early poll = submit_then_block(true, IOCB_CMD_POLL);
	struct early noop = submit_then_block(true, IOCB_CMD_NOOP);
	struct early *cases[] = { &aio, &poll, &noop };
	const char *names[] = { "aio, POLL", "rust_aio, POLL", "rust_aio, NOOP" };
	int i;

	for (i = 0; i < 3; i++)
		TH_LOG("%-16s submit %ld, while blocked: %ld events (data %#llx), eventfd %llu; "
		       "after: %ld events (res %lld)", names[i], cases[i]->submitted,
		       cases[i]->seen, cases[i]->first_data, cases[i]->signalled,
		       cases[i]->later, cases[i]->second_res);
	/* The oracle. */
	ASSERT_EQ(2, aio.submitted);
	ASSERT_EQ(1, aio.seen);
	ASSERT_EQ(1, aio.signalled);
	for (i = 1; i < 3; i++) {
		EXPECT_EQ(aio.submitted, cases[i]->submitted);
		EXPECT_EQ(aio.seen, cases[i]->seen);
		EXPECT_EQ(0xf1, cases[i]->first_data);
		EXPECT_EQ(aio.signalled, cases[i]->signalled);
		EXPECT_EQ(aio.later, cases[i]->later);
		EXPECT_EQ(aio.second_res, cases[i]->second_res);
	}
}

/* ---- each pointer read just before its iocb --------------------------------- */

/*
 * iocbpp = [PREAD of 8 bytes into iocbpp[1], the stale iocb]; the file holds
 * the address of the fresh iocb. The read completes during SUBMIT (tmpfs), so
 * the second pointer is read after it has been rewritten: the fresh iocb is
 * the one submitted.
 */
static __u64 second_submitted(bool rust)
{
	int fd = memfd_create("iocbpp", 0), ready = eventfd(1, 0);
	struct iocb stale = { .aio_lio_opcode = IOCB_CMD_POLL, .aio_buf = POLLIN,
			      .aio_data = 0x57a1e };
	struct iocb fresh = { .aio_lio_opcode = IOCB_CMD_POLL, .aio_buf = POLLIN,
			      .aio_data = 0xf7e54 };
	struct iocb *list[2] = { NULL, &stale };
	struct iocb *fresh_ptr = &fresh;
	struct iocb read = { .aio_lio_opcode = IOCB_CMD_PREAD, .aio_nbytes = sizeof(fresh_ptr),
			     .aio_data = 1 };
	struct io_event ev[2];
	struct aio_way w;
	__u64 data = 0;
	int i;

	if (fd < 0 || ready < 0 || write(fd, &fresh_ptr, sizeof(fresh_ptr)) != sizeof(fresh_ptr))
		exit(1);
	stale.aio_fildes = fresh.aio_fildes = ready;
	read.aio_fildes = fd;
	read.aio_buf = (unsigned long)&list[1];
	list[0] = &read;
	way_setup(&w, rust);
	if (way_submit_n(&w, 2, list) == 2) {
		for (i = 0; i < 2; i++)
			if (way_reap(&w, &ev[i]) == 1 && ev[i].data != 1)
				data = ev[i].data;
	}
	way_teardown(&w);
	close(fd);
	close(ready);
	return data;
}

TEST(iocb_pointer_read_just_before_its_iocb)
{
	__u64 aio = second_submitted(false), rust = second_submitted(true);

	TH_LOG("second iocb submitted: aio %#llx, rust_aio %#llx (fresh 0xf7e54, stale 0x57a1e)",
	       aio, rust);
	ASSERT_EQ(0xf7e54, aio);
	EXPECT_EQ(aio, rust);
}

/*
 * The first iocb lies over the pointer array itself: iocbpp[0] points at
 * iocbpp, so the iocb's aio_key (bytes 8-11) is the low half of iocbpp[1],
 * which the kernel's key write zeroes once the iocb is accepted. iocbpp[1]
 * names a valid iocb below 4 GiB (its high half, the first iocb's
 * aio_rw_flags, must be 0): read after the key write, it is NULL, and the
 * second iocb is EFAULT. fs/aio.c with a POLL on a ready eventfd (whose
 * only user write is the key) is the oracle; rust_aio runs the same with a
 * NOOP, the case where SUBMIT reads pointers ahead. The count submitted.
 */
static long key_write_over_next_pointer(bool rust)
{
	int ready = eventfd(1, 0);
	__u64 *b = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct iocb *low = mmap((void *)0x20000000, 4096, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	struct io_event ev;
	struct aio_way w;
	long r;

	if (ready < 0 || b == MAP_FAILED || low != (void *)0x20000000)
		return -1000;
	*low = (struct iocb){ .aio_lio_opcode = rust ? IOCB_CMD_NOOP : IOCB_CMD_POLL,
			      .aio_fildes = rust ? 0 : ready, .aio_buf = rust ? 0 : POLLIN,
			      .aio_data = 0x10c };
	b[0] = (unsigned long)b;	/* iocbpp[0]; the iocb's aio_data */
	b[1] = (unsigned long)low;	/* iocbpp[1]; its aio_key and aio_rw_flags */
	/* aio_lio_opcode, aio_reqprio, aio_fildes; aio_buf */
	b[2] = rust ? IOCB_CMD_NOOP : IOCB_CMD_POLL | (__u64)ready << 32;
	b[3] = rust ? 0 : POLLIN;
	way_setup(&w, rust);
	r = way_submit_n(&w, 2, (struct iocb **)b);
	while (r > 0 && way_peek(&w, &ev, 1) == 1)
		;
	way_teardown(&w);
	munmap(low, 4096);
	munmap(b, 4096);
	close(ready);
	return r;
}

TEST(iocb_key_write_rewrites_next_pointer)
{
	long aio = key_write_over_next_pointer(false), rust = key_write_over_next_pointer(true);

	TH_LOG("submitted: aio %ld, rust_aio %ld", aio, rust);
	ASSERT_EQ(1, aio);
	EXPECT_EQ(aio, rust);
}

/* ---- the header's id ------------------------------------------------------- */

/*
 * In a fresh process (native ids are per process): three contexts, the first
 * destroyed, a fourth made; each ring's header id, written to the pipe.
 */
static void header_ids(bool rust, __u32 ids[4])
{
	int p[2], status;
	pid_t pid;

	if (pipe(p))
		exit(1);
	pid = fork();
	if (pid == 0) {
		struct aio_way w[4];
		__u32 out[4];
		int i;

		for (i = 0; i < 3; i++) {
			way_setup(&w[i], rust);
			out[i] = ((struct rust_aio_ring *)w[i].ctx)->id;
		}
		way_teardown(&w[0]);
		way_setup(&w[3], rust);
		out[3] = ((struct rust_aio_ring *)w[3].ctx)->id;
		if (write(p[1], out, sizeof(out)) != sizeof(out))
			_exit(1);
		_exit(0);
	}
	if (read(p[0], ids, 4 * sizeof(__u32)) != 4 * sizeof(__u32))
		memset(ids, 0xff, 4 * sizeof(__u32));
	waitpid(pid, &status, 0);
	close(p[0]);
	close(p[1]);
}

TEST(header_id_is_index_in_process_table)
{
	__u32 aio[4], rust[4];

	header_ids(false, aio);
	header_ids(true, rust);
	TH_LOG("header ids: aio %u %u %u, then %u; rust_aio %u %u %u, then %u", aio[0], aio[1],
	       aio[2], aio[3], rust[0], rust[1], rust[2], rust[3]);
	ASSERT_EQ(0, aio[0]);
	ASSERT_EQ(2, aio[2]);
	EXPECT_EQ(0, memcmp(aio, rust, sizeof(aio)));
}

/* ---- POLL completed by its wake-up --------------------------------------------- */

#define WAKE_ROUNDS 50

/* Rounds of 50 in which the event was in the ring when write() returned. */
static int in_ring_after_write(bool rust)
{
	struct aio_way w;
	struct io_event ev;
	int round, at_once = 0;
	__u64 one = 1;

	way_setup(&w, rust);
	for (round = 0; round < WAKE_ROUNDS; round++) {
		int efd = eventfd(0, EFD_NONBLOCK);
		struct iocb cb = { .aio_lio_opcode = IOCB_CMD_POLL, .aio_fildes = efd,
				   .aio_buf = POLLIN, .aio_data = round };
		struct iocb *list[1] = { &cb };
		struct rust_aio_ring *ring = (struct rust_aio_ring *)w.ctx;

		if (efd < 0 || way_submit_n(&w, 1, list) != 1 || way_peek(&w, &ev, 1) != 0)
			exit(1);
		if (write(efd, &one, sizeof(one)) != sizeof(one))
			exit(1);
		at_once += __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE) !=
			   __atomic_load_n(&ring->head, __ATOMIC_RELAXED);
		if (way_reap(&w, &ev) != 1 || ev.data != (__u64)round)
			exit(1);
		close(efd);
	}
	way_teardown(&w);
	return at_once;
}

TEST(poll_completed_by_its_wakeup)
{
	int aio = in_ring_after_write(false), rust = in_ring_after_write(true);

	TH_LOG("event in the ring when write() returned: aio %d of %d, rust_aio %d of %d", aio,
	       WAKE_ROUNDS, rust, WAKE_ROUNDS);
	ASSERT_EQ(WAKE_ROUNDS, aio);
	EXPECT_EQ(aio, rust);
}

/* ---- GETEVENTS writes only what it returns ---------------------------------- */

static const unsigned char FILL = 0xa5;

static bool untouched(const void *p, size_t len)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != FILL)
			return false;
	return true;
}

TEST(getevents_writes_only_returned_slots)
{
	struct iocb cbs[3], *list[3];
	struct io_event ev[8];
	struct timespec zero = { 0 };
	aio_context_t ctx;
	int fd = rust_aio_open(), i;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rust_aio_setup(fd, 16, &ctx));
	for (i = 0; i < 3; i++) {
		cbs[i] = (struct iocb){ .aio_lio_opcode = IOCB_CMD_NOOP, .aio_data = i };
		list[i] = &cbs[i];
	}
	ASSERT_EQ(3, rust_aio_submit(fd, ctx, 3, list));
	memset(ev, FILL, sizeof(ev));
	ASSERT_EQ(3, rust_aio_getevents(fd, ctx, 0, 8, ev, &zero));
	EXPECT_TRUE(untouched(&ev[3], 5 * sizeof(ev[0])));
	close(fd);
}

/* A missing-page userfaultfd on one page, and a thread that serves it. */
struct stolen {
	int uffd;
	char *page;
	aio_context_t ctx;
	int faults, stolen;
};

static void *serve_fault(void *arg)
{
	struct stolen *s = arg;
	struct uffd_msg msg;
	struct pollfd pfd = { .fd = s->uffd, .events = POLLIN };
	static char fill[4096];
	struct io_event ev[4];

	memset(fill, FILL, sizeof(fill));
	if (poll(&pfd, 1, 5000) != 1 || read(s->uffd, &msg, sizeof(msg)) != sizeof(msg) ||
	    msg.event != UFFD_EVENT_PAGEFAULT)
		return NULL;
	s->faults++;
	/* Another reaper takes the event while GETEVENTS faults its buffer in. */
	s->stolen = rust_aio_user_reap(s->ctx, ev, 4);
	ioctl(s->uffd, UFFDIO_COPY, &(struct uffdio_copy){
		.dst = (unsigned long)s->page, .src = (unsigned long)fill, .len = 4096 });
	return NULL;
}

TEST(getevents_fault_in_writes_nothing)
{
	struct iocb cb = { .aio_lio_opcode = IOCB_CMD_NOOP, .aio_data = 7 };
	struct iocb *list[1] = { &cb };
	struct timespec zero = { 0 };
	struct uffdio_api api = { .api = UFFD_API };
	struct stolen s = { 0 };
	pthread_t thread;
	int fd = rust_aio_open();
	long got;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rust_aio_setup(fd, 16, &s.ctx));
	s.uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	ASSERT_LE(0, s.uffd);
	ASSERT_EQ(0, ioctl(s.uffd, UFFDIO_API, &api));
	s.page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, s.page);
	ASSERT_EQ(0, ioctl(s.uffd, UFFDIO_REGISTER, &(struct uffdio_register){
		.range = { .start = (unsigned long)s.page, .len = 4096 },
		.mode = UFFDIO_REGISTER_MODE_MISSING }));
	ASSERT_EQ(1, rust_aio_submit(fd, s.ctx, 1, list));
	ASSERT_EQ(0, pthread_create(&thread, NULL, serve_fault, &s));
	got = rust_aio_getevents(fd, s.ctx, 0, 4, (struct io_event *)s.page, &zero);
	pthread_join(thread, NULL);
	TH_LOG("GETEVENTS: %ld; faults served %d, events taken meanwhile %d", got, s.faults,
	       s.stolen);
	ASSERT_EQ(1, s.faults);
	ASSERT_EQ(1, s.stolen);
	EXPECT_EQ(0, got);
	/* Nothing returned, nothing written. */
	EXPECT_TRUE(untouched(s.page, 4 * sizeof(struct io_event)))
		TH_LOG("first bytes %02x %02x", (unsigned char)s.page[0], (unsigned char)s.page[1]);
	munmap(s.page, 4096);
	close(s.uffd);
	close(fd);
}

TEST_HARNESS_MAIN
