# Shared settings for rust_aio's shell scripts.  Source it; do not run it.
#
# The kernel tree, the guest's initramfs pieces and other downloads live in
# the cache, outside the clone, so a fresh clone on a warm machine does not
# rebuild the kernel.

RUST_AIO_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUST_AIO_CACHE=${RUST_AIO_CACHE:-$HOME/.cache/rust_aio}
# The test kernel is built with clang: CONFIG_RUST accepts KASAN only then.
RUST_AIO_LLVM=${RUST_AIO_LLVM:--19}
# The test and benchmark kernels are built from the source of Debian's Rust-enabled kernel
# (trixie-backports), which scripts/stock fetches with the Rust tools that kernel was built with.
KERNEL_SOURCE_PACKAGE=linux-source-7.3
KERNEL_SOURCE_TARBALL=$RUST_AIO_CACHE/debian-7.3/srcpkg/usr/src/$KERNEL_SOURCE_PACKAGE.tar.xz

# Rust tools installed by rustup/cargo are found even from a shell that never
# sourced ~/.cargo/env (CI).
case ":$PATH:" in
*":$HOME/.cargo/bin:"*) ;;
*) PATH=$HOME/.cargo/bin:$PATH ;;
esac
# Kernel-side Rust tools: Debian's rustc, rustdoc and bindgen (scripts/stock), ahead of rustup's
# (which builds the user-space crates).
case ":$PATH:" in
*":$RUST_AIO_CACHE/debian-7.3/rust-bin:"*) ;;
*) PATH=$RUST_AIO_CACHE/debian-7.3/rust-bin:$PATH ;;
esac
export PATH

say() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
# as_root CMD...: CMD as root: directly when root, else through `sudo -n`; without either,
# stops and says what to run.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif sudo -n true 2>/dev/null; then
		sudo -n "$@"
	else
		die "this step needs root; run: sudo $*"
	fi
}

# elapsed SECONDS_SINCE_EPOCH -> "m:ss"
elapsed() {
	local s=$(($(date +%s) - $1))
	printf '%d:%02d' $((s / 60)) $((s % 60))
}

# Run "$@" with its output in LOG, printing one progress line every 20 s
# (objects compiled so far, and of how many last time) instead of thousands
# of compiler lines.  On failure prints the log's tail and returns non-zero.
run_logged() {
	local what=$1 log=$2 count_file=$3
	shift 3
	local start expected="" pid rc=0
	start=$(date +%s)
	[ -s "$count_file" ] && expected="/~$(cat "$count_file")"
	"$@" >"$log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		for _ in $(seq 20); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 1
		done
		kill -0 "$pid" 2>/dev/null || break
		say "  [$what] $(grep -cE '^  (CC|AS|RUSTC|BINDGEN|LD|AR) ' "$log")$expected objects, $(elapsed "$start") elapsed"
	done
	wait "$pid" || rc=$?
	if [ "$rc" -ne 0 ]; then
		say "  [$what] FAILED after $(elapsed "$start"); last lines of $log:"
		tail -n 40 "$log" >&2
		return "$rc"
	fi
	grep -cE '^  (CC|AS|RUSTC|BINDGEN|LD|AR) ' "$log" >"$count_file" || true
	say "  [$what] done in $(elapsed "$start")"
}
