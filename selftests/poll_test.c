// SPDX-License-Identifier: GPL-2.0
/*
 * IOCB_CMD_POLL through rust_aio against native aio as the oracle: the same
 * scenario (files, events asked for, what happens after the submit) through
 * the io_* system calls and through the module, which must agree on what
 * SUBMIT and CANCEL return, on whether and when the event comes, on the
 * event (res, res2, data) and on the eventfd's count.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>

#include "kselftest_harness.h"
#include "rust_aio_test.h"
#include "aio_way.h"

enum scenario {
	S_PIPE_WAIT_WRITE, S_PIPE_READY, S_PIPE_WRITE_END, S_EVENTFD_IN_OUT,
	S_EVENTFD_WAIT, S_FILE, S_FILE_PRI, S_EVENTS_OVER_16_BITS, S_OFFSET,
	S_NBYTES, S_RW_FLAGS, S_CLOSED_FD, S_RESFD, S_CANCEL, S_CANCEL_TWICE,
	S_HUP, S_DESTROY, S_PIPE_WAIT_READ_END_OUT, S_MANY, NR_SCENARIOS
};
static const char *const names[] = {
	"pipe: wait, then write", "pipe: ready", "pipe write end: POLLOUT",
	"eventfd: POLLIN|POLLOUT", "eventfd: wait, then write", "ext4 file",
	"ext4 file: POLLPRI only", "events over 16 bits", "aio_offset",
	"aio_nbytes", "aio_rw_flags", "closed fd", "RESFD", "cancel",
	"cancel twice", "pipe: wait, then hang up", "destroy while waiting",
	"pipe read end: POLLOUT never", "16 polls, one write",
};

#define MANY 16

struct poll_result {
	long submitted, cancelled, cancelled2, destroyed;
	long early;			/* events before the trigger (50 ms) */
	long events;			/* events after it */
	long long res[MANY], res2[MANY];
	unsigned long long data[MANY], signals;
};

static long way_cancel(struct aio_way *w, struct iocb *cb)
{
	struct io_event ev;
	long r = w->rust ? rust_aio_cancel(w->dev, w->ctx, cb) :
			   syscall(SYS_io_cancel, w->ctx, cb, &ev);

	return r < 0 ? -errno : r;
}

/* Reaps up to n events, waiting up to ms in all. */
static long way_reap_n(struct aio_way *w, struct io_event *ev, long n, long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000 };
	long got = w->rust ? rust_aio_getevents(w->dev, w->ctx, n, n, ev, &ts) :
			     syscall(SYS_io_getevents, w->ctx, n, n, ev, &ts);

	return got < 0 ? -errno : got;
}

static struct poll_result poll_case(bool rust, enum scenario s, const char *file)
{
	static struct iocb cbs[MANY];
	struct iocb *list[MANY];
	struct poll_result r = { 0 };
	struct io_event ev[MANY];
	struct aio_way w;
	int p[2], efd = eventfd(0, EFD_NONBLOCK), target, n = 1, i, fd = -1;
	uint64_t one = 1;
	char byte = 'x';

