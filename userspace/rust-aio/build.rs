// SPDX-License-Identifier: GPL-2.0

//! Generates the ABI's Rust bindings from the uapi header, the ABI's single source
//! (`include/uapi/rust_aio.h`), with bindgen (the `bindgen` program, as the kernel build uses).
//! `RUST_AIO_UAPI_RS` names bindings generated already (the top-level Makefile's).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=RUST_AIO_UAPI_RS");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("uapi.rs");
    if let Ok(pre) = std::env::var("RUST_AIO_UAPI_RS") {
        std::fs::copy(&pre, &out).expect("RUST_AIO_UAPI_RS");
        println!("cargo:rerun-if-changed={pre}");
        return;
    }
    let include = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../include");
    for header in ["rust_aio_ioctls.h", "uapi/rust_aio.h"] {
        println!("cargo:rerun-if-changed={}", include.join(header).display());
    }
    let status = Command::new("bindgen")
        .arg(include.join("rust_aio_ioctls.h"))
        .args(["--use-core", "--no-layout-tests", "--with-derive-default"])
        .args([
            "--allowlist-type",
            "rust_aio_.*|iocb|io_event|__kernel_timespec",
        ])
        .args(["--allowlist-var", "RUST_AIO_.*|IOCB_.*"])
        .arg("-o")
        .arg(&out)
        .arg("--")
        .arg(format!("-I{}", include.display()))
        .status()
        .expect("bindgen (bindgen-cli) is needed to build rust-aio");
    assert!(status.success(), "bindgen failed");
    let text = std::fs::read_to_string(&out).unwrap();
    std::fs::write(
        &out,
        text.replace("pub const RUST_AIO_CONST_", "pub const "),
    )
    .unwrap();
}
