// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz: a seeded, structure-aware, multi-threaded fuzzer of /dev/rust_aio
 * that keeps its own ledger of the events it is owed.
 *
 *   fuzz [-s SEED] [-t SECONDS] [-j WORKERS] [-M] [-O] [-v]
 *
 * Workers (-j, 4 by default) draw random, mostly well-formed operations:
 * open and close device files, SETUP, SUBMIT of NOOP/TIMER/WORK batches,
 * GETEVENTS, CANCEL, DESTROY, reaping straight from the ring mapping, and now
 * and then a fork whose child must find the parent's contexts unusable
 * (EINVAL) and exits with long timers in flight.  Malformed calls are mixed
 * in: bad opcodes, reserved fields, unknown flags, bad eventfds, iocbs and
 * iocb arrays and event buffers running into a PROT_NONE page, bad timeouts,
 * bad context ids, bad ioctl numbers and arguments.
 *
 * The ledger.  Each device file is STRICT or CHAOS (50/50), and so is every
 * context made through it.  Chaos contexts get writes to their ring header,
 * munmap, mremap (the context id follows the ring), stale ids and use by
 * other workers (through a dup of the file); only errnos are checked there:
 * each must be one the AIO calls can return.  A strict context is used by
 * its worker alone, its mapping is only ever reaped from, and no bad context
 * id ever reaches a strict file (ids are addresses: a stale chaos id could
 * otherwise name a strict ring that took its place).  Its iocbs live in a
 * pool of pages of 64 iocbs, each page followed by a PROT_NONE page, and
 * stay there until their event is reaped; aio_data is (context serial << 32 |
 * sequence) and aio_nbytes random.  SUBMIT returning n puts exactly the first
 * n in flight.  Every event reaped must name an iocb in flight on that
 * context, with its data, res == aio_nbytes (-ECANCELED if CANCEL answered
 * EINPROGRESS) and res2 == 0, or it is "corrupted" or "duplicated".  Before a
 * strict context is destroyed its long timers are cancelled and every iocb
 * must come back within 20 s ("lost" otherwise), and its eventfd must have
 * counted each completion that asked for it.  GETEVENTS into a buffer whose
 * second half is PROT_NONE returns k: the first k events, all in the readable
 * half, or fails with EFAULT having delivered none: the ledger holds the
 * module to both.
 *
 * Beside the workers: a migration thread ping-pongs every mapped ring page
 * between nodes 0 and 1 with move_pages(2), counting the moves it can see;
 * an offline thread takes node 1's memory blocks offline and online again
 * (online_movable), and leaves them all online; workers bind some SETUPs to
 * node 1 so that rings land there.  Without a node 1 both are skipped; -M and
 * -O turn them off.  A watchdog ends the run (exit 2) when a worker has been
 * in one operation for 60 s.
 *
 * Replay.  The seed is printed first.  Each worker's generator is seeded
 * from (seed, worker index), so `fuzz -s SEED -t T -j J` repeats each
 * worker's decisions as long as the device answers the same way.  The
 * interleaving of the workers, the migration and the offlining is not
 * reproducible, and answers that depend on it (EAGAIN from a full ring, how
 * many events a GETEVENTS found) change what follows: a replay runs the same
 * kind of session, not the same one.  -j 1 -M -O comes closest.
 *
 * FUZZ_SECONDS and FUZZ_SEED in the environment, when set and not empty,
 * stand for -t and -s (make fuzz passes them; an option wins).
 *
 * Exit status: 0 all checks passed, 1 a check failed, 2 a hang.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "rust_aio_test.h"

#define PG 4096UL
#define KERNEL_PTR ((void *)0xffffffff81000000UL)
#define NS_PER_S 1000000000LL
#define MAX_WORKERS 32
#define MAX_FDS 4
#define MAX_CTXS 8
#define MAX_REFS (MAX_WORKERS * MAX_CTXS)
#define MAX_BATCH 64
#define EV_BUF 1024
#define POOL_PAGES 128
#define PER_PAGE (PG / sizeof(struct iocb))
#define POOL_SLOTS (POOL_PAGES * PER_PAGE)
#define SHORT_NS 2000000LL
#define LONG_NS (10 * NS_PER_S)
#define DRAIN_S 20
#define HANG_S 60
#define MAX_MOVE 512
#define MAX_BLOCKS 256
#define FUZZ_MPOL_DEFAULT 0
#define FUZZ_MPOL_BIND 2
#define FUZZ_MPOL_MF_MOVE (1 << 1)
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#ifndef __noreturn
#define __noreturn __attribute__((noreturn))
#endif

/* What the ledger knows of one pool iocb. */
enum { FREE, INFLIGHT };
enum { NOT_CANCELLED, CANCELLED, TOO_LATE };
#define M_RESFD 1	/* signals its context's eventfd */
#define M_LONG 2	/* a long timer */
#define M_LOOSE 4	/* accepted although malformed: already a failure */

struct meta {
	__u64 data, nbytes;	/* as submitted; kept once reaped, to tell duplicates */
	__u32 serial;		/* the context's */
	__u8 state, cancel;
	__u8 certain;		/* its event comes soon: a GETEVENTS may wait for it */
	__u8 flags;
};

struct ctx {
	bool used, strict, mapped, id_ok;	/* id_ok: the header's id is intact */
	int fdi;
	__u64 id;
	__u32 serial, seq, slots, orig_id;
	size_t size;
	long outstanding, certain;		/* strict: in flight; of those, coming soon */
	int efd;				/* strict: eventfd for IOCB_FLAG_RESFD, or -1 */
	long efd_expected;
};

struct worker {
	int index;
	pthread_t thread;
	__u64 rng;
	int fds[MAX_FDS];
	bool fd_strict[MAX_FDS];
	struct ctx ctxs[MAX_CTXS];
	__u32 nserial;
	char *pool;			/* POOL_PAGES pages of iocbs, each then PROT_NONE */
	struct meta meta[POOL_SLOTS];
	__u32 freeq[POOL_SLOTS];	/* FIFO: a reaped iocb is reused as late as possible */
	unsigned int fq_head, fq_len;
	char *ptrs, *half, *scratch;	/* each a page followed by a PROT_NONE page */
	struct rust_aio_setup *ro_setup;
	int chaos_efd;
	struct io_event ev[EV_BUF];
	/* For the watchdog. */
	long long since;
	const char *doing;
	__u64 doing_ctx;
	bool in_call, done;
	unsigned long long calls, events, forks;
};

/* Mapped rings, for the migration thread; chaos contexts, for other workers. */
struct ring_ref {
	unsigned long addr;	/* the ring while it is mapped, else 0 */
	unsigned int pages;
	int fd;			/* chaos contexts only, else -1 */
	__u64 id;
};

enum { F_LOST, F_DUP, F_CORRUPT, F_ERRNO, NR_F };
static const char *const fail_names[NR_F] = { "lost", "duplicated", "corrupted", "errno" };

static unsigned long long seed;
static int opt_seconds = 30, opt_workers = 4;
static bool opt_no_migrate, opt_no_offline, opt_verbose;
static char replay[160];
static struct worker *workers[MAX_WORKERS];
static struct ring_ref refs[MAX_REFS];
static pthread_mutex_t refs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t bind_lock;	/* bound SETUPs (read) against offlining (write) */
static unsigned long long nfail[NR_F], moves, cycles;
static unsigned int printed, blocks[MAX_BLOCKS], nblocks;
static int devnull = -1, stop_workers, stop_aux;
static bool have_node1;
static long long migrate_since, offline_since;
static pthread_t migrate_thread, offline_thread;
static bool migrating, offlining;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* splitmix64: small, fast, and any seed will do. */
static __u64 rnd(struct worker *w)
{
	__u64 z = (w->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static __u64 below(struct worker *w, __u64 n)
{
	return n ? rnd(w) % n : 0;
}

static bool chance(struct worker *w, unsigned int percent)
{
	return below(w, 100) < percent;
}

static void say(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&print_lock);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
	pthread_mutex_unlock(&print_lock);
}

/* The errnos the AIO calls may answer: any other is a failure. */
static const char *const expected_errnos[] = {
	[EINVAL] = "EINVAL", [EFAULT] = "EFAULT", [EAGAIN] = "EAGAIN", [EBADF] = "EBADF",
	[EINTR] = "EINTR", [EINPROGRESS] = "EINPROGRESS", [ENOMEM] = "ENOMEM", [ENOTTY] = "ENOTTY",
};

static bool errno_expected(int err)
{
	return err > 0 && err < (int)ARRAY_SIZE(expected_errnos) && expected_errnos[err];
}

static const char *errname(int err)
{
	static __thread char buf[16];

	if (errno_expected(err))
		return expected_errnos[err];
	snprintf(buf, sizeof(buf), "errno %d", err);
	return buf;
}

static void fail(struct worker *w, int kind, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	__atomic_add_fetch(&nfail[kind], 1, __ATOMIC_RELAXED);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&print_lock);
	if (printed < 100)
		printf("# FAIL w%d %s: %s\n", w->index, fail_names[kind], msg);
	else if (printed == 100)
		printf("# (further failures not shown)\n");
	printed++;
	fflush(stdout);
	pthread_mutex_unlock(&print_lock);
}

