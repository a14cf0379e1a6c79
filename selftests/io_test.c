// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's scratch disk and native aio on it: the oracle the module's
 * file I/O is compared against (here and in rw_test.c, poll_test.c).
 * qemu/run attaches an ext4 image as a virtio-blk disk and mounts it at
 * $RUST_AIO_SCRATCH; here native aio (the io_* system calls) writes and reads
 * O_DIRECT blocks on it, with exact results, and the reads are seen to
 * complete from the disk's interrupt.
 *
 * Then FSYNC/FDSYNC through the module against native aio (the same iocbs
 * through both, the same submit results and events), and teardown with
 * O_DIRECT reads still queued on the disk.
 */
#define _GNU_SOURCE /* O_DIRECT */
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "kselftest_harness.h"
#include "rust_aio_test.h"
#include "aio_way.h"

#define BLOCK 4096
#define BLOCKS 16

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

/* An FSYNC/FDSYNC case: what SUBMIT says and, if it queued, the event. */
struct sync_result {
	long submitted;
	long long res, res2;
	unsigned long long data;
	unsigned long long signals;
};

static struct sync_result sync_case(bool rust, int fd, int opcode, int variant)
{
	struct sync_result r = { 0 };
	struct aio_way w;
	struct io_event ev;
	struct iocb cb = { .aio_lio_opcode = opcode, .aio_fildes = fd, .aio_data = 77 };
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	switch (variant) {
	case 1: cb.aio_buf = 4096; break;
	case 2: cb.aio_nbytes = 1; break;
	case 3: cb.aio_offset = 1; break;
	case 4: cb.aio_rw_flags = 1; break;
	case 5: cb.aio_flags = IOCB_FLAG_RESFD; cb.aio_resfd = efd; break;
	}
	way_setup(&w, rust);
	r.submitted = way_submit(&w, &cb);
	if (r.submitted == 1 && way_reap(&w, &ev) == 1) {
		r.res = ev.res;
		r.res2 = ev.res2;
		r.data = ev.data;
	}
	/*
	 * Both post the event before they signal the eventfd (fs/aio.c's
	 * aio_complete()): the reaper may see the event first, so wait for
	 * the signal a little when the request was queued.
	 */
	if (r.submitted == 1 && cb.aio_flags & IOCB_FLAG_RESFD)
		poll(&(struct pollfd){ .fd = efd, .events = POLLIN }, 1, 2000);
	if (read(efd, &r.signals, sizeof(r.signals)) != sizeof(r.signals))
		r.signals = 0;
	way_teardown(&w);
	close(efd);
	return r;
}

/* Read merges the scratch disk has seen (its block device's stat, field 2). */
static long read_merges(void)
{
	char path[300];
	long merges = -1;
	struct stat st;
	FILE *f;

	if (stat(scratch(), &st))
		return -1;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/stat", major(st.st_dev),
		 minor(st.st_dev));
	f = fopen(path, "r");
	if (f && fscanf(f, "%*s %ld", &merges) != 1)
		merges = -1;
	if (f)
		fclose(f);
	return merges;
}

/* One submit of BLOCKS adjacent O_DIRECT reads of `fd`, all reaped: the read
 * merges the disk saw meanwhile. */
static long merges_of_one_submit(struct aio_way *w, int fd, unsigned char *buf)
{
	struct iocb cbs[BLOCKS], *list[BLOCKS];
	struct io_event ev[BLOCKS];
	long before = read_merges(), n;
	int i;

	for (i = 0; i < BLOCKS; i++) {
		cbs[i] = (struct iocb){ .aio_lio_opcode = IOCB_CMD_PREAD, .aio_fildes = fd,
					.aio_buf = (unsigned long)(buf + i * BLOCK),
					.aio_nbytes = BLOCK, .aio_offset = (long long)i * BLOCK };
		list[i] = &cbs[i];
	}
	n = w->rust ? rust_aio_submit(w->dev, w->ctx, BLOCKS, list) :
		      syscall(SYS_io_submit, w->ctx, BLOCKS, list);
	if (n != BLOCKS)
		return -1;
	for (i = 0; i < BLOCKS; i++)
		if (way_reap(w, &ev[i]) != 1 || ev[i].res != BLOCK)
			return -1;
	return read_merges() - before;
}

