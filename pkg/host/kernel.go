package host

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
)

// KernelVersionFeature is NFD's attribute feature set of the kernel release: elements full, major,
// minor, revision (NFD's kernel source), and release, which compatkit adds (KernelVersion).
const KernelVersionFeature = "kernel.version"

// ErrKernelRelease means a string is not a Linux kernel release: it does not start with a number.
var ErrKernelRelease = errors.New("not a kernel release")

// KernelVersion is a Linux kernel release (`uname -r`, /proc/sys/kernel/osrelease) split as NFD's
// kernel source splits it, plus the numeric release compatkit compares versions on.
type KernelVersion struct {
	// Full is the release as NFD's kernel.version.full element holds it: every character other
	// than A-Z a-z 0-9 - _ . replaced by "_", then "-", "_" and "." trimmed from both ends
	// ("6.12.95+deb13-amd64" becomes "6.12.95_deb13-amd64").
	Full string
	// Major, Minor and Revision are the first three numbers of the release, in decimal without
	// leading zeros; Minor and Revision are "" when the release has fewer numbers ("6.6" has no
	// revision; WSL1's "4.0-19041-Microsoft" neither), as NFD reports them.
	Major, Minor, Revision string
	// Release is "major.minor.revision" with absent numbers as 0 ("6.6" gives "6.6.0"): the
	// release up to its first character that is not a digit or a dot, at most three numbers. It
	// is what compatkit compares `type: version` expressions over kernel.version.full on.
	Release string
}

var (
	kernelFullForbidden = regexp.MustCompile(`[^-A-Za-z0-9_.]`)
	// nfdKernelVersion is NFD v0.19's source/kernel parseVersion pattern: NFD sets major, minor and
	// revision only for a full release it matches (minor and revision "" when absent).
	nfdKernelVersion = regexp.MustCompile(`^(?P<major>\d+)(\.(?P<minor>\d+))?(\.(?P<revision>\d+))?(-.*)?$`)
)

// kernelFull sanitises a release as NFD's kernel source does for kernel.version.full.
func kernelFull(release string) string {
	return strings.Trim(kernelFullForbidden.ReplaceAllString(strings.TrimSpace(release), "_"), "-_.")
}

// ParseKernelRelease splits a kernel release such as "6.12.95+deb13-amd64" (Debian 13),
// "5.15.90.1-microsoft-standard-WSL2" (WSL2, four numbers: 5, 15, 90), "4.0-19041-Microsoft"
// (WSL1: revision ""), "4.18.0-553.el8_10.x86_64" (RHEL), "6.8.0-45-generic" (Ubuntu) or "6.6".
// The numbers are read from the start of the release up to its first character that is not a
// digit or a dot, at most three of them; what follows (distribution suffixes, a fourth number)
// is ignored. The error wraps ErrKernelRelease when the release does not start with a number.
func ParseKernelRelease(release string) (KernelVersion, error) {
	full := kernelFull(release)
	kv := KernelVersion{Full: full}
	end := strings.IndexFunc(full, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end < 0 {
		end = len(full)
	}
	parts := strings.Split(full[:end], ".")
	var nums []string
	for _, p := range parts {
		if p == "" || len(nums) == 3 {
			break
		}
		n, err := strconv.ParseUint(p, 10, 31)
		if err != nil {
			return kv, fmt.Errorf("kernel release %q: %w: number %q is too large", release, ErrKernelRelease, p)
		}
		nums = append(nums, strconv.FormatUint(n, 10))
	}
	if len(nums) == 0 {
		return kv, fmt.Errorf("kernel release %q: %w: want it to start with a number, as `uname -r` prints (6.8.0-45-generic)", release, ErrKernelRelease)
	}
	rel := append(append([]string(nil), nums...), "0", "0")[:3]
	kv.Release = strings.Join(rel, ".")
	kv.Major = nums[0]
	if len(nums) > 1 {
		kv.Minor = nums[1]
	}
	if len(nums) > 2 {
		kv.Revision = nums[2]
	}
	return kv, nil
}

// Elements returns the kernel.version elements: full, major, minor, revision (as NFD names them;
// minor and revision may be "") and release.
func (kv KernelVersion) Elements() map[string]string {
	return map[string]string{"full": kv.Full, "major": kv.Major, "minor": kv.Minor, "revision": kv.Revision, "release": kv.Release}
}

// NormalizeKernelVersion completes f's kernel.version (NFD's kernel source, a saved profile) from
// its full element with ParseKernelRelease: it adds the release element, and sets major, minor
// and revision when NFD could not split the release (Debian's "6.12.95+deb13-amd64", WSL2's
// four-part "5.15.90.1-microsoft-standard-WSL2"). Elements NFD did set are kept as they are, and
// nothing changes when full is missing or is not a kernel release. The feature set is replaced
// by a new one, so maps shared with NFD's source are never modified.
func NormalizeKernelVersion(f *Features) {
	if f == nil {
		return
	}
	set, ok := f.Attributes[KernelVersionFeature]
	if !ok || set.Elements["full"] == "" {
		return
	}
	kv, err := ParseKernelRelease(set.Elements["full"])
	if err != nil {
		return
	}
	el := maps.Clone(set.Elements)
	el["release"] = kv.Release
	if _, nfdSplit := el["major"]; !nfdSplit {
		el["major"], el["minor"], el["revision"] = kv.Major, kv.Minor, kv.Revision
	}
	f.Attributes[KernelVersionFeature] = nfdv1alpha1.AttributeFeatureSet{Elements: el}
}

// KernelReleaseFromUname returns the kernel release in the output of `uname -r` (one word) or
// `uname -a` ("Linux HOST RELEASE #1 SMP ..."), or in a /proc/version line ("Linux version RELEASE
// (builder@host) ..."); "" when data is none of these.
func KernelReleaseFromUname(data string) string {
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			continue
		case len(f) >= 3 && f[0] == "Linux" && f[1] == "version":
			return f[2]
		case len(f) >= 3 && f[0] == "Linux":
			return f[2]
		case len(f) == 1 && f[0] != "Linux":
			if _, err := ParseKernelRelease(f[0]); err == nil {
				return f[0]
			}
		}
		return ""
	}
	return ""
}