static void busy(struct worker *w, const char *what, __u64 ctx)
{
	w->doing = what;
	w->doing_ctx = ctx;
	__atomic_store_n(&w->in_call, true, __ATOMIC_RELAXED);
	__atomic_store_n(&w->since, now_ns(), __ATOMIC_RELEASE);
}

static void idle(struct worker *w)
{
	__atomic_store_n(&w->in_call, false, __ATOMIC_RELAXED);
	__atomic_store_n(&w->since, now_ns(), __ATOMIC_RELEASE);
}

/* Every device call goes through here: counted, watched, errno checked. */
static long dev(struct worker *w, const char *what, int fd, unsigned long cmd, void *arg, __u64 ctx)
{
	long ret;
	int err;

	busy(w, what, ctx);
	ret = ioctl(fd, cmd, arg);
	err = errno;
	idle(w);
	w->calls++;
	if (ret < 0 && !errno_expected(err))
		fail(w, F_ERRNO, "%s (ctx %#llx): unexpected %s", what, ctx, errname(err));
	else if (ret < 0 && opt_verbose)
		say("# w%d: %s (ctx %#llx): %s\n", w->index, what, ctx, errname(err));
	errno = err;
	return ret;
}

static long do_submit(struct worker *w, int fd, __u64 ctx, __s64 nr, void *iocbpp)
{
	struct rust_aio_submit s = { .ctx = ctx, .nr = nr, .iocbpp = (unsigned long)iocbpp };

	return dev(w, "SUBMIT", fd, RUST_AIO_IOC_SUBMIT, &s, ctx);
}

static long do_getevents(struct worker *w, int fd, __u64 ctx, __s64 min_nr, __s64 nr,
			 void *events, void *timeout)
{
	struct rust_aio_getevents g = {
		.ctx = ctx, .min_nr = min_nr, .nr = nr,
		.events = (unsigned long)events, .timeout = (unsigned long)timeout,
	};

	return dev(w, "GETEVENTS", fd, RUST_AIO_IOC_GETEVENTS, &g, ctx);
}

static long do_cancel(struct worker *w, int fd, __u64 ctx, void *iocb)
{
	struct rust_aio_cancel c = { .ctx = ctx, .iocb = (unsigned long)iocb };

	return dev(w, "CANCEL", fd, RUST_AIO_IOC_CANCEL, &c, ctx);
}

static long do_destroy(struct worker *w, int fd, __u64 ctx)
{
	__u64 id = ctx;

	return dev(w, "DESTROY", fd, RUST_AIO_IOC_DESTROY, &id, ctx);
}

