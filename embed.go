// Package compatkit is the root of the compatkit module. It holds the CUE module that compatkit
// embeds in its binaries; the Go SDK lives in the pkg/ packages.
package compatkit

import "embed"

// CUEModule is compatkit's CUE module ("compatkit.dev@v0"): cue.mod/module.cue, the core schema
// (cue/, package compat), the group templates (templates/) and the domain modules (domains/).
// pkg/author loads user files against it, so they can import "compatkit.dev/cue:compat" and
// "compatkit.dev/templates/..." wherever they live. Paths inside the FS are relative to the
// module root (cue.mod/module.cue, cue/compat.cue, ...).
//
//go:embed cue.mod/module.cue cue/*.cue templates domains
var CUEModule embed.FS
