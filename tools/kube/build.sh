#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler and kubectl at the version
# pinned in go.mod into $KUBLAMBDA_CACHE/kube/<version>/bin (default ~/.cache/kublambda)
# and prints that directory. Binaries already in the cache are reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../go-build.sh"
version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ {print $2; exit}' "$here/go.mod")
[ -n "$version" ] || { echo "build.sh: no k8s.io/kubernetes version in $here/go.mod" >&2; exit 1; }
cache=${KUBLAMBDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kublambda}
out="$cache/kube/$version/bin"
minor=${version#v1.}; minor=${minor%%.*}
ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$version \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=$version"

mkdir -p "$out"
cd "$here"
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  [ -x "$out/$c" ] && continue
  # One link at a time: each needs about 2 GiB and the compile already uses every core.
  build_go_binary "$c $version" "$out/$c" "k8s.io/kubernetes/cmd/$c" "$ldflags"
done
echo "$out"