/* A submit of more than two iocbs plugs the block layer, as fs/aio.c's
 * io_submit() does (AIO_PLUG_THRESHOLD): adjacent O_DIRECT reads reach the
 * disk merged, as many merges as native aio's for the same submit. */
TEST(submit_plugs_like_native_aio)
{
	unsigned char *buf;
	struct aio_way w;
	long native, rust;
	char path[256];
	int fd;

	ASSERT_NE(NULL, scratch());
	ASSERT_LE(0, read_merges());
	snprintf(path, sizeof(path), "%s/io_test_plug.%d", scratch(), getpid());
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, posix_memalign((void **)&buf, BLOCK, BLOCK * BLOCKS));
	memset(buf, 0x5a, BLOCK * BLOCKS);
	/* Written and synced in one go: one extent, adjacent on the disk. */
	ASSERT_EQ(BLOCK * BLOCKS, write(fd, buf, BLOCK * BLOCKS));
	ASSERT_EQ(0, fsync(fd));
	close(fd);
	fd = open(path, O_RDONLY | O_DIRECT);
	/* Gone from the scratch disk whatever happens next. */
	unlink(path);
	ASSERT_LE(0, fd);

	way_setup(&w, false);
	native = merges_of_one_submit(&w, fd, buf);
	way_teardown(&w);
	way_setup(&w, true);
	rust = merges_of_one_submit(&w, fd, buf);
	way_teardown(&w);
	printf("# read merges of one submit of %d adjacent reads: native %ld, rust_aio %ld\n",
	       BLOCKS, native, rust);
	/* Plugged, the adjacent reads merge: the test can tell. */
	EXPECT_LT(0, native);
	EXPECT_EQ(native, rust);
	close(fd);
	free(buf);
}

TEST(fsync_fdsync_like_native_aio)
{
	char path[2][256];
	int fds[5], pipefd[2], i, op, variant;
	const int opcodes[] = { IOCB_CMD_FSYNC, IOCB_CMD_FDSYNC };

	ASSERT_NE(NULL, scratch());
	snprintf(path[0], sizeof(path[0]), "%s/fsync.%d", scratch(), getpid());
	snprintf(path[1], sizeof(path[1]), "/tmp/fsync.%d", getpid());
	ASSERT_EQ(0, pipe(pipefd));
	fds[0] = open(path[0], O_CREAT | O_RDWR, 0600);		/* ext4 on virtio-blk */
	fds[1] = open(path[1], O_CREAT | O_RDWR, 0600);		/* tmpfs */
	fds[2] = pipefd[0];					/* no fsync */
	fds[3] = open(path[0], O_RDONLY);			/* read-only: fsync is fine */
	fds[4] = 1000;						/* not open */
	for (i = 0; i < 4; i++)
		ASSERT_LE(0, fds[i]);
	ASSERT_EQ(5, write(fds[0], "dirty", 5));
	ASSERT_EQ(5, write(fds[1], "dirty", 5));

	for (op = 0; op < 2; op++)
		for (i = 0; i < 5; i++)
			for (variant = 0; variant <= 5; variant++) {
				struct sync_result want = sync_case(false, fds[i], opcodes[op], variant);
				struct sync_result got = sync_case(true, fds[i], opcodes[op], variant);

				TH_LOG("opcode %d, fd %d, variant %d: aio %ld/%lld, rust_aio %ld/%lld",
				       opcodes[op], i, variant, want.submitted, want.res,
				       got.submitted, got.res);
				EXPECT_EQ(want.submitted, got.submitted);
				EXPECT_EQ(want.res, got.res);
				EXPECT_EQ(want.res2, got.res2);
				EXPECT_EQ(want.data, got.data);
				EXPECT_EQ(want.signals, got.signals);
			}
	/* The oracle says what these are: the cases are not vacuous. */
	EXPECT_EQ(1, sync_case(false, fds[0], IOCB_CMD_FSYNC, 0).submitted);
	EXPECT_EQ(-EINVAL, sync_case(false, fds[2], IOCB_CMD_FSYNC, 0).submitted);
	EXPECT_EQ(-EBADF, sync_case(false, fds[4], IOCB_CMD_FSYNC, 0).submitted);
	EXPECT_EQ(1, sync_case(true, fds[1], IOCB_CMD_FDSYNC, 5).signals);

	for (i = 0; i < 4; i++)
		close(fds[i]);
	close(pipefd[1]);
	unlink(path[0]);
	unlink(path[1]);
}

