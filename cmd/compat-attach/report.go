package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/ciout"
	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
	"github.com/compatkit/compatkit/pkg/author"
	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/report"
)

type reportOptions struct {
	target        targetOptions
	platform      platformOption
	output        outputOption
	policy        policyOptions
	noAnnotations bool
	images        string
	nodes         []string
	baseline      []string
	concurrency   int
	noProgress    bool
	sboms         bool
	failOn        string
	ci            ciout.Files
	// plainHTTPHosts are the registries of --images reached over HTTP.
	plainHTTPHosts []string
	// specFiles is --spec: a document tried on the nodes instead of --images.
	specFiles []string
	cue       cueOptions
	kube      kubeOptions
}

func reportCmd() *cobra.Command {
	var opts reportOptions
	cmd := &cobra.Command{
		Use:   "report (--images FILE --nodes FILE... | --kubeconfig [FILE]) [--baseline FILE...]",
		Short: "Check many images against many nodes: a compatibility matrix, and what a migration breaks",
		Long: `Evaluate every image against every node and print a matrix of images by nodes. Each cell is
  ok N    compatible, with score N
  FAIL    not compatible (the first failing rule and expression are listed under "Why")
  -       no spec attached: treated as compatible
  ERR     the image or its spec could not be read (the report goes on)
with totals per image and per node.

--images is a text file with one image reference per line (# comments and blank lines are
skipped), or the pods of a cluster as 'kubectl get pods -A -o json' prints them: every container
and init container image is taken once, with the pods that use it. Short Docker Hub names
(nginx:1.25) are read as Kubernetes reads them (docker.io/library/nginx:1.25).

--nodes (repeatable) is 'kubectl get nodes -o json' (NFD's labels mapped back to features; some
flags are not labelled by NFD), 'kubectl get nodefeatures -A -o json', a feature or profile file
('compat-attach features', 'nfd export features'), or a directory of such files.

--kubeconfig reads both from a live cluster instead: the pods of every namespace (--namespace/-n
one namespace, --selector/-l those matching a label selector), a page of 500 at a time, taken as
--images takes 'kubectl get pods -A -o json'; and the nodes, as --nodes takes 'kubectl get nodes
-o json', each with the features of its NodeFeature objects instead of its labels when NFD's
NodeFeature CRD (nfd.k8s-sigs.io/v1alpha1) is installed. --kubeconfig alone takes $KUBECONFIG,
else ~/.kube/config, else the service account of the pod it runs in; --kubeconfig FILE (or
--kubeconfig=FILE) that file; --context NAME a context of it (and implies --kubeconfig).
--images (or --spec) or --nodes still replaces its side: --kubeconfig --nodes planned.json checks
the running images against planned nodes, --kubeconfig --images images.txt given images against
the cluster's nodes. The account needs list on pods, nodes and (when installed) nodefeatures.

For an image index, each node gets the manifest of its platform: the compatkit.platform attribute
of its features or the node's kubernetes.io/os and kubernetes.io/arch labels (--platform
replaces them for every node). The manifest's spec and a spec attached to the index must both
hold, as with 'check'.

--baseline gives the nodes as they are today (same shapes as --nodes): the report then lists first
what the migration breaks, the cells that run on the baseline and not on the target. A target node
is compared with the baseline node of the same name, or, when none has its name, with the first
baseline node the image runs on.

Images are resolved concurrently (--concurrency); each distinct spec is compiled once and nodes
with identical features are evaluated once. Progress goes to stderr when it is a terminal.

Exit codes: 0 report printed, 3 with --baseline when the migration breaks at least one image (or
with --fail-on incompatible when any cell is not compatible), 1 error (or with --fail-on
incompatible an ERR cell), 2 usage. In CI, --github-summary gets the Markdown report and
--github-output the totals (compatible, incompatible, nospec, error, breaks).`,
		Example: `  # Which running images can the new machine types run?
  kubectl get pods -A -o json > pods.json
  compat-attach report --images pods.json --nodes examples/profiles/

  # What would moving from today's nodes to Graviton2 break?
  kubectl get nodes -o json > today.json
  compat-attach report --images pods.json --baseline today.json --nodes examples/profiles/aws-c6g-graviton2.json -o markdown

  # A self-contained HTML page, with the SBOMs of the compatible images
  compat-attach report --images images.txt --nodes nodes.json --sboms -o html > report.html

  # The running images and the nodes of the current cluster ($KUBECONFIG or ~/.kube/config)
  compat-attach report --kubeconfig

  # Can the images running in namespace shop (pods labelled tier=web) run on the planned nodes?
  compat-attach report --kubeconfig ~/.kube/prod.yaml --context prod -n shop -l tier=web --nodes planned-nodes.json

  # Can these images run on the cluster's nodes?
  compat-attach report --kubeconfig --images images.txt -o markdown`,
		Args: opts.kube.args,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			cluster := opts.kube.active()
			images := opts.images != "" || len(opts.specFiles) > 0
			switch {
			case opts.images != "" && len(opts.specFiles) > 0:
				return usagef("give --images or --spec, not both")
			case !cluster && (!images || len(opts.nodes) == 0):
				return usageNext(fmt.Errorf("--images (or --spec) and --nodes are required, or --kubeconfig to read either from a cluster"), "compat-attach report --images pods.json --nodes nodes.json, or compat-attach report --kubeconfig")
			case !cluster && (opts.kube.namespace != "" || opts.kube.selector != ""):
				return usagef("--namespace and --selector choose the pods read with --kubeconfig")
			case cluster && images && len(opts.nodes) > 0:
				return usagef("--kubeconfig reads nothing when --images (or --spec) and --nodes are both given: drop one of them")
			case cluster && images && (opts.kube.namespace != "" || opts.kube.selector != ""):
				return usagef("--namespace and --selector choose the pods of the cluster, and --images (or --spec) replaces them")
			case len(opts.specFiles) > 0 && (opts.policy.active() || opts.policy.requireTrusted || opts.sboms):
				return usagef("--spec tries a document: trust policies, --require-trusted and --sboms do not apply")
			}
			if err := oneDocument(opts.specFiles); err != nil {
				return err
			}
			if opts.concurrency < 1 {
				return usagef("--concurrency %d: must be at least 1", opts.concurrency)
			}
			switch opts.failOn {
			case "breaks", "incompatible", "never":
			default:
				return usagef("--fail-on %q: use breaks, incompatible or never", opts.failOn)
			}
			return validateAll(opts.output.validate, opts.platform.validate, opts.policy.validate)
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runReport(cmd, &opts) },
	}
	opts.target.bind(cmd.Flags())
	cmd.Flags().StringArrayVar(&opts.plainHTTPHosts, "plain-http-registry", nil, "talk HTTP to this registry host (e.g. localhost:5000) and HTTPS to the others; repeatable")
	opts.platform.bind(cmd.Flags(), "decide every node for this platform (os/arch[/variant]), as select --platform does; it also stands in for nodes whose platform is unknown")
	opts.policy.bind(cmd.Flags())
	opts.policy.bindRequireTrusted(cmd.Flags())
	cmd.Flags().BoolVar(&opts.noAnnotations, "no-annotations", false, "ignore specs copied into index annotations (compat-attach annotate); read the referrers")
	opts.output.bind(cmd.Flags(), "table", report.Formats...)
	cmd.Flags().StringVar(&opts.images, "images", "", "FILE of image references (one per line) or of pods (kubectl get pods -A -o json); with --kubeconfig: instead of the cluster's pods")
	cmd.Flags().StringArrayVar(&opts.specFiles, "spec", nil, "try this document (.cue, .yaml, .json) on the nodes, as if attached to an image of its shape, instead of --images")
	opts.cue.bind(cmd.Flags())
	cmd.Flags().StringArrayVar(&opts.nodes, "nodes", nil, "nodes, NodeFeatures, feature/profile files or a directory of them; repeatable; with --kubeconfig: instead of the cluster's nodes")
	opts.kube.bind(cmd.Flags())
	cmd.Flags().StringArrayVar(&opts.baseline, "baseline", nil, "the nodes as they are today (same shapes as --nodes): list what the migration breaks; repeatable")
	cmd.Flags().IntVar(&opts.concurrency, "concurrency", report.DefaultConcurrency, "images resolved at once")
	cmd.Flags().BoolVar(&opts.noProgress, "no-progress", false, "print no progress on stderr")
	cmd.Flags().StringVar(&opts.failOn, "fail-on", "breaks", "exit 3 when: breaks (the migration breaks an image; with --baseline), incompatible (any cell is not compatible; an ERR cell exits 1), never")
	opts.ci.Bind(cmd.Flags())
	cmd.Flags().BoolVar(&opts.sboms, "sboms", false, "list the SBOMs (SPDX, CycloneDX referrers; BuildKit attestations) of every image that runs somewhere")
	return cmd
}

