/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel's static inlines and macros that rust_aio's Rust code needs,
 * as real functions (helpers.c).  bindgen reads this file through sys.h, so
 * Rust sees exactly these prototypes.
 *
 * Locks are initialised by the kernel crate (sync.rs), which gives each
 * lock of a context a lockdep class of its own, named after the field.
 */
#ifndef RUST_AIO_HELPERS_H
#define RUST_AIO_HELPERS_H

#include <linux/eventfd.h>
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/irq_work.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

/* Module parameter: the module-wide event limit (like aio-max-nr). */
unsigned int rust_aio_max_events(void);

/* A reference to this module, for a file made with alloc_file_pseudo(). */
void rust_aio_module_get(void);
void rust_aio_module_put(void);

/* Credentials: put_cred() is a static inline. */
struct cred;
const struct cred *rust_aio_override_creds(const struct cred *cred);
void rust_aio_revert_creds(const struct cred *old);
void rust_aio_put_cred(struct cred *cred);

/* Spinlocks: a ring mapping's i_private_lock (address_space.rs). */
void rust_aio_spin_lock(spinlock_t *lock);
void rust_aio_spin_unlock(spinlock_t *lock);

/*
 * io_pgetevents()'s signal mask: set_user_sigmask() and
 * restore_saved_sigmask_unless(), which the kernel does not export, on
 * sigprocmask(), which it does.
 */
int rust_aio_set_user_sigmask(const void __user *umask, size_t sigsetsize);
void rust_aio_restore_saved_sigmask_unless(bool interrupted);

/* Waiting. */
void rust_aio_init_waitqueue_head(struct wait_queue_head *wq_head);
void rust_aio_init_wait_entry(struct wait_queue_entry *wq_entry);
void rust_aio_wake_up_all(struct wait_queue_head *wq_head);
bool rust_aio_wq_has_sleeper(struct wait_queue_head *wq_head);
bool rust_aio_fatal_signal_pending(void);
u64 rust_aio_current_timer_slack_ns(void);

/* Folios and memory maps. */
void *rust_aio_folio_address(struct folio *folio);
void rust_aio_folio_get(struct folio *folio);
void rust_aio_folio_put(struct folio *folio);
bool rust_aio_folio_test_large(struct folio *folio);
bool rust_aio_folio_test_writeback(struct folio *folio);
pgoff_t rust_aio_folio_index(struct folio *folio);
struct inode *rust_aio_file_inode(struct file *file);

/*
 * The ring filesystem's context, whose fields the kernel crate's bindings
 * do not have (they only declare struct fs_context): fc->s_iflags |= flags.
 */
void rust_aio_fc_s_iflags_set(struct fs_context *fc, unsigned int flags);

/* Completion sources. */
struct workqueue_struct *rust_aio_alloc_workqueue(void);
void rust_aio_hrtimer_init(struct hrtimer *timer,
			   enum hrtimer_restart (*function)(struct hrtimer *));
void rust_aio_eventfd_signal(struct eventfd_ctx *ctx);
void rust_aio_init_irq_work(struct irq_work *work, void (*func)(struct irq_work *));
bool rust_aio_in_hardirq(void);
/* Process context of a user task (not an interrupt, not a kernel thread). */
bool rust_aio_in_user_task(void);
bool rust_aio_in_kthread(void);

/* Address spaces: contexts die with theirs. */
struct mmu_notifier_ops;
struct mmu_notifier *rust_aio_mmu_notifier_get(const struct mmu_notifier_ops *ops,
					       struct mm_struct *mm);

/* User copies. */
unsigned long rust_aio_copy_to_user_nofault(void __user *to, const void *from, unsigned long n);
int rust_aio_get_user_u64s(u64 *dst, const void __user *src, unsigned int n);
int rust_aio_get_user_iocb(u64 *user_iocb, u64 *dst, const void __user *iocbpp,
			   unsigned int words);
int rust_aio_put_user_u32(u32 value, void __user *dst);
int rust_aio_put_user_u64(u64 value, void __user *dst);

/*
 * Reads and writes (kiocb.rs): fs/aio.c's aio_prep_rw() for a kiocb that is
 * not fs/aio.c's (no IOCB_AIO_RW, IOCB_HIPRI cleared), the freeze protection
 * of a write to a regular file, the task's I/O priority, an iterator's count.
 */
struct kiocb;
struct iov_iter;
int rust_aio_kiocb_prep(struct kiocb *ki, struct file *filp, loff_t pos, bool eventfd,
			u16 ioprio, int rw_flags, int rw_type,
			void (*complete)(struct kiocb *, long));
void rust_aio_kiocb_start_write(struct kiocb *ki);
void rust_aio_kiocb_end_write(struct kiocb *ki);
u16 rust_aio_current_ioprio(void);
size_t rust_aio_iov_iter_count(const struct iov_iter *iter);

/*
 * Polling (poll.rs): vfs_poll() with fs/aio.c's aio_poll_queue_proc()
 * (one wait queue only: a second one is -EINVAL in *error; *head is set
 * before the entry is added), vfs_poll() without queueing, a custom-wake wait
 * entry, RCU read sections, the poll masks' user encoding.  *queued says
 * whether the entry was added; *error starts at -EINVAL (no queue: the file
 * cannot be polled) and is 0 after one queue, -EINVAL again after a second.
 */
__poll_t rust_aio_poll_queue(struct file *file, __poll_t events,
			     struct wait_queue_entry *entry,
			     struct wait_queue_head **head, bool *queued, int *error);
__poll_t rust_aio_poll(struct file *file, __poll_t events);
void rust_aio_init_wait_func_entry(struct wait_queue_entry *entry, wait_queue_func_t func);
bool rust_aio_wait_entry_queued(struct wait_queue_entry *entry);
void rust_aio_wait_entry_del_init(struct wait_queue_entry *entry);
void rust_aio_rcu_read_lock(void);
void rust_aio_rcu_read_unlock(void);
u16 rust_aio_mangle_poll(__poll_t mask);
__poll_t rust_aio_demangle_poll(u16 mask);

#endif /* RUST_AIO_HELPERS_H */
