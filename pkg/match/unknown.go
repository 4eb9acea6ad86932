package match

import "github.com/compatkit/compatkit/pkg/host"

// unknownReason returns the reason a failing expression over feature set name (or one element of
// it, name "<set>.<element>", e.g. cpu.cpuid.VMX) gets on a profile that marks it unknown
// (host.UnknownFeature, set by features of a dump): "unknown on this host (WHY)"; ok is false on
// other profiles, live ones included.
func unknownReason(features *Features, name string) (reason string, ok bool) {
	why, ok := features.Attributes[host.UnknownFeature].Elements[name]
	if !ok {
		return "", false
	}
	return "unknown on this host (" + why + ")", true
}