func runReport(cmd *cobra.Command, opts *reportOptions) error {
	ctx := cmd.Context()
	trust, err := opts.policy.trust(ctx, &opts.target)
	if err != nil {
		return err
	}
	var clusterImages []report.Image
	var nodes []report.Node
	if len(opts.nodes) > 0 {
		if nodes, err = report.ReadNodes(opts.nodes...); err != nil {
			return withNext(fmt.Errorf("--nodes: %w", err), "give `kubectl get nodes -o json`, `kubectl get nodefeatures -A -o json`, or files of `compat-attach features`")
		}
	}
	if opts.kube.active() {
		// Read what the files do not give: the pods unless --images or --spec, the nodes unless --nodes.
		var clusterNodes []report.Node
		if clusterImages, clusterNodes, err = opts.kube.read(ctx, opts.images != "" || len(opts.specFiles) > 0, len(opts.nodes) > 0); err != nil {
			return err
		}
		if len(opts.nodes) == 0 {
			nodes = clusterNodes
		}
	}
	ro := report.Options{Concurrency: opts.concurrency, SBOMs: opts.sboms, Platform: opts.platform.p,
		RequireTrusted: opts.policy.requireTrusted, IgnoreAnnotations: opts.noAnnotations}
	if len(opts.baseline) > 0 {
		if ro.Baseline, err = report.ReadNodes(opts.baseline...); err != nil {
			return withNext(err, "--baseline takes the same shapes as --nodes")
		}
	}
	var images []report.Image
	var src report.Source
	if len(opts.specFiles) > 0 {
		res, err := author.Compile(ctx, opts.specFiles, opts.cue.options())
		if err != nil {
			return compileNext(err, opts.specFiles[0])
		}
		img, err := decide.DocumentImage(opts.specFiles[0], res, nodePlatforms(append(slices.Clone(nodes), ro.Baseline...), opts.platform.p)...)
		if err != nil {
			return err
		}
		images, src = []report.Image{{Ref: opts.specFiles[0]}}, documentSource{img}
	} else if opts.images == "" {
		images = clusterImages
	} else if images, err = report.ReadImages(opts.images); err != nil {
		return withNext(fmt.Errorf("--images: %w", err), "give one image reference per line, or the output of `kubectl get pods -A -o json`")
	}
	stderr := cmd.ErrOrStderr()
	if !opts.noProgress && isTerminal(display.Raw(stderr)) {
		raw := display.Raw(stderr) // the progress line rewrites itself with \r
		ro.Progress = func(done, total int) {
			fmt.Fprintf(raw, "\rresolving images: %d/%d", done, total)
			if done == total {
				fmt.Fprintln(raw)
			}
		}
	}
	if src == nil {
		oci := &report.OCISource{Options: opts.target.options(ctx), PlainHTTPHosts: opts.plainHTTPHosts, Trust: trust}
		oci.Options.Concurrency = opts.concurrency
		src = oci
	}
	rep, err := report.Build(ctx, src, images, nodes, ro)
	if err != nil {
		return err
	}
	if trust == nil && rep.Summary.DistinctSpecs > 0 && len(opts.specFiles) == 0 {
		cmd.PrintErrln(unverifiedNote)
	}
	if err := report.Write(cmd.OutOrStdout(), rep, opts.output.format); err != nil {
		return err
	}
	t := rep.Summary.Totals
	if t.Error > 0 && t.Compatible+t.Incompatible+t.NoSpec == 0 {
		// Nothing could be evaluated: not a report. Say why from the first error.
		unread := 0
		for _, row := range rep.Images {
			if row.Error != "" {
				unread++
			}
		}
		if unread == len(rep.Images) {
			return &exitError{code: exitFailure, msg: fmt.Sprintf("Error: no image could be read (first: %s): check the references and --plain-http / --oci-layout", display.Line(rep.Images[0].Error))}
		}
		first := ""
		for i := range rep.Images {
			for _, c := range rep.Row(i) {
				if c.Status == report.Error && first == "" {
					first = c.Error
				}
			}
		}
		return &exitError{code: exitFailure, msg: fmt.Sprintf("Error: no cell could be decided (%d error cells; first: %s)", t.Error, display.Line(first))}
	}
	if err := writeReportCI(opts.ci, rep); err != nil {
		return err
	}
	switch opts.failOn {
	case "breaks":
		if rep.Summary.Baseline && rep.Summary.BrokenImages > 0 {
			return &exitError{code: exitIncompatible}
		}
	case "incompatible":
		switch {
		case t.Error > 0:
			return &exitError{code: exitFailure, msg: fmt.Sprintf("Error: %d cells could not be decided (ERR above)", t.Error)}
		case t.Incompatible > 0:
			return &exitError{code: exitIncompatible, msg: fmt.Sprintf("%d cells are not compatible (FAIL above)", t.Incompatible)}
		}
	}
	return nil
}

