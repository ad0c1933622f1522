#!/bin/sh
# Builds srsd for one board: a static, stripped, size-optimised musl binary and the board's
# default config, both in target/boards/out/BOARD/ (or OUTDIR).
#
#   board/build.sh BOARD [OUTDIR]          build the binary + srsd.toml, check size and linkage
#   board/build.sh --config BOARD [OUTDIR] only write srsd.toml (conf/srsd.toml + overrides)
#   board/build.sh --list                  list the boards
#
# Needs (installs nothing itself): cargo-zigbuild and zig (`pip install ziglang cargo-zigbuild`),
# the stable rust-std for x86_64/aarch64 musl (`rustup target add TRIPLE`), and for the
# build-std boards (armhf, mips, mipsel) nightly with rust-src
# (`rustup component add rust-src --toolchain nightly`). Per-target rustflags live in
# .cargo/config.toml; a plain RUSTFLAGS would replace them.
#
# Environment: CARGO_TARGET_DIR (default target/boards), SRSD_SIZE_BUDGET (bytes, default
# 2621440 = 2.5 MiB).
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUDGET=${SRSD_SIZE_BUDGET:-2621440}

die() { echo "board/build.sh: $*" >&2; exit 1; }

usage() {
    echo "usage: board/build.sh [--config] BOARD [OUTDIR] | --list" >&2
    echo "boards: $(boards)" >&2
    exit 2
}

boards() { for f in board/*.toml; do basename "$f" .toml; done | tr '\n' ' '; }

# The value of a top-level string key of the profile (before its first [table]).
prop() {
    awk -v k="$1" '
        /^[[:space:]]*\[/ { exit }
        $0 ~ "^[[:space:]]*" k "[[:space:]]*=" {
            sub(/^[^=]*=[[:space:]]*/, ""); sub(/[[:space:]]+#.*$/, "")
            gsub(/^"|"$/, ""); print; exit
        }' "$PROFILE"
}

# conf/srsd.toml with the profile's [config] overrides applied, on stdout. Overrides replace a
# key's value in place (keeping the file's order and comments elsewhere); keys the default file
# lacks are added at the end of their table; tables it lacks are appended.
board_config() {
    awk -v board="$BOARD" '
        function flush_section(sec,   i, k) {
            for (i = 1; i <= n; i++) {
                k = ord[i]
                if (sect[k] == sec && !(k in used)) { print line[k]; used[k] = 1 }
            }
        }
        FNR == 1 { file++ }
        # Pass 1: the profile. Keys after [config] / [config.TABLE].
        file == 1 && /^[[:space:]]*\[/ {
            h = $0; sub(/^[[:space:]]*\[/, "", h); sub(/\][[:space:]]*(#.*)?$/, "", h)
            if (h == "config") { cur = ""; inconf = 1 }
            else if (substr(h, 1, 7) == "config.") { cur = substr(h, 8); inconf = 1 }
            else inconf = 0
            if (inconf && !(cur in seen)) { seen[cur] = 1; secs[++ns] = cur }
            next
        }
        file == 1 && inconf && /^[[:space:]]*[A-Za-z0-9_]+[[:space:]]*=/ {
            k = $0; sub(/[[:space:]]*=.*/, "", k); sub(/^[[:space:]]*/, "", k)
            v = $0; sub(/^[^=]*=[[:space:]]*/, "", v)
            id = cur SUBSEP k
            ord[++n] = id; sect[id] = cur; line[id] = k " = " v
            next
        }
        file == 1 { next }
        # Pass 2: conf/srsd.toml. Its leading comment block is replaced by ours.
        !started && /^#/ { next }
        !started {
            started = 1
            print "# srsd configuration for the " board " board: conf/srsd.toml with the overrides of"
            print "# board/" board ".toml applied (board/build.sh). Every key: conf/full.toml."
        }
        /^[[:space:]]*\[/ {
            flush_section(cur2)
            done[cur2] = 1
            h = $0; sub(/^[[:space:]]*\[/, "", h); sub(/\][[:space:]]*(#.*)?$/, "", h)
            cur2 = h
            print; next
        }
        /^[[:space:]]*[A-Za-z0-9_]+[[:space:]]*=/ {
            k = $0; sub(/[[:space:]]*=.*/, "", k); sub(/^[[:space:]]*/, "", k)
            id = cur2 SUBSEP k
            if (id in line) { print line[id]; used[id] = 1; next }
        }
        { print }
        END {
            flush_section(cur2); done[cur2] = 1
            for (i = 1; i <= ns; i++) {
                s = secs[i]
                if (s in done) continue
                print ""; print "[" s "]"
                flush_section(s)
            }
        }' "$PROFILE" conf/srsd.toml
}

# Runs a board binary on this host: natively for x86_64, else under the profile's qemu.
run_board() {
    if [ "$TARGET" = "x86_64-unknown-linux-musl" ]; then
        "$@"
    elif [ -n "$QEMU" ] && command -v "$QEMU" >/dev/null 2>&1; then
        "$QEMU" "$@"
    else
        return 127
    fi
}

config_only=0
case "${1:-}" in
    --list) boards; echo; exit 0 ;;
    --config) config_only=1; shift ;;
    ""|-*) usage ;;
esac
BOARD=${1:-}
[ -n "$BOARD" ] || usage
PROFILE=board/$BOARD.toml
[ -f "$PROFILE" ] || die "no board $BOARD (no $PROFILE); boards: $(boards)"
OUT=${2:-target/boards/out/$BOARD}
TARGET=$(prop target)
TOOLCHAIN=$(prop toolchain)
FEATURES=$(prop features)
DEFAULT_FEATURES=$(prop default_features)
STD_FEATURES=$(prop std_features)
QEMU=$(prop qemu)
[ -n "$TARGET" ] || die "$PROFILE has no target"

mkdir -p "$OUT"
board_config > "$OUT/srsd.toml"
echo "board $BOARD: wrote $OUT/srsd.toml"
[ "$config_only" = 1 ] && exit 0

# Tools: check, never install silently.
command -v cargo-zigbuild >/dev/null 2>&1 ||
    die "cargo-zigbuild not found: pip install ziglang cargo-zigbuild"
command -v zig >/dev/null 2>&1 || python3 -m ziglang version >/dev/null 2>&1 ||
    die "zig not found: pip install ziglang cargo-zigbuild"

case "$TOOLCHAIN" in
    stable)
        rustup target list --installed 2>/dev/null | grep -qx "$TARGET" ||
            die "no rust-std for $TARGET: rustup target add $TARGET"
        set -- cargo zigbuild --release --target "$TARGET"
        ;;
    nightly)
        rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src' ||
            die "nightly rust-src missing: rustup toolchain install nightly && rustup component add rust-src --toolchain nightly"
        set -- cargo +nightly zigbuild --release --target "$TARGET" -Zbuild-std=std,panic_abort
        [ -n "$STD_FEATURES" ] && set -- "$@" -Zbuild-std-features="$STD_FEATURES"
        ;;
    *) die "$PROFILE: toolchain must be stable or nightly, not '$TOOLCHAIN'" ;;
