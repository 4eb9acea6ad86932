package main

import "golang.org/x/sys/cpu"

// runsOn reports the highest x86-64 microarchitecture level the running CPU
// offers. It checks the features golang.org/x/sys/cpu exposes; that package
// does not report LAHF, LZCNT, MOVBE or F16C, so the v2 and v3 answers assume
// those are present, which holds on every real CPU that has the others.
func runsOn() string {
	x := cpu.X86
	v2 := x.HasCX16 && x.HasPOPCNT && x.HasSSE3 && x.HasSSSE3 && x.HasSSE41 && x.HasSSE42
	v3 := v2 && x.HasAVX && x.HasAVX2 && x.HasBMI1 && x.HasBMI2 && x.HasFMA && x.HasOSXSAVE
	v4 := v3 && x.HasAVX512F && x.HasAVX512BW && x.HasAVX512CD && x.HasAVX512DQ && x.HasAVX512VL
	switch {
	case v4:
		return "x86-64-v4"
	case v3:
		return "x86-64-v3"
	case v2:
		return "x86-64-v2"
	default:
		return "x86-64-v1"
	}
}
