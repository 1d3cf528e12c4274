// Package queueproxy only exists so `go mod tidy` keeps Knative's queue-proxy command in
// go.mod; the binary is built by build.sh.
package queueproxy
