// SPDX-License-Identifier: GPL-2.0

//! The stock-kernel canary: a Rust module with nothing of rust_aio's, built against the tree
//! `scripts/stock` prepares and loaded into Debian's unmodified kernel by `make stock-check`.
//! If it loads, the kernel crate's symbols, the module's vermagic and the toolchain are the
//! stock kernel's; if rust_aio then fails, the fault is rust_aio's.

use kernel::prelude::*;

module! {
    type: Canary,
    name: "rust_aio_canary",
    authors: ["rust_aio developers"],
    description: "Proves a Rust module built by make stock-check loads into the stock kernel",
    license: "GPL",
}

struct Canary {
    value: KBox<u64>,
}

impl kernel::Module for Canary {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let value = KBox::new(0x5eed, GFP_KERNEL)?;
        pr_info!(
            "loaded: a KBox from the stock kernel crate holds {:#x}\n",
            *value
        );
        Ok(Self { value })
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        pr_info!("unloaded ({:#x})\n", *self.value);
    }
}
