package main

import "golang.org/x/sys/cpu"

// runsOn reports what the running arm64 CPU offers beyond ARMv8.0-A's FP
// and ASIMD: LSE atomics (ARMv8.1-A) and SVE, as the kernel reports them.
func runsOn() string {
	a := cpu.ARM64
	s := "arm64"
	if a.HasFP && a.HasASIMD {
		s += " with FP and ASIMD"
	}
	if a.HasATOMICS {
		s += ", LSE atomics (ARMv8.1-A or later)"
	}
	if a.HasSVE {
		s += ", SVE"
	}
	return s
}