	if (pipe2(p, O_NONBLOCK) || efd < 0) {
		perror("poll_test");
		exit(1);
	}
	target = p[0];
	for (i = 0; i < MANY; i++) {
		cbs[i] = (struct iocb){ .aio_lio_opcode = IOCB_CMD_POLL, .aio_fildes = target,
					.aio_buf = POLLIN, .aio_data = 0x500 + i };
		list[i] = &cbs[i];
	}
	switch (s) {
	case S_PIPE_READY:
		if (write(p[1], &byte, 1) != 1)
			exit(1);
		break;
	case S_PIPE_WRITE_END: cbs[0].aio_fildes = p[1]; cbs[0].aio_buf = POLLOUT; break;
	case S_PIPE_WAIT_READ_END_OUT: cbs[0].aio_buf = POLLOUT; break;
	case S_EVENTFD_IN_OUT: cbs[0].aio_fildes = efd; cbs[0].aio_buf = POLLIN | POLLOUT; break;
	case S_EVENTFD_WAIT: cbs[0].aio_fildes = efd; break;
	case S_FILE:
	case S_FILE_PRI:
		fd = open(file, O_RDWR | O_CREAT, 0600);
		cbs[0].aio_fildes = fd;
		cbs[0].aio_buf = s == S_FILE ? POLLIN | POLLOUT | POLLPRI : POLLPRI;
		break;
	case S_EVENTS_OVER_16_BITS: cbs[0].aio_buf = 0x10000 | POLLIN; break;
	case S_OFFSET: cbs[0].aio_offset = 1; break;
	case S_NBYTES: cbs[0].aio_nbytes = 1; break;
	case S_RW_FLAGS: cbs[0].aio_rw_flags = 1; break;
	case S_CLOSED_FD: cbs[0].aio_fildes = 999; break;
	case S_RESFD: cbs[0].aio_flags = IOCB_FLAG_RESFD; cbs[0].aio_resfd = efd; break;
	case S_MANY: n = MANY; break;
	default: break;
	}

	way_setup(&w, rust);
	r.submitted = w.rust ? rust_aio_submit(w.dev, w.ctx, n, list) :
			       syscall(SYS_io_submit, w.ctx, n, list);
	if (r.submitted < 0)
		r.submitted = -errno;
	if (r.submitted > 0) {
		r.early = way_reap_n(&w, ev, n, 50);
		switch (s) {
		case S_PIPE_WAIT_WRITE:
		case S_RESFD:
		case S_MANY:
			if (write(p[1], &byte, 1) != 1)
				exit(1);
			break;
		case S_EVENTFD_WAIT:
			if (write(efd, &one, sizeof(one)) != sizeof(one))
				exit(1);
			break;
		case S_CANCEL:
			r.cancelled = way_cancel(&w, &cbs[0]);
			break;
		case S_CANCEL_TWICE:
			r.cancelled = way_cancel(&w, &cbs[0]);
			r.cancelled2 = way_cancel(&w, &cbs[0]);
			break;
		case S_HUP:
			close(p[1]);
			p[1] = -1;
			break;
		case S_DESTROY:
			r.destroyed = w.rust ? rust_aio_destroy(w.dev, w.ctx) :
					       syscall(SYS_io_destroy, w.ctx);
			if (w.rust)
				close(w.dev);
			goto out;
		default:
			break;
		}
		if (r.early == 0) {
			/* Waiting ones: 2 s; one that never comes costs 200 ms. */
			r.events = way_reap_n(&w, ev, n, s == S_PIPE_WAIT_READ_END_OUT ? 200 : 2000);
		} else {
			r.events = r.early;
		}
		for (i = 0; i < r.events && i < MANY; i++) {
			int k = ev[i].data - 0x500;

			if (k < 0 || k >= MANY)
				k = 0;
			r.res[k] = ev[i].res;
			r.res2[k] = ev[i].res2;
			r.data[k] = ev[i].data;
		}
		if (s == S_RESFD)
			poll(&(struct pollfd){ .fd = efd, .events = POLLIN }, 1, 2000);
	}
	if (s == S_RESFD && read(efd, &r.signals, sizeof(r.signals)) != sizeof(r.signals))
		r.signals = 0;
	way_teardown(&w);
out:
	close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	close(efd);
	if (fd >= 0)
		close(fd);
	return r;
}

