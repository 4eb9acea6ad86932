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
// The semantics are pkg/match's and `compat-attach check`'s: for an image index, the manifest of
// the node's platform is chosen (oci.SelectPlatform) and its spec and a spec attached to the index
// itself must both hold; an image without any spec is compatible ("no spec").
package report

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Source resolves images and fetches their specs. OCISource reads registries and layouts; tests
// and caches implement their own.
type Source interface {
	// Fetch resolves ref and fetches the newest spec of the image (or of the index and of the
	// manifest chosen for each of platforms). An error means the image itself could not be
	// resolved; a spec that cannot be read is a Subject.Err.
	Fetch(ctx context.Context, ref string, platforms []string) (*Fetched, error)
}

// Options tune Build.
type Options struct {
	// Concurrency bounds how many images are fetched at once; 0 means 8.
	Concurrency int
	// Platform, when set, replaces every node's platform (as `check --platform` does).
	Platform string
	// Baseline holds the nodes as they are today; the report then lists what breaks.
	Baseline []Node
	// Progress, when set, is called after each image is fetched.
	Progress func(done, total int)
	// SBOMs lists the SBOMs attached to every image that runs on some node; Source must
	// implement SBOMLister.
	SBOMs bool
}

// DefaultConcurrency is Options.Concurrency's default.
const DefaultConcurrency = 8

// Build fetches the images' specs from src and evaluates them on every node.
func Build(ctx context.Context, src Source, images []Image, nodes []Node, opts Options) (*Report, error) {
	if opts.Platform != "" {
		nodes = withPlatform(nodes, opts.Platform)
		opts.Baseline = withPlatform(opts.Baseline, opts.Platform)
	}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	platforms := platformsOf(nodes, opts.Baseline)
	fetched := make([]*Fetched, len(images))
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
			fetched[i], errs[i] = src.Fetch(ctx, images[i].Ref, platforms)
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
	rep := Evaluate(images, fetched, errs, nodes, opts.Baseline)
	if opts.SBOMs {
		lister, ok := src.(SBOMLister)
		if !ok {
			return nil, fmt.Errorf("report: the source cannot list SBOMs")
		}
		listSBOMs(ctx, lister, rep, fetched, conc)
	}
	return rep, nil
}

func withPlatform(nodes []Node, p string) []Node {
	if nodes == nil {
		return nil
	}
	out := make([]Node, len(nodes))
	for i, n := range nodes {
		n.Platform = p
		out[i] = n
	}
	return out
}

func platformsOf(lists ...[]Node) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lists {
		for _, n := range l {
			if n.Platform != "" && !seen[n.Platform] {
				seen[n.Platform] = true
				out = append(out, n.Platform)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Evaluate builds the report from images already fetched: fetched[i] (or errs[i]) is images[i]'s.
// Build calls it after fetching; it is exported for callers that cache Fetched values.
func Evaluate(images []Image, fetched []*Fetched, errs []error, nodes, baseline []Node) *Report {
	e := newEngine()
	rep := &Report{
		Images: make([]ImageRow, len(images)),
		Nodes:  make([]NodeCol, len(nodes)),
		Cells:  make([][]*Cell, len(images)),
	}
	nodeFeat := make([]int, len(nodes))
	for j, n := range nodes {
		nodeFeat[j] = e.feature(n.Features)
		rep.Nodes[j] = NodeCol{Node: n, Group: nodeFeat[j]}
	}
	baseFeat := make([]int, len(baseline))
	for j, n := range baseline {
		baseFeat[j] = e.feature(n.Features)
	}
	imgPlans := make([]map[string]int, len(images)) // platform → plan id
	for i, img := range images {
		rep.Images[i] = ImageRow{Image: img}
		if errs[i] != nil || fetched[i] == nil {
			msg := "no result"
			if errs[i] != nil {
				msg = errs[i].Error()
			}
			rep.Images[i].Error = msg
			imgPlans[i] = map[string]int{"": e.fixedPlan(&Cell{Status: Error, Error: msg})}
			continue
		}
		rep.Images[i].Digest = fetched[i].Digest
		imgPlans[i] = e.plans(fetched[i], nodes, baseline)
	}
	e.evaluateAll(imgPlans, nodes, nodeFeat, baseline, baseFeat)

	var sum Summary
	sum.Images, sum.Nodes = len(images), len(nodes)
	for i := range images {
		row := make([]*Cell, len(nodes))
		for j, n := range nodes {
			c := e.cell(imgPlans[i], n.Platform, nodeFeat[j])
			row[j] = c
			rep.Images[i].Totals.add(c.Status)
			rep.Nodes[j].Totals.add(c.Status)
			sum.Totals.add(c.Status)
		}
		rep.Cells[i] = row
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
			for j, n := range baseline {
				if c := e.cell(imgPlans[i], n.Platform, baseFeat[j]); c.Status.Runs() {
					firstRuns, firstCell = j, c
					break
				}
			}
			if firstRuns < 0 {
				continue // it runs nowhere today: nothing to break
			}
			broken := false
			for j, n := range nodes {
				now := rep.Cells[i][j]
				if now.Status.Runs() || now.Status == Error {
					continue
				}
				was, base := firstCell, baseline[firstRuns].Name
				if k, ok := byName[n.Name]; ok {
					was, base = e.cell(imgPlans[i], baseline[k].Platform, baseFeat[k]), n.Name
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
	return rep
}
