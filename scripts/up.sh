#!/usr/bin/env bash
# Installs what is missing, builds Tug, and starts what exists so far.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /var/cache/tug-target ]; then
  export CARGO_TARGET_DIR=/var/cache/tug-target
fi
cargo build --release --workspace --locked
target="${CARGO_TARGET_DIR:-target}/release"
echo
echo "built: $target/tug and $target/tug-storage-writer"
echo "The single-node cluster (tug server + kubectl) is not implemented yet: see README.md, Status."
echo "Try the datastore: cargo bench -p tug-storage --bench storage"
