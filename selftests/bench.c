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
 *   rust_noop_b32_ring_migrating[_1phase]
 *                      rust_noop_b32_ring while another thread moves every page
 *                      of that ring between the nodes without a pause, with
 *                      two-phase migration (the module's) and with fs/aio.c's
 *                      one-phase copy (debugfs one_phase)
 *   rust_noop_b32_ioctl_migrating
 *                      the same for rust_noop_b32_ioctl (reaped by GETEVENTS,
 *                      which reads the ring through the kernel's mapping)
 *   rust_noop_b32_{ring,ioctl}_100hz
 *                      the same at a realistic rate: every ring page moved
 *                      once every 10 ms (about 100 moves a second each)
 *   irqoff_{2,1}phase[_p99]
 *                      the interrupts-off window of each page migrated during
 *                      those runs (debugfs irqoff_samples): median with min and
 *                      max over all windows, and the 99th percentile
 *   {rust,aio}_ctx_bytes, _ctx_kernel_bytes
 *                      memory per context of 128 events (rust_aio against
 *                      io_setup): MemFree's drop over 1000 contexts, ring pages
 *                      included; and Slab + Percpu only (kioctx, its per-CPU
 *                      counters, and rust_aio's objects)
 *   {rust,aio}_req_bytes
 *                      Slab per request in flight, 4000 of them: rust_aio
 *                      TIMERs (an hour away) against fs/aio.c POLLs on an
 *                      eventfd that never becomes readable (aio_kiocb)
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
/* Operations per repetition: 20,000, or BENCH_OPS (make bench PROFILE=1 asks for more). */
static long ops_per_rep = 20000;
#define OPS ops_per_rep

struct figure {
	const char *name, *peer, *unit;
	double median, min, max;
};

static int reps = 7;
/* BENCH_ONLY=name[,name...]: measure only these figures (for profiling). */
static const char *only;
static struct figure figures[48];
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
	struct figure *f;
	long done;
	int i;

	if (only && !strstr(only, name))
		return;
	f = &figures[nfigures++];
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
	*f = (struct figure){ name, peer, "ns/op", samples[reps / 2], samples[0],
			      samples[reps - 1] };
	printf("# %-20s %9.0f ns/op (min %.0f, max %.0f)\n", name, f->median, f->min, f->max);
	fflush(stdout);
}

/* A figure measured elsewhere (a distribution, a size). */
static void add_figure(const char *name, const char *peer, const char *unit, double median,
		       double min, double max)
{
	if (only && !strstr(only, name))
		return;
	figures[nfigures++] = (struct figure){ name, peer, unit, median, min, max };
	printf("# %-20s %9.0f %s (min %.0f, max %.0f)\n", name, median, unit, min, max);
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
	long ops; /* per repetition; 0: OPS */
};

static long run_rust(void *arg, int batch)
{
	struct rust *r = arg;
	struct io_event ev[MAX_BATCH];
	long done = 0;
	int got;

	while (done < (r->ops ? r->ops : OPS)) {
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

/* ---- traffic while every ring page migrates ---------------------------------- */

struct migrator {
	void *pages[64];
	int npages;
	atomic_bool stop;
	long moves;
	long period_ns; /* 0: without a pause; else every page once per period */
};

static void *migrate_all(void *arg)
{
	struct migrator *m = arg;
	int nodes[64], status[64], node = 1, i;
	struct timespec next;

	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!atomic_load(&m->stop)) {
		if (m->period_ns) {
			next.tv_nsec += m->period_ns;
			next.tv_sec += next.tv_nsec / 1000000000;
			next.tv_nsec %= 1000000000;
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
		}
		for (i = 0; i < m->npages; i++)
			nodes[i] = node;
		if (syscall(SYS_move_pages, 0, m->npages, m->pages, nodes, status,
			    2 /* MPOL_MF_MOVE */) == 0)
			for (i = 0; i < m->npages; i++)
				m->moves += status[i] == node;
		node ^= 1;
	}
	return NULL;
}

static void write_knob(const char *name, long value)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/debug/rust_aio/%s", name);
	f = fopen(path, "w");
	if (!f || fprintf(f, "%ld\n", value) < 0 || fclose(f)) {
		fprintf(stderr, "bench: cannot write %s\n", path);
		exit(1);
	}
}

static int cmp_u32(const void *a, const void *b)
{
	unsigned int x = *(const unsigned int *)a, y = *(const unsigned int *)b;

	return (x > y) - (x < y);
}

/* The interrupts-off windows recorded since irqoff_count was reset. */
static void irqoff_figures(const char *name, const char *p99_name, const char *peer)
{
	static unsigned int w[4096];
	unsigned long n = rust_aio_debugfs_u64("irqoff_count"), i = 0;
	FILE *f = fopen("/sys/kernel/debug/rust_aio/irqoff_samples", "r");

	if (n > 4096)
		n = 4096;
	while (f && i < n && fscanf(f, "%u", &w[i]) == 1)
		i++;
	if (f)
		fclose(f);
	if (i == 0) {
		fprintf(stderr, "bench: no migration recorded for %s\n", name);
		exit(1);
	}
	qsort(w, i, sizeof(w[0]), cmp_u32);
	add_figure(name, peer, "ns", w[i / 2], w[0], w[i - 1]);
	add_figure(p99_name, peer ? "irqoff_1phase_p99" : NULL, "ns", w[i * 99 / 100],
		   w[i * 99 / 100], w[i * 99 / 100]);
	printf("# %lu windows\n", i);
}

/* NOOP throughput of `r` while every page of its ring moves, in one mode,
 * without a pause (period_ns 0) or once every period_ns; the windows recorded
 * meanwhile become the irqoff figures unless `irqoff` is 0. */
static void migrating(struct rust *r, const char *name, const char *peer, bool one_phase,
		      bool irqoff, long period_ns)
{
	struct migrator m = { .npages = 0, .period_ns = period_ns };
	pthread_t t;
	int i;

	if (only && !strstr(only, name) && !strstr(only, "irqoff"))
		return;
	/* move_pages() only moves pages this process has mapped: touch them. */
	for (i = 0; i < 64 && i * 4096 < 32 + 32 * (256 + 2); i++) {
		m.pages[m.npages++] = (char *)r->ctx + i * 4096;
		(void)*(volatile char *)m.pages[i];
	}
	write_knob("one_phase", one_phase);
	write_knob("irqoff_count", 0);
	/* At a rate, long enough for each page to move about 50 times per repetition. */
	r->ops = period_ns ? 50 * OPS : 0;
	pthread_create(&t, NULL, migrate_all, &m);
	measure(name, peer, run_rust, r, MAX_BATCH);
	atomic_store(&m.stop, true);
	r->ops = 0;
	pthread_join(t, NULL);
	write_knob("one_phase", 0);
	printf("# %s: %ld page moves of %d pages meanwhile\n", name, m.moves, m.npages);
	if (!irqoff)
		return;
	if (one_phase)
		irqoff_figures("irqoff_1phase", "irqoff_1phase_p99", NULL);
	else
		irqoff_figures("irqoff_2phase", "irqoff_2phase_p99", "irqoff_1phase");
}

/* ---- memory ---------------------------------------------------------------------- */

#define MEM_CONTEXTS 1000
#define MEM_REQUESTS 4000

/* Bytes of /proc/meminfo's `field` (kB there). */
static double meminfo(const char *field)
{
	char line[256];
	double kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)) && line[strlen(field)] == ':')
			kb = atof(line + strlen(field) + 1);
	if (f)
		fclose(f);
	return kb * 1024;
}

