// Package buildkit is compatkit's BuildKit frontend: a Dockerfile build whose context holds a
// compatibility document (compat.cue by default) produces an image whose compatibility is already
// attached, one in-toto attestation per platform.
//
// Build is a gateway BuildFunc (github.com/moby/buildkit/frontend/gateway/client). It delegates
// the image build to the daemon's Dockerfile frontend (dockerfile.v0, with `cmdline` set so that a
// `# syntax=` line naming this frontend does not send the build back here), reads the document
// from the build context, vets and compiles it with pkg/author (an invalid document fails the
// build with file:line:col), composes each platform's spec with its base image's (the final
// stage's FROM, or the compat-base option) through pkg/decide, and adds to each platform of the
// result an in-toto attestation with predicateType signing.PredicateType whose predicate is
// {"spec": ..., "platform": "os/arch[/variant]"} (Predicate). BuildKit's exporter wraps it in a
// statement whose subject is the platform's image manifest and keeps it in the image index (an
// attestation manifest, vnd.docker.reference.type=attestation-manifest; with the exporter options
// oci-mediatypes=true,oci-artifact=true also a referrer of the manifest).
//
// NFD reads only its own artifact type: `compat-attach attach --from-attestations IMAGE` turns
// these attestations into NFD referrers, and compat-attach's readers (discover, fetch, check,
// select) read them as they are. Signing stays outside the build: no key enters it.
//
// Options (--opt NAME=VALUE with buildctl, --build-arg is not used):
//
//	compat-spec             path of the document in the build context (default compat.cue; a
//	                        .cue file is loaded with the other .cue files of its directory)
//	compat-mode             strict (default): an invalid or missing named document fails the
//	                        build; warn: the build goes on without attestation, with a warning
//	compat-base             the base image to inherit from; "none" inherits nothing; default:
//	                        the base image of the final stage (or of --opt target=STAGE)
//	compat-base-plain-http  true: reach the base's registry over HTTP (a local test registry)
package buildkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/gateway/client"
	gwpb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/solver/result"
	"github.com/opencontainers/go-digest"

	"github.com/compatkit/compatkit/pkg/author"
	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
	"github.com/compatkit/compatkit/pkg/spec"
)

// Frontend options.
const (
	OptSpec          = "compat-spec"
	OptMode          = "compat-mode"
	OptBase          = "compat-base"
	OptBasePlainHTTP = "compat-base-plain-http"

	// DefaultSpec is the document read when OptSpec is not given.
	DefaultSpec = "compat.cue"
	// AttestationPath is where the predicate lives in the attestation's content.
	AttestationPath = "/compat.json"
	// MaxContextFiles bounds how many .cue files of the document's directory are read.
	MaxContextFiles = 64
)

// Predicate is the predicate of a build's attestation (predicateType signing.PredicateType): the
// compiled spec of one platform, without a referrer (there is none yet).
type Predicate struct {
	// Spec is the NFD v1alpha1 spec, after inheritance.
	Spec *spec.Spec `json:"spec"`
	// Platform is the platform of the image the attestation describes ("os/arch[/variant]").
	Platform string `json:"platform"`
	// Base records the base image spec that was inherited, if any.
	Base *spec.BaseProvenance `json:"base,omitempty"`
	// Source lists the document's files with their sha256 digests.
	Source []spec.SourceFile `json:"source,omitempty"`
}

// options are the frontend's own options, parsed.
type options struct {
	spec          string
	named         bool // compat-spec was given
	warn          bool
	base          string
	noBase        bool
	basePlainHTTP bool
}

func parseOptions(opts map[string]string) (options, error) {
	o := options{spec: DefaultSpec}
	if v, ok := opts[OptSpec]; ok && v != "" {
		o.spec, o.named = path.Clean(strings.TrimPrefix(v, "./")), true
		if path.IsAbs(o.spec) || strings.HasPrefix(o.spec, "../") || o.spec == ".." {
			return o, fmt.Errorf("%s=%s: give a path inside the build context", OptSpec, v)
		}
	}
	switch v := opts[OptMode]; v {
	case "", "strict":
	case "warn":
		o.warn = true
	default:
		return o, fmt.Errorf("%s=%s: use strict or warn", OptMode, v)
	}
	switch v := strings.TrimSpace(opts[OptBase]); v {
	case "":
	case "none":
		o.noBase = true
	default:
		o.base = v
	}
	if v, ok := opts[OptBasePlainHTTP]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return o, fmt.Errorf("%s=%s: use true or false", OptBasePlainHTTP, v)
		}
		o.basePlainHTTP = b
	}
	return o, nil
}

