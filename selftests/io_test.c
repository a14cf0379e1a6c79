// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's scratch disk and native aio on it: the oracle that the real-I/O
 * tests of rust_aio (issue 11) will compare against. qemu/run attaches an
 * ext4 image as a virtio-blk disk and mounts it at $RUST_AIO_SCRATCH; here
 * native aio (the io_* system calls) writes and reads O_DIRECT blocks on it,
 * with exact results, and the reads are seen to complete from the disk's
 * interrupt.
 */
#define _GNU_SOURCE /* O_DIRECT */
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>

#include "kselftest_harness.h"
#include "rust_aio_test.h"

#define BLOCK 4096
#define BLOCKS 16

static const char *scratch(void)
{
	const char *dir = getenv("RUST_AIO_SCRATCH");

	return dir && *dir ? dir : NULL;
}

/* Interrupts taken so far by the virtio devices' request queues. */
static unsigned long virtio_interrupts(void)
{
	char line[1024];
	unsigned long total = 0;
	FILE *f = fopen("/proc/interrupts", "r");

	while (f && fgets(line, sizeof(line), f)) {
		char *p = line, *end;
		unsigned long n;

		if (!strstr(line, "virtio"))
			continue;
		p = strchr(line, ':');
		if (!p)
			continue;
		for (p++;; p = end) {
			n = strtoul(p, &end, 10);
			if (end == p)
				break;
			total += n;
		}
	}
	if (f)
		fclose(f);
	return total;
}

static long io_submit1(aio_context_t ctx, struct iocb *cb)
{
	return syscall(SYS_io_submit, ctx, 1, &cb);
}

TEST(scratch_is_ext4_on_virtio_blk)
{
	struct statfs fs;

	ASSERT_NE(NULL, scratch());
	ASSERT_EQ(0, statfs(scratch(), &fs));
	EXPECT_EQ(EXT4_SUPER_MAGIC, fs.f_type);
	EXPECT_EQ(0, access("/sys/block/vda", F_OK));
}

TEST(native_aio_odirect_roundtrip)
{
	struct iocb cbs[BLOCKS], *list[BLOCKS], fsync_cb;
	struct io_event ev[BLOCKS];
	unsigned char *buf;
	aio_context_t ctx = 0;
	unsigned long irqs;
	char path[256];
	int fd, i, got;

	ASSERT_NE(NULL, scratch());
	snprintf(path, sizeof(path), "%s/io_test.%d", scratch(), getpid());
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_DIRECT, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, posix_memalign((void **)&buf, BLOCK, BLOCK * BLOCKS));
	ASSERT_EQ(0, syscall(SYS_io_setup, 64, &ctx));

	/* Write: every block its own pattern, every event exact. */
	for (i = 0; i < BLOCKS; i++) {
		memset(buf + i * BLOCK, 0x40 + i, BLOCK);
		cbs[i] = (struct iocb){ .aio_lio_opcode = IOCB_CMD_PWRITE, .aio_fildes = fd,
					.aio_buf = (unsigned long)(buf + i * BLOCK),
					.aio_nbytes = BLOCK, .aio_offset = (long long)i * BLOCK,
					.aio_data = 100 + i };
		list[i] = &cbs[i];
	}
	ASSERT_EQ(BLOCKS, syscall(SYS_io_submit, ctx, BLOCKS, list));
	for (got = 0; got < BLOCKS;) {
		int n = syscall(SYS_io_getevents, ctx, 1, BLOCKS - got, ev + got, NULL);

		ASSERT_LT(0, n);
		got += n;
	}
	for (i = 0; i < BLOCKS; i++) {
		struct iocb *cb = (struct iocb *)(unsigned long)ev[i].obj;

		EXPECT_EQ(BLOCK, ev[i].res);
		EXPECT_EQ(0, ev[i].res2);
		EXPECT_EQ(cb->aio_data, ev[i].data);
	}

	/* fsync through aio: res 0. */
	fsync_cb = (struct iocb){ .aio_lio_opcode = IOCB_CMD_FSYNC, .aio_fildes = fd,
				  .aio_data = 7 };
	ASSERT_EQ(1, io_submit1(ctx, &fsync_cb));
	ASSERT_EQ(1, syscall(SYS_io_getevents, ctx, 1, 1, ev, NULL));
	EXPECT_EQ(0, ev[0].res);
	EXPECT_EQ(7, ev[0].data);

	/* Read back, seen to complete from the disk's interrupt. */
	memset(buf, 0, BLOCK * BLOCKS);
	for (i = 0; i < BLOCKS; i++)
		cbs[i].aio_lio_opcode = IOCB_CMD_PREAD;
	irqs = virtio_interrupts();
	ASSERT_EQ(BLOCKS, syscall(SYS_io_submit, ctx, BLOCKS, list));
	for (got = 0; got < BLOCKS;) {
		int n = syscall(SYS_io_getevents, ctx, 1, BLOCKS - got, ev + got, NULL);

		ASSERT_LT(0, n);
		got += n;
	}
	EXPECT_LT(irqs, virtio_interrupts());
	for (i = 0; i < BLOCKS; i++) {
		int j;

		EXPECT_EQ(BLOCK, ev[i].res);
		for (j = 0; j < BLOCKS; j++)
			if (buf[j * BLOCK] != 0x40 + j || buf[j * BLOCK + BLOCK - 1] != 0x40 + j)
				break;
		EXPECT_EQ(BLOCKS, j);
	}

	/* A read across the end of the file is short; one at the end reads 0. */
	cbs[0] = (struct iocb){ .aio_lio_opcode = IOCB_CMD_PREAD, .aio_fildes = fd,
				.aio_buf = (unsigned long)buf, .aio_nbytes = 2 * BLOCK,
				.aio_offset = (BLOCKS - 1) * BLOCK };
	ASSERT_EQ(1, io_submit1(ctx, &cbs[0]));
	ASSERT_EQ(1, syscall(SYS_io_getevents, ctx, 1, 1, ev, NULL));
	EXPECT_EQ(BLOCK, ev[0].res);
	cbs[0].aio_offset = BLOCKS * BLOCK;
	ASSERT_EQ(1, io_submit1(ctx, &cbs[0]));
	ASSERT_EQ(1, syscall(SYS_io_getevents, ctx, 1, 1, ev, NULL));
	EXPECT_EQ(0, ev[0].res);

	/* Not open for writing: EBADF at submit time. */
	close(fd);
	fd = open(path, O_RDONLY | O_DIRECT);
	ASSERT_LE(0, fd);
	cbs[0] = (struct iocb){ .aio_lio_opcode = IOCB_CMD_PWRITE, .aio_fildes = fd,
				.aio_buf = (unsigned long)buf, .aio_nbytes = BLOCK };
	EXPECT_EQ(-1, io_submit1(ctx, &cbs[0]));
	EXPECT_EQ(EBADF, errno);

	EXPECT_EQ(0, syscall(SYS_io_destroy, ctx));
	close(fd);
	unlink(path);
	free(buf);
}

TEST_HARNESS_MAIN
