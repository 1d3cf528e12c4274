#!/usr/bin/env bash
# Builds Knative's queue-proxy (knative.dev/serving/cmd/queue) at the version pinned in go.mod
# into $KUBLAMBDA_CACHE/queue-proxy/<version>-<go.sum hash>/queue-proxy (default
# ~/.cache/kublambda) and prints the binary's path. The directory is stamped with the hash of
# go.sum, so a change to any pinned dependency builds anew; a binary already there is reused.
# Only the benchmark needs it (tools/bench/runner.ts builds it on demand).
#
# knative.dev/serving v0.42.2 is pinned rather than the newest release (v0.51.0): the module
# proxy serves no version of knative.dev/networking, and of knative.dev/pkg none as new as
# v0.51.0 requires, so only v0.42.2's dependencies can be downloaded.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../go-build.sh"
version=$(awk '$1 == "knative.dev/serving" {print $2; exit}' "$here/go.mod")
[ -n "$version" ] || { echo "build.sh: no knative.dev/serving version in $here/go.mod" >&2; exit 1; }
sum=$(sha256sum "$here/go.sum" | cut -c1-12)
cache=${KUBLAMBDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kublambda}
out="$cache/queue-proxy/$version-$sum"
if [ ! -x "$out/queue-proxy" ]; then
  mkdir -p "$out"
  (cd "$here" && build_go_binary "queue-proxy $version" "$out/queue-proxy" knative.dev/serving/cmd/queue "-s -w")
fi
echo "$out/queue-proxy"