// Build is the frontend's BuildFunc: the Dockerfile build, plus one compatibility attestation per
// platform of its result.
func Build(ctx context.Context, gc client.Client) (*client.Result, error) {
	c := &vertexClient{Client: gc}
	bopts := c.BuildOpts()
	o, err := parseOptions(bopts.Opts)
	if err != nil {
		return nil, err
	}
	res, err := delegate(ctx, c)
	if err != nil {
		return nil, err
	}
	ps, err := exptypes.ParsePlatforms(res.Metadata)
	if err != nil {
		return nil, err
	}
	doc, err := compile(ctx, c, o)
	switch {
	case err != nil && o.warn:
		warn(ctx, c, fmt.Sprintf("compat: no compatibility attestation: %v", err))
		return res, nil
	case err != nil:
		return nil, err
	case doc == nil:
		warn(ctx, c, fmt.Sprintf("compat: the build context has no %s: no compatibility attestation (give --opt %s=PATH, or add the file)", o.spec, OptSpec))
		return res, nil
	}
	inherited, notes, err := inherit(ctx, c, o, doc, ps)
	for _, n := range notes {
		warn(ctx, c, "compat: "+n)
	}
	if err != nil {
		if o.warn {
			warn(ctx, c, fmt.Sprintf("compat: no compatibility attestation: %v", err))
			return res, nil
		}
		return nil, err
	}
	for i, p := range ps.Platforms {
		if inherited[i].Spec == nil {
			continue
		}
		pred := Predicate{Spec: inherited[i].Spec, Platform: oci.FormatPlatform(&p.Platform), Base: inherited[i].Base, Source: doc.Sources}
		ref, err := content(ctx, c, pred)
		if err != nil {
			return nil, err
		}
		res.AddAttestation(p.ID, client.Attestation{
			Kind:   gwpb.AttestationKind_InToto,
			Ref:    ref,
			Path:   AttestationPath,
			InToto: result.InTotoAttestation{PredicateType: signing.PredicateType},
		})
	}
	return res, nil
}

// delegate builds the image with the daemon's Dockerfile frontend, with every option and input of
// this build.
func delegate(ctx context.Context, c client.Client) (*client.Result, error) {
	bopts := c.BuildOpts()
	opts := make(map[string]string, len(bopts.Opts)+1)
	for k, v := range bopts.Opts {
		opts[k] = v
	}
	if opts["cmdline"] == "" {
		// Set, so that a "# syntax=" line naming this frontend does not bring the build back.
		opts["cmdline"] = "compat-frontend"
	}
	req := client.SolveRequest{Frontend: "dockerfile.v0", FrontendOpt: opts}
	// The build's inputs (named contexts given as definitions) go to the Dockerfile frontend too;
	// a daemon that cannot give them has none.
	if inputs, err := c.Inputs(ctx); err == nil && len(inputs) > 0 {
		req.FrontendInputs = map[string]*pb.Definition{}
		for name, st := range inputs {
			def, err := st.Marshal(ctx)
			if err != nil {
				return nil, err
			}
			req.FrontendInputs[name] = def.ToPB()
		}
	}
	return c.Solve(ctx, req)
}

// local reads the named local source of the build (or the input of that name, when the client
// gave one), with the given options, and returns its solved reference.
func local(ctx context.Context, c client.Client, name string, opts ...llb.LocalOption) (client.Reference, error) {
	var st llb.State
	inputs, err := c.Inputs(ctx)
	if in, ok := inputs[name]; err == nil && ok {
		st = in
	} else {
		opts = append([]llb.LocalOption{llb.SessionID(c.BuildOpts().SessionID), llb.SharedKeyHint(name)}, opts...)
		st = llb.Local(name, opts...)
	}
	return solve(ctx, c, st)
}

// solve solves st and returns its reference.
func solve(ctx context.Context, c client.Client, st llb.State) (client.Reference, error) {
	def, err := st.Marshal(ctx)
	if err != nil {
		return nil, err
	}
	r, err := c.Solve(ctx, client.SolveRequest{Definition: def.ToPB()})
	if err != nil {
		return nil, err
	}
	return r.SingleRef()
}

