// SPDX-License-Identifier: GPL-2.0
/*
 * The device and the module's life cycle: /dev/rust_aio, the version ioctl,
 * unknown ioctls, the ABI's layout as C sees it, and load/unload while the
 * device is, and is not, open.
 */
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "rust_aio_test.h"

/* The layout the module's Rust code asserts too (sys.rs); fs/aio.c's. */
_Static_assert(sizeof(struct rust_aio_ring) == 32, "aio_ring header");
_Static_assert(offsetof(struct rust_aio_ring, head) == 8, "aio_ring.head");
_Static_assert(offsetof(struct rust_aio_ring, tail) == 12, "aio_ring.tail");
_Static_assert(offsetof(struct rust_aio_ring, header_length) == 28, "aio_ring.header_length");
_Static_assert(sizeof(struct io_event) == 32, "io_event");
_Static_assert(sizeof(struct iocb) == 64, "iocb");
_Static_assert(sizeof(struct rust_aio_setup) == 16, "rust_aio_setup");
_Static_assert(sizeof(struct rust_aio_submit) == 24, "rust_aio_submit");
_Static_assert(sizeof(struct rust_aio_getevents) == 40, "rust_aio_getevents");
_Static_assert(sizeof(struct rust_aio_cancel) == 24, "rust_aio_cancel");

TEST(device_node)
{
	struct stat st;

	ASSERT_TRUE(rust_aio_module_loaded());
	ASSERT_EQ(0, stat(RUST_AIO_DEV, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	/* Like the aio system calls, the device is open to every user. */
	EXPECT_EQ(0666, st.st_mode & 0777);
}

TEST(version)
{
	__u32 version = 0;
	int fd = rust_aio_open();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, RUST_AIO_IOC_VERSION, &version));
	EXPECT_EQ(RUST_AIO_ABI_VERSION, version);
	close(fd);
}

TEST(version_bad_pointer)
{
	int fd = rust_aio_open();
	void *unmapped;

	ASSERT_LE(0, fd);
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, RUST_AIO_IOC_VERSION, NULL));
	EXPECT_EQ(EFAULT, errno);
	/* A kernel address. */
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, RUST_AIO_IOC_VERSION, (void *)0xffffffff81000000UL));
	EXPECT_EQ(EFAULT, errno);
	/* A read-only page. */
	unmapped = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, unmapped);
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, RUST_AIO_IOC_VERSION, unmapped));
	EXPECT_EQ(EFAULT, errno);
	munmap(unmapped, 4096);
	close(fd);
}

TEST(unknown_ioctls)
{
	/* Another magic, an unused number of ours, a known number with the
	 * wrong direction or size, and a common tty ioctl. */
	const unsigned long cmds[] = {
		_IOR('x', 0x10, __u32),
		_IOR(RUST_AIO_IOC_MAGIC, 0x7f, __u32),
		_IOW(RUST_AIO_IOC_MAGIC, 0x10, __u32),
		_IOR(RUST_AIO_IOC_MAGIC, 0x10, __u64),
		_IO(RUST_AIO_IOC_MAGIC, 0x11),
		TCGETS,
	};
	__u64 buf[8] = { 0 };
	int fd = rust_aio_open();
	size_t i;

	ASSERT_LE(0, fd);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		errno = 0;
		EXPECT_EQ(-1, ioctl(fd, cmds[i], buf)) TH_LOG("cmd %#lx", cmds[i]);
		EXPECT_EQ(ENOTTY, errno) TH_LOG("cmd %#lx", cmds[i]);
	}
	close(fd);
}

/* While a file is open, the module holds a reference and cannot go. */
TEST(unload_while_open)
{
	int fd = rust_aio_open();

	ASSERT_LE(0, fd);
	EXPECT_EQ(1, rust_aio_refcnt());
	errno = 0;
	EXPECT_EQ(-1, rust_aio_unload());
	/* delete_module() answers EWOULDBLOCK (kmod's rmmod says "in use"). */
	EXPECT_EQ(EWOULDBLOCK, errno);
	EXPECT_TRUE(rust_aio_module_loaded());
	close(fd);

	EXPECT_EQ(0, rust_aio_refcnt());
	ASSERT_EQ(0, rust_aio_unload()) TH_LOG("rmmod after close: %s", strerror(errno));
	EXPECT_FALSE(rust_aio_module_loaded());
	EXPECT_EQ(-1, open(RUST_AIO_DEV, O_RDWR));
	ASSERT_EQ(0, rust_aio_load(NULL)) TH_LOG("insmod %s: %s", rust_aio_ko(), strerror(errno));
	EXPECT_TRUE(rust_aio_module_loaded());
}