static double kernel_objects(void)
{
	return meminfo("Slab") + meminfo("Percpu");
}

/* Memory per context: [0] all (MemFree), [1] Slab + Percpu. */
static void per_context(bool rust, double out[2])
{
	static aio_context_t ctx[MEM_CONTEXTS];
	double free0, obj0;
	int fd = rust ? rust_aio_open() : -1, i;

	sync();
	free0 = meminfo("MemFree");
	obj0 = kernel_objects();
	for (i = 0; i < MEM_CONTEXTS; i++) {
		ctx[i] = 0;
		if (rust ? rust_aio_setup(fd, 128, &ctx[i]) : syscall(SYS_io_setup, 128, &ctx[i])) {
			perror("bench: setup");
			exit(1);
		}
	}
	out[0] = (free0 - meminfo("MemFree")) / MEM_CONTEXTS;
	out[1] = (kernel_objects() - obj0) / MEM_CONTEXTS;
	for (i = 0; i < MEM_CONTEXTS; i++)
		if (!rust)
			syscall(SYS_io_destroy, ctx[i]);
	if (rust)
		close(fd);
}

/* Slab per request in flight. */
static double per_request(bool rust)
{
	static struct iocb cbs[MEM_REQUESTS], *list[MEM_REQUESTS];
	int fd = rust ? rust_aio_open() : -1, efd = eventfd(0, EFD_CLOEXEC), i;
	aio_context_t ctx = 0;
	double slab0, bytes;
	long done = 0, n;

	if ((rust ? rust_aio_setup(fd, MEM_REQUESTS, &ctx) :
		    syscall(SYS_io_setup, MEM_REQUESTS, &ctx)) || efd < 0) {
		perror("bench: setup");
		exit(1);
	}
	for (i = 0; i < MEM_REQUESTS; i++) {
		cbs[i] = rust ? (struct iocb){ .aio_lio_opcode = RUST_AIO_CMD_TIMER,
					       .aio_offset = 3600LL * 1000000000 } :
				(struct iocb){ .aio_lio_opcode = IOCB_CMD_POLL, .aio_fildes = efd,
					       .aio_buf = POLLIN };
		list[i] = &cbs[i];
	}
	slab0 = kernel_objects();
	while (done < MEM_REQUESTS) {
		n = rust ? rust_aio_submit(fd, ctx, MEM_REQUESTS - done, list + done) :
			   syscall(SYS_io_submit, ctx, MEM_REQUESTS - done, list + done);
		if (n <= 0) {
			perror("bench: submit");
			exit(1);
		}
		done += n;
	}
	bytes = (kernel_objects() - slab0) / MEM_REQUESTS;
	if (rust) {
		rust_aio_destroy(fd, ctx);
		close(fd);
	} else {
		syscall(SYS_io_destroy, ctx);
	}
	close(efd);
	return bytes;
}

