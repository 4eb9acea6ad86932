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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/compatkit/compatkit/pkg/host"
	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/spec"
)

// Status is the outcome of one image on one node.
type Status string

// The statuses of a cell.
const (
	// Compatible: every spec that applies has a matching compatibility set.
	Compatible Status = "compatible"
	// Incompatible: a spec that applies has no matching set, or an index has no manifest for the
	// node's platform.
	Incompatible Status = "incompatible"
	// NoSpec: no spec is attached; the image is treated as compatible, as runtimes do.
	NoSpec Status = "nospec"
	// Error: the image or its spec could not be read or compiled.
	Error Status = "error"
)

// Runs reports whether an image with this status would be scheduled and run on the node
// (compatible, or no spec).
func (s Status) Runs() bool { return s == Compatible || s == NoSpec }

// Image is one image of the report: a reference and the pods that use it.
type Image struct {
	// Ref is the reference as given (in an images file or a pod's spec).
	Ref string `json:"ref"`
	// Pods lists "namespace/name" of the pods that use the image (from a pod list).
	Pods []string `json:"pods,omitempty"`
}

// Node is one node of the report: a name, its platform and its features.
type Node struct {
	// Name of the node (Kubernetes node name, profile name or file name).
	Name string `json:"name"`
	// Platform is os/arch[/variant]; "" when unknown.
	Platform string `json:"platform,omitempty"`
	// Features of the node.
	Features *host.Features `json:"-"`
	// FromLabels is true when Features were rebuilt from NFD's node labels (lossy, see
	// host.FeaturesFromLabels).
	FromLabels bool `json:"fromLabels,omitempty"`
}

// Cell is the outcome of one image on one node. Cells with the same outcome are shared: do not
// modify them.
type Cell struct {
	Status Status `json:"status"`
	// Score is the lowest score among the specs evaluated (each must hold), when Compatible.
	Score int `json:"score,omitempty"`
	// Platform is the platform of the manifest chosen from an index.
	Platform string `json:"platform,omitempty"`
	// Failure is the first failing rule, when Incompatible.
	Failure *Failure `json:"failure,omitempty"`
	// Error says what could not be read, when Error.
	Error string `json:"error,omitempty"`
}

// Failure is why a cell is Incompatible: the first failing rule and expression of the spec that
// failed (match.Result.FirstFailure), or a missing platform.
type Failure struct {
	// Subject is "manifest" or "index": where the failing spec is attached.
	Subject string `json:"subject,omitempty"`
	// Set is the tag of the closest compatibility set.
	Set string `json:"set,omitempty"`
	// Rule is the name of the first failing rule of that set.
	Rule string `json:"rule,omitempty"`
	// Expression is the failing expression ("cpu.cpuid: AVX2 Exists (not present on the host)").
	Expression string `json:"expression,omitempty"`
}

// String prints the failure on one line.
func (f *Failure) String() string {
	if f == nil {
		return ""
	}
	var parts []string
	if f.Set != "" {
		parts = append(parts, "set "+f.Set)
	}
	if f.Rule != "" {
		parts = append(parts, "rule "+f.Rule)
	}
	s := strings.Join(parts, ", ")
	if f.Expression != "" {
		if s != "" {
			s += ": "
		}
		s += f.Expression
	}
	if f.Subject == "index" {
		s = "index spec: " + s
	}
	return s
}

// Short prints the cell in a few characters, for a matrix: "ok 90", "FAIL", "-" (no spec), "ERR".
func (c *Cell) Short() string {
	switch c.Status {
	case Compatible:
		return fmt.Sprintf("ok %d", c.Score)
	case Incompatible:
		return "FAIL"
	case NoSpec:
		return "-"
	}
	return "ERR"
}

// Detail prints the cell with its reason.
func (c *Cell) Detail() string {
	switch c.Status {
	case Compatible:
		return fmt.Sprintf("compatible (score %d)", c.Score)
	case Incompatible:
		return "not compatible: " + c.Failure.String()
	case NoSpec:
		return "no spec (treated as compatible)"
	}
	return "error: " + c.Error
}

// Totals counts the cells of a row or column by status.
type Totals struct {
	Compatible   int `json:"compatible"`
	Incompatible int `json:"incompatible"`
	NoSpec       int `json:"nospec"`
	Error        int `json:"error"`
	// Breaks counts the cells that run on the baseline but not on the target.
	Breaks int `json:"breaks,omitempty"`
}

