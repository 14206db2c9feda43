#!/usr/bin/env bash
# Fuzz every cargo-fuzz target of dane-roll for a short while; exit non-zero on a crash, a hang
# (over 10 s on one input), an out-of-memory, or a build failure.
#
#   fuzz/smoke.sh                      # CI smoke: 25 s per target (6 targets, 2.5 min of fuzzing)
#   FUZZ_SECONDS=600 fuzz/smoke.sh     # the long run: 10 minutes per target
#   FUZZ_SECONDS=600 fuzz/smoke.sh config pem_der   # some targets only
#
# New inputs go to fuzz/work/<target>/ (ignored by git); the committed seeds in
# fuzz/corpus/<target>/ are read, never written. A crash leaves its input in
# fuzz/artifacts/<target>/ and the end of the log is printed. Uses the nightly toolchain when
# rustup has one, else the default toolchain with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags).
# The first build compiles the whole crate with sanitizer flags: several minutes on 2 cores.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

seconds="${FUZZ_SECONDS:-25}"
all=(tlsa_text config smtp_reply acme_env pem_der der)
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=("${all[@]}")
fi

toolchain=()
if command -v rustup >/dev/null 2>&1 && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

if ! cargo "${toolchain[@]}" fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io" >&2
    cargo install cargo-fuzz --locked
fi

# -a: debug assertions and overflow checks on, so an integer overflow is a crash too.
build=(-a)

echo "fuzz: building ${targets[*]} (toolchain: ${toolchain[*]:-default + RUSTC_BOOTSTRAP=1})" >&2
cargo "${toolchain[@]}" fuzz build "${build[@]}" >&2

mkdir -p work/logs
failed=()
for target in "${targets[@]}"; do
    mkdir -p "work/$target" "corpus/$target"
    log="work/logs/$target.log"
    echo "fuzz: $target for ${seconds}s" >&2
    if cargo "${toolchain[@]}" fuzz run "${build[@]}" "$target" "work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
        corpus="$(ls "work/$target" | wc -l)"
        echo "fuzz: $target ok: ${runs:-?} executions in ${seconds}s, $corpus new inputs" >&2
    else
        echo "fuzz: $target FAILED; end of $log:" >&2
        tail -n 60 "$log" >&2
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/artifacts/; reproduce with" \
        "cargo ${toolchain[*]} fuzz run -a TARGET fuzz/artifacts/TARGET/crash-…)" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash" >&2
