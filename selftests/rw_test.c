// SPDX-License-Identifier: GPL-2.0
/*
 * IOCB_CMD_PREAD, PWRITE, PREADV and PWRITEV through rust_aio against native
 * aio as the oracle: every opcode on every kind of file below, with every
 * variant of the iocb (sizes, offsets, buffers, iovecs, RWF_* flags,
 * IOCB_FLAG_RESFD and IOCB_FLAG_IOPRIO, reserved fields), run once through
 * the io_* system calls and once through the module, from the same state of
 * the file and the buffers. The two must agree on what SUBMIT returns, on the
 * event (res, res2, data, obj), on the eventfd's count, on the buffers after
 * a read and on the file after a write.
 */
#define _GNU_SOURCE /* O_DIRECT */
#include <fcntl.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <poll.h>

#include "kselftest_harness.h"
#include "rust_aio_test.h"
#include "aio_way.h"

/* 6.12's, which the build host's headers may predate. */
#ifndef RWF_NOAPPEND
#define RWF_NOAPPEND 0x20
#endif
#ifndef RWF_ATOMIC
#define RWF_ATOMIC 0x40
#endif
#define IOPRIO(class, data) (((class) << 13) | (data))

#define BLOCK 4096
/* Four blocks and a tail: reads at the end are short. */
#define FILE_SIZE (4 * BLOCK + 100)
#define MEM_PAGES 16
#define MAX_SEGS 1100

enum target {
	T_EXT4_DIRECT, T_EXT4, T_TMPFS, T_TMPFS_DIRECT, T_RDONLY, T_WRONLY,
	T_DEVNULL, T_DIR, T_EVENTFD, T_CLOSED, NR_TARGETS
};
static const char *const target_names[] = {
	"ext4 O_DIRECT", "ext4", "tmpfs", "tmpfs O_DIRECT", "ext4 read-only",
	"ext4 write-only", "/dev/null", "directory", "eventfd", "closed fd",
};

enum variant {
	V_PLAIN, V_ZERO, V_SHORT, V_EOF, V_NEGOFF, V_UNMAPPED, V_KERNELBUF,
	V_RESFD, V_RESFD_NOT_EVENTFD, V_RESFD_CLOSED, V_IOPRIO_BE, V_IOPRIO_RT,
	V_IOPRIO_IDLE, V_IOPRIO_BADCLASS, V_IOPRIO_NONE_LEVEL, V_IOPRIO_HINT,
	V_HIPRI, V_DSYNC, V_SYNC, V_NOWAIT, V_NOWAIT_CACHED, V_APPEND, V_NOAPPEND, V_APPEND_NOAPPEND,
	V_ATOMIC, V_UNKNOWN_RWF, V_UNKNOWN_FLAG, V_UNALIGNED, V_RESERVED2,
	V_NEG_NBYTES, V_IOV3, V_IOV9, V_IOV0, V_IOV_TOO_MANY, V_IOV_UNMAPPED,
	V_IOV_BAD_SEGMENT, V_IOV_OVERFLOW, NR_VARIANTS
};
static const char *const variant_names[] = {
	"plain", "0 bytes", "short", "at EOF+", "negative offset", "unmapped buffer",
	"kernel buffer", "RESFD", "RESFD not an eventfd", "RESFD closed",
	"IOPRIO BE/4", "IOPRIO RT/0", "IOPRIO IDLE", "IOPRIO class 5",
	"IOPRIO NONE/1", "IOPRIO BE hint", "RWF_HIPRI", "RWF_DSYNC", "RWF_SYNC",
	"RWF_NOWAIT, nothing cached", "RWF_NOWAIT, all cached", "RWF_APPEND", "RWF_NOAPPEND", "RWF_APPEND|NOAPPEND",
	"RWF_ATOMIC", "RWF 0x1000", "aio_flags bit 7", "unaligned buffer",
	"aio_reserved2", "nbytes < 0", "3 segments", "9 segments", "0 segments",
	"1025 segments", "iovec unmapped", "segment unmapped", "segment overflow",
};

static const int opcodes[] = { IOCB_CMD_PREAD, IOCB_CMD_PWRITE, IOCB_CMD_PREADV,
			       IOCB_CMD_PWRITEV };

