/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What ring_test and ring_life_test share: iocbs, the ring's size as the
 * module sizes it, and a fixture with a two-page ring.
 */
#ifndef RING_FIXTURE_H
#define RING_FIXTURE_H

#define KERNEL_ADDR ((void *)0xffffffff81000000UL)

static struct iocb make_iocb(__u16 opcode, __u64 data, __u64 nbytes, __s64 offset)
{
	struct iocb cb = {
		.aio_data = data,
		.aio_lio_opcode = opcode,
		.aio_nbytes = nbytes,
		.aio_offset = offset,
	};
	return cb;
}

/* Slots of a ring for nr_events, as fs/aio.c sizes it: +2, whole pages. */
static unsigned int ring_slots(unsigned int nr_events)
{
	size_t pages = (32 + ((size_t)nr_events + 2) * 32 + 4095) / 4096;

	return (pages * 4096 - 32) / 32;
}

/* Reaps from the mapping, as libaio's user_getevents() does. */
#define user_reap rust_aio_user_reap

static long submit_one(int fd, aio_context_t ctx, struct iocb *cb)
{
	struct iocb *list[1] = { cb };

	return rust_aio_submit(fd, ctx, 1, list);
}

/* Bytes of the ring mapping for nr_events. */
static size_t ring_size(unsigned int nr_events)
{
	return 32 + ((size_t)ring_slots(nr_events)) * 32;
}

FIXTURE(ring) {
	int fd;
	aio_context_t ctx;
	size_t size;
};

/* 200 events: a ring of two pages, so that partial moves can be tried. */
FIXTURE_SETUP(ring)
{
	self->fd = rust_aio_open();
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, rust_aio_setup(self->fd, 200, &self->ctx));
	self->size = ring_size(200);
	ASSERT_EQ(8192, self->size);
}

FIXTURE_TEARDOWN(ring)
{
	close(self->fd);
}

#endif /* RING_FIXTURE_H */
