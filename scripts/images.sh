#!/usr/bin/env bash
# Builds Tug's test images without a network and serves them from a registry on loopback.
#
#   scripts/images.sh DIR [PORT]
#
# Images (OCI layouts built with umoci from Debian's busybox-static, under DIR/oci):
#   docker.io/library/busybox:latest   /bin/busybox and its applet links
#   registry.k8s.io/pause:3.10         the pod sandbox: PID 1 that exits on SIGTERM/SIGINT and
#                                      reaps orphans (a shell `wait` loop)
#   docker.io/tug/test-server:1.0      `test-server`: HTTP on $PORT (default 8080) with busybox
#                                      httpd; each SIGTERM/SIGINT it gets is appended to
#                                      $SIGNAL_LOG (default /tmp/signals) and printed, then it exits 0
#
# Then starts Debian's `docker-registry` on 127.0.0.1:PORT (default: a free port) with its config
# and storage under DIR/registry (pid in DIR/registry/pid; an already running one is reused) and
# pushes the images to it with skopeo under the paths containerd asks a mirror for
# (library/busybox, pause, tug/test-server). Prints `127.0.0.1:PORT` on stdout and writes it to
# DIR/registry/addr. Point containerd's registry hosts for docker.io and registry.k8s.io at it
# (`tug agent --registry-mirror 127.0.0.1:PORT`). Stop it with `kill $(cat DIR/registry/pid)`.
#
# Idempotent: rerunning rebuilds the layouts and re-pushes (cheap: a few MB).
set -euo pipefail

dir=${1:?usage: scripts/images.sh DIR [PORT]}
port=${2:-}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
for tool in umoci skopeo docker-registry busybox; do
  command -v "$tool" >/dev/null || { echo "images: $tool not found (run scripts/deps.sh)" >&2; exit 1; }
done
busybox_bin=/bin/busybox
[ -x "$busybox_bin" ] || { echo "images: $busybox_bin not found (Debian busybox-static)" >&2; exit 1; }

oci="$dir/oci"
work="$dir/work"
rm -rf "$oci" "$work"
mkdir -p "$work"
umoci init --layout "$oci"

# The busybox root file system: the static binary and one link per applet.
base="$work/busybox-root"
mkdir -p "$base/bin" "$base/tmp" "$base/etc" "$base/root" "$base/var/www"
cp "$busybox_bin" "$base/bin/busybox"
for applet in $("$busybox_bin" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$base/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$base/etc/passwd"
echo 'root:x:0:' >"$base/etc/group"
chmod 1777 "$base/tmp"

# image TAG ROOTFS-DIR [umoci config flags…]: a one-layer image from ROOTFS-DIR.
image() {
  local tag=$1 root=$2
  shift 2
  umoci new --image "$oci:$tag"
  umoci insert --image "$oci:$tag" "$root" /
  umoci config --image "$oci:$tag" --os linux --architecture "$(dpkg --print-architecture)" \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

image busybox "$base" --config.cmd sh

pause="$work/pause-root"
cp -a "$base" "$pause"
cat >"$pause/pause" <<'EOF'
#!/bin/sh
# The pod sandbox's PID 1: holds the pod's namespaces, reaps orphans (`wait`), exits on signal.
trap 'exit 0' TERM INT
while :; do
  sleep 3600 &
  wait
done
EOF
chmod 755 "$pause/pause"
image pause "$pause" --config.entrypoint /pause

server="$work/test-server-root"
cp -a "$base" "$server"
mkdir -p "$server/www"
echo 'tug test-server' >"$server/www/index.html"
cat >"$server/bin/test-server" <<'EOF'
#!/bin/sh
# Answers HTTP on $PORT (default 8080) from /www; records every SIGTERM/SIGINT in $SIGNAL_LOG
# (default /tmp/signals) and on stdout, then exits 0.
port=${PORT:-8080}
log=${SIGNAL_LOG:-/tmp/signals}
hostname >/www/hostname 2>/dev/null || true
on_signal() {
  echo "$1" >>"$log"
  echo "test-server: got $1"
  kill "$pid" 2>/dev/null
  exit 0
}
trap 'on_signal SIGTERM' TERM
trap 'on_signal SIGINT' INT
httpd -f -p "$port" -h /www &
pid=$!
echo "test-server: listening on $port"
while :; do
  wait
done
EOF
chmod 755 "$server/bin/test-server"
image test-server "$server" --config.entrypoint /bin/test-server

# The registry, on loopback only.
reg="$dir/registry"
mkdir -p "$reg/storage"
if [ -f "$reg/pid" ] && kill -0 "$(cat "$reg/pid")" 2>/dev/null && [ -f "$reg/addr" ]; then
  addr=$(cat "$reg/addr")
else
  if [ -z "$port" ]; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  fi
  addr="127.0.0.1:$port"
  cat >"$reg/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $reg/storage
  delete:
    enabled: true
http:
  addr: $addr
EOF
  docker-registry serve "$reg/config.yml" >"$reg/log" 2>&1 &
  echo $! >"$reg/pid"
  echo "$addr" >"$reg/addr"
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/${addr##*:}") 2>/dev/null && break
    sleep 0.1
  done
fi

push() {
  skopeo copy --quiet --dest-tls-verify=false "oci:$oci:$1" "docker://$addr/$2"
}
push busybox library/busybox:latest
push pause pause:3.10
push test-server tug/test-server:1.0
rm -rf "$work"
echo "$addr"
