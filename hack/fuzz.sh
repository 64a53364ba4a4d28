#!/usr/bin/env bash
# The cargo-fuzz targets of fuzz/ (see fuzz/README.md), for CI and for longer hunts.
#
#   hack/fuzz.sh smoke          build every target once, run each for a few seconds over
#                               its committed corpus and regressions; fails on any crash,
#                               hang, leak or broken invariant
#   hack/fuzz.sh smoke-start    the smoke, detached and at nice 19 (`make test` starts it
#   hack/fuzz.sh smoke-wait     first and waits for it last); wait prints its log and fails
#                               when it failed
#   hack/fuzz.sh long [seconds] run each target for `seconds` (default 600) and print the
#                               executions from libFuzzer's final stats line
#
# Needs a nightly toolchain (`cargo +nightly`); installs cargo-fuzz (pinned) when missing.
# New inputs a run finds go to a scratch directory, never into fuzz/corpus/ (minimize and
# commit them by hand, see fuzz/README.md); crash reproducers go to fuzz/artifacts/<target>/.
#
# Smoke builds with `--dev -s none` (opt-level 0, debug assertions, no sanitizer): cold, on
# the 2-core machine, 3 min 52 s to build against 6 min 0 s with AddressSanitizer (`--dev`)
# and ~13 min for the release build `long` uses. Smoke is about invariants, panics and
# hangs on the committed inputs; memory errors in the C-translated YAML scanner are the
# long runs' job (release, ASan). FUZZ_SMOKE_SECONDS and FUZZ_BUILD_FLAGS override the
# defaults (FUZZ_BUILD_FLAGS=--dev for a smoke run with ASan and LeakSanitizer).

set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2
TARGETS=(apply_label oadp_configmap extra_manifests seed_labels seed_reconfiguration ibu_json
    autorollback_config tar_extract)

cd "$(dirname "$0")/.."

die() {
    echo "hack/fuzz.sh: $*" >&2
    exit 1
}

ensure_tools() {
    cargo +nightly --version >/dev/null 2>&1 ||
        die "no nightly toolchain: rustup toolchain install nightly --profile minimal"
    if ! cargo +nightly fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
        echo "--- installing cargo-fuzz $CARGO_FUZZ_VERSION"
        cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
    fi
}

# libFuzzer's options per target: oadp_configmap and extra_manifests would otherwise take
# their 35 KB cap seeds as max_len and spend their time on 5000-document inputs.
max_len() {
    case $1 in
    oadp_configmap | extra_manifests) echo 4096 ;;
    tar_extract) echo 16384 ;;
    *) echo 8192 ;;
    esac
}

# run PROFILE_DIR TARGET SECONDS LOG TIMEOUT: one libFuzzer run over the committed inputs.
run() {
    local dir=$1 t=$2 secs=$3 log=$4 timeout=$5
    local scratch
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/lca-fuzz-$t.XXXXXX")
    mkdir -p "fuzz/artifacts/$t"
    local dirs=("$scratch" "fuzz/corpus/$t")
    [[ -d fuzz/regressions/$t ]] && dirs+=("fuzz/regressions/$t")
    local status=0
    "fuzz/target/x86_64-unknown-linux-gnu/$dir/$t" -max_total_time="$secs" \
        -max_len="$(max_len "$t")" -rss_limit_mb=2048 -timeout="$timeout" \
        -artifact_prefix="fuzz/artifacts/$t/" "${dirs[@]}" >"$log" 2>&1 || status=$?
    rm -rf "$scratch"
    return "$status"
}

# The executions and time of libFuzzer's final stats line ("Done N runs in S second(s)").
summary() {
    grep -E '^Done [0-9]+ runs' "$1" | tail -1 || echo "no final stats line"
}

smoke() {
    local secs=${FUZZ_SMOKE_SECONDS:-3}
    local flags=${FUZZ_BUILD_FLAGS:---dev -s none}
    ensure_tools
    local start=$SECONDS
    echo "--- cargo fuzz build $flags (all targets)"
    # shellcheck disable=SC2086 # the flags are words
    cargo +nightly fuzz build $flags
    local dir=debug
    [[ " $flags " == *" --dev "* || " $flags " == *" -D "* ]] || dir=release
    echo "--- built in $((SECONDS - start)) s"
    local failed=()
    local logs
    logs=$(mktemp -d "${TMPDIR:-/tmp}/lca-fuzz-logs.XXXXXX")
    for t in "${TARGETS[@]}"; do
        # A hang is still a hang at 30 s; 10 s could be a slow input of a debug build on a
        # busy machine.
        if run "$dir" "$t" "$secs" "$logs/$t.log" 30; then
            echo "ok   $t: $(summary "$logs/$t.log")"
        else
            echo "FAIL $t (reproducer in fuzz/artifacts/$t/):"
            tail -40 "$logs/$t.log"
            failed+=("$t")
        fi
    done
    rm -rf "$logs"
    echo "--- smoke in $((SECONDS - start)) s"
    ((${#failed[@]} == 0)) || die "crashed: ${failed[*]}"
}

long() {
    local secs=${1:-600}
    ensure_tools
    cargo +nightly fuzz build
    mkdir -p fuzz/artifacts
    local failed=()
    for t in "${TARGETS[@]}"; do
        local log="fuzz/artifacts/$t.long.log"
        if run release "$t" "$secs" "$log" 10; then
            echo "$t: $(summary "$log")"
        else
            echo "$t: CRASHED after $(grep -cE '^#[0-9]+' "$log") stats lines; see $log"
            failed+=("$t")
        fi
    done
    ((${#failed[@]} == 0)) || die "crashed: ${failed[*]}"
}

# smoke-start / smoke-wait: the CI smoke in the background at the lowest CPU priority, so
# it takes only the cycles the tests leave (they mostly wait on processes) rather than
# adding its cold build to CI's wall time. The log and exit code go to target/fuzz-smoke.*.
BG_LOG=target/fuzz-smoke.log
BG_RC=target/fuzz-smoke.rc

smoke_start() {
    mkdir -p target
    rm -f "$BG_RC"
    # Detached: make runs each recipe line in its own shell.
    setsid nohup nice -n 19 bash -c \
        'bash hack/fuzz.sh smoke >"$0" 2>&1; echo $? >"$1.tmp"; mv "$1.tmp" "$1"' \
        "$BG_LOG" "$BG_RC" </dev/null >/dev/null 2>&1 &
    echo "--- fuzz smoke started in the background (log: $BG_LOG)"
}

smoke_wait() {
    [[ -e $BG_LOG ]] || die "no background smoke: run 'hack/fuzz.sh smoke-start' first"
    local start=$SECONDS
    while [[ ! -e $BG_RC ]]; do
        sleep 2
    done
    cat "$BG_LOG"
    echo "--- waited $((SECONDS - start)) s for the background smoke"
    local rc
    rc=$(cat "$BG_RC")
    ((rc == 0)) || die "the fuzz smoke failed (exit $rc)"
}

case ${1:-} in
smoke) smoke ;;
smoke-start) smoke_start ;;
smoke-wait) smoke_wait ;;
long) long "${2:-600}" ;;
*) die "usage: hack/fuzz.sh smoke | smoke-start | smoke-wait | long [seconds]" ;;
esac