// compile reads the document from the build context and compiles it; nil without error when the
// default document is absent.
func compile(ctx context.Context, c client.Client, o options) (*author.Result, error) {
	files := []string{o.spec}
	dir := path.Dir(o.spec)
	if strings.HasSuffix(o.spec, ".cue") {
		files = []string{path.Join(dir, "*.cue")}
	}
	ref, err := local(ctx, c, "context", llb.IncludePatterns(files), llb.FollowPaths(files))
	if err != nil {
		return nil, fmt.Errorf("compat: reading %s from the build context: %w", o.spec, err)
	}
	if _, err := ref.StatFile(ctx, client.StatRequest{Path: o.spec}); err != nil {
		if o.named {
			return nil, fmt.Errorf("compat: %s=%s: the build context has no such file", OptSpec, o.spec)
		}
		return nil, nil
	}
	names := []string{o.spec}
	if strings.HasSuffix(o.spec, ".cue") {
		entries, err := ref.ReadDir(ctx, client.ReadDirRequest{Path: dir, IncludePattern: "*.cue"})
		if err != nil {
			return nil, fmt.Errorf("compat: listing %s in the build context: %w", dir, err)
		}
		names = names[:0]
		for _, e := range entries {
			if !e.IsDir() {
				names = append(names, path.Join(dir, e.GetPath()))
			}
		}
		if len(names) > MaxContextFiles {
			return nil, fmt.Errorf("compat: %s holds %d .cue files, more than %d", dir, len(names), MaxContextFiles)
		}
		slices.Sort(names)
	}
	// A frontend's root is its image's, which may have no /tmp.
	_ = os.MkdirAll(os.TempDir(), 0o1777)
	tmp, err := os.MkdirTemp("", "compat-frontend-")
	if err != nil {
		return nil, fmt.Errorf("compat: a scratch directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	var paths []string
	for _, n := range names {
		data, err := ref.ReadFile(ctx, client.ReadRequest{Filename: n})
		if err != nil {
			return nil, fmt.Errorf("compat: reading %s from the build context: %w", n, err)
		}
		if len(data) > author.MaxInputBytes {
			return nil, fmt.Errorf("compat: %s is %d bytes, more than %d", n, len(data), author.MaxInputBytes)
		}
		p := filepath.Join(tmp, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	doc, err := author.Compile(ctx, paths, author.Options{Dir: tmp})
	if err != nil {
		var ae *author.Error
		if errors.As(err, &ae) {
			return nil, fmt.Errorf("compat: %s is not a valid compatibility document (vet it with `compat-attach vet %s`):\n%s", o.spec, o.spec, ae.Error())
		}
		return nil, fmt.Errorf("compat: %s: %w", o.spec, err)
	}
	for i := range doc.Sources {
		if rel, err := filepath.Rel(tmp, doc.Sources[i].Path); err == nil {
			doc.Sources[i].Path = filepath.ToSlash(rel)
		}
	}
	return doc, nil
}

// inherit gives each platform its spec composed with its base's: one per ps.Platforms entry (a
// nil Spec when the document has none for that platform, in warn mode).
func inherit(ctx context.Context, c client.Client, o options, doc *author.Result, ps exptypes.Platforms) ([]decide.Inherited, []string, error) {
	out := make([]decide.Inherited, len(ps.Platforms))
	var notes []string
	platforms := make([]string, len(ps.Platforms))
	for i, p := range ps.Platforms {
		platforms[i] = oci.FormatPlatform(&p.Platform)
		s, err := doc.For(platforms[i])
		if err != nil {
			if !o.warn {
				return nil, nil, fmt.Errorf("compat: %s: %w", o.spec, err)
			}
			notes = append(notes, fmt.Sprintf("no attestation for %s: %v", platforms[i], err))
			continue
		}
		out[i].Spec = s
	}
	base := o.base
	if base == "" && !o.noBase {
		var err error
		if base, err = dockerfileBase(ctx, c); err != nil {
			notes = append(notes, fmt.Sprintf("the base image is not inherited: %v (give --opt %s=REF or %s=none)", err, OptBase, OptBase))
			return out, notes, nil
		}
	}
	if base == "" || o.noBase {
		return out, notes, nil
	}
	var jobs []string
	var idx []int
	for i := range out {
		if out[i].Spec != nil {
			jobs, idx = append(jobs, platforms[i]), append(idx, i)
		}
	}
	got, more, err := decide.InheritFrom(ctx, doc, jobs, decide.BaseOptions{Ref: base, Target: oci.Options{PlainHTTP: o.basePlainHTTP}})
	notes = append(notes, more...)
	if err != nil {
		return nil, notes, fmt.Errorf("compat: inheriting from the base image %s: %w", base, err)
	}
	for k, i := range idx {
		out[i] = got[k]
	}
	return out, notes, nil
}

// dockerfileBase returns the base image of the stage the build targets ("" for scratch), following
// stage names, with the Dockerfile's global ARG defaults and the build's build-args expanded.
func dockerfileBase(ctx context.Context, c client.Client) (string, error) {
	opts := c.BuildOpts().Opts
	name := opts["filename"]
	if name == "" {
		name = "Dockerfile"
	}
	ref, err := local(ctx, c, "dockerfile", llb.FollowPaths([]string{name}), llb.IncludePatterns([]string{name}))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", name, err)
	}
	data, err := ref.ReadFile(ctx, client.ReadRequest{Filename: name})
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", name, err)
	}
	return BaseImage(data, opts["target"], opts)
}

// BaseImage returns the base image of target's stage (the last stage when target is "") in the
// Dockerfile data, following FROM lines that name other stages: "" for scratch. Global ARG
// defaults and opts' build-arg:NAME values are expanded; a base that still holds a variable is an
// error.
func BaseImage(data []byte, target string, opts map[string]string) (string, error) {
	r, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	stages, metaArgs, err := instructions.Parse(r.AST, nil)
	if err != nil {
		return "", err
	}
	if len(stages) == 0 {
		return "", fmt.Errorf("the Dockerfile has no FROM")
	}
	args := map[string]string{}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if kv.Value != nil {
				args[kv.Key] = *kv.Value
			}
			if v, ok := opts["build-arg:"+kv.Key]; ok {
				args[kv.Key] = v
			}
		}
	}
	byName := map[string]int{}
	for i, s := range stages {
		if s.Name != "" {
			byName[strings.ToLower(s.Name)] = i
		}
	}
	i := len(stages) - 1
	if target != "" {
		k, ok := byName[strings.ToLower(target)]
		if !ok {
			return "", fmt.Errorf("the Dockerfile has no stage %q", target)
		}
		i = k
	}
	for range len(stages) {
		unknown := ""
		base := os.Expand(stages[i].BaseName, func(k string) string {
			v, ok := args[k]
			if !ok && unknown == "" {
				unknown = k
			}
			return v
		})
		if unknown != "" || strings.Contains(base, "$") || base == "" {
			return "", fmt.Errorf("FROM %s: a variable compatkit cannot expand (%s)", stages[i].BaseName, unknown)
		}
		if k, ok := byName[strings.ToLower(base)]; ok && k < i {
			i = k
			continue
		}
		if base == "scratch" {
			return "", nil
		}
		return base, nil
	}
	return "", fmt.Errorf("the Dockerfile's stages name each other in a loop")
}