static char ext4_path[256], tmpfs_path[256];
static int fds[NR_TARGETS], efd;
static unsigned char *mem;		/* MEM_PAGES aligned pages: the buffers */
static struct iovec iov[MAX_SEGS];
/* A page no access reaches (PROT_NONE): a munmap()ed hole would be reused by the rings. */
static void *unmapped;

struct rw_result {
	long cached;		/* pages of the ext4 file cached at submission */
	long submitted;
	long long res, res2;
	unsigned long long data, obj, signals;
	uint64_t mem_sum, file_sum[2];
	long long file_size[2];
};

static uint64_t sum(const void *p, size_t len)
{
	const uint64_t *w = p;
	uint64_t h = 14695981039346656037ull;
	size_t i;

	for (i = 0; i < len / 8; i++)
		h = (h ^ w[i]) * 1099511628211ull;
	return h;
}

/* The two ways, set up once (native io_destroy() waits for RCU grace periods). */
static struct aio_way ways[2];
/* A write may have changed the files since they were last reset. */
static bool files_dirty = true;

/*
 * Both files back to the same contents, on disk and not cached (ext4): after
 * a write rewritten, always dropped from the page cache (RWF_NOWAIT reads
 * must find nothing cached).
 */
static void reset_files(void)
{
	static unsigned char pattern[FILE_SIZE];
	const char *paths[] = { ext4_path, tmpfs_path };
	int i;

	for (i = 0; i < FILE_SIZE; i++)
		pattern[i] = i * 7 + 3;
	for (i = 0; i < 2; i++) {
		int fd = open(paths[i], O_RDWR);

		if (fd < 0 || (files_dirty && (ftruncate(fd, 0) ||
		    pwrite(fd, pattern, FILE_SIZE, 0) != FILE_SIZE || fsync(fd)))) {
			perror("rw_test: reset");
			exit(1);
		}
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
	files_dirty = false;
}

static void drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	if (fd < 0 || write(fd, "1", 1) != 1) {
		perror("rw_test: drop_caches");
		exit(1);
	}
	close(fd);
}

#define FILE_PAGES ((FILE_SIZE + BLOCK - 1) / BLOCK)

/* Pages of the ext4 file in the page cache (mincore() of a mapping of it). */
static long cached_pages(void)
{
	unsigned char vec[FILE_PAGES];
	int fd = open(ext4_path, O_RDONLY), i;
	void *map = fd < 0 ? MAP_FAILED : mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	long n = -1;

	if (map != MAP_FAILED && mincore(map, FILE_SIZE, vec) == 0)
		for (n = 0, i = 0; i < FILE_PAGES; i++)
			n += vec[i] & 1;
	if (map != MAP_FAILED)
		munmap(map, FILE_SIZE);
	if (fd >= 0)
		close(fd);
	return n;
}

/*
 * What an RWF_NOWAIT case finds in the page cache decides its result, so each
 * sets it and checks it before it runs: the ext4 file wholly cached, or not
 * at all (dropping may leave a page now and then: then again).
 *
 * Not cached, a buffered RWF_NOWAIT read starts readahead and answers -EAGAIN
 * unless that read has already finished when it looks again, which on an idle
 * disk it sometimes has: the disk is kept busy meanwhile (busy_disk()), so
 * that the case has one answer.
 */
static long set_cached(bool cached)
{
	static unsigned char buf[FILE_SIZE];
	long want = cached ? FILE_PAGES : 0, now = -1;
	int tries;

	for (tries = 0; tries < 20; tries++) {
		if (cached) {
			int fd = open(ext4_path, O_RDONLY);

			if (fd < 0 || pread(fd, buf, FILE_SIZE, 0) != FILE_SIZE) {
				perror("rw_test: read to cache");
				exit(1);
			}
			close(fd);
		} else {
			int fd = open(ext4_path, O_RDONLY);

			if (fd >= 0) {
				posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
				close(fd);
			}
			drop_caches();
		}
		now = cached_pages();
		if (now == want)
			return now;
		usleep(10000);
	}
	fprintf(stderr, "rw_test: %ld of %ld pages cached, not %ld, after %d tries\n", now,
		(long)FILE_PAGES, want, tries);
	exit(1);
}

