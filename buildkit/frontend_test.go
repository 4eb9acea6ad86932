package buildkit

import (
	"context"
	"encoding/json"
	"errors"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/solver/pb"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	fstypes "github.com/tonistiigi/fsutil/types"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
	"github.com/compatkit/compatkit/pkg/spec"
)

// fakeGateway stands in for BuildKit's gateway: the Dockerfile frontend's result has one
// reference per platform of the "platform" option, local sources read from files, and scratch
// filesystems with one file (an attestation's content) are kept as written.
type fakeGateway struct {
	opts  map[string]string
	files map[string]map[string]string // local name -> path -> content

	mu         sync.Mutex
	warnings   []string
	delegated  []map[string]string
	definition int
}

func (g *fakeGateway) BuildOpts() client.BuildOpts {
	return client.BuildOpts{Opts: g.opts, SessionID: "session"}
}

func (g *fakeGateway) Inputs(context.Context) (map[string]llb.State, error) { return nil, nil }

func (g *fakeGateway) Warn(_ context.Context, _ digest.Digest, msg string, _ client.WarnOpts) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.warnings = append(g.warnings, msg)
	return nil
}

func (g *fakeGateway) Solve(ctx context.Context, req client.SolveRequest) (*client.Result, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if req.Frontend != "" {
		if req.Frontend != "dockerfile.v0" {
			return nil, errors.New("unexpected frontend " + req.Frontend)
		}
		g.delegated = append(g.delegated, req.FrontendOpt)
		res := client.NewResult()
		var ps exptypes.Platforms
		for _, p := range strings.Split(req.FrontendOpt["platform"], ",") {
			if p == "" {
				p = "linux/amd64"
			}
			parts := strings.Split(p, "/")
			plat := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
			if len(parts) > 2 {
				plat.Variant = parts[2]
			}
			ps.Platforms = append(ps.Platforms, exptypes.Platform{ID: p, Platform: plat})
			res.AddRef(p, &fakeRef{files: map[string]string{"/hello": "binary for " + p}})
		}
		b, _ := json.Marshal(ps)
		res.AddMeta(exptypes.ExporterPlatformsKey, b)
		return res, nil
	}
	g.definition++
	files := map[string]string{}
	for _, raw := range req.Definition.Def {
		var op pb.Op
		if err := op.UnmarshalVT(raw); err != nil {
			return nil, err
		}
		if src := op.GetSource(); src != nil {
			name, ok := strings.CutPrefix(src.Identifier, "local://")
			if !ok {
				return nil, errors.New("unexpected source " + src.Identifier)
			}
			for p, c := range g.files[name] {
				files[p] = c
			}
		}
		if f := op.GetFile(); f != nil {
			for _, a := range f.Actions {
				if mk := a.GetMkfile(); mk != nil {
					files[mk.Path] = string(mk.Data)
				}
			}
		}
	}
	res := client.NewResult()
	res.SetRef(&fakeRef{files: files})
	return res, nil
}

func (g *fakeGateway) ResolveImageConfig(context.Context, string, sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	return "", "", nil, errors.New("no image config in the fake gateway")
}

func (g *fakeGateway) ResolveSourceMetadata(context.Context, *pb.SourceOp, sourceresolver.Opt) (*sourceresolver.MetaResponse, error) {
	return nil, errors.New("no source metadata in the fake gateway")
}

func (g *fakeGateway) NewContainer(context.Context, client.NewContainerRequest) (client.Container, error) {
	return nil, errors.New("no containers in the fake gateway")
}

type fakeRef struct{ files map[string]string }

func (r *fakeRef) ToState() (llb.State, error)    { return llb.Scratch(), nil }
func (r *fakeRef) Evaluate(context.Context) error { return nil }

func (r *fakeRef) ReadFile(_ context.Context, req client.ReadRequest) ([]byte, error) {
	c, ok := r.files[path.Clean("/"+req.Filename)]
	if !ok {
		if c, ok = r.files[req.Filename]; !ok {
			return nil, errors.New(req.Filename + ": no such file")
		}
	}
	return []byte(c), nil
}

func (r *fakeRef) StatFile(_ context.Context, req client.StatRequest) (*fstypes.Stat, error) {
	if _, ok := r.files[path.Clean("/"+req.Path)]; !ok {
		return nil, errors.New(req.Path + ": no such file")
	}
	return &fstypes.Stat{Path: req.Path, Mode: 0o644}, nil
}

