# Shared by the scripts here and tests/conformance/run (sourced, not run).

# cargo's target directory: $CARGO_TARGET_DIR when set (as cargo reads it, relative to the working
# directory), else target/ here. Every script finds what cargo built through this, never target/.
target_dir() {
  local dir="${CARGO_TARGET_DIR:-target}"
  case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
  printf '%s\n' "$dir"
}

# Where each suite's whole output goes; scripts/secret-scan searches every log here.
test_logs="$(target_dir)/test-logs"

# $1: suite name; the rest: its command. Its output goes to $test_logs/NAME.log only; the terminal
# gets the summary lines, or on a failure the lines that say what failed, and the log's path.
suite() {
  local name="$1" started=$SECONDS
  shift
  local log="$test_logs/$name.log"
  if "$@" >"$log" 2>&1; then
    grep -E "$summary_lines" "$log" | sed "s/^ *//; s/^/$name: /" || true
    echo "$name: ok in $((SECONDS - started)) s (log: $log)"
  else
    echo "$name: FAILED after $((SECONDS - started)) s; what failed (the whole output is in $log):"
    grep -E -A12 "$failure_lines" "$log" | grep -v -E ' (TRACE|DEBUG) ' | head -150 || true
    echo "---- the end of $log:"
    grep -v -E ' (TRACE|DEBUG) ' "$log" | tail -25
    return 1
  fi
}

# The lines of a passing run worth showing: nextest's and libtest's summaries, pytest's, the
# conformance runner's.
summary_lines='^ *Summary \[|^test result: |^[0-9]+ passed|^== conformance|^(Passed|Failed):|^conformance: OK|^[a-z-]+: (Passed|Failed):|^app-e2e: passed|^image-tools: passed'
# The lines of a failing run that say what failed.
failure_lines='^ *(FAIL|TIMEOUT|SIGSEGV|SIGABRT|SIGKILL|LEAK|ABORT) |panicked at|^FAILED |^ERROR |^E  |^error(\[|:)|^failures:$|unexpected result|did not|^app-e2e: FAILED'

# The Rust tests: with cargo-nextest when it is installed (every test in a process of its own,
# the tests of all binaries run together; nextest runs no doc tests, so `cargo test --doc` does),
# else with cargo test.
rust_tests() {
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --cargo-quiet --no-fail-fast --success-output immediate --failure-output immediate \
      --status-level fail --final-status-level fail &&
      cargo test --quiet --doc
  else
    cargo test --quiet --no-fail-fast -- --nocapture
  fi
}
