package decide

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/pkg/author"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

// DocumentImage returns an Image shaped as the compiled document res would be once attached to an
// image (PlanAttach), so that an author can try a spec on hosts without an image (`check --spec`):
//   - a document without platforms is one manifest (no platform: any host's) with its top-level
//     spec;
//   - a document with platforms is an index with one manifest per platform key, each with that
//     platform's spec; its top-level spec, if any, is what PlanAttach gives every other entry of an
//     image (not an addition to the platforms' specs), so it is modelled as an entry of its own for
//     each of hosts' platforms that can run none of the keys' (an image also built for them).
//
// Decisions on it are made exactly as on a real image (platform requirements, one score); the
// descriptors are synthetic (digests of their role and platform, named name@...). An invalid
// platform key is an error naming it.
func DocumentImage(name string, res *author.Result, hosts ...ocispec.Platform) (*Image, error) {
	if res == nil || (res.Default == nil && len(res.Platforms) == 0) {
		return nil, fmt.Errorf("%s: the document has no spec", name)
	}
	desc := func(mediaType, what string, p *ocispec.Platform) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromString("compat-attach check --spec: " + what), Size: 2, Platform: p}
	}
	found := func(subject ocispec.Descriptor, s *spec.Spec) (*SubjectSpec, error) {
		b, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		ref := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: spec.ArtifactType, Digest: digest.FromBytes(b), Size: int64(len(b))}
		return &SubjectSpec{Subject: subject, State: SpecFound, Spec: s, Referrer: ref}, nil
	}
	none := func(subject ocispec.Descriptor) *SubjectSpec {
		return &SubjectSpec{Subject: subject, State: SpecNone}
	}
	if len(res.Platforms) == 0 {
		root := desc(ocispec.MediaTypeImageManifest, "manifest", nil)
		ss, err := found(root, res.Default)
		if err != nil {
			return nil, err
		}
		return NewImage(name, &oci.Tree{Root: root}, nil, []*SubjectSpec{ss}), nil
	}
	keys := make([]string, 0, len(res.Platforms))
	for k := range res.Platforms {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	root := desc(ocispec.MediaTypeImageIndex, "index", nil)
	tree := &oci.Tree{Root: root, Indexes: []ocispec.Descriptor{root}}
	index := &ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	index.SchemaVersion = 2
	specs := []*SubjectSpec{none(root)}
	entry := func(key string, p ocispec.Platform, s *spec.Spec) error {
		m := desc(ocispec.MediaTypeImageManifest, "manifest "+key, &p)
		tree.Manifests = append(tree.Manifests, oci.IndexEntry{Descriptor: m, Indexes: []ocispec.Descriptor{root}, Position: len(tree.Manifests)})
		index.Manifests = append(index.Manifests, m)
		ss, err := found(m, s)
		if err != nil {
			return err
		}
		specs = append(specs, ss)
		return nil
	}
	var named []ocispec.Platform
	for _, k := range keys {
		p, err := oci.ParsePlatform(k)
		if err != nil {
			return nil, fmt.Errorf("%s: platforms %q: %w", name, k, err)
		}
		named = append(named, p)
		if err := entry(k, p, res.Platforms[k]); err != nil {
			return nil, err
		}
	}
	if res.Default != nil {
		for _, h := range hosts {
			// A host that runs one of the document's platforms is decided on them, as on an image
			// built for them; one that runs none gets an entry of its own with the top-level spec.
			runs := platforms.Only(h)
			if slices.ContainsFunc(named, runs.Match) {
				continue
			}
			if h.Architecture == "arm64" && h.Variant == "" {
				h.Variant = "v8" // as arm64 images list themselves
			}
			named = append(named, h)
			if err := entry(platforms.Format(h), h, res.Default); err != nil {
				return nil, err
			}
		}
	}
	return NewImage(name, tree, index, specs), nil
}