/*
 * The scratch disk kept busy: a native O_DIRECT read of BUSY_BYTES queued
 * ahead of what the case reads, which takes half a second at the disk's
 * 16 MiB/s. busy_disk(true) starts it, busy_disk(false) waits for it.
 */
#define BUSY_BYTES (8 << 20)
static char busy_path[300];

static void busy_disk(bool start)
{
	static aio_context_t ctx;
	static struct iocb cb;
	static void *buf;
	static int fd = -1;
	struct iocb *list[1] = { &cb };
	struct io_event ev;

	if (fd < 0) {
		fd = open(busy_path, O_RDONLY | O_DIRECT);
		if (fd < 0 || posix_memalign(&buf, BLOCK, BUSY_BYTES) ||
		    syscall(SYS_io_setup, 1, &ctx)) {
			perror("rw_test: busy disk");
			exit(1);
		}
	}
	if (start) {
		cb = (struct iocb){ .aio_lio_opcode = IOCB_CMD_PREAD, .aio_fildes = fd,
				    .aio_buf = (unsigned long)buf, .aio_nbytes = BUSY_BYTES };
		if (syscall(SYS_io_submit, ctx, 1, list) != 1) {
			perror("rw_test: busy disk");
			exit(1);
		}
	} else if (syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL) != 1 || ev.res != BUSY_BYTES) {
		fprintf(stderr, "rw_test: busy disk: res %lld\n", (long long)ev.res);
		exit(1);
	}
}

/* The files' contents after a case (what a write did). */
static void file_state(struct rw_result *r)
{
	static unsigned char buf[16 * BLOCK];
	const char *paths[] = { ext4_path, tmpfs_path };
	int i;

	for (i = 0; i < 2; i++) {
		int fd = open(paths[i], O_RDONLY);
		ssize_t n;

		/* The sum's last word may pass the end: no stale bytes in it. */
		memset(buf, 0, sizeof(buf));
		n = pread(fd, buf, sizeof(buf), 0);

		r->file_size[i] = lseek(fd, 0, SEEK_END);
		r->file_sum[i] = n > 0 ? sum(buf, (n + 7) & ~7) ^ n : n;
		close(fd);
	}
}

