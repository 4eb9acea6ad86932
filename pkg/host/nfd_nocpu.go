//go:build !(amd64 || (linux && cgo && (arm || arm64 || ppc64le || s390x)))

package host

// NFDCPUSource is true when NFD's own cpu source is built in; when false (this build: riscv64, or
// arm, arm64, ppc64le and s390x without cgo), the cpu.* features come from /proc/cpuinfo
// (CPUInfoSource).
const NFDCPUSource = false
