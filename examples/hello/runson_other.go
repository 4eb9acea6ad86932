//go:build !amd64 && !arm64

package main

import "runtime"

// runsOn reports the architecture; levels are only told apart on amd64 and
// arm64.
func runsOn() string { return runtime.GOARCH }