static void *map_or_die(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

/* A read-write page followed by a PROT_NONE page. */
static char *guarded_page(void)
{
	char *p = map_or_die(2 * PG);

	mprotect(p + PG, PG, PROT_NONE);
	return p;
}

/* Pages of a ring for nr_events, as fs/aio.c sizes it. */
static unsigned int ring_pages(unsigned int nr_events)
{
	return (32 + ((size_t)nr_events + 2) * 32 + PG - 1) / PG;
}

static int set_policy(int node)
{
	unsigned long mask = 1UL << (node < 0 ? 0 : node);

	if (node < 0)
		return syscall(SYS_set_mempolicy, FUZZ_MPOL_DEFAULT, NULL, 0);
	return syscall(SYS_set_mempolicy, FUZZ_MPOL_BIND, &mask, 64);
}

/* ---- the iocb pool and the ledger -------------------------------------- */

static struct iocb *slot_iocb(struct worker *w, long s)
{
	return (struct iocb *)(w->pool + s / PER_PAGE * 2 * PG) + s % PER_PAGE;
}

static long iocb_slot(struct worker *w, __u64 addr)
{
	__u64 off = addr - (unsigned long)w->pool;

	if (addr < (unsigned long)w->pool || off >= POOL_PAGES * 2 * PG ||
	    (off / PG) % 2 || off % sizeof(struct iocb))
		return -1;
	return off / (2 * PG) * PER_PAGE + off % PG / sizeof(struct iocb);
}

static long slot_alloc(struct worker *w)
{
	long s;

	if (!w->fq_len)
		return -1;
	s = w->freeq[w->fq_head];
	w->fq_head = (w->fq_head + 1) % POOL_SLOTS;
	w->fq_len--;
	return s;
}

static void slot_free(struct worker *w, long s)
{
	w->meta[s].state = FREE;
	w->freeq[(w->fq_head + w->fq_len) % POOL_SLOTS] = s;
	w->fq_len++;
}

static void mark_inflight(struct worker *w, struct ctx *c, long s, bool loose)
{
	struct meta *m = &w->meta[s];

	m->state = INFLIGHT;
	if (loose) {
		m->flags |= M_LOOSE;
		m->certain = 0;
	}
	c->outstanding++;
	c->certain += m->certain;
	c->efd_expected += !!(m->flags & M_RESFD);
}

/* An event reaped from strict context c, through the ioctl or the mapping. */
static void check_event(struct worker *w, struct ctx *c, const struct io_event *ev, const char *how)
{
	long s = iocb_slot(w, ev->obj);
	struct meta *m = s >= 0 ? &w->meta[s] : NULL;
	__s64 want;

	if (!m || m->serial != c->serial || m->state != INFLIGHT) {
		bool dup = m && m->serial == c->serial && m->data == ev->data;

		fail(w, dup ? F_DUP : F_CORRUPT,
		     "%s on ctx %#llx: event {data %#llx obj %#llx res %lld res2 %lld} %s",
		     how, c->id, ev->data, ev->obj, ev->res, ev->res2,
		     dup ? "was reaped before" : "names no iocb in flight there");
		return;
	}
	want = m->cancel == CANCELLED ? -ECANCELED : (__s64)m->nbytes;
	if (!(m->flags & M_LOOSE) && (ev->data != m->data || ev->res != want || ev->res2))
		fail(w, F_CORRUPT,
		     "%s on ctx %#llx: iocb %#llx: event {data %#llx res %lld res2 %lld}, expected {data %#llx res %lld res2 0}",
		     how, c->id, ev->obj, ev->data, ev->res, ev->res2, m->data, want);
	c->outstanding--;
	c->certain -= m->certain;
	slot_free(w, s);
	w->events++;
}

/* ---- contexts ------------------------------------------------------------ */

static void publish(struct worker *w, struct ctx *c)
{
	struct ring_ref *r = &refs[w->index * MAX_CTXS + (c - w->ctxs)];

	pthread_mutex_lock(&refs_lock);
	r->addr = c->used && c->mapped ? c->id : 0;
	r->pages = c->size / PG;
	r->fd = c->used && !c->strict ? w->fds[c->fdi] : -1;
	r->id = c->id;
	pthread_mutex_unlock(&refs_lock);
}

static void ctx_new(struct worker *w, struct ctx *c, int fdi, __u64 id, unsigned int nr_events)
{
	struct rust_aio_ring *ring = (void *)(unsigned long)id;
	unsigned int i, pages = ring_pages(nr_events);

	*c = (struct ctx){
		.used = true, .strict = w->fd_strict[fdi], .mapped = true, .id_ok = true,
		.fdi = fdi, .id = id, .serial = (w->index + 1) << 24 | ++w->nserial,
		.slots = (pages * PG - 32) / 32, .size = pages * PG, .efd = -1,
	};
	if (ring->magic != RUST_AIO_RING_MAGIC || ring->nr != c->slots ||
	    ring->head || ring->tail || ring->compat_features != RUST_AIO_RING_COMPAT_FEATURES ||
	    ring->incompat_features != RUST_AIO_RING_INCOMPAT_FEATURES ||
	    ring->header_length != sizeof(*ring))
		fail(w, F_CORRUPT, "new ring %#llx (%u events): header {nr %u head %u tail %u magic %#x length %u}",
		     id, nr_events, ring->nr, ring->head, ring->tail, ring->magic, ring->header_length);
	c->orig_id = ring->id;
	/* move_pages() sees only pages mapped in this process. */
	for (i = 0; i < pages; i++)
		__atomic_load_n((char *)(unsigned long)(id + i * PG), __ATOMIC_RELAXED);
	publish(w, c);
}

static void ctx_forget(struct worker *w, struct ctx *c)
{
	c->used = false;
	publish(w, c);
	if (c->efd >= 0)
		close(c->efd);
	c->efd = -1;
}

enum pick { ANY, STRICT, CHAOS_MAPPED };

static struct ctx *pick_ctx(struct worker *w, enum pick kind)
{
	int i, start = below(w, MAX_CTXS);

	for (i = 0; i < MAX_CTXS; i++) {
		struct ctx *c = &w->ctxs[(start + i) % MAX_CTXS];

		if (c->used && (kind == ANY || (kind == STRICT) == c->strict) &&
		    (kind != CHAOS_MAPPED || c->mapped))
			return c;
	}
	return NULL;
}

/* Ids that name no context: none reaches a strict file but these. */
static __u64 bogus_id(struct worker *w, struct ctx *c)
{
	const __u64 ids[] = {
		0, (unsigned long)KERNEL_PTR, ~0ULL,
		(unsigned long)w->scratch + PG,			/* PROT_NONE */
		c ? c->id + 8 * (1 + below(w, 16)) : 1,		/* never page-aligned */
	};

	return ids[below(w, ARRAY_SIZE(ids))];
}

/* Cancels a pool iocb in flight on strict context c and records the answer. */
static void cancel_slot(struct worker *w, struct ctx *c, long s)
{
	struct meta *m = &w->meta[s];
	long ret = do_cancel(w, w->fds[c->fdi], c->id, slot_iocb(w, s));
	int err = errno;

	if (ret >= 0) {
		fail(w, F_ERRNO, "CANCEL of iocb %p on ctx %#llx returned %ld",
		     slot_iocb(w, s), c->id, ret);
	} else if (err == EINPROGRESS) {
		if (m->state != INFLIGHT || m->cancel != NOT_CANCELLED)
			fail(w, F_CORRUPT, "CANCEL of iocb %p on ctx %#llx succeeded, but it was %s",
			     slot_iocb(w, s), c->id, m->state != INFLIGHT ? "reaped" :
			     m->cancel == CANCELLED ? "cancelled already" : "refused before");
		else
			m->cancel = CANCELLED;
	} else if (err == EINVAL) {
		if (m->state == INFLIGHT && m->cancel == NOT_CANCELLED)
			m->cancel = TOO_LATE;
	} else {
		fail(w, F_ERRNO, "CANCEL of iocb %p on strict ctx %#llx: %s",
		     slot_iocb(w, s), c->id, errname(err));
	}
	/* Cancelled or firing: its event is on the way. */
	if (m->state == INFLIGHT && !m->certain && !(m->flags & M_LOOSE) &&
	    (err == EINPROGRESS || err == EINVAL)) {
		m->certain = 1;
		c->certain++;
	}
}

/* Cancels c's long timers and reaps until every iocb has come back. */
static void drain_ctx(struct worker *w, struct ctx *c)
{
	struct __kernel_timespec zero = { 0 };
	long long deadline = now_ns() + DRAIN_S * NS_PER_S;
	int fd = w->fds[c->fdi];
	long s, n, i;

	for (s = 0; s < (long)POOL_SLOTS; s++) {
		struct meta *m = &w->meta[s];

		if (m->state == INFLIGHT && m->serial == c->serial && (m->flags & M_LONG) &&
		    m->cancel == NOT_CANCELLED)
			cancel_slot(w, c, s);
	}
	while (c->outstanding > 0 && now_ns() < deadline) {
		struct __kernel_timespec ts = { .tv_nsec = 200000000 };

		n = do_getevents(w, fd, c->id, MIN(c->outstanding, EV_BUF), EV_BUF, w->ev, &ts);
		if (n < 0) {
			fail(w, F_ERRNO, "draining strict ctx %#llx: GETEVENTS: %s",
			     c->id, errname(errno));
			break;
		}
		for (i = 0; i < n; i++)
			check_event(w, c, &w->ev[i], "GETEVENTS (drain)");
	}
	for (s = 0; c->outstanding > 0 && s < (long)POOL_SLOTS; s++) {
		struct meta *m = &w->meta[s];
		struct iocb *cb = slot_iocb(w, s);

		if (m->state != INFLIGHT || m->serial != c->serial)
			continue;
		if (!(m->flags & M_LOOSE))
			fail(w, F_LOST, "ctx %#llx: iocb %p {data %#llx opcode %u offset %lld%s} not back after %d s",
			     c->id, cb, m->data, cb->aio_lio_opcode, (long long)cb->aio_offset,
			     m->cancel == CANCELLED ? ", cancelled" :
			     m->cancel == TOO_LATE ? ", cancel too late" : "",
			     DRAIN_S);
		c->outstanding--;
		slot_free(w, s);
	}
	c->outstanding = c->certain = 0;
	/* Nothing else may come. */
	n = do_getevents(w, fd, c->id, 0, EV_BUF, w->ev, &zero);
	for (i = 0; i < n; i++)
		check_event(w, c, &w->ev[i], "GETEVENTS (after drain)");
}

static void destroy_strict(struct worker *w, struct ctx *c)
{
	__u64 count = 0;

	drain_ctx(w, c);
	if (do_destroy(w, w->fds[c->fdi], c->id)) {
		fail(w, F_ERRNO, "DESTROY of strict ctx %#llx: %s", c->id, errname(errno));
		ctx_forget(w, c);
		return;
	}
	/* Safe with a strict file: none of its contexts can be at that address. */
	if (!do_destroy(w, w->fds[c->fdi], c->id))
		fail(w, F_ERRNO, "DESTROY of strict ctx %#llx succeeded twice", c->id);
	if (c->efd >= 0) {
		/* Destroy waited for every completion, eventfd signals included. */
		if (read(c->efd, &count, sizeof(count)) != sizeof(count))
			count = 0;
		if (count != (__u64)c->efd_expected)
			fail(w, count < (__u64)c->efd_expected ? F_LOST : F_CORRUPT,
			     "ctx %#llx: its eventfd counted %llu completions, %ld asked for it",
			     c->id, count, c->efd_expected);
	}
	ctx_forget(w, c);
}

/* ---- operations ---------------------------------------------------------- */

static int open_fd(struct worker *w)
{
	bool strict = chance(w, 50);
	int fi;

	for (fi = 0; fi < MAX_FDS && w->fds[fi] >= 0; fi++)
		;
	if (fi == MAX_FDS)
		return -1;
	w->fds[fi] = rust_aio_open();
	if (w->fds[fi] < 0) {
		if (errno != EMFILE && errno != ENFILE && errno != ENOMEM)
			fail(w, F_ERRNO, "open %s: %s", RUST_AIO_DEV, strerror(errno));
		return -1;
	}
	w->fd_strict[fi] = strict;
	return fi;
}

static int pick_fd(struct worker *w)
{
	int i, start = below(w, MAX_FDS);

	for (i = 0; i < MAX_FDS; i++)
		if (w->fds[(start + i) % MAX_FDS] >= 0)
			return (start + i) % MAX_FDS;
	return open_fd(w);
}

static void close_fd(struct worker *w, int fi)
{
	struct ctx *c;

	for (c = w->ctxs; c < w->ctxs + MAX_CTXS; c++) {
		if (!c->used || c->fdi != fi)
			continue;
		if (c->strict)
			destroy_strict(w, c);
		else
			ctx_forget(w, c);	/* unpublished before the close */
	}
	close(w->fds[fi]);
	w->fds[fi] = -1;
}

static void bad_setup(struct worker *w, int fd)
{
	struct rust_aio_setup s = { .nr_events = 1 + below(w, 512) };
	void *arg = &s;

	switch (below(w, 6)) {
	case 0:
		s.nr_events = 0;
		break;
	case 1:
		s.nr_events = ~0U;
		break;
	case 2:	/* fs/aio.c's limit, once doubled */
		s.nr_events = 4194305 + (chance(w, 50) ? 0 : below(w, ~0U - 4194305));
		break;
	case 3:
		s.flags = 1 + below(w, 0xfffffffe);
		break;
	default: {
		void *bad[] = { NULL, KERNEL_PTR, w->ro_setup, w->half + PG };

		arg = bad[below(w, ARRAY_SIZE(bad))];
		break;
	}
	}
	if (dev(w, "SETUP (bad)", fd, RUST_AIO_IOC_SETUP, arg, 0))
		return;
	if (arg != &s) {
		fail(w, F_ERRNO, "SETUP into an unwritable result at %p succeeded", arg);
		return;
	}
	fail(w, F_ERRNO, "SETUP(nr_events %u, flags %#x) succeeded", s.nr_events, s.flags);
	do_destroy(w, fd, s.ctx);
}

static void op_setup(struct worker *w)
{
	struct rust_aio_setup s = { 0 };
	int fi = pick_fd(w), ci;
	bool bind;
	long ret;

	if (fi < 0)
		return;
	for (ci = 0; ci < MAX_CTXS && w->ctxs[ci].used; ci++)
		;
	if (ci == MAX_CTXS || chance(w, 15)) {
		bad_setup(w, w->fds[fi]);
		return;
	}
	s.nr_events = chance(w, 40) ? 1 + below(w, 16) : 1 + below(w, 512);
	/* Rings are allocated under the caller's policy: some go to node 1. */
	bind = have_node1 && chance(w, 30) && !pthread_rwlock_tryrdlock(&bind_lock);
	if (bind && set_policy(1)) {
		pthread_rwlock_unlock(&bind_lock);
		bind = false;
	}
	ret = dev(w, "SETUP", w->fds[fi], RUST_AIO_IOC_SETUP, &s, 0);
	if (bind) {
		set_policy(-1);
		pthread_rwlock_unlock(&bind_lock);
	}
	if (ret) {
		if (errno != EAGAIN && errno != ENOMEM)
			fail(w, F_ERRNO, "SETUP(%u) refused: %s", s.nr_events, errname(errno));
		return;
	}
	ctx_new(w, &w->ctxs[ci], fi, s.ctx, s.nr_events);
}

static unsigned int batch(struct worker *w)
{
	return chance(w, 60) ? 1 + below(w, 8) : 1 + below(w, MAX_BATCH);
}

/* An iocb pointer SUBMIT must refuse with EFAULT. */
static void *bad_iocb_ptr(struct worker *w)
{
	void *bad[] = {
		NULL, KERNEL_PTR,
		w->scratch + PG,		/* PROT_NONE */
		w->scratch + PG - 32,		/* runs into PROT_NONE */
	};

	return bad[below(w, ARRAY_SIZE(bad))];
}

/* Makes an iocb one that SUBMIT must refuse. */
static void spoil(struct worker *w, struct iocb *cb)
{
	static const __u16 bad_ops[] = {
		IOCB_CMD_PREAD, IOCB_CMD_PWRITE, IOCB_CMD_FSYNC, IOCB_CMD_POLL, 4, 63, 66, 0xffff,
	};

	switch (below(w, 8)) {
	case 0:	/* file operations on a file that is not open: EBADF; the rest EINVAL */
		cb->aio_lio_opcode = bad_ops[below(w, ARRAY_SIZE(bad_ops))];
		cb->aio_fildes = 900 + below(w, 100);
		break;
	case 1:
		cb->aio_reserved2 = 1 + below(w, ~0ULL - 1);
		break;
	case 2:
		cb->aio_rw_flags = 1 + below(w, 0x7ffffffe);
		break;
	case 3:	/* neither RESFD nor IOPRIO */
		cb->aio_flags |= 1U << (2 + below(w, 30));
		break;
	case 4:
		cb->aio_nbytes |= 1ULL << 63;
		break;
	case 5:
		cb->aio_lio_opcode = RUST_AIO_CMD_TIMER;
		cb->aio_offset = -1 - (__s64)below(w, NS_PER_S);
		break;
	case 6:	/* never open: fd numbers stay far below 900 here */
		cb->aio_flags |= IOCB_FLAG_RESFD;
		cb->aio_resfd = chance(w, 50) ? ~0U : 900 + below(w, 100);
		break;
	default:
		cb->aio_flags |= IOCB_FLAG_RESFD;
		cb->aio_resfd = devnull;
		break;
	}
}

/* Variants of nr and iocbpp; returns whether any iocb may be queued. */
static bool submit_args(struct worker *w, unsigned int n, __s64 *nr, void **pp)
{
	unsigned int v = below(w, 100);

	*nr = n;
	if (v < 4) {
		*nr = n + 1 + below(w, 64);	/* the array runs into PROT_NONE */
	} else if (v < 6) {
		*nr = chance(w, 50) ? 0x7fffffffffffffffLL : 1LL << (32 + below(w, 30));
	} else if (v < 8) {
		*nr = -1 - (__s64)below(w, 1000);
		return false;
	} else if (v < 10) {
		*pp = below(w, 3) == 0 ? NULL : chance(w, 50) ? KERNEL_PTR : (void *)(w->ptrs + PG);
		return false;
	}
	return true;
}

static long fill_good(struct worker *w, struct ctx *c)
{
	long s = slot_alloc(w);
	unsigned int r = below(w, 100);
	struct iocb *cb;
	struct meta *m;

	if (s < 0)
		return -1;
	cb = slot_iocb(w, s);
	m = &w->meta[s];
	memset(cb, 0, sizeof(*cb));
	cb->aio_data = (__u64)c->serial << 32 | c->seq++;
	cb->aio_lio_opcode = r < 35 ? IOCB_CMD_NOOP :
			     r < 75 ? RUST_AIO_CMD_TIMER : RUST_AIO_CMD_WORK;
	cb->aio_nbytes = rnd(w) & 0x7fffffff;
	*m = (struct meta){
		.data = cb->aio_data, .nbytes = cb->aio_nbytes, .serial = c->serial,
		.state = FREE, .certain = 1,
	};
	if (cb->aio_lio_opcode == RUST_AIO_CMD_TIMER) {
		bool lng = chance(w, 8);

		cb->aio_offset = lng ? LONG_NS : (__s64)below(w, SHORT_NS + 1);
		if (lng) {
			m->flags |= M_LONG;
			m->certain = 0;
		}
	}
	if (chance(w, 20)) {
		if (c->efd < 0)
			c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (c->efd >= 0) {
			cb->aio_flags = IOCB_FLAG_RESFD;
			cb->aio_resfd = c->efd;
			m->flags |= M_RESFD;
		}
	}
	return s;
}

static void submit_strict(struct worker *w, struct ctx *c)
{
	unsigned int n = batch(w), i, first_bad = MAX_BATCH;
	int bad_at = chance(w, 12) ? (int)below(w, n) : -1;
	struct iocb *list[MAX_BATCH];
	long slot[MAX_BATCH], ret, max_ok;
	void *pp;
	__s64 nr;

	for (i = 0; i < n; i++) {
		slot[i] = -1;
		if ((int)i == bad_at && chance(w, 40)) {
			list[i] = bad_iocb_ptr(w);
			first_bad = i;
			continue;
		}
		slot[i] = fill_good(w, c);
		if (slot[i] < 0) {
			n = i;
			break;
		}
		list[i] = slot_iocb(w, slot[i]);
		if ((int)i == bad_at) {
			spoil(w, list[i]);
			if (!(list[i]->aio_flags & IOCB_FLAG_RESFD) ||
			    list[i]->aio_resfd != (__u32)c->efd)
				w->meta[slot[i]].flags &= ~M_RESFD;
			first_bad = i;
		}
	}
	if (!n)
		return;
	/* Always at the end of a page whose next page is PROT_NONE. */
	pp = memcpy(w->ptrs + PG - n * sizeof(*list), list, n * sizeof(*list));
	max_ok = MIN(n, first_bad);
	if (!submit_args(w, n, &nr, &pp))
		max_ok = 0;
	ret = do_submit(w, w->fds[c->fdi], c->id, nr, pp);
	if (ret > max_ok)
		fail(w, F_ERRNO, "SUBMIT(nr %lld) of %u iocbs, the first bad at %u, to ctx %#llx queued %ld",
		     nr, n, first_bad, c->id, ret);
	else if (ret < 0 && max_ok > 0 && errno != EAGAIN && errno != ENOMEM)
		fail(w, F_ERRNO, "SUBMIT of %u valid iocbs to live strict ctx %#llx: %s",
		     n, c->id, errname(errno));
	for (i = 0; i < n; i++) {
		if (slot[i] < 0)
			continue;
		if ((long)i < ret)
			mark_inflight(w, c, slot[i], (long)i >= max_ok);
		else
			slot_free(w, slot[i]);
	}
}

/* Chaos iocbs live in the scratch page and are reused at once. */
static void submit_chaos(struct worker *w, int fd, __u64 id)
{
	unsigned int n = batch(w), i;
	struct iocb *list[MAX_BATCH];
	void *pp;
	__s64 nr;
	long ret;

	for (i = 0; i < n; i++) {
		struct iocb *cb = (struct iocb *)w->scratch + i;
		unsigned int r = below(w, 100);

		memset(cb, 0, sizeof(*cb));
		cb->aio_data = rnd(w);
		cb->aio_lio_opcode = r < 30 ? IOCB_CMD_NOOP :
				     r < 70 ? RUST_AIO_CMD_TIMER : RUST_AIO_CMD_WORK;
		cb->aio_nbytes = rnd(w) & 0x7fffffff;
		if (cb->aio_lio_opcode == RUST_AIO_CMD_TIMER)
			cb->aio_offset = chance(w, 20) ? LONG_NS : (__s64)below(w, SHORT_NS + 1);
		if (chance(w, 15)) {
			cb->aio_flags = IOCB_FLAG_RESFD;
			cb->aio_resfd = w->chaos_efd;
		}
		if (chance(w, 10))
			spoil(w, cb);
		list[i] = chance(w, 3) ? bad_iocb_ptr(w) : cb;
	}
	pp = memcpy(w->ptrs + PG - n * sizeof(*list), list, n * sizeof(*list));
	submit_args(w, n, &nr, &pp);
	ret = do_submit(w, fd, id, nr, pp);
	if (ret > n)
		fail(w, F_CORRUPT, "SUBMIT of %u iocbs to ctx %#llx returned %ld", n, id, ret);
}

static void op_submit(struct worker *w)
{
	struct ctx *c = pick_ctx(w, ANY);

	if (!c)
		op_setup(w);
	else if (chance(w, 3))
		submit_chaos(w, w->fds[c->fdi], bogus_id(w, c));	/* must fail: EINVAL */
	else if (c->strict)
		submit_strict(w, c);
	else
		submit_chaos(w, w->fds[c->fdi], c->id);
}

/* A GETEVENTS timeout; NULL only when may_block says the wait is short. */
static void *pick_timeout(struct worker *w, struct __kernel_timespec *ts, bool may_block,
			  bool *must_fail)
{
	unsigned int r = below(w, 100);

	memset(ts, 0, sizeof(*ts));
	if (r < 35)
		return ts;
	if (r < 70 || (r >= 82 && !may_block)) {
		ts->tv_nsec = below(w, SHORT_NS + 1);
		return ts;
	}
	if (r < 75) {
		ts->tv_nsec = 20000000 + below(w, 30000000);
		return ts;
	}
	if (r < 80) {
		/* Odd but valid, as fs/aio.c takes them: tv_sec * 10^9 + tv_nsec
		 * ns, <= 0 already expired; never EINVAL. */
		const struct __kernel_timespec odd[] = {
			{ -1, 0 }, { 0, -1 }, { -5, 999999999 }, { 1, -999000000 },
			{ (long long)(1ULL << 63), 0 },
		};

		*ts = odd[below(w, ARRAY_SIZE(odd))];
		return ts;
	}
	if (r < 82) {
		*must_fail = true;
		return KERNEL_PTR;
	}
	return NULL;
}

static void op_getevents(struct worker *w)
{
	struct ctx *c = pick_ctx(w, ANY);
	struct io_event *buf = w->ev;
	struct __kernel_timespec ts;
	bool must_fail = false, may_fault = false;
	__s64 nr, min_nr;
	long cap = EV_BUF, ret, i;
	unsigned int v = below(w, 100);
	void *tsp;
	__u64 id;

	if (!c)
		return;
	id = c->id;
	nr = chance(w, 80) ? 1 + below(w, 64) : 1 + below(w, EV_BUF);
	min_nr = chance(w, 50) ? 0 : below(w, MIN(nr, 16) + 1);
	if (v < 20) {
		/* The second half of the buffer is PROT_NONE. */
		cap = below(w, 65);
		buf = (struct io_event *)(w->half + PG) - cap;
		nr = 1 + below(w, 128);
		min_nr = below(w, nr + 1);
		may_fault = true;
	} else if (v < 25) {
		buf = below(w, 3) == 0 ? NULL : chance(w, 50) ? KERNEL_PTR : (void *)(w->half + PG);
		cap = 0;
		may_fault = true;
	} else if (v < 30) {
		must_fail = true;
		if (chance(w, 33))
			min_nr = nr + 1 + below(w, 10);
		else if (chance(w, 50))
			min_nr = -1 - (__s64)below(w, 100);
		else
			nr = -1 - (__s64)below(w, 100), min_nr = 0;
	} else if (v < 33) {
		id = bogus_id(w, c);
		must_fail = true;
	}
	tsp = pick_timeout(w, &ts, min_nr <= 0 || (c->strict && min_nr <= c->certain), &must_fail);
	ret = do_getevents(w, w->fds[c->fdi], id, min_nr, nr, buf, tsp);
	if (ret < 0) {
		if (c->strict && !must_fail && !(may_fault && errno == EFAULT))
			fail(w, F_ERRNO, "GETEVENTS(min %lld, nr %lld) on live strict ctx %#llx: %s",
			     min_nr, nr, id, errname(errno));
		return;
	}
	if (must_fail)
		fail(w, F_ERRNO, "GETEVENTS(ctx %#llx, min %lld, nr %lld, timeout %p) returned %ld",
		     id, min_nr, nr, tsp, ret);
	if (ret > nr || ret > cap) {
		fail(w, F_CORRUPT, "GETEVENTS(min %lld, nr %lld) on ctx %#llx returned %ld, room for %ld",
		     min_nr, nr, id, ret, cap);
		ret = MIN(cap, nr < 0 ? 0 : nr);
	}
	if (c->strict && id == c->id)
		for (i = 0; i < ret; i++)
			check_event(w, c, &buf[i], "GETEVENTS");
}

/* Reaps from the mapping, as libaio's user_getevents() does. */
static void op_reap(struct worker *w)
{
	struct ctx *c = pick_ctx(w, ANY);
	struct rust_aio_ring *ring;
	unsigned int head, tail, nr, max, n = 0, i;

	if (!c || !c->mapped)
		return;
	ring = (void *)(unsigned long)c->id;
	max = 1 + below(w, 64);
	nr = __atomic_load_n(&ring->nr, __ATOMIC_RELAXED);
	head = __atomic_load_n(&ring->head, __ATOMIC_RELAXED);
	tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
	if (c->strict && (nr != c->slots || head >= c->slots || tail >= c->slots)) {
		fail(w, F_CORRUPT, "strict ring %#llx: header {nr %u head %u tail %u} with %u slots",
		     c->id, nr, head, tail, c->slots);
		return;
	}
	head %= c->slots;	/* chaos headers hold anything */
	tail %= c->slots;
	while (head != tail && n < max) {
		w->ev[n++] = ring->io_events[head];
		head = (head + 1) % c->slots;
	}
	__atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);
	if (c->strict)
		for (i = 0; i < n; i++)
			check_event(w, c, &w->ev[i], "reaped from the mapping");
}

