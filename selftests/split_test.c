// SPDX-License-Identifier: GPL-2.0
/*
 * The ring mapping splits like fs/aio.c's: munmap, mprotect, mmap(MAP_FIXED),
 * mbind and madvise(MADV_DONTFORK) of one page of a three-page ring, and
 * mremap of one page, against native aio as the oracle; then the ring keeps
 * working with the pieces it has left (events through the whole ring, reaped
 * by GETEVENTS), its pages still mapped migrate, DESTROY and exit are clean.
 */
#define _GNU_SOURCE
#include <linux/mempolicy.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "rust_aio_test.h"
#include "aio_way.h"

#define PG 4096UL
/* Three pages: 32 + 302 * 32 bytes round up to 12 KiB, 383 slots. */
#define EVENTS 300
#define PAGES 3
/* Enough to go round the ring once: every page gets events. */
#define TRAFFIC 500

enum split {
	MUNMAP, MPROTECT, MAP_OVER, MBIND, DONTFORK, MREMAP_PAGE0, MREMAP_PAGE1, NR_SPLITS
};
static const char *const names[] = {
	"munmap page 1", "mprotect page 1 read-only", "mmap(MAP_FIXED) over page 1",
	"mbind page 1", "madvise(MADV_DONTFORK) page 1", "mremap page 0 away",
	"mremap page 1 away",
};

struct split_result {
	long op;		/* the call that splits: 0 or -errno */
	long vmas;		/* mappings of the ring's file afterwards */
	long old_id, new_id;	/* SUBMIT through the old id and the moved one */
	long reaped;		/* of TRAFFIC events, through GETEVENTS, in order */
	long destroyed;
	long left_mapped;	/* after DESTROY: bit i, page i still mapped at the
				 * ring's address; bit 3, the moved page */
};

static long way_setup_n(struct aio_way *w, bool rust, unsigned int nr)
{
	w->rust = rust;
	w->dev = rust ? rust_aio_open() : -1;
	w->ctx = 0;
	return rust ? rust_aio_setup(w->dev, nr, &w->ctx) : syscall(SYS_io_setup, nr, &w->ctx);
}

static long way_destroy(struct aio_way *w, aio_context_t ctx)
{
	long r = w->rust ? rust_aio_destroy(w->dev, ctx) : syscall(SYS_io_destroy, ctx);

	return r < 0 ? -errno : r;
}

/* Mappings in /proc/self/maps whose name contains `name`. */
static long count_vmas(const char *name)
{
	char line[512];
	long n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, name) != NULL;
	if (f)
		fclose(f);
	return n;
}

/* Whether the page at addr is mapped at all. */
static bool mapped(unsigned long addr)
{
	unsigned char vec;

	return mincore((void *)addr, PG, &vec) == 0;
}

/* POLLs of a ready eventfd, in batches, each reaped through GETEVENTS in order. */
static long traffic(struct aio_way *w, aio_context_t ctx, int efd)
{
	static struct iocb cbs[50];
	struct iocb *list[50];
	struct io_event ev[50];
	struct timespec ts = { .tv_sec = 5 };
	long done = 0;
	int i;

	while (done < TRAFFIC) {
		long n, got = 0;

		for (i = 0; i < 50; i++) {
			cbs[i] = (struct iocb){ .aio_lio_opcode = IOCB_CMD_POLL, .aio_fildes = efd,
						.aio_buf = POLLIN, .aio_data = done + i };
			list[i] = &cbs[i];
		}
		n = w->rust ? rust_aio_submit(w->dev, ctx, 50, list) :
			      syscall(SYS_io_submit, ctx, 50, list);
		if (n != 50)
			return done;
		while (got < 50) {
			n = w->rust ? rust_aio_getevents(w->dev, ctx, 1, 50 - got, ev + got, &ts) :
				      syscall(SYS_io_getevents, ctx, 1, 50 - got, ev + got, &ts);
			if (n <= 0)
				return done;
			got += n;
		}
		for (i = 0; i < 50; i++)
			if (ev[i].data != (__u64)(done + i) || ev[i].res != POLLIN)
				return done;
		done += 50;
	}
	return done;
}

static struct split_result run_split(bool rust, enum split s)
{
	struct split_result r = { 0 };
	struct aio_way w;
	unsigned long base, ctx, moved = 0;
	int efd = eventfd(1, 0), i;
	const char *name = rust ? "[rust_aio]" : "[aio]";
	void *p;

