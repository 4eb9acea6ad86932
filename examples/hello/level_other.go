//go:build !amd64 && !arm64

package main

import "runtime"

// builtFor names the architecture this binary was compiled for; the example
// only distinguishes levels on amd64 and arm64.
const builtFor = runtime.GOARCH
