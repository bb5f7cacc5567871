#!/usr/bin/env bash
# Run every fuzz target for a bounded time: FUZZ_SECONDS each (default 15), so the whole run
# takes about 4 × FUZZ_SECONDS plus the build (cached in ~/.cache between runs).
#
#   fuzz/run.sh                 every target (what scripts/test runs)
#   fuzz/run.sh csrf_token      one target
#   FUZZ_SECONDS=600 fuzz/run.sh config
#
# cargo-fuzz needs nightly-only compiler flags; on a stable toolchain RUSTC_BOOTSTRAP=1 allows
# them. No sanitizer (`-s none`): the crate forbids unsafe code, and the targets look for
# panics, broken invariants (assertions in the targets) and slow inputs. Seeds live in
# fuzz/seeds/TARGET; the growing corpus is kept in the cache directory, never in the tree.
# A crash leaves its input in fuzz/artifacts/TARGET/ (replay: cargo fuzz run TARGET FILE).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

SECS=${FUZZ_SECONDS:-15}
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$CACHE/sessiongate-fuzz-target}"
BUILD=(-s none --release --debug-assertions --codegen-units 16)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: installing cargo-fuzz with cargo install"
  cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(cargo fuzz list)
fi

start=$(date +%s)
echo "fuzz: building ${TARGETS[*]} (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
cargo fuzz build "${BUILD[@]}"
echo "fuzz: built in $(($(date +%s) - start))s"

ok=0
bad=()
for t in "${TARGETS[@]}"; do
  corpus="$CACHE/sessiongate-fuzz-corpus/$t"
  mkdir -p "$corpus" "artifacts/$t"
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  echo "fuzz: $t for ${SECS}s"
  t0=$(date +%s)
  if cargo fuzz run "${BUILD[@]}" "$t" "$corpus" "${seeds[@]}" -- \
    -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" >"$CACHE/sessiongate-fuzz-$t.log" 2>&1; then
    runs=$(grep -aoE 'stat::number_of_executed_units: *[0-9]+' "$CACHE/sessiongate-fuzz-$t.log" | grep -oE '[0-9]+$' || echo '?')
    echo "fuzz: $t ok ($runs inputs in $(($(date +%s) - t0))s, corpus $(find "$corpus" -type f | wc -l) files)"
    ok=$((ok + 1))
  else
    echo "fuzz: $t FAILED; the end of its log ($CACHE/sessiongate-fuzz-$t.log):" >&2
    tail -n 40 "$CACHE/sessiongate-fuzz-$t.log" >&2
    bad+=("$t")
  fi
done
echo "fuzz: ${ok} target(s) ok, ${#bad[@]} failed${bad:+ (${bad[*]})} in $(($(date +%s) - start))s"
[ ${#bad[@]} -eq 0 ]
