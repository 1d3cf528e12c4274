#!/usr/bin/env bash
# Installs everything the platform and its tests need on a fresh Debian machine, and reuses
# what is already there: Debian packages (Redis, the OCI registry), npm packages (including
# Node.js 26 itself), and the upstream binaries built from pinned Go modules into
# ~/.cache/kublambda (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd,
# versitygw). Needs Go (for the upstream builds) and root or sudo (for apt-get).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
say() { echo "setup: $*" >&2; }

debian_packages=(redis-server docker-registry chromium)
missing=()
for package in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  # The packages' own services are not wanted: the project starts its servers itself.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v go >/dev/null || { say "Go is needed to build the pinned Kubernetes binaries (tools/kube/go.mod)"; exit 1; }

# npm ci only when package-lock.json changed since the last install.
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.kublambda-installed
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]; then
  say "installing npm packages"
  npm ci --no-fund --no-audit --loglevel=error
  echo "$lock_hash" > "$stamp"
fi

say "kubernetes binaries in $(tools/kube/build.sh)"
say "etcd and the S3 server in $(tools/servers/build.sh)"
say "helm in $(tools/helm/build.sh)"
