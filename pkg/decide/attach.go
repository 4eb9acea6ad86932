package decide

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/pkg/author"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

// Named returns the manifest of the index tree that platform names ("os/arch[/variant]"), for
// commands that act on one entry (attach, sign, discover --platform): an entry whose platform
// equals it, where containerd's normalisation makes linux/arm64 and linux/arm64/v8 (and
// linux/amd64 and linux/amd64/v1) the same; only when none is equal does a platform without a
// variant name the first entry of its os and architecture (oras's rule). Attestation entries are
// never named. The error wraps oci.ErrNoPlatform and lists the index's platforms.
func (img *Image) Named(platform string) (oci.IndexEntry, error) {
	want, err := oci.ParsePlatform(platform)
	if err != nil {
		return oci.IndexEntry{}, err
	}
	if err := ValidatePlatform(want); err != nil {
		return oci.IndexEntry{}, err
	}
	if !img.Tree.IsIndex() {
		return oci.IndexEntry{}, fmt.Errorf("%s is a single manifest, not an index: it has no platform entries", img.Ref(img.Tree.Root))
	}
	w := platforms.Normalize(want)
	wildcard := -1
	var exact []oci.IndexEntry
	for i, e := range img.Tree.Manifests {
		p := e.Descriptor.Platform
		if e.Attestation() || p == nil {
			continue
		}
		n := platforms.Normalize(*p)
		if n.OS != w.OS || n.Architecture != w.Architecture {
			continue
		}
		if n.Variant == w.Variant && (len(exact) == 0 || exact[0].Descriptor.Digest != e.Descriptor.Digest) {
			exact = append(exact, e)
		}
		if want.Variant == "" && wildcard < 0 {
			wildcard = i
		}
	}
	switch {
	case len(exact) == 1:
		return exact[0], nil
	case len(exact) > 1:
		var ds []string
		for _, e := range exact {
			ds = append(ds, img.Ref(e.Descriptor))
		}
		return oci.IndexEntry{}, fmt.Errorf("%w: %s names %d entries of the index: %s; name one by digest", ErrAmbiguousPlatform, platform, len(exact), strings.Join(ds, ", "))
	case wildcard >= 0:
		return img.Tree.Manifests[wildcard], nil
	}
	return oci.IndexEntry{}, fmt.Errorf("%w %s: %s", oci.ErrNoPlatform, platform, img.describePlatforms())
}

// Attachment is one spec to attach: the subject that gets it and the platform it was compiled for.
type Attachment struct {
	// Subject is the manifest or index that gets the spec.
	Subject ocispec.Descriptor
	// Platform is the platform whose spec the document gives for Subject ("" for the document's
	// top-level spec on an index or a single manifest).
	Platform string
	// Spec is the compiled spec.
	Spec *spec.Spec
}

