// Package etcd only exists so `go mod tidy` keeps the pinned etcd server in go.mod; the
// binary is built by ../build.sh.
package etcd
