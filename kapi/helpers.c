// SPDX-License-Identifier: GPL-2.0
/*
 * Static inlines and macros as functions for rust_aio's Rust code; see
 * helpers.h.  Nothing here has logic of its own.
 */
#include <linux/fs_context.h>
#include <linux/highmem.h>
#include <linux/irq_work.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/signal.h>
#include <linux/uaccess.h>

#include "helpers.h"

#include <linux/cred.h>
#include <linux/ioprio.h>
#include <linux/poll.h>
#include <linux/uio.h>

/* Static inlines since 6.14; they no longer count references. */
const struct cred *rust_aio_override_creds(const struct cred *cred)
{
	return override_creds(cred);
}

void rust_aio_revert_creds(const struct cred *old)
{
	revert_creds(old);
}

void rust_aio_put_cred(struct cred *cred)
{
	put_cred(cred);
}

static unsigned int max_events = 65536;
module_param(max_events, uint, 0644);
MODULE_PARM_DESC(max_events,
		 "Events all contexts together may ask for (like /proc/sys/fs/aio-max-nr)");

unsigned int rust_aio_max_events(void)
{
	return READ_ONCE(max_events);
}

void rust_aio_module_get(void)
{
	/* Only called from the module's own code, which holds a reference. */
	__module_get(THIS_MODULE);
}

void rust_aio_module_put(void)
{
	module_put(THIS_MODULE);
}

void rust_aio_spin_lock(spinlock_t *lock)
{
	spin_lock(lock);
}

void rust_aio_spin_unlock(spinlock_t *lock)
{
	spin_unlock(lock);
}

void rust_aio_init_waitqueue_head(struct wait_queue_head *wq_head)
{
	init_waitqueue_head(wq_head);
}

void rust_aio_init_wait_entry(struct wait_queue_entry *wq_entry)
{
	init_wait(wq_entry);
}

void rust_aio_wake_up_all(struct wait_queue_head *wq_head)
{
	wake_up_all(wq_head);
}

bool rust_aio_wq_has_sleeper(struct wait_queue_head *wq_head)
{
	return wq_has_sleeper(wq_head);
}

bool rust_aio_fatal_signal_pending(void)
{
	return fatal_signal_pending(current);
}

u64 rust_aio_current_timer_slack_ns(void)
{
	return current->timer_slack_ns;
}

void *rust_aio_folio_address(struct folio *folio)
{
	return folio_address(folio);
}

void rust_aio_folio_get(struct folio *folio)
{
	folio_get(folio);
}

void rust_aio_folio_put(struct folio *folio)
{
	folio_put(folio);
}

bool rust_aio_folio_test_large(struct folio *folio)
{
	return folio_test_large(folio);
}

bool rust_aio_folio_test_writeback(struct folio *folio)
{
	return folio_test_writeback(folio);
}

pgoff_t rust_aio_folio_index(struct folio *folio)
{
	return folio->index;
}

struct inode *rust_aio_file_inode(struct file *file)
{
	return file_inode(file);
}

void rust_aio_fc_s_iflags_set(struct fs_context *fc, unsigned int flags)
{
	fc->s_iflags |= flags;
}

struct workqueue_struct *rust_aio_alloc_workqueue(void)
{
	return alloc_workqueue("rust_aio", WQ_UNBOUND, 0);
}

void rust_aio_hrtimer_init(struct hrtimer *timer,
			   enum hrtimer_restart (*function)(struct hrtimer *))
{
	/*
	 * Hard IRQ expiry on purpose, even on PREEMPT_RT: the expiry function
	 * only hands the request to an irq_work, which completes it.
	 */
	hrtimer_setup(timer, function, CLOCK_MONOTONIC, HRTIMER_MODE_REL_HARD);
}

void rust_aio_init_irq_work(struct irq_work *work, void (*func)(struct irq_work *))
{
	init_irq_work(work, func);
}

bool rust_aio_in_hardirq(void)
{
	return in_hardirq();
}

bool rust_aio_in_user_task(void)
{
	return in_task() && !(current->flags & PF_KTHREAD);
}

bool rust_aio_in_kthread(void)
{
	return in_task() && (current->flags & PF_KTHREAD);
}

