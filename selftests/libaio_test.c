// SPDX-License-Identifier: GPL-2.0
/*
 * A libaio program, built twice from this source: linked with Debian's
 * libaio (the oracle: native aio) and with rust_aio's libaio.a (the module).
 * It prints what every call returns and every event holds, with nothing that
 * depends on addresses; selftests/libaio-oracle runs both builds and requires
 * the same output, line for line. It also checks what libaio promises
 * whichever it runs on: -errno returns with errno untouched, the ring's
 * header for user-space reaping, io_pgetevents()'s signal mask.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <libaio.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define N 8

/* libaio exports it; its header does not declare it. */
extern int io_queue_wait(io_context_t ctx, struct timespec *timeout);

static int failures;

/* Every call: its name, its result, and whether errno survived it. */
#define CALL(expr) ({							\
	long __r;							\
	errno = 4242;							\
	__r = (expr);							\
	printf("%-40s = %ld%s\n", #expr, __r, errno == 4242 ? "" : " (errno changed!)"); \
	if (errno != 4242)						\
		failures++;						\
	__r;								\
})

static void print_events(const char *what, struct io_event *ev, int n, struct iocb *base)
{
	int i;

	for (i = 0; i < n; i++)
		printf("%s event: iocb %ld data %lu res %ld res2 %ld\n", what,
		       (long)((struct iocb *)ev[i].obj - base), (unsigned long)ev[i].data,
		       (long)ev[i].res, (long)ev[i].res2);
}

/* Events sorted by their iocb: completion order is not part of the contract. */
static int by_obj(const void *a, const void *b)
{
	const struct io_event *x = a, *y = b;

	return x->obj < y->obj ? -1 : x->obj > y->obj;
}

/* Ring mappings in this process ("[aio]" for native aio, "[rust_aio]"). */
static int ring_mappings(void)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, "aio]") != NULL;
	if (f)
		fclose(f);
	return n;
}

static void on_event(io_context_t ctx, struct iocb *iocb, long res, long res2)
{
	(void)ctx;
	printf("callback: nbytes %lu res %ld res2 %ld\n", (unsigned long)iocb->u.c.nbytes, res,
	       res2);
}

static void on_usr1(int sig)
{
	(void)sig;
	printf("SIGUSR1 delivered\n");
}

static void *send_usr1(void *arg)
{
	usleep(100000);
	pthread_kill(*(pthread_t *)arg, SIGUSR1);
	return NULL;
}

static bool usr1_blocked(void)
{
	sigset_t now;

	pthread_sigmask(SIG_BLOCK, NULL, &now);
	return sigismember(&now, SIGUSR1);
}

