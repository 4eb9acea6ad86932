//go:build amd64 && !amd64.v2

package main

// builtFor names the CPU level this binary was compiled for (GOAMD64=v1).
const builtFor = "x86-64-v1"