/* The iocb of a case: opcode on target's fd, as the variant says. */
static void build(struct iocb *cb, int opcode, enum target t, enum variant v)
{
	int i, vectored = opcode == IOCB_CMD_PREADV || opcode == IOCB_CMD_PWRITEV;

	*cb = (struct iocb){ .aio_lio_opcode = opcode, .aio_fildes = fds[t],
			     .aio_data = 0x1234 + v, .aio_offset = BLOCK };
	/* Plain: one block; vectored: two segments of a block each. */
	iov[0] = (struct iovec){ mem, BLOCK };
	iov[1] = (struct iovec){ mem + 2 * BLOCK, BLOCK };
	cb->aio_buf = vectored ? (unsigned long)iov : (unsigned long)mem;
	cb->aio_nbytes = vectored ? 2 : BLOCK;

	switch (v) {
	case V_PLAIN: break;
	case V_ZERO: cb->aio_nbytes = 0; break;
	case V_SHORT: cb->aio_offset = 4 * BLOCK; break;
	case V_EOF: cb->aio_offset = 8 * BLOCK; break;
	case V_NEGOFF: cb->aio_offset = -BLOCK; break;
	case V_UNMAPPED:
		if (vectored)
			iov[0].iov_base = unmapped;
		else
			cb->aio_buf = (unsigned long)unmapped;
		break;
	case V_KERNELBUF:
		if (vectored)
			iov[0].iov_base = (void *)0xffff888000000000ul;
		else
			cb->aio_buf = 0xffff888000000000ul;
		break;
	case V_RESFD: cb->aio_flags = IOCB_FLAG_RESFD; cb->aio_resfd = efd; break;
	case V_RESFD_NOT_EVENTFD:
		cb->aio_flags = IOCB_FLAG_RESFD;
		cb->aio_resfd = fds[T_EXT4];
		break;
	case V_RESFD_CLOSED: cb->aio_flags = IOCB_FLAG_RESFD; cb->aio_resfd = 1000; break;
	case V_IOPRIO_BE:
	case V_IOPRIO_RT:
	case V_IOPRIO_IDLE:
	case V_IOPRIO_BADCLASS:
	case V_IOPRIO_NONE_LEVEL:
	case V_IOPRIO_HINT: {
		static const int prio[] = { IOPRIO(2, 4), IOPRIO(1, 0), IOPRIO(3, 0),
					    IOPRIO(5, 0), IOPRIO(0, 1), IOPRIO(2, 1 << 3) };

		cb->aio_flags = IOCB_FLAG_IOPRIO;
		cb->aio_reqprio = prio[v - V_IOPRIO_BE];
		break;
	}
	case V_HIPRI: cb->aio_rw_flags = RWF_HIPRI; break;
	case V_DSYNC: cb->aio_rw_flags = RWF_DSYNC; break;
	case V_SYNC: cb->aio_rw_flags = RWF_SYNC; break;
	case V_NOWAIT:
	case V_NOWAIT_CACHED: cb->aio_rw_flags = RWF_NOWAIT; break;
	case V_APPEND: cb->aio_rw_flags = RWF_APPEND; break;
	case V_NOAPPEND: cb->aio_rw_flags = RWF_NOAPPEND; break;
	case V_APPEND_NOAPPEND: cb->aio_rw_flags = RWF_APPEND | RWF_NOAPPEND; break;
	case V_ATOMIC: cb->aio_rw_flags = RWF_ATOMIC; break;
	case V_UNKNOWN_RWF: cb->aio_rw_flags = 0x1000; break;
	case V_UNKNOWN_FLAG: cb->aio_flags = 1 << 7; break;
	case V_UNALIGNED:
		if (vectored)
			iov[0].iov_base = mem + 1;
		else
			cb->aio_buf = (unsigned long)mem + 1;
		break;
	case V_RESERVED2: cb->aio_reserved2 = 1; break;
	case V_NEG_NBYTES: cb->aio_nbytes = -1ull; break;
	case V_IOV3:
	case V_IOV9:
		/* 3 segments of a block; 9 of 512 bytes (more than UIO_FASTIOV). */
		cb->aio_nbytes = v == V_IOV3 ? 3 : 9;
		for (i = 0; i < (int)cb->aio_nbytes; i++)
			iov[i] = v == V_IOV3 ? (struct iovec){ mem + i * 2 * BLOCK, BLOCK } :
					       (struct iovec){ mem + i * 1024, 512 };
		break;
	case V_IOV0: cb->aio_nbytes = 0; break;
	case V_IOV_TOO_MANY:
		cb->aio_nbytes = 1025;
		for (i = 0; i < 1025; i++)
			iov[i] = (struct iovec){ mem, 8 };
		break;
	case V_IOV_UNMAPPED: cb->aio_buf = (unsigned long)unmapped; break;
	case V_IOV_BAD_SEGMENT: iov[1].iov_base = unmapped; break;
	case V_IOV_OVERFLOW:
		iov[0].iov_len = iov[1].iov_len = 0x7fffffffffffffffull;
		break;
	default: break;
	}
}

static struct rw_result run_case(bool rust, int opcode, enum target t, enum variant v)
{
	static struct iocb cb;
	struct rw_result r = { 0 };
	struct aio_way *w = &ways[rust];
	struct io_event ev;
	uint64_t drain;
	bool busy;
	int i;

