package host

// expectedSets lists feature sets NFD's sources report on a Linux host and the files they come
// from: NFD logs (klog) a file it cannot read instead of failing the source, so their absence is
// only visible in the result.
var expectedSets = []struct{ source, set, from string }{
	{"kernel", "kernel.version", "/proc/sys/kernel/osrelease"},
	{"kernel", "kernel.loadedmodule", "/proc/modules"},
	{"kernel", "kernel.enabledmodule", "/lib/modules/RELEASE/modules.builtin"},
	{"kernel", "kernel.config", "/proc/config.gz, /boot/config-RELEASE or /usr/lib/modules/RELEASE/config"},
	{"kernel", "kernel.selinux", "/sys/fs"},
	{"system", "system.osrelease", "/etc/os-release"},
	{"system", "system.dmiid", "/sys/devices/virtual/dmi/id (DMI)"},
}

// MissingFeatureWarnings returns a Warning for each feature set NFD's kernel and system sources
// report on a Linux host that f lacks (kernel.version, kernel.loadedmodule, kernel.enabledmodule,
// kernel.config, kernel.selinux, system.osrelease, system.dmiid), naming the file it comes from:
// NFD's sources log such failures instead of returning them. Sets f's UnknownFeature lists
// already (HostRoot's own warnings) and sources whose every set is missing (not run) are skipped.
func MissingFeatureWarnings(f *Features) []Warning {
	if f == nil {
		return nil
	}
	has := func(set string) bool {
		_, a := f.Attributes[set]
		_, b := f.Flags[set]
		_, c := f.Instances[set]
		return a || b || c
	}
	ran := map[string]bool{}
	for _, e := range expectedSets {
		ran[e.source] = ran[e.source] || has(e.set)
	}
	unknown := f.Attributes[UnknownFeature].Elements
	var out []Warning
	for _, e := range expectedSets {
		if _, listed := unknown[e.set]; listed || !ran[e.source] || has(e.set) {
			continue
		}
		out = append(out, Warning{Source: e.source, Err: e.set + " not discovered: cannot read " + e.from})
	}
	return out
}