int main(void)
{
	static struct iocb cbs[N];
	struct iocb *list[N];
	struct io_event ev[N];
	struct timespec zero = { 0, 0 }, short_wait = { 0, 200000000 };
	struct iovec iov[3];
	io_context_t ctx = 0, bad = (io_context_t)1;
	char path[256], *buf, *check;
	const char *dir = getenv("RUST_AIO_SCRATCH");
	int fd, p[2], i, n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (posix_memalign((void **)&buf, BLOCK, N * BLOCK) ||
	    posix_memalign((void **)&check, BLOCK, N * BLOCK) || pipe(p))
		return 2;

	printf("# setup\n");
	CALL(io_queue_init(0, &ctx));
	CALL(io_setup(0, &ctx));
	ctx = bad;
	CALL(io_setup(8, &ctx));
	ctx = 0;
	CALL(io_setup(N, &ctx));
	CALL(io_destroy(bad));

	printf("# bad pointers: -EFAULT, never a fault, and no context left behind\n");
	{
		io_context_t *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		io_context_t *kernel = (io_context_t *)0xffff888000000000UL;
		struct timespec *bad_ts = (struct timespec *)8;
		int rings = ring_mappings();

		if (ro == MAP_FAILED)
			return 2;
		CALL(io_setup(8, ro));
		CALL(io_setup(8, kernel));
		printf("rings mapped by the failed setups: %d\n", ring_mappings() - rings);
		CALL(io_getevents(NULL, 1, 1, ev, bad_ts));
		CALL(io_pgetevents(NULL, 1, 1, ev, bad_ts, NULL));
		CALL(io_queue_wait(NULL, bad_ts));
		munmap(ro, 4096);
	}

	printf("# O_DIRECT writes and reads on ext4, if there is a scratch disk\n");
	snprintf(path, sizeof(path), "%s/libaio_test.%d", dir ? dir : "/tmp", getpid());
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR | (dir ? O_DIRECT : 0), 0600);
	if (fd < 0)
		return 2;
	for (i = 0; i < N; i++) {
		memset(buf + i * BLOCK, 'a' + i, BLOCK);
		io_prep_pwrite(&cbs[i], fd, buf + i * BLOCK, BLOCK, (long long)i * BLOCK);
		cbs[i].data = (void *)(uintptr_t)(100 + i);
		list[i] = &cbs[i];
	}
	CALL(io_submit(ctx, N, list));
	n = CALL(io_getevents(ctx, N, N, ev, NULL));
	qsort(ev, n, sizeof(ev[0]), by_obj);
	print_events("pwrite", ev, n, cbs);
	for (i = 0; i < N; i++) {
		io_prep_pread(&cbs[i], fd, check + i * BLOCK, BLOCK, (long long)i * BLOCK);
		cbs[i].data = (void *)(uintptr_t)(200 + i);
	}
	CALL(io_submit(ctx, N, list));
	n = CALL(io_getevents(ctx, N, N, ev, NULL));
	qsort(ev, n, sizeof(ev[0]), by_obj);
	print_events("pread", ev, n, cbs);
	printf("read back what was written: %s\n",
	       memcmp(buf, check, N * BLOCK) ? "NO" : "yes");

	printf("# vectored, short, fsync\n");
	for (i = 0; i < 3; i++)
		iov[i] = (struct iovec){ check + i * 2 * BLOCK, BLOCK };
	io_prep_preadv(&cbs[0], fd, iov, 3, BLOCK);
	io_prep_pwritev(&cbs[1], fd, iov, 2, N * BLOCK);
	io_prep_pread(&cbs[2], fd, check, BLOCK, (N + 5) * BLOCK);
	io_prep_fsync(&cbs[3], fd);
	io_prep_fdsync(&cbs[4], fd);
	CALL(io_submit(ctx, 3, list));
	n = CALL(io_getevents(ctx, 3, N, ev, NULL));
	qsort(ev, n, sizeof(ev[0]), by_obj);
	print_events("rw", ev, n, cbs);
	CALL(io_submit(ctx, 2, list + 3));
	n = CALL(io_getevents(ctx, 2, N, ev, NULL));
	qsort(ev, n, sizeof(ev[0]), by_obj);
	print_events("sync", ev, n, cbs);

	printf("# errors\n");
	io_prep_pread(&cbs[0], 999, check, BLOCK, 0);
	CALL(io_submit(ctx, 1, list));
	io_prep_pread(&cbs[0], fd, check, BLOCK, 0);
	CALL(io_submit(bad, 1, list));
	CALL(io_submit(ctx, -1, list));
	CALL(io_getevents(ctx, 2, 1, ev, &zero));

	printf("# an empty ring with a zero timeout: 0 at once\n");
	CALL(io_getevents(ctx, 0, N, ev, &zero));
	CALL(io_getevents(ctx, 1, N, ev, &short_wait));

	printf("# poll, cancel\n");
	io_prep_poll(&cbs[0], p[0], POLLIN);
	cbs[0].data = (void *)7;
	io_prep_poll(&cbs[1], p[0], POLLIN);
	cbs[1].data = (void *)8;
	CALL(io_submit(ctx, 2, list));
	CALL(io_cancel(ctx, &cbs[0], &ev[0]));
	n = CALL(io_getevents(ctx, 1, 1, ev, NULL));
	print_events("cancelled poll", ev, n, cbs);
	CALL(write(p[1], "x", 1));
	n = CALL(io_getevents(ctx, 1, 1, ev, NULL));
	print_events("woken poll", ev, n, cbs);
	CALL(io_cancel(ctx, &cbs[1], &ev[0]));

	printf("# io_queue_run: callbacks\n");
	for (i = 0; i < 3; i++) {
		io_prep_pread(&cbs[i], fd, check + i * BLOCK, 100 * (i + 1), 0);
		io_set_callback(&cbs[i], on_event);
	}
	CALL(io_submit(ctx, 3, list));
	usleep(200000);
	CALL(io_queue_run(ctx));

	printf("# io_pgetevents: the mask is in force while it waits, and only then\n");
	{
		struct sigaction sa = { .sa_handler = on_usr1 };
		sigset_t block_usr1, allow_all;
		pthread_t self = pthread_self(), killer;

		sigaction(SIGUSR1, &sa, NULL);
		sigemptyset(&block_usr1);
		sigaddset(&block_usr1, SIGUSR1);
		sigemptyset(&allow_all);
		pthread_sigmask(SIG_BLOCK, &block_usr1, NULL);
		pthread_create(&killer, NULL, send_usr1, &self);
		CALL(io_pgetevents(ctx, 1, 1, ev, NULL, &allow_all));
		pthread_join(killer, NULL);
		printf("SIGUSR1 blocked again after: %s\n", usr1_blocked() ? "yes" : "NO");
		pthread_create(&killer, NULL, send_usr1, &self);
		CALL(io_pgetevents(ctx, 1, 1, ev, &short_wait, &block_usr1));
		pthread_join(killer, NULL);
		printf("SIGUSR1 pending, not delivered: %s\n", usr1_blocked() ? "yes" : "NO");
		pthread_sigmask(SIG_UNBLOCK, &block_usr1, NULL);
	}

	printf("# teardown\n");
	CALL(io_queue_release(ctx));
	CALL(io_destroy(ctx));
	close(fd);
	unlink(path);
	printf("# %d failures\n", failures);
	return failures ? 1 : 0;
}