func (t *Totals) add(s Status) {
	switch s {
	case Compatible:
		t.Compatible++
	case Incompatible:
		t.Incompatible++
	case NoSpec:
		t.NoSpec++
	default:
		t.Error++
	}
}

// ImageRow is one image of the report with its totals.
type ImageRow struct {
	Image
	// Digest of the resolved manifest or index.
	Digest string `json:"digest,omitempty"`
	// Error says why the image could not be resolved (all its cells are Error).
	Error  string `json:"error,omitempty"`
	Totals Totals `json:"totals"`
	// SBOMs attached to the image (Options.SBOMs, compatible images only).
	SBOMs []SBOM `json:"sboms,omitempty"`
	// SBOMError says why the SBOMs could not be listed.
	SBOMError string `json:"sbomError,omitempty"`
}

// NodeCol is one node of the report with its totals.
type NodeCol struct {
	Node
	// Group numbers the distinct feature sets: nodes with the same Group have identical features.
	Group  int    `json:"group"`
	Totals Totals `json:"totals"`
}

// Break is a cell that runs on the baseline but not on the target: what the migration breaks.
type Break struct {
	Image string `json:"image"`
	Node  string `json:"node"`
	// Baseline is the baseline node the image runs on today: the node of the same name, or the
	// first baseline node it runs on when the target node has no namesake.
	Baseline string `json:"baseline"`
	Was      *Cell  `json:"was"`
	Now      *Cell  `json:"now"`
	// ImageIndex and NodeIndex locate the cell in Report.Cells.
	ImageIndex int `json:"imageIndex"`
	NodeIndex  int `json:"nodeIndex"`
}

// Summary sums the report up.
type Summary struct {
	Images              int    `json:"images"`
	Nodes               int    `json:"nodes"`
	DistinctSpecs       int    `json:"distinctSpecs"`
	DistinctFeatureSets int    `json:"distinctFeatureSets"`
	Totals              Totals `json:"totals"`
	// Baseline is true when a baseline was given; the fields below count what breaks.
	Baseline      bool `json:"baseline"`
	BrokenImages  int  `json:"brokenImages,omitempty"`
	BrokenNodes   int  `json:"brokenNodes,omitempty"`
	BaselineNodes int  `json:"baselineNodes,omitempty"`
}