// PlanAttach decides which subject gets which spec of a compiled document, before anything is
// pushed (a platform of the document that the index lacks is passed over, with a note in
// Image.PlanNotes):
//   - a single manifest gets the document's spec for the one platform given, or its top-level spec;
//   - with platforms, an index's entries they name (Named) get the document's spec for each;
//   - without, a document with per-platform specs gives each to the entry it names, and its
//     top-level spec, if any, to every other image entry; a document with only a top-level spec
//     goes on the index itself.
//
// The result follows index order. An unknown platform is an error that names the index's
// platforms.
func PlanAttach(img *Image, res *author.Result, platformFlags []string) ([]Attachment, error) {
	if !img.Tree.IsIndex() {
		if len(platformFlags) > 1 {
			return nil, fmt.Errorf("%s is a single image manifest: give at most one platform", img.Ref(img.Tree.Root))
		}
		p := ""
		if len(platformFlags) == 1 {
			p = platformFlags[0]
		}
		s, err := res.For(p)
		if err != nil {
			return nil, fmt.Errorf("%w (%s is a single manifest: say which platform's spec to attach)", err, img.Ref(img.Tree.Root))
		}
		return []Attachment{{Subject: img.Tree.Root, Platform: p, Spec: s}}, nil
	}
	var jobs []Attachment
	covered := map[string]bool{}
	addEntry := func(d ocispec.Descriptor, p string, s *spec.Spec) {
		if !covered[d.Digest.String()] {
			covered[d.Digest.String()] = true
			jobs = append(jobs, Attachment{Subject: d, Platform: p, Spec: s})
		}
	}
	add := func(p string, s *spec.Spec) error {
		e, err := img.Named(p)
		if err != nil {
			return err
		}
		addEntry(e.Descriptor, p, s)
		return nil
	}
	switch {
	case len(platformFlags) > 0:
		for _, p := range platformFlags {
			s, err := res.For(p)
			if err != nil {
				return nil, err
			}
			if err := add(p, s); err != nil {
				return nil, err
			}
		}
	case len(res.Platforms) == 0:
		s, err := res.For("")
		if err != nil {
			return nil, err
		}
		return []Attachment{{Subject: img.Tree.Root, Spec: s}}, nil
	default:
		keys := make([]string, 0, len(res.Platforms))
		for k := range res.Platforms {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var missing []string
		for _, p := range keys {
			err := add(p, res.Platforms[p])
			switch {
			case errors.Is(err, oci.ErrNoPlatform):
				missing = append(missing, p) // a document may cover more platforms than one image has
			case err != nil:
				return nil, fmt.Errorf("the spec names platform %s: %w", p, err)
			}
		}
		if len(jobs) == 0 && res.Default == nil {
			return nil, fmt.Errorf("%w: the document's platforms (%s) are none of the index's: %s", oci.ErrNoPlatform, strings.Join(missing, ", "), img.describePlatforms())
		}
		for _, p := range missing {
			img.planNotes = append(img.planNotes, fmt.Sprintf("note: %s has no %s manifest: the document's spec for it is not attached", img.Ref(img.Tree.Root), p))
		}
		if res.Default != nil {
			for _, e := range img.Tree.Manifests {
				if e.Attestation() || e.Descriptor.Platform == nil {
					continue
				}
				addEntry(e.Descriptor, oci.FormatPlatform(e.Descriptor.Platform), res.Default)
			}
		}
	}
	pos := map[string]int{}
	for _, e := range img.Tree.Manifests {
		if _, ok := pos[e.Descriptor.Digest.String()]; !ok {
			pos[e.Descriptor.Digest.String()] = e.Position
		}
	}
	sort.SliceStable(jobs, func(a, b int) bool {
		return pos[jobs[a].Subject.Digest.String()] < pos[jobs[b].Subject.Digest.String()]
	})
	return jobs, nil
}

// PlanNotes returns what PlanAttach passed over (platforms of the document the index lacks).
func (img *Image) PlanNotes() []string { return img.planNotes }

// FindAttached returns the spec referrer of subject whose spec equals want (the same YAML), so that
// a signer signs exactly what the author compiled, never a spec someone else attached since. When
// several referrers hold that spec, it returns the oldest (by the creation time inside each
// fetched manifest, which a signature covers): a pusher can copy an attached spec under a later
// date, and signing that copy would make an older document the newest signed one (a rollback);
// the copies it passed over are returned too. Referrers that cannot be read are passed over. No
// match wraps oci.ErrNoSpec.
func FindAttached(ctx context.Context, t *oci.Target, subject ocispec.Descriptor, want *spec.Spec) (ocispec.Descriptor, *spec.Spec, []ocispec.Descriptor, error) {
	refs, err := t.Referrers(ctx, subject, spec.ArtifactType)
	if err != nil {
		return ocispec.Descriptor{}, nil, nil, err
	}
	wy, err := want.MarshalYAML()
	if err != nil {
		return ocispec.Descriptor{}, nil, nil, err
	}
	type match struct {
		ref     ocispec.Descriptor
		s       *spec.Spec
		created time.Time
		dated   bool
	}
	var found []match
	for _, ref := range refs {
		s, m, err := t.FetchSpec(ctx, ref)
		if err != nil || oci.CheckSubject(m, subject, "") != nil {
			continue // an unreadable or misplaced referrer is not the one
		}
		if got, err := s.MarshalYAML(); err == nil && string(got) == string(wy) {
			c, ok := oci.Created(ocispec.Descriptor{Annotations: m.Annotations})
			found = append(found, match{ref, s, c, ok})
		}
	}
	if len(found) == 0 {
		return ocispec.Descriptor{}, nil, nil, fmt.Errorf("%w: no spec attached to %s@%s equals the compiled document (%d referrers looked at)", oci.ErrNoSpec, t.Name(), subject.Digest, len(refs))
	}
	// Oldest first; an undated copy last (it cannot be ordered, so it is never preferred).
	sort.SliceStable(found, func(i, j int) bool {
		a, b := found[i], found[j]
		if a.dated != b.dated {
			return a.dated
		}
		return a.created.Before(b.created)
	})
	var others []ocispec.Descriptor
	for _, f := range found[1:] {
		others = append(others, f.ref)
	}
	return found[0].ref, found[0].s, others, nil
}
