#!/usr/bin/env bash
# Builds helm at the version pinned in go.mod into $KUBLAMBDA_CACHE/helm/<version>/bin
# (default ~/.cache/kublambda) and prints that directory. A binary already there is reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(awk '$1 == "helm.sh/helm/v4" {print $2; exit}' "$here/go.mod")
[ -n "$version" ] || { echo "build.sh: no helm.sh/helm/v4 version in $here/go.mod" >&2; exit 1; }
cache=${KUBLAMBDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kublambda}
out="$cache/helm/$version/bin"
mkdir -p "$out"
if [ ! -x "$out/helm" ]; then
  echo "build.sh: building helm $version (the first time only)" >&2
  cd "$here"
  begun=$SECONDS
  # helm reports the version it was built as (helm version, and the chart API checks).
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" -o "$out/helm.partial" helm.sh/helm/v4/cmd/helm 2>&1 | { grep -v '^go: downloading' || true; } >&2
  mv "$out/helm.partial" "$out/helm"
  echo "build.sh: built helm in $(( (SECONDS - begun) / 60 ))m$(( (SECONDS - begun) % 60 ))s" >&2
fi
echo "$out"
