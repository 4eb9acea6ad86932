package report

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/host"
	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

// engine computes each distinct outcome once: programs by spec content, feature sets by hash,
// shapes (images whose trees and specs are alike decide alike), columns (a node's platform and
// feature set), and cells by shape and column. Every cell is a decide.Decision, so a cell says
// what `select` and `check` say for that image on that node.
type engine struct {
	opts decide.Options

	progMu  sync.RWMutex
	progIdx map[string]int
	progs   []*match.FastProgram
	progErr []error
	byPtr   map[*spec.Spec]int

	featIdx   map[string]int
	feats     []*host.Features
	featByPtr map[*host.Features]int

	shapeIdx map[string]int
	shapes   []shape

	colIdx map[column]int
	cols   []column

	// cells[shape][col], filled by evaluateAll.
	cells [][]*Cell

	results sync.Map // resultKey → *result

	internMu sync.Mutex
	intern   map[string]*Cell
}

// shape is a representative image of every image that decides alike, or a fixed cell.
type shape struct {
	img   *decide.Image
	fixed *Cell
}

// column is what a decision needs of a node: its platform and its feature set.
type column struct {
	platform string
	feat     int
}

type resultKey struct{ prog, feat int }

type result struct {
	once sync.Once
	r    *match.Result
	err  error
}

func newEngine(opts decide.Options) *engine {
	return &engine{opts: opts, progIdx: map[string]int{}, byPtr: map[*spec.Spec]int{}, featIdx: map[string]int{},
		featByPtr: map[*host.Features]int{}, shapeIdx: map[string]int{}, colIdx: map[column]int{}, intern: map[string]*Cell{}}
}

// feature returns the id of f's distinct feature set.
func (e *engine) feature(f *host.Features) int {
	if f == nil {
		f = &host.Features{}
	}
	if id, ok := e.featByPtr[f]; ok {
		return id
	}
	b, _ := json.Marshal(f) // maps marshal with sorted keys: equal features, equal bytes
	sum := sha256.Sum256(b)
	k := string(sum[:])
	id, ok := e.featIdx[k]
	if !ok {
		id = len(e.feats)
		e.featIdx[k] = id
		e.feats = append(e.feats, f)
	}
	e.featByPtr[f] = id
	return id
}

// column returns the id of a node's column.
func (e *engine) column(platform string, f *host.Features) int {
	c := column{platform: platform, feat: e.feature(f)}
	if id, ok := e.colIdx[c]; ok {
		return id
	}
	e.colIdx[c] = len(e.cols)
	e.cols = append(e.cols, c)
	return len(e.cols) - 1
}