/* A strict in-flight or reaped pool iocb of c, probing from a random slot. */
static long find_slot(struct worker *w, struct ctx *c, int state)
{
	long start = below(w, POOL_SLOTS), i;

	for (i = 0; i < 1024; i++) {
		long s = (start + i) % POOL_SLOTS;

		if (w->meta[s].serial == c->serial && w->meta[s].state == state)
			return s;
	}
	return -1;
}

static void op_cancel(struct worker *w)
{
	struct ctx *c = pick_ctx(w, ANY);
	unsigned int v = below(w, 100);
	struct iocb *cb;
	long s, ret;

	if (!c)
		return;
	s = c->strict && v < 85 ? find_slot(w, c, v < 70 ? INFLIGHT : FREE) : -1;
	if (s >= 0 && w->meta[s].state == INFLIGHT) {
		cancel_slot(w, c, s);
		return;
	}
	if (s >= 0) {
		ret = do_cancel(w, w->fds[c->fdi], c->id, slot_iocb(w, s));
		if (ret >= 0 || errno == EINPROGRESS)
			fail(w, F_CORRUPT, "CANCEL of reaped iocb %p on ctx %#llx succeeded",
			     slot_iocb(w, s), c->id);
		return;
	}
	/* Scratch iocbs (chaos timers may be pending there) and bad pointers. */
	cb = (struct iocb *)w->scratch + below(w, PER_PAGE);
	if (chance(w, 10))
		cb->aio_key = 1 + below(w, 0xfffffffe);
	ret = do_cancel(w, w->fds[c->fdi], c->id, chance(w, 25) ? bad_iocb_ptr(w) : cb);
	if (c->strict && (ret >= 0 || errno == EINPROGRESS))
		fail(w, F_CORRUPT, "CANCEL of an iocb never submitted to strict ctx %#llx succeeded",
		     c->id);
}

