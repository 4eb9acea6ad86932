//go:build amd64.v4

package main

// builtFor names the CPU level this binary was compiled for (GOAMD64=v4).
const builtFor = "x86-64-v4"