TEST(poll_like_native_aio)
{
	char file[256];
	int s, i, mismatches = 0;

	ASSERT_NE(NULL, scratch());
	snprintf(file, sizeof(file), "%s/poll_test.%d", scratch(), getpid());
	for (s = 0; s < NR_SCENARIOS; s++) {
		struct poll_result want = poll_case(false, s, file);
		struct poll_result got = poll_case(true, s, file);
		bool same = !memcmp(&want, &got, sizeof(want));

		TH_LOG("%-32s aio: submit %ld cancel %ld/%ld destroy %ld early %ld events %ld "
		       "res %#llx data %#llx signals %llu%s", names[s], want.submitted,
		       want.cancelled, want.cancelled2, want.destroyed, want.early, want.events,
		       want.res[0], want.data[0], want.signals, same ? "" : " <- rust_aio differs:");
		if (same)
			continue;
		mismatches++;
		TH_LOG("%-32s rust_aio: submit %ld cancel %ld/%ld destroy %ld early %ld events %ld "
		       "res %#llx data %#llx signals %llu", "", got.submitted, got.cancelled,
		       got.cancelled2, got.destroyed, got.early, got.events, got.res[0], got.data[0],
		       got.signals);
		for (i = 1; i < MANY; i++)
			if (want.res[i] != got.res[i] || want.data[i] != got.data[i])
				TH_LOG("  event %d: aio res %#llx, rust_aio %#llx", i, want.res[i],
				       got.res[i]);
	}
	EXPECT_EQ(0, mismatches);
	/* The oracle says what a few are: the scenarios test something. */
	EXPECT_EQ(POLLIN | POLLRDNORM, poll_case(false, S_PIPE_WAIT_WRITE, file).res[0]);
	EXPECT_EQ(-EINPROGRESS, poll_case(false, S_CANCEL, file).cancelled);
	EXPECT_EQ(-EINVAL, poll_case(false, S_FILE_PRI, file).submitted);
	EXPECT_EQ(MANY, poll_case(false, S_MANY, file).events);
	unlink(file);
}

/*
 * Races: wake-ups from another thread, CANCEL and destroy on polls of many
 * pipes at once. Every poll must end with exactly one event (POLLIN, or 0 if
 * a cancel won), and destroy with polls still waiting while a writer wakes
 * them must come back; lockdep and KASAN watch.
 */
#define PIPES 16
#define ROUNDS 300

struct writer {
	int (*p)[2];
	volatile bool stop;
	unsigned int seed;
};

static void *write_pipes(void *arg)
{
	struct writer *wr = arg;
	char byte = 'w';

	while (!wr->stop) {
		int i = rand_r(&wr->seed) % PIPES;

		if (write(wr->p[i][1], &byte, 1) < 0 && errno != EAGAIN)
			break;
	}
	return NULL;
}

