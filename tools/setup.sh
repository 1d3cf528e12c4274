#!/usr/bin/env bash
# Installs everything the platform and its tests need on a fresh Debian machine, and reuses
# what is already there: Debian packages (Redis, the OCI registry, Chromium for the browser
# tests), npm packages (including Node.js 26 itself), and the upstream binaries built from
# pinned Go modules into ~/.cache/kublambda (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, kwok, versitygw, helm). Needs Go (for the upstream builds)
# and root or sudo (for apt-get).
#   bash tools/setup.sh        everything: the tests and the local platform
#   bash tools/setup.sh up     only what `npm run up` needs (no Chromium, helm or S3 server)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source "$root/tools/go-build.sh"
say() { echo "setup: $*" >&2; }

case "${1:-all}" in
  all) debian_packages=(redis-server docker-registry chromium); servers=(etcd kwok versitygw); helm=yes ;;
  up) debian_packages=(redis-server docker-registry); servers=(etcd kwok); helm=no ;;
  *) echo "usage: bash tools/setup.sh [up]   (up: only what npm run up needs)" >&2; exit 2 ;;
esac
started=$SECONDS

command -v go >/dev/null || { say "Go is needed to build the pinned Kubernetes binaries (tools/kube/go.mod)"; exit 1; }

# The Go builds take most of a first setup and need neither the Debian nor the npm packages:
# they start first and run while those install. Each binary is built once, then reused.
go_builds() {
  tools/kube/build.sh >/dev/null
  tools/servers/build.sh "${servers[@]}" >/dev/null
  if [ "$helm" = yes ]; then tools/helm/build.sh >/dev/null; fi
}
go_builds &
go_pid=$!
trap 'kill $go_pid 2>/dev/null || true' EXIT

missing=()
for package in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  begun=$SECONDS
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  # The packages' own services are not wanted: the project starts its servers itself.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  say "Debian packages installed in $(elapsed_since $begun)"
fi

# npm ci only when package-lock.json changed since the last install.
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.kublambda-installed
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]; then
  begun=$SECONDS
  say "installing npm packages"
  npm ci --no-fund --no-audit --loglevel=error
  echo "$lock_hash" > "$stamp"
  say "npm packages installed in $(elapsed_since $begun)"
fi

if ! wait $go_pid; then
  trap - EXIT
  say "building the upstream binaries failed (see above)"
  exit 1
fi
trap - EXIT
say "ready in $(elapsed_since $started); binaries in ${KUBLAMBDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kublambda}"