esac
[ "$TOOLCHAIN" = stable ] && [ -n "$STD_FEATURES" ] &&
    die "$PROFILE: std_features needs toolchain = \"nightly\" (-Zbuild-std)"
[ "$DEFAULT_FEATURES" = false ] && set -- "$@" --no-default-features
[ -n "$FEATURES" ] && set -- "$@" --features "$FEATURES"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/boards}"
echo "board $BOARD: $*"
t0=$(date +%s)
"$@"
bin="$CARGO_TARGET_DIR/$TARGET/release/srsd"
[ -f "$bin" ] || die "no binary at $bin"
cp "$bin" "$OUT/srsd"
echo "board $BOARD: built in $(( $(date +%s) - t0 )) s"

# Static, stripped.
info=$(file -b "$OUT/srsd")
echo "board $BOARD: $info"
case "$info" in
    *"statically linked"*|*"static-pie linked"*) ;;
    *) die "$OUT/srsd is not statically linked: $info" ;;
esac
case "$info" in
    *"not stripped"*) die "$OUT/srsd is not stripped" ;;
esac

# Size budget.
size=$(wc -c < "$OUT/srsd" | tr -d ' ')
if [ "$size" -gt "$BUDGET" ]; then
    die "$OUT/srsd is $size bytes, over the budget of $BUDGET bytes by $((size - BUDGET))"
fi
echo "board $BOARD: size $size bytes ($((size / 1024)) KiB), $((BUDGET - size)) bytes under the $BUDGET-byte budget ($(( (BUDGET - size) * 100 / BUDGET ))% free)"

# The binary accepts its own board config.
if run_board "$OUT/srsd" -t -c "$OUT/srsd.toml" >/dev/null; then
    echo "board $BOARD: srsd -t -c $OUT/srsd.toml: ok"
else
    rc=$?
    [ "$rc" = 127 ] || die "srsd rejects $OUT/srsd.toml"
    echo "board $BOARD: WARNING: cannot run the binary here (install qemu-user-static); config not checked by it"
fi