// String prints "3 images would break on 12 nodes" (with a baseline) or the totals.
func (s Summary) String() string {
	if s.Baseline {
		if s.BrokenImages == 0 {
			return fmt.Sprintf("no image would break: every image that runs on the %d baseline nodes runs on the %d target nodes", s.BaselineNodes, s.Nodes)
		}
		return fmt.Sprintf("%s would break on %s", plural(s.BrokenImages, "image"), plural(s.BrokenNodes, "node"))
	}
	return fmt.Sprintf("%s on %s: %d compatible, %d not compatible, %d without spec, %d errors",
		plural(s.Images, "image"), plural(s.Nodes, "node"), s.Totals.Compatible, s.Totals.Incompatible, s.Totals.NoSpec, s.Totals.Error)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Report is the matrix of images by nodes.
type Report struct {
	Summary Summary `json:"summary"`
	// Breaks lists the cells the migration breaks (with a baseline), by image then node.
	Breaks []Break    `json:"breaks,omitempty"`
	Images []ImageRow `json:"images"`
	Nodes  []NodeCol  `json:"nodes"`
	// Cells[i][j] is image i on node j. In JSON, each distinct cell is written once in
	// "outcomes" and "cells" holds indexes into it (see MarshalJSON).
	Cells [][]*Cell `json:"-"`
}

// Subject is one manifest or index of a fetched image and its newest spec.
type Subject struct {
	// Digest of the manifest or index.
	Digest string
	// Platform of a manifest chosen from an index.
	Platform string
	// Spec is the newest spec; nil with Err nil when none is attached.
	Spec *spec.Spec
	// Err is set when the spec is attached but unreadable (or the referrers cannot be listed).
	Err error
}

// Fetched is an image resolved, with the specs that apply to each requested platform.
type Fetched struct {
	// Digest of the resolved manifest or index.
	Digest string
	// Index is the index itself (with the spec attached to it), nil for a single manifest.
	Index *Subject
	// Manifest is the single manifest when Index is nil.
	Manifest *Subject
	// Platforms maps each requested platform to the manifest the index gives for it; a platform
	// absent from the map has no manifest in the index.
	Platforms map[string]*Subject
}

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

// engine holds what is computed once: programs by spec content, feature sets by hash, plans (the
// programs that apply to one image on one platform), and cells by plan and feature set.
type engine struct {
	progIdx map[string]int
	progs   []*match.FastProgram
	progErr []error
	byPtr   map[*spec.Spec]int

	featIdx map[string]int
	feats   []*host.Features

	planIdx map[string]int
	plans_  []plan
	// cells[plan][feat], filled by evaluateAll.
	cells [][]*Cell
}

// plan is what applies to an image on one platform: a fixed cell (error, no spec, no manifest for
// the platform), or programs to evaluate, all of which must hold.
type plan struct {
	fixed    *Cell
	progs    []int
	subjects []string // "manifest" or "index", parallel to progs
	platform string
}

func newEngine() *engine {
	return &engine{progIdx: map[string]int{}, byPtr: map[*spec.Spec]int{}, featIdx: map[string]int{}, planIdx: map[string]int{}}
}

// feature returns the id of f's distinct feature set.
func (e *engine) feature(f *host.Features) int {
	if f == nil {
		f = &host.Features{}
	}
	b, _ := json.Marshal(f) // maps marshal with sorted keys: equal features, equal bytes
	sum := sha256.Sum256(b)
	k := string(sum[:])
	if id, ok := e.featIdx[k]; ok {
		return id
	}
	e.featIdx[k] = len(e.feats)
	e.feats = append(e.feats, f)
	return len(e.feats) - 1
}

// program returns the id of s's compiled program, compiling each distinct spec once.
func (e *engine) program(s *spec.Spec) int {
	if id, ok := e.byPtr[s]; ok {
		return id
	}
	b, _ := json.Marshal(s)
	sum := sha256.Sum256(b)
	k := hex.EncodeToString(sum[:])
	id, ok := e.progIdx[k]
	if !ok {
		p, err := match.Compile(s)
		var fp *match.FastProgram
		if err == nil {
			fp = p.Fast()
		}
		id = len(e.progs)
		e.progIdx[k] = id
		e.progs = append(e.progs, fp)
		e.progErr = append(e.progErr, err)
	}
	e.byPtr[s] = id
	return id
}

func (e *engine) addPlan(key string, p plan) int {
	if id, ok := e.planIdx[key]; ok {
		return id
	}
	e.planIdx[key] = len(e.plans_)
	e.plans_ = append(e.plans_, p)
	return len(e.plans_) - 1
}

func (e *engine) fixedPlan(c *Cell) int {
	return e.addPlan(fmt.Sprintf("fixed\x00%s\x00%s\x00%s", c.Status, c.Error, c.Failure.String()), plan{fixed: c})
}

// plans returns the plan of f for each platform of nodes and baseline ("" for nodes without one).
func (e *engine) plans(f *Fetched, lists ...[]Node) map[string]int {
	out := map[string]int{}
	if f.Index == nil {
		id := e.subjectPlan(f.Manifest, nil, "")
		out[""] = id
		return out
	}
	for _, l := range lists {
		for _, n := range l {
			if _, ok := out[n.Platform]; ok {
				continue
			}
			if n.Platform == "" {
				out[""] = e.fixedPlan(&Cell{Status: Error, Error: "the image is an index and the node's platform is unknown: give the node a compatkit.platform attribute or a kubernetes.io/arch label, or pass --platform"})
				continue
			}
			m, ok := f.Platforms[n.Platform]
			if !ok || m == nil {
				out[n.Platform] = e.fixedPlan(&Cell{Status: Incompatible, Platform: n.Platform,
					Failure: &Failure{Subject: "index", Expression: "the index has no manifest for " + n.Platform}})
				continue
			}
			pl := m.Platform
			if pl == "" {
				pl = n.Platform
			}
			out[n.Platform] = e.subjectPlan(m, f.Index, pl)
		}
	}
	return out
}

func (e *engine) subjectPlan(m, idx *Subject, platform string) int {
	var p plan
	p.platform = platform
	for _, s := range []struct {
		sub  *Subject
		name string
	}{{m, "manifest"}, {idx, "index"}} {
		if s.sub == nil {
			continue
		}
		if s.sub.Err != nil {
			return e.fixedPlan(&Cell{Status: Error, Platform: platform, Error: s.name + " spec: " + s.sub.Err.Error()})
		}
		if s.sub.Spec == nil {
			continue
		}
		id := e.program(s.sub.Spec)
		if err := e.progErr[id]; err != nil {
			return e.fixedPlan(&Cell{Status: Error, Platform: platform, Error: s.name + " spec " + s.sub.Digest + ": " + err.Error()})
		}
		p.progs = append(p.progs, id)
		p.subjects = append(p.subjects, s.name)
	}
	if len(p.progs) == 0 {
		return e.fixedPlan(&Cell{Status: NoSpec, Platform: platform})
	}
	return e.addPlan(fmt.Sprint(platform, p.progs, p.subjects), p)
}

// cell returns the cell of plan set ps on a node of platform with feature set feat.
func (e *engine) cell(ps map[string]int, platform string, feat int) *Cell {
	id, ok := ps[platform]
	if !ok {
		id = ps[""]
	}
	p := &e.plans_[id]
	if p.fixed != nil {
		return p.fixed
	}
	return e.cells[id][feat]
}

// evaluateAll fills e.cells for every (plan, feature set) pair that some cell needs, on all CPUs.
func (e *engine) evaluateAll(imgPlans []map[string]int, nodes []Node, nodeFeat []int, baseline []Node, baseFeat []int) {
	e.cells = make([][]*Cell, len(e.plans_))
	need := make([][]bool, len(e.plans_))
	type pair struct{ plan, feat int }
	var work []pair
	mark := func(ps map[string]int, platform string, feat int) {
		id, ok := ps[platform]
		if !ok {
			id = ps[""]
		}
		if e.plans_[id].fixed != nil {
			return
		}
		if need[id] == nil {
			need[id] = make([]bool, len(e.feats))
			e.cells[id] = make([]*Cell, len(e.feats))
		}
		if !need[id][feat] {
			need[id][feat] = true
			work = append(work, pair{id, feat})
		}
	}
	// Distinct (platform, feature set) pairs of the nodes, so that a million cells cost a
	// thousand map lookups per image at most.
	type pf struct {
		platform string
		feat     int
	}
	var cols []pf
	seen := map[pf]bool{}
	for j, n := range nodes {
		k := pf{n.Platform, nodeFeat[j]}
		if !seen[k] {
			seen[k] = true
			cols = append(cols, k)
		}
	}
	for j, n := range baseline {
		k := pf{n.Platform, baseFeat[j]}
		if !seen[k] {
			seen[k] = true
			cols = append(cols, k)
		}
	}
	for _, ps := range imgPlans {
		for _, c := range cols {
			mark(ps, c.platform, c.feat)
		}
	}
	// Results of one program on one feature set are shared by every plan that uses the program.
	type res struct {
		once sync.Once
		r    *match.Result
		err  error
	}
	results := make([][]res, len(e.progs))
	for i := range results {
		results[i] = make([]res, len(e.feats))
	}
	eval := func(prog, feat int) (*match.Result, error) {
		r := &results[prog][feat]
		r.once.Do(func() { r.r, r.err = e.progs[prog].Verdict(e.feats[feat]) })
		return r.r, r.err
	}
	workers := runtime.GOMAXPROCS(0)
	if workers > len(work) {
		workers = len(work)
	}
	var wg sync.WaitGroup
	next := make(chan pair, 64)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pr := range next {
				e.cells[pr.plan][pr.feat] = e.evalPlan(&e.plans_[pr.plan], pr.feat, eval)
			}
		}()
	}
	for _, pr := range work {
		next <- pr
	}
	close(next)
	wg.Wait()
}

func (e *engine) evalPlan(p *plan, feat int, eval func(prog, feat int) (*match.Result, error)) *Cell {
	c := &Cell{Status: Compatible, Platform: p.platform}
	for i, prog := range p.progs {
		r, err := eval(prog, feat)
		if err != nil {
			return &Cell{Status: Error, Platform: p.platform, Error: p.subjects[i] + " spec: " + err.Error()}
		}
		if !r.Compatible {
			// Explain only the failures, and only the rule reported.
			f := &Failure{Subject: p.subjects[i]}
			set, rule, ff, _ := e.progs[prog].FirstFailure(e.feats[feat], r)
			f.Set, f.Rule = set, rule
			if ff != nil {
				f.Expression = ff.String()
			}
			return &Cell{Status: Incompatible, Platform: p.platform, Failure: f}
		}
		if i == 0 || r.Score < c.Score {
			c.Score = r.Score
		}
	}
	return c
}
