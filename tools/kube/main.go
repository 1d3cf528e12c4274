// Package kube only exists so `go mod tidy` keeps the pinned Kubernetes commands in go.mod;
// the binaries are built by build.sh.
package kube
