// Package report evaluates many images against many nodes at once, for a cluster administrator
// before a migration (new OS version, new CPUs, GPUs or NICs): a matrix of images by nodes whose
// cells say compatible (with the score), not compatible (with the first failing rule and
// expression), no spec, or error (the spec could not be read), with totals per image and per node,
// and, given the nodes as they are today (the baseline), the cells that the migration breaks.
//
// It is built for scale: images are resolved and their specs fetched concurrently (a bounded
// number at once), each distinct spec is compiled once (match.Compile), nodes with identical
// features are evaluated once (they are grouped by a hash of their features), and identical cells
// are shared. A thousand images on a thousand nodes take well under a second from cached specs.
//
// Every cell is a decision of pkg/decide, the one `compat-attach check` and `select` make: for an
// image index, the node gets the manifest select would pick for it (the platform is a requirement:
// a linux/amd64/v3 entry is never given to a node without AVX2), the specs of that manifest and of
// the indexes above it must all hold, and the score is decide's; an image without any spec is
// compatible ("no spec"); a spec that cannot be read is an error, never "no spec".
package report

import (
	"context"
	"fmt"
	"sort"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/oci"
)

// Source opens the images of a report. OCISource reads registries and layouts; a cache or a test
// implements its own (decide.NewImage makes an Image from what was read before).
type Source interface {
	// Open resolves ref and reads its index tree (decide.Open). An error means the image itself
	// could not be read; a spec that cannot be read makes the cells it applies to Error.
	Open(ctx context.Context, ref string) (*decide.Image, error)
}

// Options tune Build.
type Options struct {
	// Concurrency bounds how many images are read at once; 0 means 8.
	Concurrency int
	// Platform, when set, is the platform every node is asked for (as `select --platform` and
	// `check --platform` do): the index entries a host of that platform runs are the candidates,
	// and each must still run on the node itself. It also stands in for the platform of a node
	// whose platform is unknown.
	Platform *ocispec.Platform
	// RequireTrusted, with a Source under a trust policy, makes an image that no trusted spec
	// covers not compatible (decide.Options.RequireTrusted).
	RequireTrusted bool
	// IgnoreAnnotations reads the referrers even when an index carries its specs in annotations.
	IgnoreAnnotations bool
	// Baseline holds the nodes as they are today; the report then lists what breaks.
	Baseline []Node
	// Progress, when set, is called after each image is read.
	Progress func(done, total int)
	// SBOMs lists the SBOMs attached to every image that runs on some node; Source must
	// implement SBOMLister.
	SBOMs bool
}

// DefaultConcurrency is Options.Concurrency's default.
const DefaultConcurrency = 8

// decideOptions are the decision options of every cell.
func (o *Options) decideOptions() decide.Options {
	d := decide.Options{Platform: o.Platform, RequireTrusted: o.RequireTrusted}
	if o.IgnoreAnnotations {
		d.Annotations = decide.AnnotationsIgnore
	}
	return d
}

