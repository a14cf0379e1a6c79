// SPDX-License-Identifier: GPL-2.0
/* The fuzzer's ledger: device calls, the iocb pool, what each context is owed, files. */
#include "fuzz.h"

static const char *const fail_names[NR_F] = { "lost", "duplicated", "corrupted", "errno" };
static unsigned int printed;

long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* splitmix64: small, fast, and any seed will do. */
__u64 rnd(struct worker *w)
{
	__u64 z = (w->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

__u64 below(struct worker *w, __u64 n)
{
	return n ? rnd(w) % n : 0;
}

bool chance(struct worker *w, unsigned int percent)
{
	return below(w, 100) < percent;
}

void say(const char *fmt, ...)
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

const char *errname(int err)
{
	static __thread char buf[16];

	if (errno_expected(err))
		return expected_errnos[err];
	snprintf(buf, sizeof(buf), "errno %d", err);
	return buf;
}

void fail(struct worker *w, int kind, const char *fmt, ...)
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

void busy(struct worker *w, const char *what, __u64 ctx)
{
	w->doing = what;
	w->doing_ctx = ctx;
	__atomic_store_n(&w->in_call, true, __ATOMIC_RELAXED);
	__atomic_store_n(&w->since, now_ns(), __ATOMIC_RELEASE);
}

void idle(struct worker *w)
{
	__atomic_store_n(&w->in_call, false, __ATOMIC_RELAXED);
	__atomic_store_n(&w->since, now_ns(), __ATOMIC_RELEASE);
}

/* Every device call goes through here: counted, watched, errno checked. */
long dev(struct worker *w, const char *what, int fd, unsigned long cmd, void *arg, __u64 ctx)
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

long do_submit(struct worker *w, int fd, __u64 ctx, __s64 nr, void *iocbpp)
{
	struct rust_aio_submit s = { .ctx = ctx, .nr = nr, .iocbpp = (unsigned long)iocbpp };

	return dev(w, "SUBMIT", fd, RUST_AIO_IOC_SUBMIT, &s, ctx);
}

long do_getevents(struct worker *w, int fd, __u64 ctx, __s64 min_nr, __s64 nr,
		  void *events, void *timeout)
{
	struct rust_aio_getevents g = {
		.ctx = ctx, .min_nr = min_nr, .nr = nr,
		.events = (unsigned long)events, .timeout = (unsigned long)timeout,
	};

	return dev(w, "GETEVENTS", fd, RUST_AIO_IOC_GETEVENTS, &g, ctx);
}

long do_cancel(struct worker *w, int fd, __u64 ctx, void *iocb)
{
	struct rust_aio_cancel c = { .ctx = ctx, .iocb = (unsigned long)iocb };

	return dev(w, "CANCEL", fd, RUST_AIO_IOC_CANCEL, &c, ctx);
}

long do_destroy(struct worker *w, int fd, __u64 ctx)
{
	__u64 id = ctx;

	return dev(w, "DESTROY", fd, RUST_AIO_IOC_DESTROY, &id, ctx);
}

void *map_or_die(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

/* A read-write page followed by a PROT_NONE page. */
char *guarded_page(void)
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

int set_policy(int node)
{
	unsigned long mask = 1UL << (node < 0 ? 0 : node);

	if (node < 0)
		return syscall(SYS_set_mempolicy, FUZZ_MPOL_DEFAULT, NULL, 0);
	return syscall(SYS_set_mempolicy, FUZZ_MPOL_BIND, &mask, 64);
}

/* ---- the iocb pool and the ledger -------------------------------------- */

struct iocb *slot_iocb(struct worker *w, long s)
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

long slot_alloc(struct worker *w)
{
	long s;

	if (!w->fq_len)
		return -1;
	s = w->freeq[w->fq_head];
	w->fq_head = (w->fq_head + 1) % POOL_SLOTS;
	w->fq_len--;
	return s;
}

void slot_free(struct worker *w, long s)
{
	w->meta[s].state = FREE;
	w->freeq[(w->fq_head + w->fq_len) % POOL_SLOTS] = s;
	w->fq_len++;
}

void mark_inflight(struct worker *w, struct ctx *c, long s, bool loose)
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
void check_event(struct worker *w, struct ctx *c, const struct io_event *ev, const char *how)
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

void publish(struct worker *w, struct ctx *c)
{
	struct ring_ref *r = &refs[w->index * MAX_CTXS + (c - w->ctxs)];

	pthread_mutex_lock(&refs_lock);
	r->addr = c->used && c->mapped ? c->id : 0;
	r->pages = c->size / PG;
	r->fd = c->used && !c->strict ? w->fds[c->fdi] : -1;
	r->id = c->id;
	pthread_mutex_unlock(&refs_lock);
}

void ctx_new(struct worker *w, struct ctx *c, int fdi, __u64 id, unsigned int nr_events)
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

void ctx_forget(struct worker *w, struct ctx *c)
{
	c->used = false;
	publish(w, c);
	if (c->efd >= 0)
		close(c->efd);
	c->efd = -1;
}

struct ctx *pick_ctx(struct worker *w, enum pick kind)
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
__u64 bogus_id(struct worker *w, struct ctx *c)
{
	const __u64 ids[] = {
		0, (unsigned long)KERNEL_PTR, ~0ULL,
		(unsigned long)w->scratch + PG,			/* PROT_NONE */
		c ? c->id + 8 * (1 + below(w, 16)) : 1,		/* never page-aligned */
	};

	return ids[below(w, ARRAY_SIZE(ids))];
}

/* Cancels a pool iocb in flight on strict context c and records the answer. */
void cancel_slot(struct worker *w, struct ctx *c, long s)
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

void destroy_strict(struct worker *w, struct ctx *c)
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

/* ---- files --------------------------------------------------------------- */

int open_fd(struct worker *w)
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

int pick_fd(struct worker *w)
{
	int i, start = below(w, MAX_FDS);

	for (i = 0; i < MAX_FDS; i++)
		if (w->fds[(start + i) % MAX_FDS] >= 0)
			return (start + i) % MAX_FDS;
	return open_fd(w);
}

void close_fd(struct worker *w, int fi)
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
