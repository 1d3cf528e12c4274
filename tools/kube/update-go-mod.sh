#!/usr/bin/env bash
# Regenerates go.mod/go.sum so this module pins k8s.io/kubernetes at the given version.
# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local
# paths; replaces in a dependency are ignored, so this module repeats them with the
# published versions of those staging modules (v1.X.Y -> v0.X.Y).
set -euo pipefail
version=${1:?usage: update-go-mod.sh v1.X.Y}
here=$(cd "$(dirname "$0")" && pwd)
staging_version="v0.${version#v1.}"
modfile=$(go mod download -json "k8s.io/kubernetes@${version}" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
goline=$(grep -m1 '^go ' "$modfile")
{
  echo "module kublambda.io/tools/kube"
  echo
  echo "$goline"
  echo
  echo "require k8s.io/kubernetes ${version}"
  echo
  echo "tool ("
  echo "	k8s.io/kubernetes/cmd/kube-apiserver"
  echo "	k8s.io/kubernetes/cmd/kube-controller-manager"
  echo "	k8s.io/kubernetes/cmd/kube-scheduler"
  echo "	k8s.io/kubernetes/cmd/kubectl"
  echo ")"
  echo
  echo "replace ("
  grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$modfile" | awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}'
  echo ")"
} > "$here/go.mod"
rm -f "$here/go.sum"
cd "$here" && go mod tidy