TEST(load_unload_20_times)
{
	__u32 version;
	int i, fd;

	for (i = 0; i < 20; i++) {
		ASSERT_EQ(0, rust_aio_unload()) TH_LOG("round %d: %s", i, strerror(errno));
		ASSERT_EQ(0, rust_aio_load(NULL)) TH_LOG("round %d: %s", i, strerror(errno));
		fd = rust_aio_open();
		ASSERT_LE(0, fd) TH_LOG("round %d", i);
		version = 0;
		ASSERT_EQ(0, ioctl(fd, RUST_AIO_IOC_VERSION, &version));
		ASSERT_EQ(RUST_AIO_ABI_VERSION, version);
		close(fd);
	}
}

/*
 * A ring still mapped after its context died elsewhere: the device file's last
 * reference is dropped by a forked child (which inherits the file, not the
 * ring: it is VM_DONTCOPY), so teardown runs in a process that does not own
 * the ring and leaves the owner's mapping alone. The ring's file and
 * filesystem keep the module, so unloading is refused until the owner unmaps
 * it, and succeeds then.
 */
TEST(unload_with_dead_ring_still_mapped)
{
	struct iocb cb = { .aio_lio_opcode = RUST_AIO_CMD_TIMER, .aio_offset = 3600LL * 1000000000 };
	struct iocb *list[1] = { &cb };
	int fd = rust_aio_open(), go[2], status;
	aio_context_t ctx;
	char byte = 0;
	pid_t pid;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rust_aio_setup(fd, 100, &ctx));
	ASSERT_EQ(1, rust_aio_submit(fd, ctx, 1, list));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(go[1]);
		/* The ring is not inherited. */
		if (msync((void *)ctx, 4096, MS_ASYNC) != -1 || errno != ENOMEM)
			_exit(3);
		if (read(go[0], &byte, 1) != 1)
			_exit(1);
		/* The file's last reference: the context dies here. */
		close(fd);
		_exit(0);
	}
	close(go[0]);
	close(fd);
	ASSERT_EQ(1, write(go[1], &byte, 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* The owner's mapping of the dead ring stays, and holds the module. */
	EXPECT_EQ(0, msync((void *)ctx, 4096, MS_ASYNC));
	errno = 0;
	EXPECT_EQ(-1, rust_aio_unload());
	EXPECT_EQ(EWOULDBLOCK, errno);
	EXPECT_TRUE(rust_aio_module_loaded());
	ASSERT_EQ(0, munmap((void *)ctx, 4096));
	ASSERT_EQ(0, rust_aio_unload()) TH_LOG("rmmod after the unmap: %s", strerror(errno));
	EXPECT_FALSE(rust_aio_module_loaded());
	ASSERT_EQ(0, rust_aio_load(NULL)) TH_LOG("insmod: %s", strerror(errno));
	close(go[1]);
}

/* Setup, traffic in flight, close, unload, load: 100 rounds, each leaving
 * the module free to go at once (the ring filesystem is pinned only while a
 * ring exists). */
/*
 * 100 unloads and loads of a KASAN-instrumented module take 28 s under TCG:
 * more than the harness's default 30 s allows once the guest is busy.
 */
FIXTURE(unload) {
	int unused;
};

FIXTURE_SETUP(unload)
{
}

FIXTURE_TEARDOWN(unload)
{
}

TEST_F_TIMEOUT(unload, rings_close_unload_100_times, 180)
{
	int round, i, fd;

	for (round = 0; round < 100; round++) {
		struct iocb cbs[8], *list[8];
		aio_context_t ctx[2];

		fd = rust_aio_open();
		ASSERT_LE(0, fd) TH_LOG("round %d", round);
		for (i = 0; i < 8; i++) {
			cbs[i] = (struct iocb){
				.aio_lio_opcode = i & 1 ? RUST_AIO_CMD_WORK : RUST_AIO_CMD_TIMER,
				.aio_offset = i & 2 ? 3600LL * 1000000000 : 1000,
			};
			list[i] = &cbs[i];
		}
		for (i = 0; i < 2; i++) {
			ASSERT_EQ(0, rust_aio_setup(fd, 64 << i, &ctx[i])) TH_LOG("round %d", round);
			ASSERT_EQ(8, rust_aio_submit(fd, ctx[i], 8, list)) TH_LOG("round %d", round);
		}
		if (round & 1)
			EXPECT_EQ(0, rust_aio_destroy(fd, ctx[0]));
		close(fd);
		ASSERT_EQ(0, rust_aio_unload()) TH_LOG("round %d: %s", round, strerror(errno));
		ASSERT_EQ(0, rust_aio_load(NULL)) TH_LOG("round %d: %s", round, strerror(errno));
	}
}

TEST(load_twice)
{
	errno = 0;
	EXPECT_EQ(-1, rust_aio_load(NULL));
	EXPECT_EQ(EEXIST, errno);
}

TEST_HARNESS_MAIN
