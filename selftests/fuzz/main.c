// SPDX-License-Identifier: GPL-2.0
/* The fuzzer's run: options, seed and replay, workers, the watchdog, the summary. */
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
#include "fuzz.h"

static unsigned long long seed;
static int opt_seconds = 30;
int opt_workers = 4;
static bool opt_no_migrate, opt_no_offline;
bool opt_verbose;
static char replay[160];
static struct worker *workers[MAX_WORKERS];
struct ring_ref refs[MAX_REFS];
pthread_mutex_t refs_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_rwlock_t bind_lock;	/* bound SETUPs (read) against offlining (write) */
unsigned long long nfail[NR_F];
int devnull = -1, stop_aux;
static int stop_workers;
bool have_node1;
static pthread_t migrate_thread, offline_thread;
static bool migrating, offlining;

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
