// SPDX-License-Identifier: GPL-2.0

//! rust_aio's Rust selftests (TAP): the device from Rust.

use rust_aio_tests::{ensure, ensure_eq, uapi, Device, Outcome, Tap};

fn main() {
    let mut tap = Tap::new();

    tap.run("device_opens", || {
        Device::open().map_err(|e| format!("open: {e}"))?;
        Ok(Outcome::Pass)
    });

    tap.run("version_matches_header", || {
        let dev = Device::open().map_err(|e| e.to_string())?;
        ensure_eq!(Ok(uapi::RUST_AIO_ABI_VERSION), dev.version());
        Ok(Outcome::Pass)
    });

    tap.run("unknown_ioctl_is_enotty", || {
        let dev = Device::open().map_err(|e| e.to_string())?;
        let mut buf = [0u64; 8];
        for nr in [0x00u32, 0x0f, 0x16, 0x20, 0xff] {
            // _IOR(RUST_AIO_IOC_MAGIC, nr, __u32)
            let cmd = (2u32 << 30) | (4 << 16) | (uapi::RUST_AIO_IOC_MAGIC << 8) | nr;
            let ret = dev.ioctl(cmd, buf.as_mut_ptr() as usize);
            ensure!(ret == Err(libc::ENOTTY), "ioctl nr {nr:#x}: {ret:?}");
        }
        Ok(Outcome::Pass)
    });

    tap.finish();
}