// kubeconfigDefault is the value of a --kubeconfig given without a file: clientcmd's loading
// rules ($KUBECONFIG, ~/.kube/config) and, when they find nothing, the pod's service account.
const kubeconfigDefault = "default"

// kubeOptions are the flags of report that read the pods and nodes of a live cluster.
type kubeOptions struct {
	kubeconfig string // --kubeconfig: a file, kubeconfigDefault, or "" when not given
	context    string
	namespace  string
	selector   string
}

func (o *kubeOptions) bind(fs *pflag.FlagSet) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "read the pods and nodes of a cluster: from the kubeconfig `FILE`, or alone from $KUBECONFIG, ~/.kube/config or the pod's service account; --images or --nodes still replaces its side")
	fs.Lookup("kubeconfig").NoOptDefVal = kubeconfigDefault
	fs.StringVar(&o.context, "context", "", "use the kubeconfig context `NAME`, not the current one (implies --kubeconfig)")
	fs.StringVarP(&o.namespace, "namespace", "n", "", "with --kubeconfig: read the pods of this namespace only (default: all)")
	fs.StringVarP(&o.selector, "selector", "l", "", "with --kubeconfig: read only the pods matching this label selector (e.g. app=web,tier!=cache)")
}

// active reports whether the cluster is read: --kubeconfig or --context given.
func (o *kubeOptions) active() bool { return o.kubeconfig != "" || o.context != "" }