// program returns the id of s's compiled program, compiling each distinct spec once.
func (e *engine) program(s *spec.Spec) int {
	e.progMu.RLock()
	id, ok := e.byPtr[s]
	e.progMu.RUnlock()
	if ok {
		return id
	}
	e.progMu.Lock()
	defer e.progMu.Unlock()
	if id, ok := e.byPtr[s]; ok {
		return id
	}
	b, _ := json.Marshal(s)
	sum := sha256.Sum256(b)
	k := hex.EncodeToString(sum[:])
	id, ok = e.progIdx[k]
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

func (e *engine) prog(id int) (*match.FastProgram, error) {
	e.progMu.RLock()
	defer e.progMu.RUnlock()
	return e.progs[id], e.progErr[id]
}

// evaluate is the decisions' Evaluator: each program is run once per distinct feature set.
func (e *engine) evaluate(s *spec.Spec, f *host.Features) (*match.Result, error) {
	id := e.program(s)
	fp, err := e.prog(id)
	if err != nil {
		return nil, err
	}
	feat, ok := e.featByPtr[f] // read-only while cells are evaluated
	if !ok {
		return fp.Verdict(f)
	}
	v, _ := e.results.LoadOrStore(resultKey{id, feat}, &result{})
	r := v.(*result)
	r.once.Do(func() { r.r, r.err = fp.Verdict(f) })
	return r.r, r.err
}

// fixedShape returns a shape whose every cell is c.
func (e *engine) fixedShape(c *Cell) int {
	return e.addShape(fmt.Sprintf("fixed\x00%s\x00%s\x00%s", c.Status, c.Error, c.Failure.String()), shape{fixed: e.cell(c)})
}

func (e *engine) addShape(key string, s shape) int {
	if id, ok := e.shapeIdx[key]; ok {
		return id
	}
	e.shapeIdx[key] = len(e.shapes)
	e.shapes = append(e.shapes, s)
	return len(e.shapes) - 1
}

// imageShape returns the shape of img whose prefetched specs are specs: images with the same tree
// shape (platforms, nesting) and the same spec states and contents decide alike.
func (e *engine) imageShape(img *decide.Image, specs []*decide.SubjectSpec) int {
	label := map[string]string{img.Tree.Root.Digest.String(): "r"}
	var b strings.Builder
	for i, d := range img.Tree.Indexes {
		label[d.Digest.String()] = fmt.Sprintf("i%d", i)
	}
	fmt.Fprintf(&b, "%s|%d|", img.Tree.Root.MediaType, len(img.Tree.Indexes))
	for _, m := range img.Tree.Manifests {
		if _, ok := label[m.Descriptor.Digest.String()]; !ok {
			label[m.Descriptor.Digest.String()] = fmt.Sprintf("m%d", m.Position)
		}
		p := m.Descriptor.Platform
		if p == nil {
			p = &ocispec.Platform{}
		}
		// The raw fields, quoted: a hostile architecture "amd64/v3" must not share a shape with
		// amd64 variant v3.
		fmt.Fprintf(&b, "m%d=%q,%q,%q,%v,%d;", m.Position, p.OS, p.Architecture, p.Variant, m.Attestation(), len(m.Indexes))
	}
	for _, s := range specs {
		// Everything of a SubjectSpec that a decision reads is in the key: the signed platform
		// of a single manifest is a requirement.
		fmt.Fprintf(&b, "|%s:%s:%v:%v:%v:%q", label[s.Subject.Digest.String()], s.State, s.Verified, s.FromAnnotation, s.FromAttestation, s.Platform)
		switch s.State {
		case decide.SpecFound:
			fmt.Fprintf(&b, ":p%d", e.program(s.Spec))
		case decide.SpecUnreadable, decide.SpecUntrusted:
			fmt.Fprintf(&b, ":%v", s.Err)
		}
	}
	return e.addShape(b.String(), shape{img: img})
}

// cell interns c: cells with the same outcome are one pointer (Report's JSON writes each once).
func (e *engine) cell(c *Cell) *Cell {
	k := fmt.Sprintf("%s\x00%d\x00%s\x00%d\x00%s\x00%s", c.Status, c.Score, c.Platform, c.Position, c.Error, c.Failure.String())
	if c.Failure != nil {
		k += "\x00" + c.Failure.Subject
	}
	e.internMu.Lock()
	defer e.internMu.Unlock()
	if x, ok := e.intern[k]; ok {
		return x
	}
	e.intern[k] = c
	return c
}

// at returns the cell of shape s in column c.
func (e *engine) at(s, c int) *Cell {
	if f := e.shapes[s].fixed; f != nil {
		return f
	}
	return e.cells[s][c]
}

// evaluateAll fills e.cells for every (shape, column) pair, on all CPUs.
func (e *engine) evaluateAll(ctx context.Context, used []int) {
	e.cells = make([][]*Cell, len(e.shapes))
	type pair struct{ shape, col int }
	var work []pair
	for s := range e.shapes {
		if e.shapes[s].fixed != nil {
			continue
		}
		e.cells[s] = make([]*Cell, len(e.cols))
		for _, c := range used {
			work = append(work, pair{s, c})
		}
	}
	platforms := make([]ocispec.Platform, len(e.cols))
	for i, c := range e.cols {
		if c.platform != "" {
			platforms[i], _ = oci.ParsePlatform(c.platform)
		}
	}
	opts := e.opts
	opts.Evaluate = e.evaluate
	workers := min(runtime.GOMAXPROCS(0), len(work))
	var wg sync.WaitGroup
	next := make(chan pair, 64)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pr := range next {
				col := e.cols[pr.col]
				h := decide.Host{Name: "node", Features: e.feats[col.feat], Platform: platforms[pr.col]}
				d, err := e.shapes[pr.shape].img.Decide(ctx, h, opts)
				e.cells[pr.shape][pr.col] = e.cellOf(d, err, col.feat)
			}
		}()
	}
	for _, pr := range work {
		next <- pr
	}
	close(next)
	wg.Wait()
}

// cellOf turns a decision into a cell, explaining a failing rule with its first failing expression.
func (e *engine) cellOf(d *decide.Decision, err error, feat int) *Cell {
	switch {
	case err != nil:
		msg := err.Error()
		if strings.Contains(msg, decide.ErrNoHostPlatform.Error()) {
			msg = "the image is an index and the node's platform is unknown: give the node a compatkit.platform attribute or a kubernetes.io/arch label, or pass --platform"
		}
		return e.cell(&Cell{Status: Error, Position: -1, Error: msg})
	case d.Selected != nil:
		c := &Cell{Status: Compatible, Score: d.Selected.Score, Platform: d.Selected.Platform, Position: position(d, d.Selected)}
		if d.Selected.Verdict == decide.NoSpec {
			c.Status, c.Score = NoSpec, 0
		}
		return e.cell(c)
	case len(d.Candidates) == 0:
		return e.cell(&Cell{Status: Incompatible, Position: -1, Failure: &Failure{Subject: "index", Expression: "the index has no manifest for " + d.Platform}})
	case d.Unreadable():
		for _, c := range d.Candidates {
			if c.Verdict == decide.Unreadable {
				return e.cell(&Cell{Status: Error, Platform: c.Platform, Position: position(d, &c), Error: c.Reason})
			}
		}
	}
	best := d.Best()
	c := &Cell{Status: Incompatible, Platform: best.Platform, Position: position(d, best)}
	for _, a := range best.Specs {
		if a.Result == nil || a.Result.Compatible {
			continue
		}
		f := &Failure{Subject: a.Role}
		if fp, err := e.prog(e.program(a.Spec)); err == nil && fp != nil {
			set, rule, ff, _ := fp.FirstFailure(e.feats[feat], a.Result)
			f.Set, f.Rule = set, rule
			if ff != nil {
				f.Expression = ff.String()
			}
		}
		c.Failure = f
		return e.cell(c)
	}
	c.Failure = &Failure{Subject: "manifest", Expression: best.Reason}
	return e.cell(c)
}

// position is the candidate's place in the index tree, -1 for a single manifest.
func position(d *decide.Decision, c *decide.Candidate) int {
	if c.Platform == "" && !oci.IsIndex(d.Root.MediaType) {
		return -1
	}
	return c.Position
}
