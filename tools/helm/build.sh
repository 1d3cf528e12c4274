#!/usr/bin/env bash
# Builds helm at the version pinned in go.mod into $KUBLAMBDA_CACHE/helm/<version>/bin
# (default ~/.cache/kublambda) and prints that directory. A binary already there is reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../go-build.sh"
version=$(awk '$1 == "helm.sh/helm/v4" {print $2; exit}' "$here/go.mod")
[ -n "$version" ] || { echo "build.sh: no helm.sh/helm/v4 version in $here/go.mod" >&2; exit 1; }
cache=${KUBLAMBDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kublambda}
out="$cache/helm/$version/bin"
mkdir -p "$out"
if [ ! -x "$out/helm" ]; then
  cd "$here"
  # helm reports the version it was built as (helm version, and the chart API checks).
  build_go_binary "helm $version" "$out/helm" helm.sh/helm/v4/cmd/helm "-s -w -X helm.sh/helm/v4/internal/version.version=$version"
fi
echo "$out"
