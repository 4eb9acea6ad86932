package decide

import (
	"context"
	"fmt"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
	"github.com/compatkit/compatkit/pkg/spec"
)

// Image is an image read for decisions: the reference resolved to its manifest or index tree,
// and the specs of its subjects as they are read (each at most once). Open it once and decide for
// as many hosts as needed; it is safe for concurrent use.
type Image struct {
	// Name is the repository ("registry/repository") or the OCI layout path.
	Name string
	// Tree is the reference resolved down to its manifests (oci.Tree).
	Tree *oci.Tree

	reader *Reader
	index  *ocispec.Index // the root index, for its annotations; nil for a single manifest

	mu    sync.Mutex
	progs map[*spec.Spec]progOrErr
}

type progOrErr struct {
	p   *match.Program
	err error
}

// Open resolves the reference t was opened with (one request on a registry) and reads the index
// tree below it (one request per index; oci.Tree). Specs are read later, only those a decision
// needs. v is the trust policy (nil: none); it decides which spec of a subject counts (Reader).
func Open(ctx context.Context, t *oci.Target, v *signing.Verifier) (*Image, error) {
	root, err := t.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	tr, err := t.Tree(ctx, root)
	if err != nil {
		return nil, err
	}
	img := &Image{Name: t.Name(), Tree: tr, reader: NewReader(t, v), progs: map[*spec.Spec]progOrErr{}}
	if tr.IsIndex() {
		if img.index, err = t.FetchIndex(ctx, root); err != nil { // cached by Tree
			return nil, err
		}
	}
	return img, nil
}

// Reader returns the Reader of the image's specs.
func (img *Image) Reader() *Reader { return img.reader }

// Ref prints REPO@DIGEST for a descriptor of the image.
func (img *Image) Ref(d ocispec.Descriptor) string { return img.Name + "@" + d.Digest.String() }

// Platforms lists the platforms of the index's image manifests (attestations left out), in index
// order, as "os/arch[/variant]"; nil for a single manifest.
func (img *Image) Platforms() []string {
	var out []string
	for _, e := range img.Tree.Manifests {
		if !e.Attestation() {
			out = append(out, oci.FormatPlatform(e.Descriptor.Platform))
		}
	}
	return out
}

// program compiles s once per Image.
func (img *Image) program(s *spec.Spec) (*match.Program, error) {
	img.mu.Lock()
	defer img.mu.Unlock()
	if pe, ok := img.progs[s]; ok {
		return pe.p, pe.err
	}
	p, err := match.Compile(s)
	img.progs[s] = progOrErr{p, err}
	return p, err
}

// specsOf reads the specs of subjects, from the index's annotations when opts allow it and every
// subject is annotated (compat-attach annotate; never under a trust policy), else from the
// referrers. notes receives annotation mismatches (AnnotationsVerify).
func (img *Image) specsOf(ctx context.Context, subjects []ocispec.Descriptor, opts *Options, notes *[]string) []*SubjectSpec {
	if img.index != nil && len(img.Tree.Indexes) == 1 && img.reader.verifier == nil && opts.Annotations != AnnotationsIgnore {
		byDigest := map[string]map[string]string{img.Tree.Root.Digest.String(): img.index.Annotations}
		for _, m := range img.index.Manifests {
			byDigest[m.Digest.String()] = m.Annotations
		}
		fromAnn := make([]*SubjectSpec, len(subjects))
		all := true
		for i, s := range subjects {
			ann, ok := byDigest[s.Digest.String()]
			if !ok {
				all = false
				break
			}
			if fromAnn[i], ok = annotated(ann, s, img.Ref(s)); !ok {
				all = false
				break
			}
		}
		if all && opts.Annotations == AnnotationsUse {
			return fromAnn
		}
		if all {
			read := img.reader.Specs(ctx, subjects)
			for i := range read {
				if m := annotationMismatch(img.Ref(subjects[i]), fromAnn[i], read[i]); m != "" {
					*notes = append(*notes, m)
				}
			}
			return read
		}
	}
	return img.reader.Specs(ctx, subjects)
}

// annotationMismatch says how an index annotation disagrees with the referrers ("" when it agrees).
func annotationMismatch(what string, ann, read *SubjectSpec) string {
	switch {
	case read.State == SpecUnreadable:
		return ""
	case ann.State == SpecUnreadable:
		return fmt.Sprintf("%s: the index annotation cannot be read (%v); using the referrers", what, ann.Err)
	case ann.Referrer.Digest != read.Referrer.Digest:
		return fmt.Sprintf("%s: the index annotation names referrer %s, the referrers say %s; using the referrers", what, orNone(ann.Referrer), orNone(read.Referrer))
	case !sameSpec(ann.Spec, read.Spec):
		return fmt.Sprintf("%s: the index annotation's spec differs from referrer %s; using the referrers", what, orNone(read.Referrer))
	}
	return ""
}

func orNone(d ocispec.Descriptor) string {
	if d.Digest == "" {
		return "none"
	}
	return d.Digest.String()
}

func sameSpec(a, b *spec.Spec) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	ya, err1 := a.MarshalYAML()
	yb, err2 := b.MarshalYAML()
	return err1 == nil && err2 == nil && string(ya) == string(yb)
}
