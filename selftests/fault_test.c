// SPDX-License-Identifier: GPL-2.0
/*
 * Every allocation of open, setup and submit fails once: systematic fault
 * injection with /proc/thread-self/fail-nth (the setup error paths that
 * once put pages twice, 1881686f8420, must all be clean).  Each injected
 * failure must give the documented errno and leave nothing behind: the
 * event limit must be whole and the ring's slots all free afterwards, and
 * KASAN must stay quiet (checked by the runner).
 */
#include "kselftest_harness.h"
#include "rust_aio_test.h"

#define FAIL_NTH "/proc/thread-self/fail-nth"

static int write_file(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, value, strlen(value)) == (ssize_t)strlen(value);
	close(fd);
	return ok ? 0 : -1;
}

/*
 * /proc/thread-self/fail-nth, opened once: opening it allocates, and an
 * allocation between setting the count and the operation would take the
 * failure meant for the operation.
 */
static int fail_nth_fd = -1;

/* Fail every kind of allocation, quietly. */
static int setup_fault_injection(void)
{
	static const char *const knobs[][2] = {
		{ "/sys/kernel/debug/failslab/ignore-gfp-wait", "N" },
		{ "/sys/kernel/debug/failslab/verbose", "0" },
		{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N" },
		{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem", "N" },
		{ "/sys/kernel/debug/fail_page_alloc/min-order", "0" },
		{ "/sys/kernel/debug/fail_page_alloc/verbose", "0" },
	};
	size_t i;

	if (fail_nth_fd < 0)
		fail_nth_fd = open(FAIL_NTH, O_RDWR | O_CLOEXEC);
	if (fail_nth_fd < 0)
		return -1;
	for (i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++)
		if (write_file(knobs[i][0], knobs[i][1]))
			return -1;
	return 0;
}

/* The n-th fault-injection point of this thread fails (0: none). */
static void fail_nth(int n)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%d", n);
	if (pwrite(fail_nth_fd, buf, strlen(buf), 0) < 0)
		abort();
}

/* Whether the failure asked for was injected (fail-nth reads 0 then). */
static int was_injected(void)
{
	char buf[16] = "";

	if (pread(fail_nth_fd, buf, sizeof(buf) - 1, 0) <= 0)
		abort();
	return atoi(buf) == 0;
}

#define REQUIRE_FAULT_INJECTION()						\
	do {									\
		if (setup_fault_injection())					\
			SKIP(return, "no fail-nth (CONFIG_FAULT_INJECTION)");	\
	} while (0)

/*
 * Runs op() with its 1st, 2nd, ... fault-injection point failing, until it
 * succeeds with nothing injected.  op() returns 0, or -1 with errno, which
 * must be `expected`; after each success, with injection off again, undo()
 * takes back what op() did.  Returns the number of failures seen, or -1 if
 * op() still met allocations after `max`.
 */
static int fail_each_allocation(struct __test_metadata *_metadata, int max, int expected,
				int (*op)(void *arg), void (*undo)(void *arg), void *arg)
{
	int n, r, err, injected, failures = 0;

	for (n = 1; n <= max; n++) {
		fail_nth(n);
		r = op(arg);
		err = errno;
		injected = was_injected();
		fail_nth(0);
		if (r == 0) {
			undo(arg);
			if (!injected)
				return failures;
			continue;
		}
		failures++;
		EXPECT_EQ(expected, err) TH_LOG("failure point %d", n);
	}
	return -1;
}

static int open_device(void *arg)
{
	int *fd = arg;

	*fd = rust_aio_open();
	return *fd < 0 ? -1 : 0;
}

static void close_device(void *arg)
{
	close(*(int *)arg);
}

TEST(open_fails_cleanly)
{
	int failures, fd;

	REQUIRE_FAULT_INJECTION();
	failures = fail_each_allocation(_metadata, 1000, ENOMEM, open_device, close_device, &fd);
	TH_LOG("%d failure points", failures);
	EXPECT_LT(0, failures);
}

struct setup_op {
	int fd;
	unsigned int nr_events;
	aio_context_t ctx;
};

static int setup_context(void *arg)
{
	struct setup_op *op = arg;

	return rust_aio_setup(op->fd, op->nr_events, &op->ctx);
}

static void destroy_context(void *arg)
{
	struct setup_op *op = arg;

	if (rust_aio_destroy(op->fd, op->ctx))
		abort();
}

TEST(setup_fails_cleanly)
{
	/* A ring of 32 pages: each page allocation is a failure point. */
	struct setup_op op = { .fd = rust_aio_open(), .nr_events = 4000 };
	aio_context_t ctx;
	int failures;

	REQUIRE_FAULT_INJECTION();
	ASSERT_LE(0, op.fd);
	failures = fail_each_allocation(_metadata, 5000, ENOMEM, setup_context, destroy_context,
					&op);
	TH_LOG("%d failure points", failures);
	EXPECT_LT(32, failures);
	/* Every failed setup gave its events back. */
	ASSERT_EQ(0, rust_aio_setup(op.fd, 65536, &ctx));
	close(op.fd);
}

struct submit_op {
	int fd;
	aio_context_t ctx;
	struct iocb cb;
};

static int submit_iocb(void *arg)
{
	struct submit_op *op = arg;
	struct iocb *one[1] = { &op->cb };

	return rust_aio_submit(op->fd, op->ctx, 1, one) == 1 ? 0 : -1;
}

static void reap_event(void *arg)
{
	struct submit_op *op = arg;
	struct io_event event;

	if (rust_aio_getevents(op->fd, op->ctx, 1, 1, &event, NULL) != 1)
		abort();
}

TEST(submit_fails_cleanly)
{
	const __u16 opcodes[] = { RUST_AIO_CMD_TIMER, RUST_AIO_CMD_WORK };
	struct submit_op op = { .fd = rust_aio_open() };
	struct iocb cbs[256], *list[256];
	struct io_event events[256];
	unsigned int slots;
	int failures;
	size_t i;

	REQUIRE_FAULT_INJECTION();
	ASSERT_LE(0, op.fd);
	ASSERT_EQ(0, rust_aio_setup(op.fd, 100, &op.ctx));
	slots = ((struct rust_aio_ring *)op.ctx)->nr;
	for (i = 0; i < 2; i++) {
		op.cb = (struct iocb){ .aio_lio_opcode = opcodes[i], .aio_data = i };
		/* As io_submit(): a request that cannot be allocated is EAGAIN. */
		failures = fail_each_allocation(_metadata, 100, EAGAIN, submit_iocb, reap_event, &op);
		TH_LOG("opcode %u: %d failure points", opcodes[i], failures);
		EXPECT_LT(0, failures);
	}
	/* No slot leaked: the whole ring can be filled. */
	for (i = 0; i < 256; i++) {
		cbs[i] = (struct iocb){ .aio_lio_opcode = IOCB_CMD_NOOP, .aio_data = i };
		list[i] = &cbs[i];
	}
	EXPECT_EQ(slots - 1, rust_aio_submit(op.fd, op.ctx, slots - 1, list));
	EXPECT_EQ(slots - 1, rust_aio_getevents(op.fd, op.ctx, slots - 1, 256, events, NULL));
	close(op.fd);
}

TEST_HARNESS_MAIN