TEST(poll_races_cancel_wake_destroy)
{
	static struct iocb cbs[PIPES];
	struct iocb *list[PIPES];
	struct io_event ev[PIPES + 1];
	struct timespec ts = { .tv_sec = 10 }, zero = { 0 };
	int p[PIPES][2], round, i, dev = rust_aio_open();
	long events = 0, cancelled = 0, woken = 0;
	struct writer wr = { .p = p, .seed = 1 };
	pthread_t thread;

	ASSERT_LE(0, dev);
	for (round = 0; round < ROUNDS; round++) {
		aio_context_t ctx;
		bool destroy_early = round % 3 == 2;
		int got = 0, n;

		for (i = 0; i < PIPES; i++) {
			ASSERT_EQ(0, pipe2(p[i], O_NONBLOCK));
			cbs[i] = (struct iocb){ .aio_lio_opcode = IOCB_CMD_POLL, .aio_fildes = p[i][0],
						.aio_buf = POLLIN, .aio_data = i };
			list[i] = &cbs[i];
		}
		ASSERT_EQ(0, rust_aio_setup(dev, PIPES, &ctx));
		ASSERT_EQ(PIPES, rust_aio_submit(dev, ctx, PIPES, list));
		wr.stop = false;
		ASSERT_EQ(0, pthread_create(&thread, NULL, write_pipes, &wr));
		if (destroy_early) {
			/* Destroy with polls waiting and being woken. */
			EXPECT_EQ(0, rust_aio_destroy(dev, ctx));
		} else {
			for (i = round % 2; i < PIPES; i += 2) {
				int r = rust_aio_cancel(dev, ctx, &cbs[i]);

				/* EINPROGRESS, or EINVAL: a wake-up got there first. */
				if (r != -1 || (errno != EINPROGRESS && errno != EINVAL))
					ASSERT_TRUE(false) TH_LOG("cancel: %d errno %d", r, errno);
			}
			while (got < PIPES) {
				n = rust_aio_getevents(dev, ctx, 1, PIPES - got, ev + got, &ts);
				ASSERT_LT(0, n) TH_LOG("round %d: %d of %d events", round, got, PIPES);
				got += n;
			}
			/* Not one more. */
			EXPECT_EQ(0, rust_aio_getevents(dev, ctx, 0, 1, ev + got, &zero));
			for (i = 0; i < PIPES; i++) {
				/*
				 * As fs/aio.c: a wake-up that completes the poll gives
				 * its own events (a pipe's name POLLIN|POLLRDNORM); one
				 * that finds ctx_lock busy leaves it to the work, whose
				 * poll gives those asked for (POLLIN).
				 */
				EXPECT_TRUE(ev[i].res == 0 || ev[i].res == POLLIN ||
					    ev[i].res == (POLLIN | POLLRDNORM))
					TH_LOG("round %d: event %d: res %#llx data %llu", round, i,
					       (long long)ev[i].res, (unsigned long long)ev[i].data);
				cancelled += ev[i].res == 0;
				woken += ev[i].res != 0;
			}
			events += got;
			EXPECT_EQ(0, rust_aio_destroy(dev, ctx));
		}
		wr.stop = true;
		pthread_join(thread, NULL);
		for (i = 0; i < PIPES; i++) {
			close(p[i][0]);
			close(p[i][1]);
		}
	}
	TH_LOG("%ld events (%ld cancelled, %ld woken) in %d rounds, %d destroyed while waiting",
	       events, cancelled, woken, ROUNDS, ROUNDS / 3);
	EXPECT_LT(0, cancelled);
	EXPECT_LT(0, woken);
	close(dev);
}

/*
 * DESTROY while another thread is in the middle of submitting polls that
 * will never be woken: destroy must cancel them all and return, including
 * one whose SUBMIT had begun before destroy and lists it after destroy has
 * cancelled what was listed. A poll left waiting would keep destroy waiting
 * for ever (the guest reports the hung task).
 */
struct submitter {
	int dev, fd;
	aio_context_t ctx;
	long submitted;
};

static void *submit_polls(void *arg)
{
	struct submitter *sub = arg;
	static __thread struct iocb cbs[4096];

	for (;;) {
		struct iocb *cb = &cbs[sub->submitted % 4096];

		*cb = (struct iocb){ .aio_lio_opcode = IOCB_CMD_POLL, .aio_fildes = sub->fd,
				     .aio_buf = POLLIN };
		if (rust_aio_submit(sub->dev, sub->ctx, 1, &cb) != 1)
			break;
		sub->submitted++;
	}
	return NULL;
}

TEST(destroy_races_poll_submit)
{
	int round, p[2];
	long total = 0;

	ASSERT_EQ(0, pipe(p));
	for (round = 0; round < 100; round++) {
		struct submitter sub = { .dev = rust_aio_open(), .fd = p[0] };
		pthread_t thread;

		ASSERT_LE(0, sub.dev);
		ASSERT_EQ(0, rust_aio_setup(sub.dev, 4096, &sub.ctx));
		ASSERT_EQ(0, pthread_create(&thread, NULL, submit_polls, &sub));
		usleep(round % 20 * 100);
		EXPECT_EQ(0, rust_aio_destroy(sub.dev, sub.ctx));
		pthread_join(thread, NULL);
		total += sub.submitted;
		close(sub.dev);
	}
	TH_LOG("%ld polls submitted, all cancelled by 100 destroys", total);
	close(p[0]);
	close(p[1]);
}

TEST_HARNESS_MAIN