	reset_files();
	if (v == V_NOWAIT || v == V_NOWAIT_CACHED)
		r.cached = set_cached(v == V_NOWAIT_CACHED);
	/* Only a buffered read of the ext4 file goes to the disk through readahead. */
	busy = v == V_NOWAIT && (t == T_EXT4 || t == T_RDONLY) &&
	       (opcode == IOCB_CMD_PREAD || opcode == IOCB_CMD_PREADV);
	if (busy)
		busy_disk(true);
	/* Reads land in 0xee; writes send a pattern of their own. */
	for (i = 0; i < MEM_PAGES * BLOCK; i++)
		mem[i] = (opcode == IOCB_CMD_PREAD || opcode == IOCB_CMD_PREADV) ? 0xee :
										   i * 13 + 5;
	while (read(efd, &drain, sizeof(drain)) == sizeof(drain))
		;
	build(&cb, opcode, t, v);
	r.submitted = way_submit(w, &cb);
	if (r.submitted == 1 && way_reap(w, &ev) == 1) {
		r.res = ev.res;
		r.res2 = ev.res2;
		r.data = ev.data;
		r.obj = ev.obj;
	}
	if (busy)
		busy_disk(false);
	if (r.submitted == 1 && cb.aio_flags & IOCB_FLAG_RESFD)
		poll(&(struct pollfd){ .fd = efd, .events = POLLIN }, 1, 2000);
	if (read(efd, &r.signals, sizeof(r.signals)) != sizeof(r.signals))
		r.signals = 0;
	files_dirty |= opcode == IOCB_CMD_PWRITE || opcode == IOCB_CMD_PWRITEV;
	r.mem_sum = sum(mem, MEM_PAGES * BLOCK);
	file_state(&r);
	return r;
}

FIXTURE(files) {
	int unused;
};