static void op_destroy(struct worker *w)
{
	struct ctx *c = pick_ctx(w, ANY), *o;
	struct rust_aio_ring *ring;
	int fd;

	if (!c)
		return;
	if (c->strict) {
		destroy_strict(w, c);
		return;
	}
	fd = w->fds[c->fdi];
	ring = (void *)(unsigned long)c->id;
	if (!c->mapped) {
		/* A stale id: never destroy through it a ring mapped there since. */
		for (o = w->ctxs; o < w->ctxs + MAX_CTXS; o++) {
			if (o != c && o->used && o->fdi == c->fdi && o->id == c->id) {
				ctx_forget(w, c);
				return;
			}
		}
	} else if (!c->id_ok && chance(w, 50)) {
		__atomic_store_n(&ring->id, c->orig_id, __ATOMIC_RELAXED);
		c->id_ok = true;
	}
	if (do_destroy(w, fd, c->id)) {
		if (c->mapped && c->id_ok)
			fail(w, F_ERRNO, "DESTROY of live chaos ctx %#llx: %s", c->id, errname(errno));
		if (c->mapped)
			return;		/* the file's close will end it */
	}
	ctx_forget(w, c);
}

/* Chaos only: the ring header is user memory; the module must not trust it. */
static void op_header(struct worker *w)
{
	static const __u32 evil[] = { 0, 1, 31, 33, 4096, 0x7fffffff, 0x80000000, 0xffffffff };
	struct ctx *c = pick_ctx(w, CHAOS_MAPPED);
	struct rust_aio_ring *ring;
	__u32 v;

	if (!c)
		return;
	ring = (void *)(unsigned long)c->id;
	v = chance(w, 50) ? evil[below(w, 8)] : (__u32)rnd(w);
	switch (below(w, 5)) {
	case 0:
		v = chance(w, 40) ? c->orig_id : v;
		__atomic_store_n(&ring->id, v, __ATOMIC_RELAXED);
		c->id_ok = v == c->orig_id;
		break;
	case 1:
		__atomic_store_n(&ring->nr, chance(w, 40) ? c->slots : v, __ATOMIC_RELAXED);
		break;
	case 2:
		__atomic_store_n(&ring->head, chance(w, 30) ? v % c->slots : v, __ATOMIC_RELEASE);
		break;
	case 3:
		__atomic_store_n(&ring->tail, v, __ATOMIC_RELAXED);
		break;
	default:
		__atomic_store_n(&ring->id, c->orig_id, __ATOMIC_RELAXED);
		__atomic_store_n(&ring->nr, c->slots, __ATOMIC_RELAXED);
		c->id_ok = true;
		break;
	}
}