// Build opens the images from src, reads the specs the nodes' decisions need, and decides every
// image on every node (decide.Image.Decide: the manifest select picks, the verdict and score check
// gives).
func Build(ctx context.Context, src Source, images []Image, nodes []Node, opts Options) (*Report, error) {
	nodes, opts.Baseline = withPlatform(nodes, opts.Platform), withPlatform(opts.Baseline, opts.Platform)
	conc := opts.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	platforms := platformsOf(nodes, opts.Baseline)
	dopts := opts.decideOptions()
	opened := make([]*decide.Image, len(images))
	specs := make([][]*decide.SubjectSpec, len(images))
	errs := make([]error, len(images))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
	)
	sem := make(chan struct{}, conc)
	for i := range images {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if opened[i], errs[i] = src.Open(ctx, images[i].Ref); errs[i] == nil {
				specs[i] = opened[i].Prefetch(ctx, dopts, platforms...)
			}
			if opts.Progress != nil {
				mu.Lock()
				done++
				opts.Progress(done, len(images))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep, err := evaluate(ctx, images, opened, specs, errs, nodes, opts)
	if err != nil {
		return nil, err
	}
	if opts.SBOMs {
		lister, ok := src.(SBOMLister)
		if !ok {
			return nil, fmt.Errorf("report: the source cannot list SBOMs")
		}
		listSBOMs(ctx, lister, rep, opened, conc)
	}
	return rep, nil
}

// withPlatform gives nodes whose platform is unknown the platform p (nil: nothing changes).
func withPlatform(nodes []Node, p *ocispec.Platform) []Node {
	if nodes == nil || p == nil {
		return nodes
	}
	out := make([]Node, len(nodes))
	for i, n := range nodes {
		if n.Platform == "" {
			hp := decide.NewHost(n.Name, n.Features, p).Platform
			n.Platform = oci.FormatPlatform(&hp)
		}
		out[i] = n
	}
	return out
}

func platformsOf(lists ...[]Node) []ocispec.Platform {
	seen := map[string]bool{}
	var out []ocispec.Platform
	for _, l := range lists {
		for _, n := range l {
			if n.Platform != "" && !seen[n.Platform] {
				seen[n.Platform] = true
				if p, err := oci.ParsePlatform(n.Platform); err == nil {
					out = append(out, p)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return oci.FormatPlatform(&out[i]) < oci.FormatPlatform(&out[j]) })
	return out
}

// evaluate builds the report from images already opened and prefetched: opened[i] (or errs[i])
// is images[i]'s, specs[i] what Prefetch returned for it.
func evaluate(ctx context.Context, images []Image, opened []*decide.Image, specs [][]*decide.SubjectSpec, errs []error, nodes []Node, opts Options) (*Report, error) {
	baseline := opts.Baseline
	e := newEngine(opts.decideOptions())
	rep := &Report{
		Images: make([]ImageRow, len(images)),
		Nodes:  make([]NodeCol, len(nodes)),
		rowOf:  make([]int, len(images)),
		colOf:  make([]int, len(nodes)),
	}
	for j, n := range nodes {
		rep.colOf[j] = e.column(n.Platform, n.Features)
		rep.Nodes[j] = NodeCol{Node: n, Group: e.cols[rep.colOf[j]].feat}
	}
	baseCol := make([]int, len(baseline))
	for j, n := range baseline {
		baseCol[j] = e.column(n.Platform, n.Features)
	}
	for i, img := range images {
		rep.Images[i] = ImageRow{Image: img}
		if errs[i] != nil || opened[i] == nil {
			msg := "no result"
			if errs[i] != nil {
				msg = errs[i].Error()
			}
			rep.Images[i].Error = msg
			rep.rowOf[i] = e.fixedShape(&Cell{Status: Error, Position: -1, Error: msg})
			continue
		}
		rep.Images[i].Digest = opened[i].Tree.Root.Digest.String()
		rep.rowOf[i] = e.imageShape(opened[i], specs[i])
	}
	used := make([]int, 0, len(e.cols))
	for c := range e.cols {
		used = append(used, c)
	}
	e.evaluateAll(ctx, used)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep.table = make([][]*Cell, len(e.shapes))
	for s := range e.shapes {
		rep.table[s] = make([]*Cell, len(e.cols))
		for c := range e.cols {
			rep.table[s][c] = e.at(s, c)
		}
	}

	// Totals by (row, column) pair, weighted by how many images share the row and how many nodes
	// the column: the work grows with distinct rows x distinct columns, not images x nodes.
	imagesIn := make([]int, len(rep.table))
	for _, r := range rep.rowOf {
		imagesIn[r]++
	}
	nodesIn := make([]int, len(e.cols))
	for _, c := range rep.colOf {
		nodesIn[c]++
	}
	rowTotals := make([]Totals, len(rep.table))
	colTotals := make([]Totals, len(e.cols))
	for r, row := range rep.table {
		for c, cell := range row {
			rowTotals[r].addN(cell.Status, nodesIn[c])
			colTotals[c].addN(cell.Status, imagesIn[r])
		}
	}
	var sum Summary
	sum.Images, sum.Nodes = len(images), len(nodes)
	for i := range images {
		rep.Images[i].Totals = rowTotals[rep.rowOf[i]]
	}
	for j := range nodes {
		rep.Nodes[j].Totals = colTotals[rep.colOf[j]]
	}
	for r := range rep.table {
		sum.Totals.plus(rowTotals[r], imagesIn[r])
	}
	if baseline != nil {
		sum.Baseline = true
		sum.BaselineNodes = len(baseline)
		byName := make(map[string]int, len(baseline))
		for j, n := range baseline {
			if _, ok := byName[n.Name]; !ok {
				byName[n.Name] = j
			}
		}
		brokenNodes := map[int]bool{}
		for i := range images {
			firstRuns := -1 // first baseline node the image runs on
			var firstCell *Cell
			for j := range baseline {
				if c := e.at(rep.rowOf[i], baseCol[j]); c.Status.Runs() {
					firstRuns, firstCell = j, c
					break
				}
			}
			if firstRuns < 0 {
				continue // it runs nowhere today: nothing to break
			}
			broken := false
			for j, n := range nodes {
				now := rep.Cell(i, j)
				if now.Status.Runs() || now.Status == Error {
					continue
				}
				was, base := firstCell, baseline[firstRuns].Name
				if k, ok := byName[n.Name]; ok {
					was, base = e.at(rep.rowOf[i], baseCol[k]), n.Name
					if !was.Status.Runs() {
						continue
					}
				}
				rep.Breaks = append(rep.Breaks, Break{Image: images[i].Ref, Node: n.Name, Baseline: base, Was: was, Now: now, ImageIndex: i, NodeIndex: j})
				rep.Images[i].Totals.Breaks++
				rep.Nodes[j].Totals.Breaks++
				sum.Totals.Breaks++
				brokenNodes[j] = true
				broken = true
			}
			if broken {
				sum.BrokenImages++
			}
		}
		sum.BrokenNodes = len(brokenNodes)
		SortBreaksFirst(rep)
	}
	sum.DistinctSpecs = len(e.progs)
	sum.DistinctFeatureSets = len(e.feats)
	rep.Summary = sum
	return rep, nil
}
