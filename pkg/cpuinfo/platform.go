package cpuinfo

import "strings"

// Platform returns the OCI platform of the dump's machine as containerd gives it on that machine
// (github.com/containerd/platforms DefaultSpec): os "linux", arch the GOARCH, and on arm64 the
// variant from the first "CPU architecture" line ("8" or "AArch64" -> "v8"; any other value ->
// "unknown"; no such line -> "v8", containerd's uname "aarch64" fallback). Other architectures
// have no variant (""). A nil Info gives "linux", "", "".
func Platform(i *Info) (os, arch, variant string) {
	if i == nil {
		return "linux", "", ""
	}
	if i.Arch != "arm64" {
		return "linux", i.Arch, ""
	}
	v := "8"
	for _, f := range i.all {
		if strings.EqualFold(f.key, "Cpu architecture") {
			v = f.value
			break
		}
	}
	switch strings.ToLower(v) {
	case "8", "aarch64":
		return "linux", "arm64", "v8"
	}
	return "linux", "arm64", "unknown"
}
