// SPDX-License-Identifier: GPL-2.0
/*
 * The device and the module's life cycle: /dev/rust_aio, the version ioctl,
 * unknown ioctls, the ABI's layout as C sees it, and load/unload while the
 * device is, and is not, open.
 */
#include <stddef.h>
#include <sys/mman.h>

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

TEST(load_twice)
{
	errno = 0;
	EXPECT_EQ(-1, rust_aio_load(NULL));
	EXPECT_EQ(EEXIST, errno);
}

TEST_HARNESS_MAIN
