package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/compatkit/compatkit/pkg/author"
	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/host"
	"github.com/compatkit/compatkit/pkg/oci"
)

// targetOptions selects where IMAGE lives: a registry (the default) or an OCI image layout.
type targetOptions struct {
	ociLayout bool
	plainHTTP bool
}

func (o *targetOptions) bind(fs *pflag.FlagSet) {
	fs.BoolVar(&o.ociLayout, "oci-layout", false, "IMAGE is an OCI image layout: PATH[:TAG] or PATH@DIGEST")
	fs.BoolVar(&o.plainHTTP, "plain-http", false, "talk HTTP instead of HTTPS to the registry")
}

// ref renders IMAGE with the flags that locate it, for the commands printed in "Next:" hints.
func (o *targetOptions) ref(image string) string {
	switch {
	case o.ociLayout:
		return "--oci-layout " + image
	case o.plainHTTP:
		return "--plain-http " + image
	}
	return image
}

// guardLayout refuses a registry reference that names an OCI image layout on this machine
// (PATH[:TAG|@DIGEST] whose PATH holds an oci-layout file): the user forgot --oci-layout, and
// trying it as a registry would only end in a DNS error.
func (o *targetOptions) guardLayout(image string) error {
	if o.ociLayout {
		return nil
	}
	if path, _, err := oci.ParseLayoutReference(image); err == nil {
		if _, err := os.Stat(filepath.Join(path, "oci-layout")); err == nil {
			return usagef("%s is an OCI image layout on this machine: add --oci-layout", path)
		}
	}
	return nil
}

// options returns the oci.Options of IMAGE, with the process's Session (sessionFrom).
func (o *targetOptions) options(ctx context.Context) oci.Options {
	s := sessionFrom(ctx)
	return oci.Options{OCILayout: o.ociLayout, PlainHTTP: o.plainHTTP, Session: s.session, MaxReferrerPages: s.maxPages}
}

// processSession is what every command of one process shares: the oci.Session (referrers API
// capabilities, the content cache) and the listing limits of the global flags.
type processSession struct {
	session  *oci.Session
	maxPages int
}

type sessionKey struct{}

// withSession returns ctx carrying s.
func withSession(ctx context.Context, s *processSession) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

// sessionFrom returns the session ctx carries, or a fresh one without a disk cache.
func sessionFrom(ctx context.Context) *processSession {
	if s, ok := ctx.Value(sessionKey{}).(*processSession); ok {
		return s
	}
	return &processSession{session: &oci.Session{}}
}

// globalOptions are the root command's flags.
type globalOptions struct {
	verbose  bool
	noCache  bool
	maxPages int
	timeout  time.Duration
	maxBytes int64
}

func (o *globalOptions) bind(fs *pflag.FlagSet) {
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "print the log of NFD's feature sources on stderr")
	fs.BoolVar(&o.noCache, "no-cache", false, "do not read or write the content cache (immutable manifests and blobs, in $XDG_CACHE_HOME/compatkit)")
	fs.IntVar(&o.maxPages, "max-referrer-pages", oci.DefaultMaxReferrerPages, "pages of one referrers listing followed at most")
	fs.DurationVar(&o.timeout, "timeout", oci.DefaultRequestTimeout, "wait at most this long for each registry answer (one that does not come is not asked again; a whole exchange: twice that)")
	fs.Int64Var(&o.maxBytes, "max-bytes", oci.DefaultMaxBytes, "read at most this many bytes from registries in one command")
}

// session builds the process session: the content cache unless --no-cache.
func (o *globalOptions) session() (*processSession, error) {
	if o.maxPages < 1 {
		return nil, usagef("--max-referrer-pages %d: must be at least 1", o.maxPages)
	}
	if o.timeout <= 0 || o.maxBytes <= 0 {
		return nil, usagef("--timeout and --max-bytes must be positive")
	}
	s := &processSession{session: &oci.Session{Timeout: o.timeout, MaxBytes: o.maxBytes}, maxPages: o.maxPages}
	if !o.noCache {
		if dir, err := oci.DefaultCacheDir(); err == nil {
			s.session.Cache = &oci.Cache{Dir: dir}
		}
	}
	return s, nil
}

// open opens IMAGE's repository or layout.
func (o *targetOptions) open(ctx context.Context, image string) (*oci.Target, error) {
	if err := o.guardLayout(image); err != nil {
		return nil, err
	}
	return oci.Open(ctx, image, o.options(ctx))
}

