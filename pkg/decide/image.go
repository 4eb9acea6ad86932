package decide

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/oci"
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
	ann   map[string]*SubjectSpec // specs read from the index's annotations, by subject digest

	planNotes []string // what PlanAttach passed over
}

type progOrErr struct {
	p   *match.Program
	err error
}

// Open resolves the reference t was opened with (one request on a registry) and reads the index
// tree below it (one request per index; oci.Tree). Specs are read later, only those a decision
// needs. trust is the trust policy (nil: none); it decides which spec of a subject counts (Reader).
func Open(ctx context.Context, t *oci.Target, trust *Trust) (*Image, error) {
	root, err := t.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	return openAt(ctx, t, root, NewReader(t, trust))
}

// openAt reads the tree below root into an Image whose specs r reads.
func openAt(ctx context.Context, t *oci.Target, root ocispec.Descriptor, r *Reader) (*Image, error) {
	tr, err := t.Tree(ctx, root)
	if err != nil {
		return nil, err
	}
	r.addAttestations(tr)
	img := &Image{Name: t.Name(), Tree: tr, reader: r, progs: map[*spec.Spec]progOrErr{}}
	if tr.IsIndex() {
		if img.index, err = t.FetchIndex(ctx, root); err != nil { // cached by Tree
			return nil, err
		}
	}
	return img, nil
}

// OpenFor is Open followed by Prefetch(ctx, opts, hosts...): it returns the image with the specs
// that decisions for hosts of those platforms need already read. When this machine resolved the
// reference before (oci.Target.Predict: the Session's Cache keeps what a tag named and the
// immutable content below it), those reads start at once, alongside the resolution, so that
// checking an unchanged image costs one round trip to the registry (the resolution and the
// referrers listings, together) instead of two or three.
//
// The prediction only schedules reads early. The decision uses the tree the reference resolves to
// now and the specs of its subjects as listed now: a read started for a subject that the new
// tree no longer has is wasted, never used (each subject's specs are keyed by its digest).
func OpenFor(ctx context.Context, t *oci.Target, trust *Trust, opts Options, hosts ...ocispec.Platform) (*Image, error) {
	r := NewReader(t, trust)
	var early sync.WaitGroup
	if predicted, ok := t.Predict(); ok {
		early.Go(func() {
			if img, err := openAt(ctx, t, predicted, r); err == nil {
				img.Prefetch(ctx, opts, hosts...)
			}
		})
	}
	defer early.Wait() // never leave reads running after returning
	root, err := t.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	img, err := openAt(ctx, t, root, r)
	if err != nil {
		return nil, err
	}
	img.Prefetch(ctx, opts, hosts...)
	return img, nil
}

// NewImage returns an Image over what was read before (a cache of trees and specs, a test): tree
// and, for each subject, its SubjectSpec. Decisions read nothing; a subject missing from specs is
// SpecUnreadable ("not among the specs read beforehand"), never "no spec".
func NewImage(name string, tree *oci.Tree, index *ocispec.Index, specs []*SubjectSpec) *Image {
	r := &Reader{cache: map[digest.Digest]*readOnce{}}
	for _, s := range specs {
		o := &readOnce{s: s}
		o.once.Do(func() {})
		o.done.Store(true)
		r.cache[s.Subject.Digest] = o
	}
	return &Image{Name: name, Tree: tree, reader: r, index: index, progs: map[*spec.Spec]progOrErr{}}
}

// Prefetch reads, concurrently, the specs every decision for hosts of the given platforms will
// need (Decide reads them otherwise, one decision at a time): of each manifest such a host runs,
// and of the indexes above them. opts is what those decisions will use (its Platform, when set,
// replaces the hosts'). It returns what it read, in tree order: two images with the same tree
// shape and the same specs give equal lists.
func (img *Image) Prefetch(ctx context.Context, opts Options, hosts ...ocispec.Platform) []*SubjectSpec {
	var subjects []ocispec.Descriptor
	if !img.Tree.IsIndex() {
		subjects = append(subjects, img.Tree.Root)
	}
	for _, hp := range hosts {
		if hp.Architecture == "" {
			continue
		}
		for _, c := range img.candidates(Host{Platform: hp}, want(Host{Platform: hp}, opts), opts.PinPlatform) {
			if c.Verdict == "" {
				subjects = append(subjects, img.appliesTo(&c)...)
			}
		}
	}
	subjects = dedupe(subjects)
	order := map[string]int{img.Tree.Root.Digest.String(): -1}
	for i, d := range img.Tree.Indexes {
		order[d.Digest.String()] = -len(img.Tree.Indexes) + i
	}
	for _, e := range img.Tree.Manifests {
		order[e.Descriptor.Digest.String()] = e.Position
	}
	sort.SliceStable(subjects, func(a, b int) bool { return order[subjects[a].Digest.String()] < order[subjects[b].Digest.String()] })
	var notes []string
	return img.specsOf(ctx, subjects, &opts, &notes)
}

// Cached returns what was read for subject so far, without reading (false when nothing was).
func (img *Image) Cached(subject ocispec.Descriptor) (*SubjectSpec, bool) {
	return img.reader.Cached(subject)
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

// describePlatforms says which platforms the index has, for messages: "the index has linux/amd64,
// linux/arm64/v8", and how many entries have none (their platform is in their config, which is
// never fetched).
func (img *Image) describePlatforms() string {
	have := img.Platforms()
	var named []string
	unnamed := 0
	for _, p := range have {
		if p == oci.FormatPlatform(nil) {
			unnamed++
			continue
		}
		named = append(named, p)
	}
	s := "the index lists no image"
	if len(named) > 0 {
		s = "the index has " + strings.Join(named, ", ")
	}
	if unnamed > 0 {
		s += fmt.Sprintf("; %d entries have no platform in the index (compatkit does not fetch image configs)", unnamed)
	}
	return s
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
		img.mu.Lock()
		if img.ann == nil {
			img.ann = map[string]*SubjectSpec{}
		}
		for i, s := range subjects {
			if c, ok := img.ann[s.Digest.String()]; ok {
				fromAnn[i] = c
				continue
			}
			ann, ok := byDigest[s.Digest.String()]
			if !ok {
				all = false
				break
			}
			if fromAnn[i], ok = annotated(ann, s, img.Ref(s)); !ok {
				all = false
				break
			}
			img.ann[s.Digest.String()] = fromAnn[i]
		}
		img.mu.Unlock()
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

// Annotated reports whether the image's index carries specs copied by `compat-attach annotate`
// (oci.AnnotationSpec on the index or on one of its entries).
func (img *Image) Annotated() bool {
	if img.index == nil {
		return false
	}
	if _, ok := img.index.Annotations[oci.AnnotationSpec]; ok {
		return true
	}
	for _, m := range img.index.Manifests {
		if _, ok := m.Annotations[oci.AnnotationSpec]; ok {
			return true
		}
	}
	return false
}
