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
cargo test --workspace --locked --no-fail-fast -- --test-threads="${TUG_TEST_THREADS:-4}"
