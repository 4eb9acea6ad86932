package spec

import (
	"errors"
	"fmt"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrTooLarge means the document exceeds MaxSpecBytes or a count limit.
	ErrTooLarge = errors.New("spec too large")
	// ErrInvalid means the document does not follow the v1alpha1 schema.
	ErrInvalid = errors.New("invalid compatibility spec")
	// ErrUnsupportedFormat means the document is an image-compatibility format other than
	// v1alpha1, such as the pre-v1alpha1 drafts that listed node labels (a labels map and no
	// version). It wraps ErrInvalid.
	ErrUnsupportedFormat = fmt.Errorf("%w: unsupported format", ErrInvalid)
)

// FieldError is a problem at one place of a spec, named by a JSON path such as
// compatibilities[0].rules[1].matchFeatures[0].matchExpressions.AVX2.op.
type FieldError struct {
	// Source names the document (a file, a registry reference); may be empty.
	Source string
	// Path is the JSON path of the offending field.
	Path string
	// Msg says what is wrong and what is allowed.
	Msg string
}

// Error prints "source: path: message".
func (e *FieldError) Error() string {
	p := e.Path
	if e.Source != "" {
		p = e.Source + ": " + p
	}
	return p + ": " + e.Msg
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }
