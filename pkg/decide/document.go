package decide

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/pkg/author"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

// DocumentImage returns an Image shaped as the compiled document res would be once attached
// (PlanAttach), so that an author can try a spec on hosts without an image (`check --spec`): a
// document with platforms is an index with one manifest per platform key, each carrying that
// platform's spec, and the document's top-level spec, if any, on the index; a document without
// platforms is one manifest (no platform: any host's) carrying the top-level spec. Decisions on it
// are made exactly as on a real image (platform requirements, index spec with manifest spec, one
// score); the descriptors are synthetic (digests of their role and platform, named name@...). An
// invalid platform key is an error naming it.
func DocumentImage(name string, res *author.Result) (*Image, error) {
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
	var specs []*SubjectSpec
	if res.Default != nil {
		ss, err := found(root, res.Default)
		if err != nil {
			return nil, err
		}
		specs = append(specs, ss)
	} else {
		specs = append(specs, none(root))
	}
	for i, k := range keys {
		p, err := oci.ParsePlatform(k)
		if err != nil {
			return nil, fmt.Errorf("%s: platforms %q: %w", name, k, err)
		}
		m := desc(ocispec.MediaTypeImageManifest, "manifest "+k, &p)
		tree.Manifests = append(tree.Manifests, oci.IndexEntry{Descriptor: m, Indexes: []ocispec.Descriptor{root}, Position: i})
		index.Manifests = append(index.Manifests, m)
		ss, err := found(m, res.Platforms[k])
		if err != nil {
			return nil, err
		}
		specs = append(specs, ss)
	}
	return NewImage(name, tree, index, specs), nil
}
