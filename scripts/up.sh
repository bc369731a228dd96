#!/usr/bin/env bash
# Installs what is missing, builds Tug, and starts a single-node control plane (`tug server`
# on the embedded datastore) in the background, then says how to use kubectl with it.
#
# Environment: TUG_DATA_DIR (default /var/lib/tug), TUG_PORT (default 6443),
# TUG_BIND_ADDRESS (default 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /var/cache/tug-target ]; then
  export CARGO_TARGET_DIR=/var/cache/tug-target
fi
cargo build --release --locked -p tug
tug="${CARGO_TARGET_DIR:-$PWD/target}/release/tug"

data="${TUG_DATA_DIR:-/var/lib/tug}"
port="${TUG_PORT:-6443}"
bind="${TUG_BIND_ADDRESS:-127.0.0.1}"
mkdir -p "$data"
kubeconfig="$data/admin.kubeconfig"

if [ -f "$data/server.pid" ] && kill -0 "$(cat "$data/server.pid")" 2>/dev/null; then
  echo "tug server is already running (pid $(cat "$data/server.pid"))"
else
  "$tug" server --data-dir "$data" --https-listen-port "$port" --bind-address "$bind" \
    >"$data/server.log" 2>&1 &
  echo $! >"$data/server.pid"
  # Wait for readiness (the server writes the kubeconfig before it listens).
  for _ in $(seq 1 100); do
    if [ -f "$kubeconfig" ] && kubectl --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1; then
      break
    fi
    if ! kill -0 "$(cat "$data/server.pid")" 2>/dev/null; then
      echo "tug server exited; its log:" >&2
      cat "$data/server.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  kubectl --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null
  echo "tug server is ready (pid $(cat "$data/server.pid"), log $data/server.log)"
fi

cat <<MSG

Use it with kubectl:
  export KUBECONFIG=$kubeconfig
  kubectl get namespaces

Stop it with: kill \$(cat $data/server.pid)
(The node agent — kubelet, kube-proxy — is not built yet, so pods are stored but not run.)
MSG