/*
 * Teardown with reads queued on the disk: DESTROY, closing the device and
 * SIGKILL of the process end a context while O_DIRECT reads of it are in
 * flight on the virtio-blk disk. Each must wait for them (no use-after-free:
 * KASAN watches), and every file reference must be dropped: the scratch file
 * system unmounts afterwards. A queued read cannot be cancelled (EINVAL, as
 * native aio says).
 */
/*
 * 3 s of reads at the disk's 16 MiB/s: some must still be in flight when
 * SUBMIT returns, even on a machine at a third of the speed (under a CPU hog,
 * 16 MiB had all been read by then).
 */
#define BIG (48 << 20)
#define READS 64

enum ending { BY_DESTROY, BY_CLOSE, BY_KILL };

/* Submits READS O_DIRECT reads of the big file; returns how many were still in flight. */
static int queue_reads(int dev, aio_context_t ctx, const char *path, bool *cancel_ok)
{
	static struct iocb cbs[READS];
	struct iocb *list[READS];
	struct io_event ev[READS];
	struct timespec zero = { 0 };
	void *buf;
	int fd = open(path, O_RDONLY | O_DIRECT), i, done;

	if (fd < 0 || posix_memalign(&buf, BLOCK, BIG))
		return -1;
	for (i = 0; i < READS; i++) {
		cbs[i] = (struct iocb){ .aio_lio_opcode = IOCB_CMD_PREAD, .aio_fildes = fd,
					.aio_buf = (unsigned long)buf + i * (BIG / READS),
					.aio_nbytes = BIG / READS,
					.aio_offset = (long long)i * (BIG / READS), .aio_data = i };
		list[i] = &cbs[i];
	}
	/* The file is held by the requests, not by this descriptor. */
	if (rust_aio_submit(dev, ctx, READS, list) != READS)
		return -1;
	close(fd);
	*cancel_ok = rust_aio_cancel(dev, ctx, &cbs[READS - 1]) == -1 && errno == EINVAL;
	done = rust_aio_getevents(dev, ctx, 0, READS, ev, &zero);
	return done < 0 ? -1 : READS - done;
}

static int in_flight_at_teardown(enum ending how, const char *path, bool *cancel_ok)
{
	aio_context_t ctx;
	int dev = rust_aio_open(), n, pipefd[2];
	pid_t child;

	if (how != BY_KILL) {
		if (dev < 0 || rust_aio_setup(dev, READS, &ctx))
			return -1;
		n = queue_reads(dev, ctx, path, cancel_ok);
		if (how == BY_DESTROY && rust_aio_destroy(dev, ctx))
			return -1;
		close(dev);
		return n;
	}
	close(dev);
	if (pipe(pipefd))
		return -1;
	child = fork();
	if (child == 0) {
		bool ok = false;

		dev = rust_aio_open();
		if (dev < 0 || rust_aio_setup(dev, READS, &ctx))
			_exit(1);
		n = queue_reads(dev, ctx, path, &ok);
		n = ok ? n : -1;
		if (write(pipefd[1], &n, sizeof(n)) != sizeof(n))
			_exit(1);
		pause();
		_exit(0);
	}
	close(pipefd[1]);
	if (read(pipefd[0], &n, sizeof(n)) != sizeof(n))
		n = -1;
	*cancel_ok = n >= 0;
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	close(pipefd[0]);
	return n;
}

