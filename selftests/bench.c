// SPDX-License-Identifier: GPL-2.0
/*
 * bench: the submit-and-reap hot path of rust_aio next to its peers, in one
 * guest run (make bench, on the benchmark kernel). Every figure is ns per
 * operation: the median of REPS repetitions (7; BENCH_REPS), with min and
 * max, and a ratio to its peer measured in the same run, since absolute
 * times under TCG mean nothing across runs.
 *
 *   syscall            getppid(): the floor
 *   uring_nop_bN       io_uring NOP, batch N: io_uring_submit_and_wait + CQ reap
 *   aio_poll_bN_sys    native aio IOCB_CMD_POLL on a ready eventfd (fs/aio.c's
 *                      nearest no-op), batch N, reaped by io_getevents()
 *   aio_poll_bN_ring   the same, reaped from fs/aio.c's mapped ring
 *   rust_noop_bN_ioctl rust_aio IOCB_CMD_NOOP, batch N, reaped by GETEVENTS
 *   rust_noop_bN_ring  the same, reaped from the mapped ring (as libaio's and
 *                      fio's userspace_reap)
 *   rust_noop_b32_2t   two threads, each on its own context, batch 32 from the
 *                      ring: ns per operation of both together
 *   aio_ring_move      move_pages(2) of kernel aio's ring page 0 between the
 *                      nodes, ns per move verified by asking where it is
 *   rust_ring_move     the same call on rust_aio's ring page 0
 *
 * Output: a table, then the same as CSV between "@@BENCH_CSV@@" lines for
 * make bench to keep under build/bench/.
 */
#define _GNU_SOURCE
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>

#include "rust_aio_test.h"

#define MAX_BATCH 32
#define OPS 20000

struct figure {
	const char *name, *peer;
	double median, min, max;
};

static int reps = 7;
static struct figure figures[32];
static int nfigures;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Runs `one(arg)` (which does `ops` operations) reps times: ns per op. */
static void measure(const char *name, const char *peer, long (*one)(void *, int), void *arg,
		    int batch)
{
	double samples[64], start;
	struct figure *f = &figures[nfigures++];
	long done;
	int i;

	one(arg, batch); /* warm up */
	for (i = 0; i < reps; i++) {
		start = now_ns();
		done = one(arg, batch);
		if (done <= 0) {
			fprintf(stderr, "bench: %s failed\n", name);
			exit(1);
		}
		samples[i] = (now_ns() - start) / done;
	}
	qsort(samples, reps, sizeof(samples[0]), cmp_double);
	*f = (struct figure){ name, peer, samples[reps / 2], samples[0], samples[reps - 1] };
	printf("# %-20s %9.0f ns/op (min %.0f, max %.0f)\n", name, f->median, f->min, f->max);
	fflush(stdout);
}

static const struct figure *peer_of(const struct figure *f)
{
	int j;

	for (j = 0; f->peer && j < nfigures; j++)
		if (!strcmp(figures[j].name, f->peer))
			return &figures[j];
	return NULL;
}

/* ---- floor ---------------------------------------------------------------- */

static long run_syscall(void *arg, int batch)
{
	long i;

	for (i = 0; i < OPS; i++)
		syscall(SYS_getppid);
	return OPS;
}

/* ---- io_uring -------------------------------------------------------------- */

static long run_uring(void *arg, int batch)
{
	struct io_uring *ring = arg;
	struct io_uring_cqe *cqe;
	long done = 0;
	int i;

	while (done < OPS) {
		for (i = 0; i < batch; i++)
			io_uring_prep_nop(io_uring_get_sqe(ring));
		if (io_uring_submit_and_wait(ring, batch) != batch)
			return -1;
		for (i = 0; i < batch; i++) {
			if (io_uring_peek_cqe(ring, &cqe) || cqe->res != 0)
				return -1;
			io_uring_cqe_seen(ring, cqe);
		}
		done += batch;
	}
	return done;
}

/* ---- native aio ------------------------------------------------------------- */

struct native {
	aio_context_t ctx;
	struct iocb cbs[MAX_BATCH], *list[MAX_BATCH];
	bool from_ring;
};

static long run_native(void *arg, int batch)
{
	struct native *a = arg;
	struct io_event ev[MAX_BATCH];
	long done = 0;
	int got;

	while (done < OPS) {
		if (syscall(SYS_io_submit, a->ctx, batch, a->list) != batch)
			return -1;
		for (got = 0; got < batch;) {
			int n = a->from_ring ? rust_aio_user_reap(a->ctx, ev, batch - got)
					     : syscall(SYS_io_getevents, a->ctx, 1, batch - got, ev, NULL);
			if (n < 0)
				return -1;
			got += n;
		}
		done += batch;
	}
	return done;
}

/* ---- rust_aio --------------------------------------------------------------- */

struct rust {
	int fd;
	aio_context_t ctx;
	struct iocb cbs[MAX_BATCH], *list[MAX_BATCH];
	bool from_ring;
};

static long run_rust(void *arg, int batch)
{
	struct rust *r = arg;
	struct io_event ev[MAX_BATCH];
	long done = 0;
	int got;

	while (done < OPS) {
		if (rust_aio_submit(r->fd, r->ctx, batch, r->list) != batch)
			return -1;
		for (got = 0; got < batch;) {
			int n = r->from_ring ? rust_aio_user_reap(r->ctx, ev, batch - got)
					     : rust_aio_getevents(r->fd, r->ctx, 1, batch - got, ev,
								  NULL);
			if (n < 0)
				return -1;
			got += n;
		}
		done += batch;
	}
	return done;
}

