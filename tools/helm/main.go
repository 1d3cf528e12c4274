// Package helm only exists so `go mod tidy` keeps the pinned Helm command in go.mod; the binary
// is built by build.sh.
package helm
