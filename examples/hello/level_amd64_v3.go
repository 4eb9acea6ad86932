//go:build amd64.v3 && !amd64.v4

package main

// builtFor names the CPU level this binary was compiled for (GOAMD64=v3).
// The Go runtime of such a binary checks at start-up that the CPU has every
// x86-64-v3 feature and exits with "This program can only be run on AMD64
// processors with v3 microarchitecture support." if it does not.
const builtFor = "x86-64-v3"
