//go:build amd64 || (linux && cgo && (arm || arm64 || ppc64le || s390x))

package host

// NFD's cpu source asks the CPU (CPUID on amd64) or the kernel's AT_HWCAP through cgo (arm, arm64,
// ppc64le, s390x); it does not build elsewhere (riscv64, or those without cgo).
import _ "sigs.k8s.io/node-feature-discovery/source/cpu"

// NFDCPUSource is true when NFD's own cpu source is built in; when false, the cpu.* features come
// from /proc/cpuinfo (CPUInfoSource).
const NFDCPUSource = true
