#!/bin/sh
# Runs the crate's unit tests for a board's target under qemu-user (the runner set per target in
# .cargo/config.toml), e.g. the protocol codecs on big-endian MIPS:
#
#   board/qemu-test.sh BOARD [TEST FILTER...]      (default filter: protocol)
#
# BOARDS.md: `cargo-zigbuild test` with RUSTUP_TOOLCHAIN=nightly and the full -Zbuild-std
# (tests unwind, so not std,panic_abort); dependencies, std included, optimised (Cargo.toml's
# profile.dev.package."*"), or each panic takes seconds under QEMU.
set -eu
cd "$(dirname "$0")/.."
die() { echo "board/qemu-test.sh: $*" >&2; exit 1; }
BOARD=${1:-}
[ -n "$BOARD" ] && [ -f "board/$BOARD.toml" ] || die "usage: board/qemu-test.sh BOARD [FILTER...]"
shift
[ $# -gt 0 ] || set -- protocol
prop() {
    awk -v k="$1" '/^[[:space:]]*\[/ { exit }
        $0 ~ "^[[:space:]]*" k "[[:space:]]*=" {
            sub(/^[^=]*=[[:space:]]*/, ""); sub(/[[:space:]]+#.*$/, ""); gsub(/^"|"$/, ""); print; exit
        }' "board/$BOARD.toml"
}
TARGET=$(prop target)
QEMU=$(prop qemu)
command -v cargo-zigbuild >/dev/null 2>&1 || die "cargo-zigbuild not found: pip install ziglang cargo-zigbuild"
if [ -n "$QEMU" ]; then
    command -v "$QEMU" >/dev/null 2>&1 || die "$QEMU not found: apt-get install qemu-user-static"
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(pwd)/target/boards}"
export RUSTUP_TOOLCHAIN=nightly
echo "board $BOARD: cargo-zigbuild test --target $TARGET -Zbuild-std --lib -- $* (under ${QEMU:-the host})"
exec cargo-zigbuild test --target "$TARGET" -Zbuild-std \
    --config 'profile.dev.package."*".opt-level=2' --lib -- "$@"
