#!/bin/sh
# Builds libsrsd_rtmp (the C client library, clib/) for one board with the board's target and
# toolchain (board/BOARD.toml, as board/build.sh reads it), then compiles the C examples
# against it with zig cc, into target/boards/clib/BOARD/ (or OUTDIR):
#
#   clib/build.sh BOARD [OUTDIR]
#
# Outputs: libsrsd_rtmp.a, srsd_rtmp.h, publish, play (static binaries). On musl targets Rust
# builds no cdylib (musl is linked statically), so boards get the static library only.
# When the board's qemu runner is installed, the examples are run once to print their usage.
#
# Needs what board/build.sh needs (cargo-zigbuild, zig, rust-std or nightly rust-src).
# Environment: CARGO_TARGET_DIR (default target/boards).
set -eu

cd "$(dirname "$0")/.."
die() { echo "clib/build.sh: $*" >&2; exit 1; }

BOARD=${1:-}
[ -n "$BOARD" ] || die "usage: clib/build.sh BOARD [OUTDIR]"
PROFILE=board/$BOARD.toml
[ -f "$PROFILE" ] || die "no board $BOARD (no $PROFILE)"
OUT=${2:-target/boards/clib/$BOARD}

prop() {
    awk -v k="$1" '
        /^[[:space:]]*\[/ { exit }
        $0 ~ "^[[:space:]]*" k "[[:space:]]*=" {
            sub(/^[^=]*=[[:space:]]*/, ""); sub(/[[:space:]]+#.*$/, "")
            gsub(/^"|"$/, ""); print; exit
        }' "$PROFILE"
}
TARGET=$(prop target)
TOOLCHAIN=$(prop toolchain)
STD_FEATURES=$(prop std_features)
QEMU=$(prop qemu)

case "$TOOLCHAIN" in
    stable) set -- cargo zigbuild --release --target "$TARGET" -p srsd_rtmp ;;
    nightly)
        set -- cargo +nightly zigbuild --release --target "$TARGET" -p srsd_rtmp \
            -Zbuild-std=std,panic_abort
        [ -n "$STD_FEATURES" ] && set -- "$@" -Zbuild-std-features="$STD_FEATURES"
        ;;
    *) die "$PROFILE: toolchain must be stable or nightly" ;;
esac

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(pwd)/target/boards}"
echo "clib $BOARD: $*"
"$@"
lib="$CARGO_TARGET_DIR/$TARGET/release/libsrsd_rtmp.a"
[ -f "$lib" ] || die "no library at $lib"
mkdir -p "$OUT"
cp "$lib" include/srsd_rtmp.h "$OUT/"

# zig's target name: the Rust triple without the vendor; armv7 as arm (hard-float); Rust's
# mips*-musl targets are MIPS32r2 soft-float (OpenWrt's mips_24kc), zig's musleabi.
case "$TARGET" in
    armv7-unknown-linux-musleabihf) ZT=arm-linux-musleabihf; ZCPU=-mcpu=cortex_a7 ;;
    mips-unknown-linux-musl) ZT=mips-linux-musleabi; ZCPU="-mcpu=mips32r2 -msoft-float" ;;
    mipsel-unknown-linux-musl) ZT=mipsel-linux-musleabi; ZCPU="-mcpu=mips32r2 -msoft-float" ;;
    *) ZT=$(echo "$TARGET" | sed 's/-unknown-/-/'); ZCPU= ;;
esac
zigcc() {
    if command -v zig >/dev/null 2>&1; then zig cc "$@"; else python3 -m ziglang cc "$@"; fi
}
for p in publish play; do
    # shellcheck disable=SC2086
    zigcc -target "$ZT" $ZCPU -std=c99 -D_POSIX_C_SOURCE=200809L -Os -Wall -Werror -static \
        -Iinclude "examples/c/$p.c" "$lib" -lunwind -o "$OUT/$p"
    echo "clib $BOARD: $OUT/$p $(wc -c < "$OUT/$p" | tr -d ' ') bytes: $(file -b "$OUT/$p" | cut -d, -f1-2)"
done
echo "clib $BOARD: $OUT/libsrsd_rtmp.a $(wc -c < "$OUT/libsrsd_rtmp.a" | tr -d ' ') bytes"

if [ -n "$QEMU" ] && [ "$TARGET" != x86_64-unknown-linux-musl ] && command -v "$QEMU" >/dev/null 2>&1; then
    rc=0
    "$QEMU" "$OUT/play" >/dev/null 2>&1 || rc=$?
    [ "$rc" = 2 ] || die "$OUT/play under $QEMU: exit $rc, want 2 (usage)"
    echo "clib $BOARD: runs under $QEMU"
elif [ "$TARGET" = x86_64-unknown-linux-musl ]; then
    rc=0
    "$OUT/play" >/dev/null 2>&1 || rc=$?
    [ "$rc" = 2 ] || die "$OUT/play: exit $rc, want 2 (usage)"
fi