static void rust_init(struct rust *r, int fd, bool from_ring)
{
	int i;

	r->fd = fd;
	r->from_ring = from_ring;
	if (rust_aio_setup(fd, 256, &r->ctx)) {
		perror("bench: rust_aio setup");
		exit(1);
	}
	for (i = 0; i < MAX_BATCH; i++) {
		r->cbs[i] = (struct iocb){ .aio_lio_opcode = IOCB_CMD_NOOP, .aio_data = i };
		r->list[i] = &r->cbs[i];
	}
}

static void *rust_thread(void *arg)
{
	return (void *)run_rust(arg, MAX_BATCH);
}

/* Two threads, two contexts: total ops over the slower thread's time. */
static long run_rust_2t(void *arg, int batch)
{
	struct rust *r = arg;
	pthread_t t[2];
	void *ret;
	long done = 0;
	int i;

	for (i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, rust_thread, &r[i]);
	for (i = 0; i < 2; i++) {
		pthread_join(t[i], &ret);
		if ((long)ret < 0)
			return -1;
		done += (long)ret;
	}
	return done;
}

/* ---- ring page moves ---------------------------------------------------------- */

#define MOVES 500

/* Moves the ring page at arg back and forth between nodes 0 and 1: ns per
 * move seen to happen (the kernel is asked where the page is after each). */
static long run_move(void *arg, int batch)
{
	void *page = arg;
	int node, status, where, i;
	long moved = 0;

	for (i = 0; i < MOVES; i++) {
		node = i & 1;
		if (syscall(SYS_move_pages, 0, 1, &page, &node, &status, 2 /* MPOL_MF_MOVE */) < 0 ||
		    syscall(SYS_move_pages, 0, 1, &page, NULL, &where, 0) < 0)
			return -1;
		moved += where == node;
	}
	return moved;
}

int main(void)
{
	static struct rust rust_ioctl, rust_ring, rust_two[2];
	static struct native aio_sys, aio_ring;
	const char *env = getenv("BENCH_REPS");
	struct io_uring uring;
	int fd, efd, i, b;
	const int batches[] = { 1, 32 };
	char name[64];

	if (env && atoi(env) >= 5 && atoi(env) <= 64)
		reps = atoi(env);
	printf("# bench: %d repetitions of %d operations per figure\n", reps, OPS);
	fd = rust_aio_open();
	efd = eventfd(1, EFD_CLOEXEC);
	if (fd < 0 || efd < 0 || io_uring_queue_init(64, &uring, 0)) {
		fprintf(stderr, "bench: cannot open the device, an eventfd or io_uring\n");
		return 1;
	}
	rust_init(&rust_ioctl, fd, false);
	rust_init(&rust_ring, fd, true);
	rust_init(&rust_two[0], fd, true);
	rust_init(&rust_two[1], fd, true);
	if (syscall(SYS_io_setup, 256, &aio_sys.ctx) || syscall(SYS_io_setup, 256, &aio_ring.ctx)) {
		perror("bench: io_setup");
		return 1;
	}
	aio_ring.from_ring = true;
	for (i = 0; i < MAX_BATCH; i++) {
		struct iocb poll = { .aio_lio_opcode = IOCB_CMD_POLL, .aio_fildes = efd,
				     .aio_buf = POLLIN, .aio_data = i };

		aio_sys.cbs[i] = aio_ring.cbs[i] = poll;
		aio_sys.list[i] = &aio_sys.cbs[i];
		aio_ring.list[i] = &aio_ring.cbs[i];
	}

	measure("syscall", NULL, run_syscall, NULL, 1);
	for (b = 0; b < 2; b++) {
		int n = batches[b];
		char *uring_name = strdup((snprintf(name, sizeof(name), "uring_nop_b%d", n), name));
		char *sys_name = strdup((snprintf(name, sizeof(name), "aio_poll_b%d_sys", n), name));

		measure(uring_name, "syscall", run_uring, &uring, n);
		measure(sys_name, "syscall", run_native, &aio_sys, n);
		measure(strdup((snprintf(name, sizeof(name), "aio_poll_b%d_ring", n), name)),
			sys_name, run_native, &aio_ring, n);
		measure(strdup((snprintf(name, sizeof(name), "rust_noop_b%d_ioctl", n), name)),
			sys_name, run_rust, &rust_ioctl, n);
		measure(strdup((snprintf(name, sizeof(name), "rust_noop_b%d_ring", n), name)),
			uring_name, run_rust, &rust_ring, n);
	}
	measure("rust_noop_b32_2t", "rust_noop_b32_ring", run_rust_2t, rust_two, MAX_BATCH);
	if (access("/sys/devices/system/node/node1", F_OK) == 0) {
		measure("aio_ring_move", NULL, run_move, (void *)aio_sys.ctx, 1);
		measure("rust_ring_move", "aio_ring_move", run_move, (void *)rust_ring.ctx, 1);
	}

	printf("\n%-20s %10s %10s %10s  %-20s %7s\n", "figure", "median_ns", "min_ns", "max_ns",
	       "peer", "ratio");
	for (i = 0; i < nfigures; i++) {
		const struct figure *f = &figures[i], *p = peer_of(f);

		printf("%-20s %10.0f %10.0f %10.0f  %-20s %7.2f\n", f->name, f->median, f->min,
		       f->max, p ? p->name : "-", p ? f->median / p->median : 1.0);
	}
	printf("@@BENCH_CSV@@\nfigure,median_ns,min_ns,max_ns,peer,ratio\n");
	for (i = 0; i < nfigures; i++) {
		const struct figure *f = &figures[i], *p = peer_of(f);

		printf("%s,%.0f,%.0f,%.0f,%s,%.3f\n", f->name, f->median, f->min, f->max,
		       p ? p->name : "", p ? f->median / p->median : 1.0);
	}
	printf("@@BENCH_CSV@@\n");
	return 0;
}
