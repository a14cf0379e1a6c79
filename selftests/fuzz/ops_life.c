// SPDX-License-Identifier: GPL-2.0
/* The fuzzer's CANCEL, DESTROY, header writes, munmap, mremap, cross-worker use, fork, misc. */
#include "fuzz.h"

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

void op_cancel(struct worker *w)
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

void op_destroy(struct worker *w)
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
void op_header(struct worker *w)
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

void op_munmap(struct worker *w)
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

void op_mremap(struct worker *w)
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
void op_cross(struct worker *w)
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
			/*
			 * CVE-2023-52646: the child cannot move the parent's ring; as
			 * 7.x's fs/aio.c's, it is VM_DONTCOPY: not even inherited
			 * (nothing the child mapped can be there yet: it maps nothing
			 * before this loop).
			 */
			if (msync((void *)(unsigned long)c->id, 4096, MS_ASYNC) != -1 ||
			    errno != ENOMEM)
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

void op_fork(struct worker *w)
{
	static const char *const what[] = {
		"SUBMIT", "GETEVENTS", "CANCEL", "DESTROY", "the ring: inherited, but",
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
			     i < 4 ? "on a parent's context did not fail with EINVAL" :
			     i == 4 ? "VM_DONTCOPY" : "failed");
}

void op_misc(struct worker *w)
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
