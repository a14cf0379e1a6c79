// SPDX-License-Identifier: GPL-2.0
/* The fuzzer's migration of ring pages between nodes and offlining of node 1's memory. */
#include "fuzz.h"

unsigned long long moves, cycles;
unsigned int blocks[MAX_BLOCKS], nblocks;
long long migrate_since, offline_since;

static long fuzz_move_pages(unsigned long n, unsigned long *pages, int *nodes, int *status)
{
	return syscall(SYS_move_pages, 0, n, pages, nodes, status, nodes ? FUZZ_MPOL_MF_MOVE : 0);
}

void *migrate_main(void *arg)
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

void block_restore(unsigned int block)
{
	int tries;

	for (tries = 0; tries < 100 && !block_online(block); tries++)
		if (block_write(block, "online_movable") && block_write(block, "online"))
			usleep(100000);
	if (!block_online(block))
		say("# fuzz: memory%u is left offline\n", block);
}

void find_blocks(void)
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

void *offline_main(void *arg)
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