TEST(teardown_with_reads_in_flight)
{
	static const char *const names[] = { "DESTROY", "close", "SIGKILL" };
	struct iocb cb = { .aio_lio_opcode = IOCB_CMD_PREAD, .aio_nbytes = BLOCK };
	struct io_event ev;
	char path[256];
	aio_context_t ctx = 0;
	void *buf;
	int fd, i, how, tries;

	ASSERT_NE(NULL, scratch());
	snprintf(path, sizeof(path), "%s/teardown.%d", scratch(), getpid());
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_DIRECT, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, posix_memalign(&buf, BLOCK, 1 << 20));
	memset(buf, 0x5a, 1 << 20);
	for (i = 0; i < BIG >> 20; i++)
		ASSERT_EQ(1 << 20, pwrite(fd, buf, 1 << 20, (off_t)i << 20));

	/* The oracle: native aio cannot cancel a queued read either. */
	ASSERT_EQ(0, syscall(SYS_io_setup, 1, &ctx));
	cb.aio_fildes = fd;
	cb.aio_buf = (unsigned long)buf;
	ASSERT_EQ(1, io_submit1(ctx, &cb));
	EXPECT_EQ(-1, syscall(SYS_io_cancel, ctx, &cb, &ev));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(1, syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL));
	EXPECT_EQ(0, syscall(SYS_io_destroy, ctx));
	close(fd);

	for (how = BY_DESTROY; how <= BY_KILL; how++) {
		bool cancel_ok = false;
		int in_flight = in_flight_at_teardown(how, path, &cancel_ok);

		TH_LOG("%s: %d of %d reads in flight at teardown", names[how], in_flight, READS);
		EXPECT_LT(0, in_flight);
		EXPECT_TRUE(cancel_ok);
	}

	/*
	 * Every file reference is gone: the file system unmounts. The last
	 * fput() of a request completed in IRQ is deferred to a workqueue,
	 * so give that a moment (native aio does the same).
	 */
	unlink(path);
	for (tries = 0; umount(scratch()) && errno == EBUSY && tries < 500; tries++)
		usleep(10000);
	EXPECT_EQ(0, mount("/dev/vda", scratch(), "ext4", 0, NULL)) {
		TH_LOG("remount: %s", strerror(errno));
	}
	ASSERT_GT(500, tries) TH_LOG("the scratch fs is still busy after 5 s");
	TH_LOG("unmounted after %d retries", tries);
	free(buf);
}

/*
 * Exit waits for the I/O of its contexts (fs/aio.c's exit_aio()) even when
 * another task is destroying them: a child's context lives on a device file
 * the parent holds the last reference to; a thread of the parent closes it
 * (destroying the child's context, which waits for its reads) while the child
 * is killed. Once the child has been reaped its reads are over: the scratch
 * file system unmounts at the first try.
 */
/* The big file the teardown tests read: BIG bytes written, on the disk. */
static int write_big_file(const char *path)
{
	void *buf;
	int fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_DIRECT, 0600), i, ok = fd >= 0;

	if (!ok || posix_memalign(&buf, BLOCK, 1 << 20))
		return -1;
	memset(buf, 0x5a, 1 << 20);
	for (i = 0; ok && i < BIG >> 20; i++)
		ok = pwrite(fd, buf, 1 << 20, (off_t)i << 20) == 1 << 20;
	close(fd);
	free(buf);
	return ok ? 0 : -1;
}

/*
 * A child with a context on `dev` and READS reads of `path` in flight; it
 * closes its copy of the file (the parent's is then the last) and waits to be
 * killed. Returns the child's pid; *in_flight says how many reads were still
 * queued when SUBMIT returned.
 */
static pid_t child_with_reads(int dev, const char *path, int *in_flight)
{
	int pipefd[2], n = -1;
	pid_t child;

	if (pipe(pipefd))
		return -1;
	child = fork();
	if (child == 0) {
		aio_context_t ctx;
		bool ok;

		if (rust_aio_setup(dev, READS, &ctx))
			_exit(1);
		n = queue_reads(dev, ctx, path, &ok);
		close(dev);
		if (write(pipefd[1], &n, sizeof(n)) != sizeof(n))
			_exit(1);
		pause();
		_exit(0);
	}
	if (child < 0 || read(pipefd[0], &n, sizeof(n)) != sizeof(n))
		n = -1;
	*in_flight = n;
	close(pipefd[0]);
	close(pipefd[1]);
	return child;
}

