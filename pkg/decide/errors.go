package decide

import "errors"

// Sentinel errors of this package, checked with errors.Is.
var (
	// ErrNoHostPlatform means the image is an index and the host's platform is unknown: give it
	// (a --platform flag, the compatkit.platform attribute in a feature file, the
	// kubernetes.io/arch label on a Node).
	ErrNoHostPlatform = errors.New("the host's platform is unknown")
	// ErrRequireTrustedWithoutPolicy means Options.RequireTrusted was set for an Image opened
	// without a trust policy.
	ErrRequireTrustedWithoutPolicy = errors.New("RequireTrusted needs a trust policy (a signing.Verifier)")
	// ErrAmbiguousPlatform means a platform names several entries of an index (Image.Named).
	ErrAmbiguousPlatform = errors.New("ambiguous platform")
)
