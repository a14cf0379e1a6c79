/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the fuzzer's parts share (the fuzzer is described in main.c): its
 * limits, the ledger's records, the workers, and the functions one part
 * calls in another.
 *
 *   main.c      options, seed and replay, workers, the watchdog, the summary
 *   ledger.c    device calls, the iocb pool and ledger, contexts, files
 *   ops_ring.c  SETUP, SUBMIT, GETEVENTS, reaping from the mapping
 *   ops_life.c  CANCEL, DESTROY, the ring header, munmap, mremap, other
 *               workers' contexts, fork, bad ioctls
 *   nodes.c     the migration and memory-offlining threads
 */
#ifndef FUZZ_H
#define FUZZ_H

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

enum pick { ANY, STRICT, CHAOS_MAPPED };

/* main.c */
extern int opt_workers;
extern bool opt_verbose;
extern struct ring_ref refs[MAX_REFS];
extern pthread_mutex_t refs_lock;
extern pthread_mutex_t print_lock;
extern pthread_rwlock_t bind_lock;	/* bound SETUPs (read) against offlining (write) */
extern unsigned long long nfail[NR_F];
extern int devnull, stop_aux;
extern bool have_node1;

/* ledger.c: helpers and device calls */
long long now_ns(void);
__u64 rnd(struct worker *w);
__u64 below(struct worker *w, __u64 n);
bool chance(struct worker *w, unsigned int percent);
void say(const char *fmt, ...);
const char *errname(int err);
void fail(struct worker *w, int kind, const char *fmt, ...);
void busy(struct worker *w, const char *what, __u64 ctx);
void idle(struct worker *w);
long dev(struct worker *w, const char *what, int fd, unsigned long cmd, void *arg, __u64 ctx);
long do_submit(struct worker *w, int fd, __u64 ctx, __s64 nr, void *iocbpp);
long do_getevents(struct worker *w, int fd, __u64 ctx, __s64 min_nr, __s64 nr,
		  void *events, void *timeout);
long do_cancel(struct worker *w, int fd, __u64 ctx, void *iocb);
long do_destroy(struct worker *w, int fd, __u64 ctx);
void *map_or_die(size_t size);
char *guarded_page(void);
int set_policy(int node);

/* ledger.c: the iocb pool and the ledger */
struct iocb *slot_iocb(struct worker *w, long s);
long slot_alloc(struct worker *w);
void slot_free(struct worker *w, long s);
void mark_inflight(struct worker *w, struct ctx *c, long s, bool loose);
void check_event(struct worker *w, struct ctx *c, const struct io_event *ev, const char *how);

/* ledger.c: contexts and files */
void publish(struct worker *w, struct ctx *c);
void ctx_new(struct worker *w, struct ctx *c, int fdi, __u64 id, unsigned int nr_events);
void ctx_forget(struct worker *w, struct ctx *c);
struct ctx *pick_ctx(struct worker *w, enum pick kind);
__u64 bogus_id(struct worker *w, struct ctx *c);
void cancel_slot(struct worker *w, struct ctx *c, long s);
void destroy_strict(struct worker *w, struct ctx *c);
int open_fd(struct worker *w);
int pick_fd(struct worker *w);
void close_fd(struct worker *w, int fi);

/* ops_ring.c */
void *bad_iocb_ptr(struct worker *w);
void submit_chaos(struct worker *w, int fd, __u64 id);
void op_setup(struct worker *w);
void op_submit(struct worker *w);
void op_getevents(struct worker *w);
void op_reap(struct worker *w);

/* ops_life.c */
void op_cancel(struct worker *w);
void op_destroy(struct worker *w);
void op_header(struct worker *w);
void op_munmap(struct worker *w);
void op_mremap(struct worker *w);
void op_cross(struct worker *w);
void op_fork(struct worker *w);
void op_misc(struct worker *w);

/* nodes.c */
extern unsigned long long moves, cycles;
extern unsigned int blocks[MAX_BLOCKS], nblocks;
extern long long migrate_since, offline_since;
void *migrate_main(void *arg);
void *offline_main(void *arg);
void block_restore(unsigned int block);
void find_blocks(void);

#endif /* FUZZ_H */