func (r *fakeRef) ReadDir(_ context.Context, req client.ReadDirRequest) ([]*fstypes.Stat, error) {
	dir := path.Clean("/" + req.Path)
	var out []*fstypes.Stat
	for p := range r.files {
		if path.Dir(p) != dir {
			continue
		}
		if ok, _ := path.Match(req.IncludePattern, path.Base(p)); req.IncludePattern == "" || ok {
			out = append(out, &fstypes.Stat{Path: path.Base(p), Mode: 0o644})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// context places the files under "/" as local sources do.
func contextFiles(files map[string]string) map[string]string {
	out := map[string]string{}
	for p, c := range files {
		out[path.Clean("/"+p)] = c
	}
	return out
}

const compatCUE = `// the test document
platforms: "linux/amd64": {
	version: "v1alpha1"
	compatibilities: [{weight: 50, rules: [{name: "SSE2", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: SSE2: {op: "Exists"}}]}]}]
}
platforms: "linux/amd64/v3": {
	version: "v1alpha1"
	compatibilities: [{weight: 90, rules: [{name: "AVX2", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: AVX2: {op: "Exists"}}]}]}]
}
`

// predicates returns the attestations' predicates by platform ID, checking their shape.
func predicates(t *testing.T, res *client.Result) map[string]Predicate {
	t.Helper()
	out := map[string]Predicate{}
	for id, atts := range res.Attestations {
		if len(atts) != 1 {
			t.Fatalf("%s: %d attestations", id, len(atts))
		}
		a := atts[0]
		if a.InToto.PredicateType != signing.PredicateType || a.Path != AttestationPath || a.Ref == nil {
			t.Fatalf("%s: attestation %+v", id, a)
		}
		data, err := a.Ref.ReadFile(context.Background(), client.ReadRequest{Filename: a.Path})
		if err != nil {
			t.Fatal(err)
		}
		var p Predicate
		if err := json.Unmarshal(data, &p); err != nil {
			t.Fatalf("%s: %v: %s", id, err, data)
		}
		out[id] = p
	}
	return out
}

func TestBuildMultiPlatform(t *testing.T) {
	g := &fakeGateway{
		opts: map[string]string{"platform": "linux/amd64,linux/amd64/v3", "compat-base": "none"},
		files: map[string]map[string]string{
			"context":    contextFiles(map[string]string{"compat.cue": compatCUE, "hello": "x"}),
			"dockerfile": contextFiles(map[string]string{"Dockerfile": "FROM scratch\nCOPY hello /hello\n"}),
		},
	}
	res, err := Build(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.delegated) != 1 || g.delegated[0]["cmdline"] == "" || g.delegated[0]["platform"] != "linux/amd64,linux/amd64/v3" {
		t.Errorf("delegated with %v", g.delegated)
	}
	ps := predicates(t, res)
	if len(ps) != 2 || ps["linux/amd64"].Spec.Compatibilities[0].Weight != 50 || ps["linux/amd64/v3"].Spec.Compatibilities[0].Rules[0].Name != "AVX2" {
		t.Fatalf("predicates %+v", ps)
	}
	if ps["linux/amd64/v3"].Platform != "linux/amd64/v3" || len(ps["linux/amd64"].Source) != 1 || ps["linux/amd64"].Source[0].Path != "compat.cue" {
		t.Errorf("predicate fields %+v", ps["linux/amd64"])
	}
}

func TestBuildInvalidSpec(t *testing.T) {
	bad := "platforms: \"linux/amd64\": {\n\tversion: \"v1alpha1\"\n\tcompatibilities: [{weight: 500, rules: []}]\n}\n"
	for _, mode := range []string{"strict", "warn"} {
		g := &fakeGateway{
			opts:  map[string]string{"compat-mode": mode, "compat-base": "none"},
			files: map[string]map[string]string{"context": contextFiles(map[string]string{"compat.cue": bad})},
		}
		res, err := Build(context.Background(), g)
		switch mode {
		case "strict":
			if err == nil || !strings.Contains(err.Error(), "compat.cue:3:") || !strings.Contains(err.Error(), "compat-attach vet") {
				t.Fatalf("strict: %v", err)
			}
		case "warn":
			if err != nil || len(res.Attestations) != 0 || len(g.warnings) == 0 || !strings.Contains(g.warnings[0], "compat.cue:3:") {
				t.Fatalf("warn: %v %v %v", err, res, g.warnings)
			}
		}
	}
}

func TestBuildMissingSpec(t *testing.T) {
	g := &fakeGateway{opts: map[string]string{}, files: map[string]map[string]string{"context": contextFiles(map[string]string{"Dockerfile": "FROM scratch"})}}
	res, err := Build(context.Background(), g)
	if err != nil || len(res.Attestations) != 0 || len(g.warnings) != 1 || !strings.Contains(g.warnings[0], "has no compat.cue") {
		t.Fatalf("no compat.cue: %v %v %v", err, res, g.warnings)
	}
	g = &fakeGateway{opts: map[string]string{"compat-spec": "deploy/compat.cue"}, files: g.files}
	if _, err := Build(context.Background(), g); err == nil || !strings.Contains(err.Error(), "deploy/compat.cue") {
		t.Fatalf("a named document that is missing: %v", err)
	}
	g = &fakeGateway{opts: map[string]string{"compat-spec": "../etc/passwd"}, files: g.files}
	if _, err := Build(context.Background(), g); err == nil || !strings.Contains(err.Error(), "inside the build context") {
		t.Fatalf("a path outside the context: %v", err)
	}
	// A document without a spec for a platform built fails the build (strict).
	g = &fakeGateway{opts: map[string]string{"platform": "linux/arm64", "compat-base": "none"}, files: map[string]map[string]string{"context": contextFiles(map[string]string{"compat.cue": compatCUE})}}
	if _, err := Build(context.Background(), g); err == nil || !strings.Contains(err.Error(), "linux/arm64") {
		t.Fatalf("no spec for the platform: %v", err)
	}
}

// TestBuildInherits: the Dockerfile's final stage names a base image (through a stage and an ARG)
// with a spec in a registry: each platform's spec keeps the base's rule.
func TestBuildInherits(t *testing.T) {
	reg := testregistry.NewOCI(t)
	img := testregistry.PushImage(t, reg.Host(), "base", "1.0")
	tg, err := oci.Open(context.Background(), reg.Host()+"/base:1.0", oci.Options{PlainHTTP: true, HTTPClient: testregistry.Client()})
	if err != nil {
		t.Fatal(err)
	}
	base := &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{{Rules: []spec.Rule{{Name: "kernel", MatchFeatures: []spec.FeatureMatcherTerm{{
		Feature: "kernel.version", MatchExpressions: map[string]*spec.MatchExpression{"major": {Op: spec.OpGt, Value: []string{"4"}}}}}}}}}}
	for _, m := range img.Manifests[:2] {
		if _, err := tg.PushSpec(context.Background(), m, base, nil, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	dockerfile := "ARG BASE=" + reg.Host() + "/base:1.0\nFROM ${BASE} AS runtime\nFROM runtime\nCOPY hello /hello\n"
	g := &fakeGateway{
		opts: map[string]string{"platform": "linux/amd64,linux/amd64/v3", "compat-base-plain-http": "true"},
		files: map[string]map[string]string{
			"context":    contextFiles(map[string]string{"compat.cue": compatCUE}),
			"dockerfile": contextFiles(map[string]string{"Dockerfile": dockerfile}),
		},
	}
	res, err := Build(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	for id, p := range predicates(t, res) {
		rules := p.Spec.Compatibilities[0].Rules
		if len(rules) != 2 || p.Base == nil || !strings.HasSuffix(p.Base.Ref, "/base:1.0") {
			t.Errorf("%s: rules %+v, base %+v", id, rules, p.Base)
		}
	}
}

func TestBaseImage(t *testing.T) {
	df := `ARG VERSION=12
FROM golang:1.26 AS build
RUN go build
FROM debian:${VERSION}-slim AS runtime
FROM runtime AS final
COPY --from=build /x /x
FROM scratch AS static
`
	for _, tc := range []struct {
		target string
		opts   map[string]string
		want   string
	}{
		{"", nil, ""},
		{"final", nil, "debian:12-slim"},
		{"final", map[string]string{"build-arg:VERSION": "13"}, "debian:13-slim"},
		{"build", nil, "golang:1.26"},
	} {
		got, err := BaseImage([]byte(df), tc.target, tc.opts)
		if err != nil || got != tc.want {
			t.Errorf("target %q %v: %q, %v; want %q", tc.target, tc.opts, got, err, tc.want)
		}
	}
	if _, err := BaseImage([]byte("FROM $UNKNOWN\n"), "", nil); err == nil {
		t.Error("an unexpandable FROM")
	}
	if _, err := BaseImage([]byte(df), "nope", nil); err == nil {
		t.Error("an unknown target")
	}
}
