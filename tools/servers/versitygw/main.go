// Package versitygw only exists so `go mod tidy` keeps the pinned S3 server in go.mod; the
// binary is built by ../build.sh.
package versitygw
