#!/bin/sh
# Builds every fuzz target (cargo-fuzz, nightly, AddressSanitizer) and runs each for a short
# smoke on its seed corpus (fuzz/corpus/TARGET, read only: new inputs go to a scratch dir),
# two at a time.
# A crash fails the script and leaves the input under $OUT/artifacts/TARGET/.
#
#   fuzz/smoke.sh [SECONDS_EACH]      default 15
#
# Needs: nightly, cargo-fuzz (`cargo install cargo-fuzz`). CARGO_TARGET_DIR is honoured.
set -eu
cd "$(dirname "$0")"
SECS=${1:-15}
OUT=${CARGO_TARGET_DIR:-$(pwd)/target}
export CARGO_TARGET_DIR=$OUT
command -v cargo-fuzz >/dev/null 2>&1 || { echo "fuzz/smoke.sh: cargo-fuzz not found: cargo install cargo-fuzz" >&2; exit 1; }
cargo +nightly fuzz build
bin=$OUT/x86_64-unknown-linux-gnu/release
# One target: its log in $OUT/fuzz-TARGET.log, the exec count printed.
one() {
    t=$1
    scratch=$OUT/fuzz-scratch/$t
    mkdir -p "$scratch" "$OUT/artifacts/$t"
    if ! "$bin/$t" "$scratch" "corpus/$t" -max_total_time="$SECS" -max_len=8192 \
        -rss_limit_mb=1024 -timeout=10 -artifact_prefix="$OUT/artifacts/$t/" \
        -print_final_stats=1 >"$OUT/fuzz-$t.log" 2>&1; then
        tail -40 "$OUT/fuzz-$t.log" >&2
        echo "fuzz/smoke.sh: $t failed; input under $OUT/artifacts/$t/" >&2
        return 1
    fi
    echo "fuzz $t: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$OUT/fuzz-$t.log" | grep -o '[0-9]*$') execs in $SECS s"
}
# Two at a time (CI machines have two cores); the first failure fails the script.
set -- $(cargo +nightly fuzz list | grep -vx seeds)  # seeds writes the corpora, it is no target
failed=0
while [ $# -gt 0 ]; do
    one "$1" & a=$!
    b=
    if [ $# -gt 1 ]; then one "$2" & b=$!; shift; fi
    shift
    wait "$a" || failed=1
    if [ -n "$b" ]; then wait "$b" || failed=1; fi
    [ "$failed" = 0 ] || exit 1
done
