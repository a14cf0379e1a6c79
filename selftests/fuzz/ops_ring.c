// SPDX-License-Identifier: GPL-2.0
/* The fuzzer's SETUP, SUBMIT, GETEVENTS and reaping from the mapping. */
#include "fuzz.h"

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

void op_setup(struct worker *w)
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
void *bad_iocb_ptr(struct worker *w)
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
void submit_chaos(struct worker *w, int fd, __u64 id)
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

void op_submit(struct worker *w)
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

void op_getevents(struct worker *w)
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
void op_reap(struct worker *w)
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