static void op_munmap(struct worker *w)
{
	struct ctx *c = pick_ctx(w, CHAOS_MAPPED);

	if (!c)
		return;
	if (c->size > PG && chance(w, 30)) {
		/* One page: the mapping splits, as fs/aio.c's does; the ring works on. */
		unsigned long page = below(w, c->size / PG);

		if (munmap((void *)(unsigned long)(c->id + page * PG), PG))
			fail(w, F_ERRNO, "munmap of page %lu of ring %#llx: %s", page, c->id,
			     errname(errno));
		c->mapped = false;
		publish(w, c);
		return;
	}
	if (munmap((void *)(unsigned long)c->id, c->size) == 0) {
		c->mapped = false;
		publish(w, c);
	}
}

static void op_mremap(struct worker *w)
{
	struct ctx *c = pick_ctx(w, CHAOS_MAPPED);
	struct __kernel_timespec zero = { 0 };
	void *dest, *moved;

	if (!c)
		return;
	dest = mmap(NULL, c->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dest == MAP_FAILED)
		return;
	moved = mremap((void *)(unsigned long)c->id, c->size, c->size,
		       MREMAP_MAYMOVE | MREMAP_FIXED, dest);
	if (moved != dest) {
		munmap(dest, c->size);
		return;
	}
	c->id = (unsigned long)moved;	/* the context follows its ring */
	publish(w, c);
	if (c->id_ok && do_getevents(w, w->fds[c->fdi], c->id, 0, 1, w->ev, &zero) < 0)
		fail(w, F_ERRNO, "ctx did not follow its ring to %#llx: %s", c->id, errname(errno));
}

/* Another worker's chaos context, through a dup of its file. */
static void op_cross(struct worker *w)
{
	int i, n = opt_workers * MAX_CTXS, start = below(w, n), fd = -1;
	struct __kernel_timespec ts = { 0 };
	unsigned int v = below(w, 3);
	__u64 id = 0;

	pthread_mutex_lock(&refs_lock);
	for (i = 0; i < n && fd < 0; i++) {
		struct ring_ref *r = &refs[(start + i) % n];

		if (r->fd >= 0 && (start + i) % n / MAX_CTXS != w->index) {
			fd = fcntl(r->fd, F_DUPFD_CLOEXEC, 0);
			id = r->id;
		}
	}
	pthread_mutex_unlock(&refs_lock);
	if (fd < 0)
		return;
	if (v == 0) {
		submit_chaos(w, fd, id);
	} else if (v == 1) {
		ts.tv_nsec = chance(w, 50) ? 0 : below(w, SHORT_NS + 1);
		do_getevents(w, fd, id, below(w, 3), 1 + below(w, 64), w->ev, &ts);
	} else {
		do_cancel(w, fd, id, (struct iocb *)w->scratch + below(w, PER_PAGE));
	}
	close(fd);
}

/*
 * The child of a fork: only system calls here (the parent's other threads
 * may hold any lock).  The parent's contexts must answer EINVAL; the child's
 * own die with it, long timers in flight.
 */
