/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The ioctl numbers of include/uapi/rust_aio.h as constants bindgen can
 * evaluate (it cannot expand _IOR()/_IOW()): what the module's ABI
 * bindings (Kbuild, uapi_generated.rs) and the Rust tests' are generated
 * from.  Each RUST_AIO_CONST_X becomes X.
 */
#include "uapi/rust_aio.h"

const unsigned int RUST_AIO_CONST_RUST_AIO_IOC_VERSION = RUST_AIO_IOC_VERSION;
const unsigned int RUST_AIO_CONST_RUST_AIO_IOC_SETUP = RUST_AIO_IOC_SETUP;
const unsigned int RUST_AIO_CONST_RUST_AIO_IOC_SUBMIT = RUST_AIO_IOC_SUBMIT;
const unsigned int RUST_AIO_CONST_RUST_AIO_IOC_GETEVENTS = RUST_AIO_IOC_GETEVENTS;
const unsigned int RUST_AIO_CONST_RUST_AIO_IOC_CANCEL = RUST_AIO_IOC_CANCEL;
const unsigned int RUST_AIO_CONST_RUST_AIO_IOC_DESTROY = RUST_AIO_IOC_DESTROY;
const unsigned int RUST_AIO_CONST_RUST_AIO_IOC_PGETEVENTS = RUST_AIO_IOC_PGETEVENTS;
const unsigned int RUST_AIO_CONST_RUST_AIO_IOC_IO_SETUP = RUST_AIO_IOC_IO_SETUP;
