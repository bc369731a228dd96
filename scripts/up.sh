#!/usr/bin/env bash
# Installs what is missing, builds Tug, and starts a single-node cluster (`tug server` on the
# embedded datastore, with its in-process node agent running pods on containerd) in the
# background, then says how to use kubectl with it.
#
# Environment: TUG_DATA_DIR (default /var/lib/tug), TUG_PORT (default 6443),
# TUG_BIND_ADDRESS (default 127.0.0.1), TUG_REGISTRY_MIRROR: HOST:PORT of a plain-HTTP
# registry serving docker.io and registry.k8s.io images (default: the offline registry of
# scripts/images.sh, started here, with busybox, registry.k8s.io/pause:3.10 and
# tug/test-server:1.0; `none` pulls from the real registries instead).
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

mirror="${TUG_REGISTRY_MIRROR:-}"
if [ -z "$mirror" ]; then
  # Images without a network: built locally, served on loopback (reused when running).
  mirror=$(scripts/images.sh "$data/images")
fi
mirror_flag=()
if [ "$mirror" != none ]; then
  mirror_flag=(--registry-mirror "$mirror")
fi

if [ -f "$data/server.pid" ] && kill -0 "$(cat "$data/server.pid")" 2>/dev/null; then
  echo "tug server is already running (pid $(cat "$data/server.pid"))"
else
  "$tug" server --data-dir "$data" --https-listen-port "$port" --bind-address "$bind" \
    "${mirror_flag[@]}" >"$data/server.log" 2>&1 &
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

# The in-process agent registers the node once its containerd is up.
for _ in $(seq 1 120); do
  [ -n "$(kubectl --kubeconfig "$kubeconfig" get nodes -o name 2>/dev/null)" ] && break
  sleep 0.5
done
if ! kubectl --kubeconfig "$kubeconfig" wait --for=condition=Ready nodes --all --timeout=60s >/dev/null 2>&1; then
  echo "warning: no Ready node yet; see $data/server.log" >&2
fi
kubectl --kubeconfig "$kubeconfig" get nodes

cat <<MSG

Use it with kubectl:
  export KUBECONFIG=$kubeconfig
  kubectl get namespaces

  kubectl run hello --image=busybox -- sleep 3600
  kubectl get pods -o wide

Stop it with: kill \$(cat $data/server.pid)   (containers keep running; the next start adopts them)
Images come from ${mirror/none/the real registries}.
MSG