static void __noreturn fork_child(struct worker *w, __u64 r)
{
	struct iocb cb = { .aio_lio_opcode = IOCB_CMD_NOOP }, cbs[16], *list[16] = { &cb };
	struct timespec zero = { 0 };
	struct io_event ev[4];
	int bad = 0, i, k, n, fd, chaos_fd = -1;
	aio_context_t ctx;

	for (i = 0; i < MAX_CTXS; i++) {
		struct ctx *c = &w->ctxs[i];

		if (!c->used)
			continue;
		fd = w->fds[c->fdi];
		if (!c->strict)
			chaos_fd = fd;
		if (rust_aio_submit(fd, c->id, 1, list) != -1 || errno != EINVAL)
			bad |= 1;
		if (rust_aio_getevents(fd, c->id, 0, 4, ev, &zero) != -1 || errno != EINVAL)
			bad |= 2;
		if (rust_aio_cancel(fd, c->id, &cb) != -1 || errno != EINVAL)
			bad |= 4;
		if (rust_aio_destroy(fd, c->id) != -1 || errno != EINVAL)
			bad |= 8;
		if (!c->strict && c->mapped) {
			/* CVE-2023-52646: the inherited ring cannot move. */
			void *dest = mmap(NULL, c->size, PROT_NONE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (dest != MAP_FAILED &&
			    (mremap((void *)(unsigned long)c->id, c->size, c->size,
				    MREMAP_MAYMOVE | MREMAP_FIXED, dest) != MAP_FAILED ||
			     errno != EINVAL))
				bad |= 16;
		}
	}
	fd = rust_aio_open();
	if (fd < 0 && errno != EMFILE && errno != ENFILE && errno != ENOMEM)
		bad |= 32;
	for (k = 0, n = 1 + r % 3; k < n; k++, r /= 3) {
		/* Sometimes on the inherited file: these die with the child too. */
		int sfd = k == 1 && chaos_fd >= 0 && r % 2 ? chaos_fd : fd;

		if (sfd < 0)
			continue;
		if (rust_aio_setup(sfd, 1 + r % 64, &ctx)) {
			if (errno != EAGAIN && errno != ENOMEM)
				bad |= 64;
			continue;
		}
		for (i = 0; i < 16; i++) {
			cbs[i] = (struct iocb){
				.aio_data = i,
				.aio_lio_opcode = i % 3 ? RUST_AIO_CMD_TIMER :
						  i % 2 ? RUST_AIO_CMD_WORK : IOCB_CMD_NOOP,
				.aio_offset = i % 2 ? LONG_NS : 1000 * i,
			};
			list[i] = &cbs[i];
		}
		if (rust_aio_submit(sfd, ctx, 16, list) < 1 && errno != EAGAIN)
			bad |= 128;
	}
	_exit(bad);
}

static void op_fork(struct worker *w)
{
	static const char *const what[] = {
		"SUBMIT", "GETEVENTS", "CANCEL", "DESTROY", "mremap of the ring",
		"open", "SETUP of its own", "SUBMIT to its own",
	};
	__u64 r = rnd(w);
	int status = 0, i;
	pid_t pid, got;

	busy(w, "fork", 0);
	pid = fork();
	if (pid == 0)
		fork_child(w, r);
	if (pid < 0) {
		idle(w);
		return;
	}
	busy(w, "waitpid for a fork child", 0);
	do
		got = waitpid(pid, &status, 0);
	while (got < 0 && errno == EINTR);
	idle(w);
	if (got != pid)
		return;
	w->forks++;
	if (WIFSIGNALED(status))
		fail(w, F_ERRNO, "fork child killed by signal %d", WTERMSIG(status));
	for (i = 0; WIFEXITED(status) && i < 8; i++)
		if (WEXITSTATUS(status) & 1 << i)
			fail(w, F_ERRNO, "fork child: %s %s", what[i],
			     i < 5 ? "on a parent's context did not fail with EINVAL" : "failed");
}

static void op_misc(struct worker *w)
{
	static const unsigned long valid[] = {
		RUST_AIO_IOC_VERSION, RUST_AIO_IOC_SETUP, RUST_AIO_IOC_SUBMIT,
		RUST_AIO_IOC_GETEVENTS, RUST_AIO_IOC_CANCEL, RUST_AIO_IOC_DESTROY,
	};
	void *bad_args[] = { NULL, KERNEL_PTR, w->half + PG, w->ro_setup };
	int fi = pick_fd(w), fd, i;
	__u64 zeros[8] = { 0 };
	unsigned long cmd;
	__u32 version = 0;

	if (fi < 0)
		return;
	fd = w->fds[fi];
	switch (below(w, 4)) {
	case 0:	/* not one of ours; the VFS's own (FIONBIO...) have another type */
		cmd = _IOC(below(w, 4), RUST_AIO_IOC_MAGIC, below(w, 256), below(w, 256));
		for (i = 0; i < 6; i++)
			if (cmd == valid[i])
				return;
		if (dev(w, "bad ioctl", fd, cmd, zeros, 0) >= 0)
			fail(w, F_ERRNO, "ioctl %#lx succeeded", cmd);
		break;
	case 1:
		if (dev(w, "VERSION", fd, RUST_AIO_IOC_VERSION, &version, 0) ||
		    version != RUST_AIO_ABI_VERSION)
			fail(w, F_ERRNO, "VERSION: %u, errno %s", version, errname(errno));
		break;
	case 2:	/* the read-only one is readable, but names no context */
		cmd = valid[below(w, 6)];
		if (dev(w, "ioctl with a bad argument", fd, cmd, bad_args[below(w, 4)], 0) >= 0)
			fail(w, F_ERRNO, "ioctl %#lx with a bad argument succeeded", cmd);
		break;
	default:
		if (do_destroy(w, fd, bogus_id(w, NULL)) >= 0)
			fail(w, F_ERRNO, "DESTROY of a bogus id succeeded");
		break;
	}
}

/* ---- workers ------------------------------------------------------------- */

static void op_open(struct worker *w)
{
	open_fd(w);
}

static void op_close(struct worker *w)
{
	int fi = below(w, MAX_FDS);

	if (w->fds[fi] >= 0)
		close_fd(w, fi);
}

/* What a worker does, and how often: mostly SUBMIT and GETEVENTS, a fork in 2000. */
static const struct {
	void (*run)(struct worker *w);
	unsigned int weight;
} ops[] = {
	{ op_open, 8 }, { op_close, 4 }, { op_setup, 60 }, { op_submit, 700 },
	{ op_getevents, 560 }, { op_reap, 160 }, { op_cancel, 140 }, { op_destroy, 25 },
	{ op_header, 40 }, { op_munmap, 8 }, { op_mremap, 16 }, { op_cross, 60 },
	{ op_fork, 1 }, { op_misc, 30 },
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned int total = 0, r, op;
	int i;

	for (op = 0; op < ARRAY_SIZE(ops); op++)
		total += ops[op].weight;
	while (!__atomic_load_n(&stop_workers, __ATOMIC_RELAXED)) {
		idle(w);
		r = below(w, total);
		for (op = 0; r >= ops[op].weight; op++)
			r -= ops[op].weight;
		ops[op].run(w);
	}
	/* The end: every strict context drained and checked, every file closed. */
	for (i = 0; i < MAX_FDS; i++)
		if (w->fds[i] >= 0)
			close_fd(w, i);
	__atomic_store_n(&w->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static struct worker *worker_new(int index)
{
	struct worker *w = calloc(1, sizeof(*w));
	unsigned int i;

	if (!w) {
		perror("calloc");
		exit(1);
	}
	w->index = index;
	w->rng = seed ^ 0xd1b54a32d192ed03ULL * (index + 1);
	for (i = 0; i < MAX_FDS; i++)
		w->fds[i] = -1;
	for (i = 0; i < MAX_CTXS; i++)
		w->ctxs[i].efd = -1;
	w->pool = map_or_die(POOL_PAGES * 2 * PG);
	for (i = 0; i < POOL_PAGES; i++)
		mprotect(w->pool + (2 * i + 1) * PG, PG, PROT_NONE);
	for (i = 0; i < POOL_SLOTS; i++)
		w->freeq[i] = i;
	w->fq_len = POOL_SLOTS;
	w->ptrs = guarded_page();
	w->half = guarded_page();
	w->scratch = guarded_page();
	w->ro_setup = map_or_die(PG);
	w->ro_setup->nr_events = 64;
	mprotect(w->ro_setup, PG, PROT_READ);
	w->chaos_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->since = now_ns();
	return w;
}

/* ---- migration and offlining --------------------------------------------- */

static long fuzz_move_pages(unsigned long n, unsigned long *pages, int *nodes, int *status)
{
	return syscall(SYS_move_pages, 0, n, pages, nodes, status, nodes ? FUZZ_MPOL_MF_MOVE : 0);
}

static void *migrate_main(void *arg)
{
	static unsigned long pages[MAX_MOVE];
	static int nodes[MAX_MOVE], before[MAX_MOVE], after[MAX_MOVE];
	unsigned int n, i, p, round = 0;
	int target = 1;

	while (!__atomic_load_n(&stop_aux, __ATOMIC_RELAXED)) {
		__atomic_store_n(&migrate_since, now_ns(), __ATOMIC_RELAXED);
		n = 0;
		pthread_mutex_lock(&refs_lock);
		for (i = 0; i < MAX_REFS && n < MAX_MOVE; i++) {
			struct ring_ref *r = &refs[(round + i) % MAX_REFS];

			for (p = 0; r->addr && p < r->pages && n < MAX_MOVE; p++)
				pages[n++] = r->addr + p * PG;
		}
		pthread_mutex_unlock(&refs_lock);
		round++;
		if (!n || fuzz_move_pages(n, pages, NULL, before)) {
			usleep(10000);
			continue;
		}
		for (i = 0; i < n; i++)
			nodes[i] = target;
		fuzz_move_pages(n, pages, nodes, after);
		if (!fuzz_move_pages(n, pages, NULL, after))
			for (i = 0; i < n; i++)
				if (before[i] >= 0 && before[i] != target && after[i] == target)
					__atomic_add_fetch(&moves, 1, __ATOMIC_RELAXED);
		target ^= 1;
		usleep(1000);
	}
	return NULL;
}

static int block_write(unsigned int block, const char *state)
{
	char path[80];
	int fd, err = 0;

	snprintf(path, sizeof(path), "/sys/devices/system/memory/memory%u/state", block);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (write(fd, state, strlen(state)) < 0)
		err = errno;
	close(fd);
	return err;
}

static bool block_online(unsigned int block)
{
	char path[80], state[32] = "";
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/devices/system/memory/memory%u/state", block);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;	/* nothing we can do about it */
	n = read(fd, state, sizeof(state) - 1);
	close(fd);
	return n <= 0 || !strncmp(state, "online", 6);
}

static void block_restore(unsigned int block)
{
	int tries;

	for (tries = 0; tries < 100 && !block_online(block); tries++)
		if (block_write(block, "online_movable") && block_write(block, "online"))
			usleep(100000);
	if (!block_online(block))
		say("# fuzz: memory%u is left offline\n", block);
}

static void find_blocks(void)
{
	DIR *dir = opendir("/sys/devices/system/node/node1");
	struct dirent *e;
	unsigned int b;

	while (dir && (e = readdir(dir)) && nblocks < MAX_BLOCKS)
		if (sscanf(e->d_name, "memory%u", &b) == 1)
			blocks[nblocks++] = b;
	if (dir)
		closedir(dir);
}

static void *offline_main(void *arg)
{
	unsigned int i = 0, t;
	bool warned = false;
	int err;

	while (!__atomic_load_n(&stop_aux, __ATOMIC_RELAXED)) {
		unsigned int b = blocks[i++ % nblocks];

		/* No SETUP bound to node 1 meanwhile: it might find no memory there. */
		pthread_rwlock_wrlock(&bind_lock);
		__atomic_store_n(&offline_since, now_ns(), __ATOMIC_RELAXED);
		err = block_write(b, "offline");
		__atomic_store_n(&offline_since, 0, __ATOMIC_RELAXED);
		if (!err)
			__atomic_add_fetch(&cycles, 1, __ATOMIC_RELAXED);
		block_restore(b);
		pthread_rwlock_unlock(&bind_lock);
		if (err && err != EBUSY && err != EAGAIN && err != EINTR && err != ENOMEM &&
		    !warned) {
			say("# fuzz: offlining memory%u: %s (ignored)\n", b, strerror(err));
			warned = true;
		}
		for (t = 0; t < 20 && !__atomic_load_n(&stop_aux, __ATOMIC_RELAXED); t++)
			usleep(10000);
	}
	for (i = 0; i < nblocks; i++)
		block_restore(blocks[i]);
	return NULL;
}

static void on_signal(int sig)
{
}

/* ---- the end --------------------------------------------------------------- */

static int report(bool hung, double secs)
{
	unsigned long long calls = 0, events = 0, forks = 0;
	bool ledger_ok = !(nfail[F_LOST] + nfail[F_DUP] + nfail[F_CORRUPT]);
	bool errno_ok = !nfail[F_ERRNO];
	int i;

	for (i = 0; i < opt_workers; i++) {
		calls += workers[i]->calls;
		events += workers[i]->events;
		forks += workers[i]->forks;
	}
	pthread_mutex_lock(&print_lock);
	printf("# fuzz: %llu calls in %.1f s (%.0f calls/s), %llu events verified, %llu verified moves, %llu offline cycles, %llu forks\n",
	       calls, secs, secs > 0 ? calls / secs : 0.0, events, moves, cycles, forks);
	printf("%sok 1 fuzz: no event lost, duplicated or corrupted\n", ledger_ok ? "" : "not ");
	if (!ledger_ok)
		printf("# %llu lost, %llu duplicated, %llu corrupted\n",
		       nfail[F_LOST], nfail[F_DUP], nfail[F_CORRUPT]);
	printf("%sok 2 fuzz: every errno expected\n", errno_ok ? "" : "not ");
	if (!errno_ok)
		printf("# %llu unexpected answers\n", nfail[F_ERRNO]);
	printf("%sok 3 fuzz: no hang\n", hung ? "not " : "");
	printf("1..3\n");
	if (hung || !ledger_ok || !errno_ok)
		printf("# fuzz: FAILED with seed %llu (replay: %s)\n", seed, replay);
	fflush(stdout);
	pthread_mutex_unlock(&print_lock);
	return hung ? 2 : ledger_ok && errno_ok ? 0 : 1;
}

static void __noreturn hang(const char *who, long long start)
{
	long long now = now_ns();
	int i;

	say("# fuzz: %s made no progress for %d s; the workers:\n", who, HANG_S);
	for (i = 0; i < opt_workers; i++) {
		struct worker *w = workers[i];

		say("#   w%d: %s %s (ctx %#llx) for %lld s%s\n", i, w->in_call ? "in" : "after",
		    w->doing ? w->doing : "nothing", w->doing_ctx,
		    (now - __atomic_load_n(&w->since, __ATOMIC_ACQUIRE)) / NS_PER_S,
		    w->done ? ", done" : "");
	}
	/* Leave node 1's memory online, as far as that can be done now. */
	for (i = 0; offlining && i < 10; i++) {
		pthread_kill(offline_thread, SIGUSR1);
		usleep(100000);
	}
	for (i = 0; i < (int)nblocks; i++)
		block_restore(blocks[i]);
	report(true, (now - start) / 1e9);
	_exit(2);
}

static void print_usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-s SEED] [-t SECONDS] [-j WORKERS] [-M] [-O] [-v]\n"
		"  -M no migration thread, -O no offline thread, -v log each failing call\n", prog);
	exit(1);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART: EINTR */
	pthread_rwlockattr_t attr;
	long long start, end, now, last;
	bool have_seed = false, all_done;
	const char *env;
	int opt, i, fd;

	env = getenv("FUZZ_SECONDS");
	if (env && *env)
		opt_seconds = atoi(env);
	env = getenv("FUZZ_SEED");
	if (env && *env) {
		seed = strtoull(env, NULL, 0);
		have_seed = true;
	}
	while ((opt = getopt(argc, argv, "s:t:j:MOvh")) != -1) {
		switch (opt) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			have_seed = true;
			break;
		case 't':
			opt_seconds = atoi(optarg);
			break;
		case 'j':
			opt_workers = atoi(optarg);
			break;
		case 'M':
			opt_no_migrate = true;
			break;
		case 'O':
			opt_no_offline = true;
			break;
		case 'v':
			opt_verbose = true;
			break;
		default:
			print_usage(argv[0]);
		}
	}
	if (optind != argc || opt_seconds < 0 || opt_workers < 1 || opt_workers > MAX_WORKERS)
		print_usage(argv[0]);
	if (!have_seed) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (ts.tv_sec * NS_PER_S + ts.tv_nsec) ^ (unsigned long long)getpid() << 40;
	}
	snprintf(replay, sizeof(replay), "fuzz -s %llu -t %d -j %d%s%s%s", seed, opt_seconds,
		 opt_workers, opt_no_migrate ? " -M" : "", opt_no_offline ? " -O" : "",
		 opt_verbose ? " -v" : "");
	printf("# fuzz: seed %llu (replay: %s)\n", seed, replay);
	fflush(stdout);

	fd = rust_aio_open();
	if (fd < 0) {
		printf("# fuzz: cannot open %s: %s (is rust_aio loaded?)\n",
		       RUST_AIO_DEV, strerror(errno));
		printf("Bail out! %s unavailable\n", RUST_AIO_DEV);
		return 1;
	}
	close(fd);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	have_node1 = access("/sys/devices/system/node/node1", F_OK) == 0;
	if (have_node1 && !opt_no_offline)
		find_blocks();
	sigaction(SIGUSR1, &sa, NULL);
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&bind_lock, &attr);
	for (i = 0; i < MAX_REFS; i++)
		refs[i].fd = -1;
	for (i = 0; i < opt_workers; i++)
		workers[i] = worker_new(i);

	start = now_ns();
	end = start + opt_seconds * NS_PER_S;
	for (i = 0; i < opt_workers; i++)
		if (pthread_create(&workers[i]->thread, NULL, worker_main, workers[i])) {
			perror("pthread_create");
			return 1;
		}
	migrate_since = start;
	migrating = have_node1 && !opt_no_migrate &&
		    !pthread_create(&migrate_thread, NULL, migrate_main, NULL);
	offlining = nblocks && !pthread_create(&offline_thread, NULL, offline_main, NULL);

	/* The watchdog. */
	do {
		usleep(200000);
		now = now_ns();
		if (now >= end)
			__atomic_store_n(&stop_workers, 1, __ATOMIC_RELAXED);
		all_done = true;
		for (i = 0; i < opt_workers; i++) {
			struct worker *w = workers[i];

			if (__atomic_load_n(&w->done, __ATOMIC_ACQUIRE))
				continue;
			all_done = false;
			if (now - __atomic_load_n(&w->since, __ATOMIC_ACQUIRE) > HANG_S * NS_PER_S)
				hang("a worker", start);
		}
		last = __atomic_load_n(&migrate_since, __ATOMIC_RELAXED);
		if (migrating && now - last > HANG_S * NS_PER_S)
			hang("the migration thread", start);
		/* Offlining retries for as long as pages refuse to move: a signal ends it. */
		last = __atomic_load_n(&offline_since, __ATOMIC_RELAXED);
		if (offlining && last && now - last > 30 * NS_PER_S)
			pthread_kill(offline_thread, SIGUSR1);
	} while (!all_done);
	end = now_ns();
	for (i = 0; i < opt_workers; i++)
		pthread_join(workers[i]->thread, NULL);

	__atomic_store_n(&stop_aux, 1, __ATOMIC_RELAXED);
	if (migrating)
		pthread_join(migrate_thread, NULL);
	for (i = 0; offlining && pthread_tryjoin_np(offline_thread, NULL); i++) {
		if (i > HANG_S * 10)
			hang("the offline thread", start);
		pthread_kill(offline_thread, SIGUSR1);
		usleep(100000);
	}
	return report(false, (end - start) / 1e9);
}