FIXTURE_SETUP(files)
{
	int fd;

	ASSERT_NE(NULL, scratch());
	snprintf(ext4_path, sizeof(ext4_path), "%s/rw_test.%d", scratch(), getpid());
	snprintf(tmpfs_path, sizeof(tmpfs_path), "/tmp/rw_test.%d", getpid());
	fd = open(ext4_path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	close(fd);
	snprintf(busy_path, sizeof(busy_path), "%s.busy", ext4_path);
	fd = open(busy_path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	/* Written, not sparse: O_DIRECT reads of a hole take no time on the disk. */
	ASSERT_EQ(0, posix_memalign((void **)&mem, BLOCK, 1 << 20));
	memset(mem, 0x77, 1 << 20);
	for (int i = 0; i < BUSY_BYTES >> 20; i++)
		ASSERT_EQ(1 << 20, pwrite(fd, mem, 1 << 20, (off_t)i << 20));
	ASSERT_EQ(0, fsync(fd));
	free(mem);
	close(fd);
	fd = open(tmpfs_path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	close(fd);
	fds[T_EXT4_DIRECT] = open(ext4_path, O_RDWR | O_DIRECT);
	fds[T_EXT4] = open(ext4_path, O_RDWR);
	fds[T_TMPFS] = open(tmpfs_path, O_RDWR);
	fds[T_TMPFS_DIRECT] = open(tmpfs_path, O_RDWR | O_DIRECT);
	fds[T_RDONLY] = open(ext4_path, O_RDONLY);
	fds[T_WRONLY] = open(ext4_path, O_WRONLY);
	fds[T_DEVNULL] = open("/dev/null", O_RDWR);
	fds[T_DIR] = open(scratch(), O_RDONLY | O_DIRECTORY);
	/* Non-blocking: a read of a zero count fails with EAGAIN, not waits. */
	fds[T_EVENTFD] = eventfd(0, EFD_NONBLOCK);
	fds[T_CLOSED] = 999;
	for (fd = 0; fd < T_CLOSED; fd++)
		ASSERT_LE(0, fds[fd]) TH_LOG("%s", target_names[fd]);
	efd = eventfd(0, EFD_NONBLOCK);
	ASSERT_LE(0, efd);
	ASSERT_EQ(0, posix_memalign((void **)&mem, BLOCK, MEM_PAGES * BLOCK));
	unmapped = mmap(NULL, BLOCK, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, unmapped);
	way_setup(&ways[0], false);
	way_setup(&ways[1], true);
}

FIXTURE_TEARDOWN(files)
{
	int fd;

	for (fd = 0; fd < T_CLOSED; fd++)
		close(fds[fd]);
	close(efd);
	unlink(ext4_path);
	unlink(busy_path);
	unlink(tmpfs_path);
	free(mem);
	munmap(unmapped, BLOCK);
	way_teardown(&ways[0]);
	way_teardown(&ways[1]);
}

static bool same(const struct rw_result *a, const struct rw_result *b)
{
	return a->cached == b->cached && a->submitted == b->submitted && a->res == b->res && a->res2 == b->res2 &&
	       a->data == b->data && a->obj == b->obj && a->signals == b->signals &&
	       a->mem_sum == b->mem_sum && a->file_sum[0] == b->file_sum[0] &&
	       a->file_sum[1] == b->file_sum[1] && a->file_size[0] == b->file_size[0] &&
	       a->file_size[1] == b->file_size[1];
}

/* Every opcode x file x variant: rust_aio does what native aio does. */
TEST_F_TIMEOUT(files, read_write_like_native_aio, 600)
{
	int op, t, v, cases = 0, mismatches = 0, queued = 0;
	long long outcomes[8] = { 0 };

	for (op = 0; op < 4; op++)
		for (t = 0; t < NR_TARGETS; t++)
			for (v = 0; v < NR_VARIANTS; v++) {
				struct rw_result want = run_case(false, opcodes[op], t, v);
				struct rw_result got = run_case(true, opcodes[op], t, v);

				cases++;
				queued += want.submitted == 1;
				if (same(&want, &got))
					continue;
				mismatches++;
				TH_LOG("opcode %d on %s, %s: aio %ld res %lld res2 %lld data %llx "
				       "signals %llu sizes %lld/%lld; rust_aio %ld res %lld res2 %lld "
				       "data %llx signals %llu sizes %lld/%lld%s%s",
				       opcodes[op], target_names[t], variant_names[v],
				       want.submitted, want.res, want.res2, want.data, want.signals,
				       want.file_size[0], want.file_size[1], got.submitted, got.res,
				       got.res2, got.data, got.signals, got.file_size[0],
				       got.file_size[1],
				       want.mem_sum != got.mem_sum ? ", buffers differ" : "",
				       want.file_sum[0] != got.file_sum[0] ||
				       want.file_sum[1] != got.file_sum[1] ? ", files differ" : "");
			}
	TH_LOG("%d cases (%d queued by native aio), %d differ", cases, queued, mismatches);
	EXPECT_EQ(0, mismatches);

	/* What the oracle says of a few: the cases test something. */
	outcomes[0] = run_case(false, IOCB_CMD_PREAD, T_EXT4_DIRECT, V_PLAIN).res;
	outcomes[1] = run_case(false, IOCB_CMD_PREAD, T_EXT4_DIRECT, V_SHORT).res;
	outcomes[2] = run_case(false, IOCB_CMD_PREADV, T_TMPFS, V_IOV9).res;
	outcomes[3] = run_case(false, IOCB_CMD_PWRITE, T_RDONLY, V_PLAIN).submitted;
	outcomes[4] = run_case(false, IOCB_CMD_PREAD, T_EXT4, V_NOWAIT).res;
	EXPECT_EQ(BLOCK, run_case(false, IOCB_CMD_PREAD, T_EXT4, V_NOWAIT_CACHED).res);
	outcomes[5] = run_case(false, IOCB_CMD_PREAD, T_EXT4_DIRECT, V_UNALIGNED).res;
	outcomes[6] = run_case(false, IOCB_CMD_PREADV, T_EXT4, V_IOV_TOO_MANY).submitted;
	outcomes[7] = run_case(false, IOCB_CMD_PREAD, T_DIR, V_PLAIN).submitted;
	EXPECT_EQ(BLOCK, outcomes[0]);
	EXPECT_EQ(100, outcomes[1]);
	EXPECT_EQ(9 * 512, outcomes[2]);
	EXPECT_EQ(-EBADF, outcomes[3]);
	EXPECT_EQ(-EAGAIN, outcomes[4]);
	EXPECT_EQ(-EINVAL, outcomes[5]);
	EXPECT_EQ(-EINVAL, outcomes[6]);
	EXPECT_EQ(-EINVAL, outcomes[7]);
	/* And rust_aio reads the data, not only the count. */
	EXPECT_EQ(run_case(false, IOCB_CMD_PREADV, T_EXT4_DIRECT, V_IOV3).mem_sum,
		  run_case(true, IOCB_CMD_PREADV, T_EXT4_DIRECT, V_IOV3).mem_sum);
}

TEST_HARNESS_MAIN
