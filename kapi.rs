// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers of the kernel objects the module uses: the only code that calls C (raw `sys::`
//! and `bindings::` calls anywhere else fail `scripts/check-raw-calls`). One file per kernel
//! abstraction, named and shaped like the upstream Rust abstraction it stands in for where newer
//! kernels have one, so that a newer kernel crate replaces it file by file. Nothing here names
//! anything of the module's above it.

pub(crate) mod address_space;
pub(crate) mod cred;
pub(crate) mod eventfd;
pub(crate) mod file;
pub(crate) mod folio;
pub(crate) mod hrtimer;
pub(crate) mod irq_work;
pub(crate) mod kiocb;
pub(crate) mod miscdevice;
pub(crate) mod mm;
pub(crate) mod mmu_notifier;
pub(crate) mod poll;
pub(crate) mod pseudo_fs;
pub(crate) mod ring_file;
pub(crate) mod sync;
pub(crate) mod sys;
pub(crate) mod task;
pub(crate) mod uaccess;
pub(crate) mod workqueue;