static void memory_figures(void)
{
	double rc[64][2], ac[64][2], rr[64], ar[64], v[64];
	FILE *f;
	int i, k;

	if (only && !strstr(only, "bytes"))
		return;
	/* Room for the contexts: fs/aio.c's aio-max-nr, rust_aio's max_events. */
	f = fopen("/proc/sys/fs/aio-max-nr", "w");
	if (f) {
		fprintf(f, "%d\n", 1 << 20);
		fclose(f);
	}
	f = fopen("/sys/module/rust_aio/parameters/max_events", "w");
	if (f) {
		fprintf(f, "%d\n", 1 << 20);
		fclose(f);
	}
	for (i = 0; i < reps; i++) {
		per_context(true, rc[i]);
		per_context(false, ac[i]);
		rr[i] = per_request(true);
		ar[i] = per_request(false);
	}
#define MEDIAN(name, peer, expr)                                                  \
	do {                                                                      \
		for (k = 0; k < reps; k++)                                        \
			v[k] = (expr);                                            \
		qsort(v, reps, sizeof(v[0]), cmp_double);                         \
		add_figure(name, peer, "B", v[reps / 2], v[0], v[reps - 1]);      \
	} while (0)
	MEDIAN("aio_ctx_bytes", NULL, ac[k][0]);
	MEDIAN("rust_ctx_bytes", "aio_ctx_bytes", rc[k][0]);
	MEDIAN("aio_ctx_kernel_bytes", NULL, ac[k][1]);
	MEDIAN("rust_ctx_kernel_bytes", "aio_ctx_kernel_bytes", rc[k][1]);
	MEDIAN("aio_req_bytes", NULL, ar[k]);
	MEDIAN("rust_req_bytes", "aio_req_bytes", rr[k]);
#undef MEDIAN
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
	env = getenv("BENCH_OPS");
	if (env && atol(env) >= 1000)
		ops_per_rep = atol(env);
	only = getenv("BENCH_ONLY");
	if (only && !*only)
		only = NULL;
	printf("# bench: %d repetitions of %ld operations per figure\n", reps, OPS);
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
		migrating(&rust_ring, "rust_noop_b32_ring_migrating_1phase", "rust_noop_b32_ring",
			  true, true, 0);
		migrating(&rust_ring, "rust_noop_b32_ring_migrating", "rust_noop_b32_ring", false,
			  true, 0);
		migrating(&rust_ioctl, "rust_noop_b32_ioctl_migrating", "rust_noop_b32_ioctl",
			  false, false, 0);
		/* Each ring page about 100 times a second (compaction, NUMA balancing). */
		migrating(&rust_ring, "rust_noop_b32_ring_100hz", "rust_noop_b32_ring", false,
			  false, 10000000);
		migrating(&rust_ioctl, "rust_noop_b32_ioctl_100hz", "rust_noop_b32_ioctl", false,
			  false, 10000000);
	}
	memory_figures();

	printf("\n%-36s %10s %10s %10s %-6s %-20s %7s\n", "figure", "median", "min", "max",
	       "unit", "peer", "ratio");
	for (i = 0; i < nfigures; i++) {
		const struct figure *f = &figures[i], *p = peer_of(f);

		printf("%-36s %10.0f %10.0f %10.0f %-6s %-20s %7.2f\n", f->name, f->median, f->min,
		       f->max, f->unit, p ? p->name : "-", p ? f->median / p->median : 1.0);
	}
	printf("@@BENCH_CSV@@\nfigure,median,min,max,unit,peer,ratio\n");
	for (i = 0; i < nfigures; i++) {
		const struct figure *f = &figures[i], *p = peer_of(f);

		printf("%s,%.0f,%.0f,%.0f,%s,%s,%.3f\n", f->name, f->median, f->min, f->max,
		       f->unit, p ? p->name : "", p ? f->median / p->median : 1.0);
	}
	printf("@@BENCH_CSV@@\n");
	return 0;
}
