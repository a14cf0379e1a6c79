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

	if (access(FAIL_NTH, W_OK))
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
	write_file(FAIL_NTH, buf);
}

/* Whether the failure asked for was injected (fail-nth reads 0 then). */
static int was_injected(void)
{
	char buf[16] = "";
	int fd = open(FAIL_NTH, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = 0;
	close(fd);
	return atoi(buf) == 0;
}

#define REQUIRE_FAULT_INJECTION()						\
	do {									\
		if (setup_fault_injection())					\
			SKIP(return, "no fail-nth (CONFIG_FAULT_INJECTION)");	\
	} while (0)

TEST(open_fails_cleanly)
{
	int n, fd, err, injected, points = 0;

	REQUIRE_FAULT_INJECTION();
	for (n = 1; n < 1000; n++) {
		fail_nth(n);
		fd = rust_aio_open();
		err = errno;
		injected = was_injected();
		fail_nth(0);
		if (fd >= 0) {
			close(fd);
			if (!injected)
				break;
			continue;
		}
		points++;
		EXPECT_EQ(ENOMEM, err) TH_LOG("allocation %d", n);
	}
	TH_LOG("%d failing allocations tried", points);
	EXPECT_LT(0, points);
	EXPECT_GT(1000, n);
}

TEST(setup_fails_cleanly)
{
	aio_context_t ctx;
	int fd, n, r, err, injected, points = 0;

	REQUIRE_FAULT_INJECTION();
	fd = rust_aio_open();
	ASSERT_LE(0, fd);
	/* A ring of many pages: each page allocation is a failure point. */
	for (n = 1; n < 5000; n++) {
		fail_nth(n);
		r = rust_aio_setup(fd, 4000, &ctx);
		err = errno;
		injected = was_injected();
		fail_nth(0);
		if (r == 0) {
			ASSERT_EQ(0, rust_aio_destroy(fd, ctx));
			if (!injected)
				break;
			continue;
		}
		points++;
		EXPECT_EQ(ENOMEM, err) TH_LOG("allocation %d", n);
	}
	TH_LOG("%d failing allocations tried", points);
	EXPECT_LT(32, points);
	EXPECT_GT(5000, n);
	/* Every failed setup gave its events back. */
	ASSERT_EQ(0, rust_aio_setup(fd, 65536, &ctx));
	close(fd);
}

TEST(submit_fails_cleanly)
{
	const __u16 opcodes[] = { RUST_AIO_CMD_TIMER, RUST_AIO_CMD_WORK };
	struct iocb cbs[256], *list[256];
	struct io_event events[256];
	aio_context_t ctx;
	unsigned int slots;
	int fd, n, r, err, injected, points = 0, i;
	size_t op;

	REQUIRE_FAULT_INJECTION();
	fd = rust_aio_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rust_aio_setup(fd, 100, &ctx));
	slots = ((struct rust_aio_ring *)ctx)->nr;
	for (op = 0; op < 2; op++) {
		struct iocb cb = { .aio_lio_opcode = opcodes[op], .aio_data = op };
		struct iocb *one[1] = { &cb };

		for (n = 1; n < 100; n++) {
			fail_nth(n);
			r = rust_aio_submit(fd, ctx, 1, one);
			err = errno;
			injected = was_injected();
			fail_nth(0);
			if (r == 1) {
				ASSERT_EQ(1, rust_aio_getevents(fd, ctx, 1, 1, events, NULL));
				if (!injected)
					break;
				continue;
			}
			points++;
			/* As io_submit(): a request that cannot be allocated is EAGAIN. */
			EXPECT_EQ(EAGAIN, err) TH_LOG("opcode %u, allocation %d", cb.aio_lio_opcode, n);
		}
	}
	EXPECT_LT(1, points);
	/* No slot leaked: the whole ring can be filled. */
	for (i = 0; i < 256; i++) {
		cbs[i] = (struct iocb){ .aio_lio_opcode = IOCB_CMD_NOOP, .aio_data = i };
		list[i] = &cbs[i];
	}
	EXPECT_EQ(slots - 1, rust_aio_submit(fd, ctx, slots - 1, list));
	EXPECT_EQ(slots - 1, rust_aio_getevents(fd, ctx, slots - 1, 256, events, NULL));
	close(fd);
}

TEST_HARNESS_MAIN
