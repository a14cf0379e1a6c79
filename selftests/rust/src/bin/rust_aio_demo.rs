// SPDX-License-Identifier: GPL-2.0

//! `make run`: shows, in plain words, what rust_aio does in the guest.

use rust_aio_tests::Device;

fn main() {
    println!("== rust_aio demo ==");
    let loaded = std::path::Path::new("/sys/module/rust_aio").exists();
    println!("module rust_aio loaded: {loaded}");
    let dev = match Device::open() {
        Ok(dev) => dev,
        Err(e) => {
            println!("cannot open /dev/rust_aio: {e}");
            std::process::exit(1);
        }
    };
    println!("opened /dev/rust_aio (fd {})", dev.fd());
    match dev.version() {
        Ok(v) => println!("RUST_AIO_IOC_VERSION says ABI version {v}"),
        Err(e) => println!("RUST_AIO_IOC_VERSION failed: errno {e}"),
    }
}