struct closer {
	int dev;
	int closed;
};

static void *close_device(void *arg)
{
	struct closer *c = arg;

	close(c->dev);
	c->closed = 1;
	return NULL;
}

TEST(exit_waits_for_reads_while_close_destroys)
{
	char path[256];
	int i, round, busy = 0, in_flight = 0;

	ASSERT_NE(NULL, scratch());
	snprintf(path, sizeof(path), "%s/exit_race.%d", scratch(), getpid());
	ASSERT_EQ(0, write_big_file(path));

	for (round = 0; round < 4; round++) {
		struct closer c = { .dev = rust_aio_open() };
		pthread_t thread;
		int n;
		pid_t child;

		ASSERT_LE(0, c.dev);
		child = child_with_reads(c.dev, path, &n);
		ASSERT_LE(0, child);
		ASSERT_LE(0, n);
		in_flight += n;
		ASSERT_EQ(0, pthread_create(&thread, NULL, close_device, &c));
		/* Let the close begin destroying, then kill the owner. */
		usleep(20000 * (round + 1));
		kill(child, SIGKILL);
		ASSERT_EQ(child, waitpid(child, NULL, 0));
		if (umount(scratch())) {
			busy++;
			TH_LOG("round %d: %d reads were in flight; the child is reaped, the scratch "
			       "fs still busy (%s), close %s", round, n, strerror(errno),
			       c.closed ? "returned" : "still running");
		} else {
			ASSERT_EQ(0, mount("/dev/vda", scratch(), "ext4", 0, NULL));
		}
		pthread_join(thread, NULL);
		if (busy) {
			/* Let the reads finish, and mount the disk again for what follows. */
			for (i = 0; umount(scratch()) && i < 500; i++)
				usleep(10000);
			ASSERT_EQ(0, mount("/dev/vda", scratch(), "ext4", 0, NULL));
			break;
		}
	}
	TH_LOG("%d rounds, %d reads in flight when the child was killed", round, in_flight);
	EXPECT_LT(0, in_flight);
	EXPECT_EQ(0, busy);
	unlink(path);
}

/*
 * The other way round: the child is killed first, so its exit is destroying
 * its context (waiting for its reads) when the parent closes the file the
 * context was made through. That close must wait for the context too: once
 * it returns, the scratch file system unmounts at the first try.
 */
TEST(close_waits_for_context_exit_is_destroying)
{
	char path[256];
	int i, round, busy = 0, in_flight = 0;

	ASSERT_NE(NULL, scratch());
	snprintf(path, sizeof(path), "%s/close_race.%d", scratch(), getpid());
	ASSERT_EQ(0, write_big_file(path));

	for (round = 0; round < 2 && !busy; round++) {
		int dev = rust_aio_open(), n, status;
		pid_t child;

		ASSERT_LE(0, dev);
		child = child_with_reads(dev, path, &n);
		ASSERT_LE(0, child);
		ASSERT_LE(0, n);
		in_flight += n;
		kill(child, SIGKILL);
		/* Its exit is now destroying the context, waiting for the reads. */
		usleep(50000);
		close(dev);
		if (umount(scratch())) {
			busy++;
			TH_LOG("round %d: %d reads were in flight; close returned, the scratch fs "
			       "still busy (%s)", round, n, strerror(errno));
		}
		ASSERT_EQ(child, waitpid(child, &status, 0));
		for (i = 0; busy && umount(scratch()) && i < 500; i++)
			usleep(10000);
		ASSERT_EQ(0, mount("/dev/vda", scratch(), "ext4", 0, NULL));
	}
	TH_LOG("%d rounds, %d reads in flight when the child was killed", round, in_flight);
	EXPECT_LT(0, in_flight);
	EXPECT_EQ(0, busy);
	unlink(path);
}

TEST_HARNESS_MAIN