	if (efd < 0 || way_setup_n(&w, rust, EVENTS))
		exit(1);
	base = ctx = w.ctx;
	switch (s) {
	case MUNMAP:
		r.op = munmap((void *)(base + PG), PG);
		break;
	case MPROTECT:
		r.op = mprotect((void *)(base + PG), PG, PROT_READ);
		break;
	case MAP_OVER:
		p = mmap((void *)(base + PG), PG, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		r.op = p == MAP_FAILED ? -1 : 0;
		break;
	case MBIND: {
		unsigned long nodes = 1UL << 1;

		r.op = syscall(SYS_mbind, base + PG, PG, MPOL_BIND, &nodes, 8 * sizeof(nodes),
			       MPOL_MF_MOVE);
		break;
	}
	case DONTFORK:
		r.op = madvise((void *)(base + PG), PG, MADV_DONTFORK);
		break;
	case MREMAP_PAGE0:
	case MREMAP_PAGE1: {
		unsigned long page = s == MREMAP_PAGE0 ? base : base + PG;

		/*
		 * Room for a whole ring there: fs/aio.c's DESTROY unmaps its size from
		 * the id, whatever is there (its ring has twice the slots: 5 pages).
		 */
		p = mmap(NULL, 16 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			exit(1);
		p = mremap((void *)page, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, p);
		r.op = p == MAP_FAILED ? -1 : 0;
		moved = (unsigned long)p;
		break;
	}
	default:
		break;
	}
	if (r.op)
		r.op = -errno;
	r.vmas = count_vmas(name);
	if (moved) {
		struct iocb cb = { .aio_lio_opcode = IOCB_CMD_POLL, .aio_fildes = efd,
				   .aio_buf = POLLIN };
		struct io_event ev;

		/* Which id names the context now: its old one, or the moved page's. */
		r.old_id = way_submit(&(struct aio_way){ w.rust, w.dev, base }, &cb);
		r.new_id = way_submit(&(struct aio_way){ w.rust, w.dev, moved }, &cb);
		if (r.new_id == 1)
			ctx = moved;
		if (r.old_id == 1 || r.new_id == 1)
			way_reap(&(struct aio_way){ w.rust, w.dev, ctx }, &ev);
	}
	r.reaped = traffic(&w, ctx, efd);
	r.destroyed = way_destroy(&w, ctx);
	for (i = 0; i < PAGES; i++)
		r.left_mapped |= (long)((s != MAP_OVER || i != 1) && mapped(base + i * PG)) << i;
	if (moved)
		r.left_mapped |= (long)mapped(moved) << 3;
	if (w.rust)
		close(w.dev);
	close(efd);
	return r;
}

/* Each case in a process of its own: the pieces one leaves behind stay out of the next. */
static struct split_result split_case(bool rust, enum split s)
{
	struct split_result r;
	int p[2], status;
	pid_t pid;

	if (pipe(p))
		exit(1);
	pid = fork();
	if (pid == 0) {
		r = run_split(rust, s);
		_exit(write(p[1], &r, sizeof(r)) == sizeof(r) ? 0 : 1);
	}
	if (read(p[0], &r, sizeof(r)) != sizeof(r))
		memset(&r, 0xff, sizeof(r));
	waitpid(pid, &status, 0);
	close(p[0]);
	close(p[1]);
	return r;
}

TEST(ring_mapping_splits_like_native_aio)
{
	int s, mismatches = 0;

	for (s = 0; s < NR_SPLITS; s++) {
		struct split_result want = split_case(false, s), got = split_case(true, s);
		bool same = !memcmp(&want, &got, sizeof(want));

		TH_LOG("%-30s aio: op %ld, %ld mappings, ids %ld/%ld, %ld events, destroy %ld, "
		       "pages left %#lx%s", names[s], want.op, want.vmas, want.old_id, want.new_id,
		       want.reaped, want.destroyed, want.left_mapped,
		       same ? "" : " <- rust_aio differs:");
		if (same)
			continue;
		mismatches++;
		TH_LOG("%-30s rust_aio: op %ld, %ld mappings, ids %ld/%ld, %ld events, destroy %ld, "
		       "pages left %#lx", "", got.op, got.vmas, got.old_id, got.new_id, got.reaped,
		       got.destroyed, got.left_mapped);
	}
	EXPECT_EQ(0, mismatches);
	/* The oracle says what some are: the cases test something. */
	EXPECT_EQ(2, split_case(false, MUNMAP).vmas);
	EXPECT_EQ(3, split_case(false, MPROTECT).vmas);
	EXPECT_EQ(TRAFFIC, split_case(false, MAP_OVER).reaped);
}

/* The node of each page of [addr, addr + n pages), or -errno. */
static void nodes_of(unsigned long addr, int n, int *status)
{
	void *pages[PAGES];
	int i;

	for (i = 0; i < n; i++)
		pages[i] = (void *)(addr + i * PG);
	if (syscall(SYS_move_pages, 0, n, pages, NULL, status, 0))
		for (i = 0; i < n; i++)
			status[i] = -errno;
}

static int move_to(unsigned long addr, int node)
{
	void *page = (void *)addr;
	int status = -1;

	if (syscall(SYS_move_pages, 0, 1, &page, &node, &status, MPOL_MF_MOVE))
		return -errno;
	return status;
}

/*
 * With page 1 unmapped: pages 0 and 2 still migrate between the nodes under
 * traffic (the ring's events stay exact); a forked child inherits no piece
 * (the ring is VM_DONTCOPY, as 7.x's fs/aio.c makes it) and exits clean with
 * pieces of a ring of its own; a piece cannot be mremapped (only the whole
 * ring, as 7.x's aio_ring_mremap()), and the id stays.
 */
TEST(pieces_migrate_and_die_cleanly)
{
	struct aio_way w;
	int efd = eventfd(1, 0), status[PAGES], round, node, moved = 0;
	unsigned long base;
	void *dest;
	pid_t pid;

	ASSERT_LE(0, efd);
	ASSERT_EQ(0, way_setup_n(&w, true, EVENTS));
	base = w.ctx;
	ASSERT_EQ(TRAFFIC, traffic(&w, w.ctx, efd));
	ASSERT_EQ(0, munmap((void *)(base + PG), PG));
	/* Faulted in: move_pages moves only pages that are mapped in. */
	ASSERT_NE(0, *(volatile __u32 *)(base + 4) + *(volatile __u32 *)(base + 2 * PG));
	for (round = 0; round < 20; round++) {
		node = round % 2 ? 0 : 1;
		moved += move_to(base, node) == node;
		moved += move_to(base + 2 * PG, node) == node;
		nodes_of(base, 1, &status[0]);
		nodes_of(base + 2 * PG, 1, &status[2]);
		EXPECT_EQ(node, status[0]);
		EXPECT_EQ(node, status[2]);
		ASSERT_EQ(TRAFFIC, traffic(&w, w.ctx, efd)) TH_LOG("round %d", round);
	}
	TH_LOG("%d verified moves of the two pages still mapped", moved);
	EXPECT_EQ(40, moved);

	/* A child, which inherits no piece, with a context of its own. */
	ASSERT_EQ(0, madvise((void *)(base + 2 * PG), PG, MADV_DONTFORK));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct aio_way c;
		/* Before its own ring, which may land where the parent's was. */
		bool inherited = mapped(base) || mapped(base + 2 * PG);

		if (way_setup_n(&c, true, EVENTS) || munmap((void *)(c.ctx + PG), PG) ||
		    traffic(&c, c.ctx, efd) != TRAFFIC)
			_exit(1);
		/* Exit with its own context's pieces mapped, no DESTROY. */
		_exit(inherited ? 2 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status[0], 0));
	EXPECT_TRUE(WIFEXITED(status[0]) && WEXITSTATUS(status[0]) == 0);

	/* The header's piece does not move, and the id stays. */
	dest = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, dest);
	EXPECT_EQ(MAP_FAILED, mremap((void *)base, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, dest));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_TRUE(mapped(base));
	EXPECT_EQ(TRAFFIC, traffic(&w, w.ctx, efd));
	EXPECT_EQ(0, move_to(w.ctx, 0));
	EXPECT_EQ(0, rust_aio_destroy(w.dev, w.ctx));
	EXPECT_FALSE(mapped(w.ctx));
	close(w.dev);
	close(efd);
}

TEST_HARNESS_MAIN
