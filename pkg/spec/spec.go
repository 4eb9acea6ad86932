// Package spec defines the image-compatibility artifact that compatkit reads and writes: Go types
// that serialise byte-compatibly with Node Feature Discovery's image-compatibility v1alpha1 Spec
// (sigs.k8s.io/node-feature-discovery/api/image-compatibility/v1alpha1), its media types, and a
// strict parser with size and count limits.
//
// A Spec is a list of compatibility sets. Each set is an alternative: it matches a host when all of
// its rules match. An image is compatible with a host when at least one set matches; its score is the
// highest weight (0-100) among the matching sets. Rules use NFD's GroupRule shape
// (matchFeatures, matchAny, matchExpressions, matchName) and NFD's operators.
package spec

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types and annotations of the artifact, as NFD v0.18 defines them.
const (
	// ArtifactType is the artifactType of a compatibility referrer manifest (OCI image-spec v1.1).
	ArtifactType = "application/vnd.nfd.image-compatibility.v1alpha1"
	// MediaTypeSpec is the media type of layers[0] of a compatibility referrer: the Spec as YAML.
	MediaTypeSpec = "application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml"
	// MediaTypeProvenance is compatkit's own layer (ignored by NFD): where the spec came from, as
	// JSON in the shape of Provenance.
	MediaTypeProvenance = "application/vnd.compatkit.provenance.v1+json"
	// Version is the only spec version this package reads and writes.
	Version = "v1alpha1"
	// AnnotationCreated is the manifest annotation (RFC 3339) by which the newest spec of a subject
	// is chosen.
	AnnotationCreated = ocispec.AnnotationCreated
)

// Limits that Parse enforces, so that a hostile or broken artifact cannot exhaust memory or time.
const (
	// MaxSpecBytes is the largest spec document accepted, in bytes.
	MaxSpecBytes = 1 << 20
	// MaxCompatibilities is the largest number of compatibility sets in one spec.
	MaxCompatibilities = 256
	// MaxRules is the largest number of rules in one compatibility set.
	MaxRules = 256
	// MaxTerms is the largest number of feature matcher terms in one rule (matchFeatures plus every
	// matchAny element).
	MaxTerms = 1024
	// MaxValues is the largest number of values in one match expression.
	MaxValues = 4096
	// MaxRegexps is the largest number of regexps (InRegexp values, matchName's) in one spec.
	MaxRegexps = 256
	// MaxRegexpBytes is the largest total size of a spec's regexps, in bytes: compiling them is
	// the costliest part of reading a spec.
	MaxRegexpBytes = 16 << 10
	// MaxRegexpLen is the longest single regexp, in bytes.
	MaxRegexpLen = 1024
	// MaxDepth is how deeply a spec document may nest (YAML or JSON levels).
	MaxDepth = 64
)

// Spec is the image-compatibility specification, NFD v1alpha1.
type Spec struct {
	// Version of the spec; always "v1alpha1".
	Version string `json:"version"`
	// Compatibilities is the list of compatibility sets; each one is an alternative.
	Compatibilities []Compatibility `json:"compatibilities"`
}

// Compatibility is one compatibility set: a host satisfies it when every rule matches.
type Compatibility struct {
	// Rules that must all match.
	Rules []Rule `json:"rules"`
	// Weight is the priority of the set, 0-100; higher is better.
	Weight int `json:"weight,omitempty"`
	// Tag groups or distinguishes sets (NFD's `--tags` filter).
	Tag string `json:"tag,omitempty"`
	// Description is free text for people.
	Description string `json:"description,omitempty"`
}

// Rule is NFD's GroupRule (api/nfd/v1alpha1): matchFeatures terms that must all match, and
// matchAny elements of which at least one must match.
type Rule struct {
	// Name of the rule, shown in reports.
	Name string `json:"name"`
	// Vars are set under the rule.matched feature when the rule matches (NFD back-references).
	Vars map[string]string `json:"vars,omitempty"`
	// VarsTemplate is NFD's template for dynamic vars.
	VarsTemplate string `json:"varsTemplate,omitempty"`
	// MatchFeatures terms must all match.
	MatchFeatures []FeatureMatcherTerm `json:"matchFeatures,omitempty"`
	// MatchAny elements: at least one must match.
	MatchAny []MatchAnyElem `json:"matchAny,omitempty"`
}

// MatchAnyElem is one alternative of a rule's matchAny.
type MatchAnyElem struct {
	// MatchFeatures terms must all match for this alternative to match.
	MatchFeatures []FeatureMatcherTerm `json:"matchFeatures"`
}

// FeatureMatcherTerm matches one feature set (for example cpu.cpuid) of the host.
type FeatureMatcherTerm struct {
	// Feature is the feature set name, <domain>.<feature> (cpu.cpuid, kernel.version, ...).
	Feature string `json:"feature"`
	// MatchExpressions maps element names (a cpuid flag, a kernel module) to the expression their
	// value must satisfy.
	MatchExpressions map[string]*MatchExpression `json:"matchExpressions,omitempty"`
	// MatchName is matched against the names of the feature set's elements.
	MatchName *MatchExpression `json:"matchName,omitempty"`
}

// MatchExpression is an NFD match expression: an operator, its values and an optional value type.
type MatchExpression struct {
	// Op is one of the Op constants.
	Op Op `json:"op"`
	// Value holds the operands; how many depends on Op (see Op.Arity).
	Value []string `json:"value,omitempty"`
	// Type is "version" to compare values as semantic versions (Gt, Ge, Lt, Le, GtLt, GeLe only).
	Type string `json:"type,omitempty"`
}

// Provenance is the content of compatkit's own layer: what NFD has no field for.
type Provenance struct {
	// Tool is the name and version of the tool that attached the spec ("compat-attach/v0.1.0").
	Tool string `json:"tool,omitempty"`
	// Source names the files the spec was compiled from, with their sha256 digests.
	Source []SourceFile `json:"source,omitempty"`
	// Base records the base image whose spec this one inherits, when it does.
	Base *BaseProvenance `json:"base,omitempty"`
}

// BaseProvenance records an inherited base image spec: where it came from and what the derived
// spec did with it.
type BaseProvenance struct {
	// Ref is the base image reference as given or found in the image's
	// org.opencontainers.image.base.name/.digest annotations.
	Ref string `json:"ref"`
	// Digest is the digest of the base manifest (or index) whose spec was inherited.
	Digest string `json:"digest"`
	// Referrer is the digest of the base spec's referrer manifest.
	Referrer string `json:"referrer"`
	// Verified is true when the base spec's signature verified under the given trust policy.
	Verified bool `json:"verified"`
	// Inherited names the base rules added to the derived spec.
	Inherited []string `json:"inherited,omitempty"`
	// Relaxed lists what the derived spec explicitly no longer requires (its relax entries).
	Relaxed []string `json:"relaxed,omitempty"`
}

// SourceFile names one input file of a compiled spec.
type SourceFile struct {
	// Path as given on the command line.
	Path string `json:"path"`
	// Digest of the file content ("sha256:<hex>").
	Digest string `json:"digest"`
}
