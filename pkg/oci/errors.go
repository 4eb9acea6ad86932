package oci

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"

	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Sentinel errors returned (wrapped, with the reference and what to do next) by this package.
// Check them with errors.Is.
var (
	// ErrNotFound means the registry or layout has no manifest, tag or repository for the
	// reference (distribution-spec v1.1 "Pulling manifests": 404 MANIFEST_UNKNOWN / NAME_UNKNOWN).
	ErrNotFound = errors.New("not found")
	// ErrNotIndex means a descriptor that was expected to be an image index
	// (application/vnd.oci.image.index.v1+json, image-spec v1.1 image-index.md) is something else.
	ErrNotIndex = errors.New("not an image index")
	// ErrNoPlatform means no manifest of an image index matches the requested platform
	// (image-spec v1.1 image-index.md, "platform").
	ErrNoPlatform = errors.New("no manifest for platform")
	// ErrNoSpec means a subject has no compatibility referrer (distribution-spec v1.1 "Listing
	// Referrers" returned none of artifactType spec.ArtifactType).
	ErrNoSpec = errors.New("no compatibility spec")
	// ErrInvalidArtifact means a referrer does not have the shape of a compatibility artifact:
	// wrong manifest media type, artifactType, subject or layers[0] media type (image-spec v1.1
	// manifest.md, "Guidelines for Artifact Usage").
	ErrInvalidArtifact = errors.New("invalid compatibility artifact")
	// ErrTooLarge means a descriptor announces more bytes than this package accepts; it is checked
	// on the descriptor's size (image-spec v1.1 descriptor.md, "size") before anything is downloaded.
	ErrTooLarge = errors.New("too large")
	// ErrWrongSubject means a referrer listed for one subject names another one (or none) as its
	// subject (image-spec v1.1 manifest.md "subject").
	ErrWrongSubject = errors.New("referrer of another subject")
	// ErrInvalidReference means a reference does not parse (distribution-spec v1.1 "Pulling
	// manifests" grammar for <name> and <reference>, or an OCI layout "path[:tag|@digest]").
	ErrInvalidReference = errors.New("invalid reference")
)

// IsReadFailure reports whether err says that the registry or layout could not be read, rather
// than what it holds: a network error or timeout, a 5xx or 429 answer, the byte budget spent, a
// cancelled read. Content a pusher controls (a referrer that is missing, malformed, too large or
// of another subject) is not a read failure. A reader must not take a read failure as "nothing
// there": under a trust policy, a signature that could not be read is not an unsigned spec.
func IsReadFailure(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrByteBudget) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var er *errcode.ErrorResponse
	if errors.As(err, &er) {
		return er.StatusCode >= 500 || er.StatusCode == http.StatusTooManyRequests || er.StatusCode == http.StatusUnauthorized || er.StatusCode == http.StatusForbidden
	}
	return strings.Contains(err.Error(), "did not answer in time") || strings.Contains(err.Error(), "cannot reach registry")
}
