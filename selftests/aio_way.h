/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The oracle tests' two ways to run one program: native aio (the io_* system
 * calls, the oracle) and rust_aio, behind one interface, and where the
 * scratch disk is mounted.
 */
#ifndef RUST_AIO_WAY_H
#define RUST_AIO_WAY_H

#include <stdbool.h>

#include "rust_aio_test.h"

/* The guest's ext4 scratch disk (qemu/run; qemu/init exports the path). */
static inline const char *scratch(void)
{
	const char *dir = getenv("RUST_AIO_SCRATCH");

	return dir && *dir ? dir : NULL;
}

/* One way to submit and reap: native aio (the oracle) or rust_aio. */
struct aio_way {
	bool rust;
	int dev;
	aio_context_t ctx;
};

static inline void way_setup(struct aio_way *w, bool rust)
{
	w->rust = rust;
	w->dev = rust ? rust_aio_open() : -1;
	w->ctx = 0;
	if (rust ? rust_aio_setup(w->dev, 64, &w->ctx) : syscall(SYS_io_setup, 64, &w->ctx)) {
		perror("io_test: setup");
		exit(1);
	}
}

static inline void way_teardown(struct aio_way *w)
{
	if (w->rust) {
		rust_aio_destroy(w->dev, w->ctx);
		close(w->dev);
	} else {
		syscall(SYS_io_destroy, w->ctx);
	}
}

/* Submits one iocb: 1, or -errno. */
static inline long way_submit(struct aio_way *w, struct iocb *cb)
{
	long n = w->rust ? rust_aio_submit(w->dev, w->ctx, 1, &cb) :
			   syscall(SYS_io_submit, w->ctx, 1, &cb);

	return n < 0 ? -errno : n;
}

/* Reaps exactly one event (waiting up to 10 s): 1, or 0 if none came. */
static inline long way_reap(struct aio_way *w, struct io_event *ev)
{
	struct timespec ts = { .tv_sec = 10 };

	return w->rust ? rust_aio_getevents(w->dev, w->ctx, 1, 1, ev, &ts) :
			 syscall(SYS_io_getevents, w->ctx, 1, 1, ev, &ts);
}

#endif
