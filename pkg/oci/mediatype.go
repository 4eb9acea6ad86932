package oci

import ocispec "github.com/opencontainers/image-spec/specs-go/v1"

// Docker's image media types (Docker Image Manifest V2, Schema 2), which registries serve beside
// OCI's and which compatkit accepts wherever an OCI manifest or index is accepted: as subjects of
// referrers, as entries of an index, and as what a reference resolves to.
const (
	// MediaTypeDockerManifest is a Docker schema-2 image manifest (the OCI image manifest's
	// predecessor, same shape).
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	// MediaTypeDockerManifestList is a Docker manifest list (the OCI image index's predecessor,
	// same shape).
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// IsIndex reports whether mediaType is an image index: OCI's
// (application/vnd.oci.image.index.v1+json, image-spec v1.1 image-index.md) or a Docker manifest
// list.
func IsIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == MediaTypeDockerManifestList
}

// IsManifest reports whether mediaType is an image manifest: OCI's
// (application/vnd.oci.image.manifest.v1+json, image-spec v1.1 manifest.md) or a Docker schema-2
// manifest.
func IsManifest(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageManifest || mediaType == MediaTypeDockerManifest
}