// image opens IMAGE and reads its index tree (decide.Open) under the trust policy (nil: none).
func (o *targetOptions) image(ctx context.Context, image string, trust *decide.Trust) (*decide.Image, error) {
	t, err := o.open(ctx, image)
	if err != nil {
		return nil, err
	}
	return decide.Open(ctx, t, trust)
}

// imageForHost opens IMAGE (decide.OpenFor) and loads the host (hostOptions.load) at the same
// time, reading the specs that the decision for that host needs while the host's features are
// discovered. The specs read early are those of the --platform asked for, else of any variant of
// this machine's architecture (a superset of what the host runs), else, for a host read from a
// file or a node, of its platform.
func (o *targetOptions) imageForHost(ctx context.Context, cmd *cobra.Command, image string, trust *decide.Trust, hopts *hostOptions, platform *ocispec.Platform, dopts decide.Options) (*decide.Image, decide.Host, error) {
	if hopts.node != "" || hopts.features != "" {
		h, err := hopts.load(ctx, cmd, platform)
		if err != nil {
			return nil, decide.Host{}, err
		}
		t, err := o.open(ctx, image)
		if err != nil {
			return nil, decide.Host{}, err
		}
		img, err := decide.OpenFor(ctx, t, trust, dopts, h.Platform)
		return img, h, err
	}
	t, err := o.open(ctx, image)
	if err != nil {
		return nil, decide.Host{}, err
	}
	var (
		h     decide.Host
		herr  error
		ready = make(chan struct{})
	)
	go func() {
		defer close(ready)
		h, herr = hopts.load(ctx, cmd, platform)
	}()
	hint := ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	switch {
	case platform != nil:
		hint = *platform
	case hint.Architecture == "amd64":
		hint.Variant = "v4" // runs every amd64 variant: its candidates include this host's
	case hint.Architecture == "arm64":
		hint.Variant = "v9.7"
	}
	img, err := decide.OpenFor(ctx, t, trust, dopts, hint)
	<-ready
	if herr != nil {
		return nil, decide.Host{}, herr
	}
	return img, h, err
}

// platformOption is a single --platform os/arch[/variant], parsed once by validate.
type platformOption struct {
	raw string
	p   *ocispec.Platform
}

func (o *platformOption) bind(fs *pflag.FlagSet, usage string) {
	fs.StringVar(&o.raw, "platform", "", usage)
}

// validate parses the flag (nil when not given); unknown/unknown and incomplete platforms are
// usage errors.
func (o *platformOption) validate() error {
	if o.raw == "" {
		return nil
	}
	p, err := oci.ParsePlatform(o.raw)
	if err == nil {
		err = decide.ValidatePlatform(p)
	}
	if err != nil {
		return usagef("--platform %q: %v", o.raw, err)
	}
	o.p = &p
	return nil
}

// outputOption is -o/--output with a fixed set of formats.
type outputOption struct {
	format  string
	allowed []string
}

func (o *outputOption) bind(fs *pflag.FlagSet, def string, allowed ...string) {
	o.allowed = allowed
	fs.StringVarP(&o.format, "output", "o", def, fmt.Sprintf("output format: %v", allowed))
}

func (o *outputOption) validate() error {
	// "table" and "text" name the same human-readable output wherever one of them is offered.
	for _, alias := range [][2]string{{"table", "text"}, {"text", "table"}} {
		if o.format == alias[0] && !slices.Contains(o.allowed, alias[0]) && slices.Contains(o.allowed, alias[1]) {
			o.format = alias[1]
		}
	}
	if slices.Contains(o.allowed, o.format) {
		return nil
	}
	return usagef("unknown output format %q: use one of %v", o.format, o.allowed)
}

// cueOptions says where CUE specs find domain modules beyond the embedded ones.
type cueOptions struct {
	path []string
}

func (o *cueOptions) bind(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.path, "cue-path", nil, "directory of extra domain modules, imported as compatkit.dev/domains/<dir> (repeatable; default $COMPATKIT_CUE_PATH)")
}

// options returns author.Options with positions relative to the working directory.
func (o *cueOptions) options() author.Options {
	wd, _ := os.Getwd()
	return author.Options{Dir: wd, CUEPath: o.path}
}

