//go:build amd64.v2 && !amd64.v3

package main

// builtFor names the CPU level this binary was compiled for (GOAMD64=v2).
const builtFor = "x86-64-v2"
