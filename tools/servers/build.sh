#!/usr/bin/env bash
# Builds the test servers pinned by the modules beside this script (etcd/, versitygw/, kwok/;
# the ones named as arguments, or all) into
# $KUBLAMBDA_CACHE/servers/<name>@<version>/ (default ~/.cache/kublambda) and prints the
# cache directory. Each server has a module of its own so their dependencies never mix.
# Binaries already in the cache are reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${KUBLAMBDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kublambda}

build_server() { # name main-package module
  local name=$1 package=$2 module=$3
  local version out
  version=$(awk -v m="$module" '$1 == m {print $2; exit} $1 == "require" && $2 == m {print $3; exit}' "$here/$name/go.mod")
  [ -n "$version" ] || { echo "build.sh: no version of $module in $here/$name/go.mod" >&2; exit 1; }
  out="$cache/servers/$name@$version"
  [ -x "$out/$name" ] && return
  echo "build.sh: building $name $version (the first time only)" >&2
  mkdir -p "$out"
  local begun=$SECONDS
  (cd "$here/$name" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/$name.partial" "$package") 2>&1 | { grep -v '^go: downloading' || true; } >&2
  mv "$out/$name.partial" "$out/$name"
  echo "build.sh: built $name in $(( (SECONDS - begun) / 60 ))m$(( (SECONDS - begun) % 60 ))s" >&2
}

# Which servers: the arguments, all of them without any.
wanted=" ${*:-etcd versitygw kwok} "
for name in $wanted; do
  case $name in etcd | versitygw | kwok) ;; *) echo "build.sh: no server named $name (etcd, versitygw, kwok)" >&2; exit 2 ;; esac
done
[[ $wanted == *" etcd "* ]] && build_server etcd go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3
[[ $wanted == *" versitygw "* ]] && build_server versitygw github.com/versity/versitygw/cmd/versitygw github.com/versity/versitygw
[[ $wanted != *" kwok "* ]] && { echo "$cache/servers"; exit 0; }
build_server kwok sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok
# kwok's stages (what it does to fake nodes and pods), from the same pinned module and our
# stages program. Regenerated when the program or the module's sums change: the stamp beside
# stages.yaml holds the sha256 of both as they were when it was written.
kwok_dir="$cache/servers/kwok@$(awk '$1 == "require" && $2 == "sigs.k8s.io/kwok" {print $3; exit}' "$here/kwok/go.mod")"
stages_sum=$(cat "$here/kwok/stages/main.go" "$here/kwok/go.sum" | sha256sum | cut -d' ' -f1)
if [ ! -s "$kwok_dir/stages.yaml" ] || [ "$(cat "$kwok_dir/stages.yaml.sha256" 2>/dev/null)" != "$stages_sum" ]; then
  echo "build.sh: writing kwok's stages.yaml" >&2
  (cd "$here/kwok" && go run ./stages > "$kwok_dir/stages.yaml.partial")
  mv "$kwok_dir/stages.yaml.partial" "$kwok_dir/stages.yaml"
  echo "$stages_sum" > "$kwok_dir/stages.yaml.sha256"
fi
echo "$cache/servers"
