#!/usr/bin/env bash
# Builds the test servers pinned by the modules beside this script (etcd/, versitygw/, kwok/;
# the ones named as arguments, or all) into
# $KUBLAMBDA_CACHE/servers/<name>@<version>/ (default ~/.cache/kublambda) and prints the
# cache directory. Each server has a module of its own so their dependencies never mix.
# Binaries already in the cache are reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../go-build.sh"
cache=${KUBLAMBDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kublambda}

build_server() { # name main-package module
  local name=$1 package=$2 module=$3
  local version out
  version=$(awk -v m="$module" '$1 == m {print $2; exit} $1 == "require" && $2 == m {print $3; exit}' "$here/$name/go.mod")
  [ -n "$version" ] || { echo "build.sh: no version of $module in $here/$name/go.mod" >&2; exit 1; }
  out="$cache/servers/$name@$version"
  [ -x "$out/$name" ] && return
  mkdir -p "$out"
  (cd "$here/$name" && build_go_binary "$name $version" "$out/$name" "$package" "-s -w")
}

# kwok's stages (what it does to fake nodes and pods), from the same pinned module and our
# stages program. Regenerated when the program or the module's sums change: the stamp beside
# stages.yaml holds the sha256 of both as they were when it was written.
write_kwok_stages() {
  local kwok_dir stages_sum
  kwok_dir="$cache/servers/kwok@$(awk '$1 == "require" && $2 == "sigs.k8s.io/kwok" {print $3; exit}' "$here/kwok/go.mod")"
  stages_sum=$(cat "$here/kwok/stages/main.go" "$here/kwok/go.sum" | sha256sum | cut -d' ' -f1)
  [ -s "$kwok_dir/stages.yaml" ] && [ "$(cat "$kwok_dir/stages.yaml.sha256" 2>/dev/null)" = "$stages_sum" ] && return
  echo "build.sh: writing kwok's stages.yaml" >&2
  (cd "$here/kwok" && go run ./stages > "$kwok_dir/stages.yaml.partial")
  mv "$kwok_dir/stages.yaml.partial" "$kwok_dir/stages.yaml"
  echo "$stages_sum" > "$kwok_dir/stages.yaml.sha256"
}

# The servers named as arguments, all of them without any; every name is checked before a build.
[ $# -gt 0 ] || set -- etcd versitygw kwok
for name; do
  [[ $name =~ ^(etcd|versitygw|kwok)$ ]] || { echo "build.sh: no server named $name (etcd, versitygw, kwok)" >&2; exit 2; }
done
for name; do
  case $name in
    etcd) build_server etcd go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3 ;;
    versitygw) build_server versitygw github.com/versity/versitygw/cmd/versitygw github.com/versity/versitygw ;;
    kwok)
      build_server kwok sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok
      write_kwok_stages
      ;;
  esac
done
echo "$cache/servers"