// hostOptions says which host a decision is for: this machine (the default), a saved feature
// file, or a Kubernetes node.
type hostOptions struct {
	features string
	node     string
	nodes    string
}

func (o *hostOptions) bind(fs *pflag.FlagSet) {
	fs.StringVar(&o.features, "features", "", "the host's features from FILE (- for stdin): 'compat-attach features', 'nfd export features', a profile or a NodeFeature")
	fs.StringVar(&o.node, "node", "", "decide for the Kubernetes node NAME")
	fs.StringVar(&o.nodes, "nodes", "", "with --node: the nodes file (kubectl get nodes -o json, or nodefeatures); default: ask kubectl")
}

func (o *hostOptions) validate() error {
	if o.features != "" && o.node != "" {
		return usagef("give --features or --node, not both")
	}
	if o.nodes != "" && o.node == "" {
		return usagef("--nodes needs --node NAME (the node to decide for); for every node, use `compat-attach report`")
	}
	return nil
}

// load returns the host: its features and its platform (decide.NewHost; platform stands in for a
// platform the features do not give). Warnings and notes go to cmd's stderr.
func (o *hostOptions) load(ctx context.Context, cmd *cobra.Command, platform *ocispec.Platform) (decide.Host, error) {
	switch {
	case o.node != "":
		n, err := o.loadNode(ctx, cmd)
		if err != nil {
			return decide.Host{}, err
		}
		return decide.NewHost("node "+n.Name, n.Features, platform), nil
	case o.features != "":
		f, err := host.ReadFeatureFile(o.features)
		if err != nil {
			return decide.Host{}, withNext(err, "save a host's features with `compat-attach features > FILE` or `nfd export features`")
		}
		name := o.features
		if name == "-" {
			name = "standard input"
		}
		return decide.NewHost(name, f, platform), nil
	}
	f, warnings, err := host.New().Discover(ctx)
	for _, w := range warnings {
		cmd.PrintErrf("warning: feature source %s\n", w)
	}
	if err != nil {
		return decide.Host{}, err
	}
	return decide.NewHost("this host", f, platform), nil
}

func (o *hostOptions) loadNode(ctx context.Context, cmd *cobra.Command) (host.Node, error) {
	var nodes []host.Node
	var err error
	if o.nodes != "" {
		nodes, err = host.ReadNodes(o.nodes)
	} else {
		out, errOut, kerr := host.RunCommand(ctx, 30*time.Second, "kubectl", "get", "node", o.node, "-o", "json")
		if kerr != nil {
			return host.Node{}, withNext(fmt.Errorf("kubectl get node %s: %w: %s", o.node, kerr, strings.TrimSpace(string(errOut))), "save the nodes with `kubectl get nodes -o json > nodes.json` and pass --nodes nodes.json")
		}
		nodes, err = host.ParseNodes(out, "kubectl get node "+o.node)
	}
	if err != nil {
		return host.Node{}, err
	}
	for _, n := range nodes {
		if n.Name != o.node {
			continue
		}
		if n.FromLabels {
			inferred := "none"
			if len(n.Inferred) > 0 {
				inferred = strings.Join(n.Inferred, " ")
			}
			cmd.PrintErrf("note: features of node %s come from NFD's labels, which omit some cpuid flags (inferred from the labelled ones: %s); NodeFeature objects (kubectl get nodefeatures -A -o json) have them all\n", n.Name, inferred)
		}
		return n, nil
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	if len(names) > 10 {
		names = append(names[:10], fmt.Sprintf("and %d more", len(nodes)-10))
	}
	where := o.nodes
	if where == "" {
		where = "kubectl's answer"
	}
	return host.Node{}, fmt.Errorf("node %q is not in %s (it has %s)", o.node, where, strings.Join(names, ", "))
}

// hostPlatformError explains decide.ErrNoHostPlatform with what to do.
func hostPlatformError(err error, h decide.Host) error {
	if strings.HasPrefix(h.Name, "node ") {
		return withNext(err, "%s has no kubernetes.io/arch (or beta.kubernetes.io/arch) label: pass --platform os/arch (e.g. linux/amd64)", h.Name)
	}
	return withNext(err, "the features of %s do not say its platform: pass --platform os/arch (e.g. linux/amd64), or add the compatkit.platform attribute {os, arch} to the file (`compat-attach features` writes it; `nfd export features` does not)", h.Name)
}
