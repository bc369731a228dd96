#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, and every test of every crate (including the
# tests that start etcd, kill processes and mount a tmpfs, so run it as root).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

# A shared build cache outside the clone, when the machine has one.
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /var/cache/tug-target ]; then
  export CARGO_TARGET_DIR=/var/cache/tug-target
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== generated tables are up to date (cargo xtask codegen --check)"
cargo xtask codegen --check
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast --lib --bins --tests \
  -- --test-threads="${TUG_TEST_THREADS:-4}" 2>&1 | tee "$log" || status=$?
# The kubectl acceptance tests again, with kubectl 1.37 (the default run uses the machine's).
echo "== kubectl acceptance tests with kubectl 1.37"
TUG_KUBECTL="${TUG_KUBECTL_VENV:-/var/cache/tug-kubectl-1.37}/bin/kubectl" \
  cargo test --locked -p tug --test kubectl 2>&1 | tee -a "$log" || status=$?
# One closing line for the whole run: the sum over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