// content solves a scratch filesystem holding the predicate at AttestationPath: an attestation's
// content must be a solved reference (a ContentFunc does not cross the gateway).
func content(ctx context.Context, c client.Client, p Predicate) (client.Reference, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return solve(ctx, c, llb.Scratch().File(llb.Mkfile(AttestationPath, 0o644, data), llb.WithCustomName("compat: attestation for "+p.Platform)))
}

// vertexClient remembers a vertex of the build (the first definition this frontend solves: the
// document read from the context): buildctl shows a warning only when it names a vertex.
type vertexClient struct {
	client.Client
	vtx digest.Digest
}

func (c *vertexClient) Solve(ctx context.Context, req client.SolveRequest) (*client.Result, error) {
	if c.vtx == "" && req.Definition != nil {
		var def llb.Definition
		def.FromPB(req.Definition)
		c.vtx, _ = def.Head()
	}
	return c.Client.Solve(ctx, req)
}

// warn shows msg in the build's output: a build warning on a vertex of its own, named after the
// message (buildctl prints a warning only under a vertex it shows, and a vertex of the build
// proper may be merged or finished before the warning arrives), else on the vertex that read the
// document.
func warn(ctx context.Context, c client.Client, msg string) {
	var vtx digest.Digest
	if vc, ok := c.(*vertexClient); ok {
		vtx = vc.vtx
	}
	name, _, _ := strings.Cut(msg, "\n")
	if len(name) > 200 {
		name = name[:200] + "..."
	}
	st := llb.Scratch().File(llb.Mkfile("/compat-warning", 0o644, []byte(msg)), llb.WithCustomName(name))
	if def, err := st.Marshal(ctx); err == nil {
		if _, err := c.Solve(ctx, client.SolveRequest{Definition: def.ToPB(), Evaluate: true}); err == nil {
			if head, err := def.Head(); err == nil {
				vtx = head
			}
		}
	}
	_ = c.Warn(ctx, vtx, msg, client.WarnOpts{Level: 1})
}
