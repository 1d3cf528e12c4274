#!/usr/bin/env bash
# Builds the S3-compatible test server (versitygw) pinned in go.mod into
# $KUBLAMBDA_CACHE/servers/<module>@<version>/ (default ~/.cache/kublambda) and prints that
# directory. A binary already in the cache is reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(awk '$1 == "github.com/versity/versitygw" {print $2; exit}' "$here/go.mod")
cache=${KUBLAMBDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kublambda}
out="$cache/servers/versitygw@$version"
if [ ! -x "$out/versitygw" ]; then
  echo "build.sh: building versitygw $version" >&2
  mkdir -p "$out"
  cd "$here"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/versitygw.partial" github.com/versity/versitygw/cmd/versitygw
  mv "$out/versitygw.partial" "$out/versitygw"
fi
echo "$out"