// args takes the one argument after a --kubeconfig given without "=" as its file (pflag leaves
// it as an argument, --kubeconfig alone being valid), and an empty --kubeconfig as one given
// alone; report takes no other argument.
func (o *kubeOptions) args(cmd *cobra.Command, args []string) error {
	if o.kubeconfig == "" && cmd.Flags().Changed("kubeconfig") {
		o.kubeconfig = kubeconfigDefault // --kubeconfig= or --kubeconfig "$UNSET"
	}
	if len(args) == 1 && o.kubeconfig == kubeconfigDefault {
		o.kubeconfig = args[0]
		return nil
	}
	return cobra.NoArgs(cmd, args)
}

// read connects to the cluster and reads its images (unless skipImages) and nodes (unless
// skipNodes) with report.FromCluster.
func (o *kubeOptions) read(ctx context.Context, skipImages, skipNodes bool) ([]report.Image, []report.Node, error) {
	file := o.kubeconfig
	if file == kubeconfigDefault {
		file = ""
	}
	cfg, err := kubeRESTConfig(file, o.context)
	if err != nil {
		return nil, nil, err
	}
	client, co, err := report.ConnectCluster(cfg)
	if err != nil {
		return nil, nil, err
	}
	co.Namespace, co.Selector, co.SkipImages, co.SkipNodes = o.namespace, o.selector, skipImages, skipNodes
	images, nodes, err := report.FromCluster(ctx, client, co)
	if err != nil {
		return nil, nil, withNext(err, "check that the cluster is reachable (kubectl get nodes) and that the account may list pods, nodes and nodefeatures")
	}
	return images, nodes, nil
}

// writeReportCI writes the report's totals as outputs and the Markdown report as the summary.
func writeReportCI(f ciout.Files, rep *report.Report) error {
	t := rep.Summary.Totals
	for name, v := range map[string]int{"compatible": t.Compatible, "incompatible": t.Incompatible, "nospec": t.NoSpec, "error": t.Error, "breaks": t.Breaks} {
		if err := f.Set(name, fmt.Sprint(v)); err != nil {
			return err
		}
	}
	if f.Summary == "" {
		return nil
	}
	var b strings.Builder
	if err := report.WriteMarkdown(&b, rep); err != nil {
		return err
	}
	return f.AddSummary(b.String())
}

// isTerminal reports whether w is a terminal (progress is printed only there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// documentSource is the report.Source of --spec: the document shaped as an image
// (decide.DocumentImage), whatever the reference.
type documentSource struct{ img *decide.Image }

func (d documentSource) Open(context.Context, string) (*decide.Image, error) { return d.img, nil }

// nodePlatforms returns the platforms the nodes are decided for (--platform, else each node's own
// when known), for decide.DocumentImage.
func nodePlatforms(nodes []report.Node, platform *ocispec.Platform) []ocispec.Platform {
	if platform != nil {
		return []ocispec.Platform{*platform}
	}
	var out []ocispec.Platform
	for _, n := range nodes {
		if p, err := oci.ParsePlatform(n.Platform); err == nil {
			out = append(out, p)
		}
	}
	return out
}
