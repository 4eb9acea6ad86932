package main

// cpuid flags as NFD reports them, per x86-64 level (psABI), for feature files in tests: a host
// is described by its whole flag set, since its x86-64 level, and so the index entries it may get,
// comes from them.
const (
	cpuidV1 = `"CMOV": {}, "CMPXCHG8": {}, "FXSR": {}, "MMX": {}, "SSE": {}, "SSE2": {}, "SYSCALL": {}, "X87": {}`
	cpuidV2 = cpuidV1 + `, "CX16": {}, "LAHF": {}, "POPCNT": {}, "SSE3": {}, "SSE4": {}, "SSE42": {}, "SSSE3": {}`
	cpuidV3 = cpuidV2 + `, "AVX": {}, "AVX2": {}, "BMI1": {}, "BMI2": {}, "F16C": {}, "FMA3": {}, "LZCNT": {}, "MOVBE": {}, "OSXSAVE": {}`
)
