# Sourced by the build.sh scripts and setup.sh: one Go binary built the same way everywhere, with
# a line before and after it (a first build takes minutes), and none of Go's download lines.

# "9m30s": the time since $SECONDS was $1.
elapsed_since() {
  local seconds=$((SECONDS - $1))
  echo "$((seconds / 60))m$((seconds % 60))s"
}

# Builds a static, trimmed binary of the package, from the module of the working directory,
# into <output> (through <output>.partial, so an interrupted build leaves nothing to reuse).
build_go_binary() { # label output package ldflags
  local label=$1 output=$2 package=$3 ldflags=$4 begun=$SECONDS
  echo "build.sh: building $label (the first time only)" >&2
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$output.partial" "$package" 2>&1 | { grep -v '^go: downloading' || true; } >&2
  mv "$output.partial" "$output"
  echo "build.sh: built $label in $(elapsed_since "$begun")" >&2
}