void rust_aio_eventfd_signal(struct eventfd_ctx *ctx)
{
	eventfd_signal(ctx);
}

/*
 * copy_to_user() that never takes a page fault, so that it may run under a
 * lock that a fault handler must not wait for (a fault on a userfaultfd page
 * waits for user space). Returns the bytes not copied, as copy_to_user();
 * copy_to_user_nofault() only says whether all were.
 */
unsigned long rust_aio_copy_to_user_nofault(void __user *to, const void *from, unsigned long n)
{
	unsigned long left;

	if (!access_ok(to, n))
		return n;
	pagefault_disable();
	left = __copy_to_user_inatomic(to, from, n);
	pagefault_enable();
	return left;
}

struct mmu_notifier *rust_aio_mmu_notifier_get(const struct mmu_notifier_ops *ops,
					       struct mm_struct *mm)
{
	return mmu_notifier_get(ops, mm);
}

/*
 * The submit path's user reads and writes, without a call into the generic
 * copy routines for a handful of words: one user-access section each.
 * -EFAULT when any word cannot be accessed (nothing is written to `dst` past
 * that point).
 */
int rust_aio_get_user_u64s(u64 *dst, const void __user *src, unsigned int n)
{
	const u64 __user *from;
	unsigned int i;

	might_fault();
	/*
	 * As copy_from_user() begins: the address masked where the architecture
	 * can (one past user space becomes one that faults, with no speculation
	 * barrier), else checked, then fenced.
	 */
	if (can_do_masked_user_access())
		from = masked_user_read_access_begin((const u64 __user *)src);
	else if (user_read_access_begin(src, (unsigned long)n * sizeof(u64)))
		from = src;
	else
		return -EFAULT;
	for (i = 0; i < n; i++)
		unsafe_get_user(dst[i], &from[i], efault);
	user_read_access_end();
	return 0;
efault:
	user_read_access_end();
	return -EFAULT;
}

/*
 * io_submit()'s two reads of one iocb, in one user-access section: the
 * pointer at `iocbpp` (fs/aio.c's get_user()), then the iocb it points to
 * (its copy_from_user()), with nothing in between, as there. -EFAULT when
 * either cannot be read; `*user_iocb` is set once the pointer is.
 */
int rust_aio_get_user_iocb(u64 *user_iocb, u64 *dst, const void __user *iocbpp,
			   unsigned int words)
{
	const u64 __user *pp, *from;
	unsigned int i;

	might_fault();
	/* As rust_aio_get_user_u64s() begins. */
	if (can_do_masked_user_access())
		pp = masked_user_read_access_begin((const u64 __user *)iocbpp);
	else if (user_read_access_begin(iocbpp, sizeof(u64)))
		pp = iocbpp;
	else
		return -EFAULT;
	unsafe_get_user(*user_iocb, pp, efault);
	from = (const u64 __user *)(unsigned long)*user_iocb;
	/* The second range as the first. */
	if (can_do_masked_user_access()) {
		from = mask_user_address(from);
	} else {
		if (!access_ok(from, (unsigned long)words * sizeof(u64)))
			goto efault;
		barrier_nospec();
	}
	for (i = 0; i < words; i++)
		unsafe_get_user(dst[i], &from[i], efault);
	user_read_access_end();
	return 0;
efault:
	user_read_access_end();
	return -EFAULT;
}

int rust_aio_put_user_u32(u32 value, void __user *dst)
{
	return put_user(value, (u32 __user *)dst);
}

int rust_aio_put_user_u64(u64 value, void __user *dst)
{
	return put_user(value, (u64 __user *)dst);
}

int rust_aio_kiocb_prep(struct kiocb *ki, struct file *filp, loff_t pos, bool eventfd,
			u16 ioprio, int rw_flags, int rw_type,
			void (*complete)(struct kiocb *, long))
{
	int ret;

	*ki = (struct kiocb) {
		.ki_filp = filp,
		.ki_pos = pos,
		.ki_complete = complete,
		.ki_flags = filp->f_iocb_flags | (eventfd ? IOCB_EVENTFD : 0),
		.ki_ioprio = ioprio,
	};
	ret = kiocb_set_rw_flags(ki, (__force rwf_t)rw_flags, rw_type);
	if (ret)
		return ret;
	ki->ki_flags &= ~IOCB_HIPRI;
	return 0;
}

