//go:build arm64

package main

// builtFor names the CPU level this binary was compiled for: GOARM64's
// default, ARMv8.0-A (FP and ASIMD, no LSE atomics required).
const builtFor = "arm64 (ARMv8.0-A)"
