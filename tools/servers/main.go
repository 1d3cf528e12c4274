// Package servers only exists so `go mod tidy` keeps the pinned test servers in go.mod;
// the binaries are built by build.sh.
package servers