void rust_aio_kiocb_start_write(struct kiocb *ki)
{
	if (S_ISREG(file_inode(ki->ki_filp)->i_mode))
		kiocb_start_write(ki);
	ki->ki_flags |= IOCB_WRITE;
}

void rust_aio_kiocb_end_write(struct kiocb *ki)
{
	if ((ki->ki_flags & IOCB_WRITE) && S_ISREG(file_inode(ki->ki_filp)->i_mode))
		kiocb_end_write(ki);
}

u16 rust_aio_current_ioprio(void)
{
	return get_current_ioprio();
}

size_t rust_aio_iov_iter_count(const struct iov_iter *iter)
{
	return iov_iter_count(iter);
}

struct rust_aio_poll_table {
	struct poll_table_struct pt;
	struct wait_queue_entry *entry;
	struct wait_queue_head **head;
	bool *queued;
	int *error;
};

/* fs/aio.c's aio_poll_queue_proc(). */
static void rust_aio_poll_queue_proc(struct file *file, struct wait_queue_head *head,
				     struct poll_table_struct *p)
{
	struct rust_aio_poll_table *pt = container_of(p, struct rust_aio_poll_table, pt);

	if (unlikely(*pt->queued)) {
		*pt->error = -EINVAL;
		return;
	}
	*pt->queued = true;
	*pt->error = 0;
	*pt->head = head;
	add_wait_queue(head, pt->entry);
}

__poll_t rust_aio_poll_queue(struct file *file, __poll_t events,
			     struct wait_queue_entry *entry,
			     struct wait_queue_head **head, bool *queued, int *error)
{
	struct rust_aio_poll_table pt = {
		.pt = { ._qproc = rust_aio_poll_queue_proc, ._key = events },
		.entry = entry,
		.head = head,
		.queued = queued,
		.error = error,
	};

	*queued = false;
	*error = -EINVAL;
	return vfs_poll(file, &pt.pt);
}

__poll_t rust_aio_poll(struct file *file, __poll_t events)
{
	struct poll_table_struct pt = { ._key = events };

	return vfs_poll(file, &pt);
}

void rust_aio_init_wait_func_entry(struct wait_queue_entry *entry, wait_queue_func_t func)
{
	INIT_LIST_HEAD(&entry->entry);
	init_waitqueue_func_entry(entry, func);
}

bool rust_aio_wait_entry_queued(struct wait_queue_entry *entry)
{
	return !list_empty(&entry->entry);
}

void rust_aio_wait_entry_del_init(struct wait_queue_entry *entry)
{
	list_del_init(&entry->entry);
}

void rust_aio_rcu_read_lock(void)
{
	rcu_read_lock();
}

void rust_aio_rcu_read_unlock(void)
{
	rcu_read_unlock();
}

u16 rust_aio_mangle_poll(__poll_t mask)
{
	return mangle_poll(mask);
}

__poll_t rust_aio_demangle_poll(u16 mask)
{
	return demangle_poll(mask);
}

int rust_aio_set_user_sigmask(const void __user *umask, size_t sigsetsize)
{
	sigset_t kmask;

	if (!umask)
		return 0;
	if (sigsetsize != sizeof(sigset_t))
		return -EINVAL;
	if (copy_from_user(&kmask, umask, sizeof(sigset_t)))
		return -EFAULT;
	set_restore_sigmask();
	current->saved_sigmask = current->blocked;
	/* set_current_blocked()'s rule: SIGKILL and SIGSTOP cannot be blocked. */
	sigdelsetmask(&kmask, sigmask(SIGKILL) | sigmask(SIGSTOP));
	return sigprocmask(SIG_SETMASK, &kmask, NULL);
}

void rust_aio_restore_saved_sigmask_unless(bool interrupted)
{
	/* Interrupted: the signal is delivered under the mask, which is restored after. */
	if (interrupted) {
		WARN_ON(!signal_pending(current));
		return;
	}
	if (test_and_clear_restore_sigmask())
		sigprocmask(SIG_SETMASK, &current->saved_sigmask, NULL);
}
