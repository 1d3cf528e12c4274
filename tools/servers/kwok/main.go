// Package kwok only exists so `go mod tidy` keeps the pinned kwok server in go.mod; the
// binary is built by ../build.sh.
package kwok
