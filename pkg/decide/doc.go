// Package decide makes the decision compatkit exists for: can this host run this image, and which
// manifest of an index should it get. It is the one place where reading specs (pkg/oci), trusting
// them (pkg/signing) and evaluating them (pkg/match) meet; `compat-attach check`, `select`,
// `report` and `affinity`, the BuildKit frontend and a tool writer's scheduler or admission
// webhook all call it, so they all give the same verdict and score.
//
// # Candidates: the platform is a requirement
//
// For an image index (OCI, or a Docker manifest list, nested indexes descended), the candidates
// are the manifests that a host of the asked platform (Options.Platform, else the host's own) can
// run, as containerd's platforms.Only matches them: amd64 v3 runs v3, v2 and v1 images; arm64
// v8.2 runs v8.2 down to v8; arm v7 runs v7, v6, v5. The host's platform comes from its features
// (host.Platform): on amd64 its variant is the x86-64 level its cpuid flags reach, so an entry
// linux/amd64/v3 is never given to a host without AVX2, with or without a spec. Every candidate
// must run on the actual host as well: asking for linux/amd64/v3 on a v2 host finds the v3 entry
// Incompatible. BuildKit's attestation entries (unknown/unknown) are never candidates. A single
// manifest's platform is in its config, which is never fetched: it is not checked.
//
// # What applies to a candidate
//
// The manifest's own spec and the spec of every index above it. For each subject the newest spec
// counts (by org.opencontainers.image.created), or under a trust policy the newest spec a trusted
// signature covers (Reader). An error while reading makes the candidate Unreadable, never "no
// spec".
//
// # Verdict and score: the one rule
//
// A candidate is Incompatible when the host cannot run its platform, when one spec that applies
// has no matching compatibility set, or, with Options.RequireTrusted, when no trusted spec covers
// it. Otherwise it is Unreadable when one spec that applies cannot be read or evaluated, Compatible
// when at least one spec applies (and all match), and NoSpec (it runs, as on runtimes without
// compatkit) when none applies.
//
// The score of a Compatible candidate is the score of its own spec (the highest weight among its
// matching compatibility sets, 0-100); when it has no spec of its own, the score of the nearest
// index's spec. Index specs must match too, but do not change the score of a manifest that has its
// own: they are shared by every manifest of the index, so they do not tell the manifests apart.
//
// # Ranking
//
// Compatible candidates first, highest score first; then NoSpec candidates; then Incompatible,
// then Unreadable ones. Within a class (and between equal scores), the platform closest to the
// asked one first (containerd's order: v3 before v2 before v1 on a v3 host), then index order.
// The first candidate is Selected when it runs. Nothing selected with an Unreadable candidate
// means "unknown" (an error), not "not compatible".
package decide
