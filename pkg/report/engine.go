package report

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"

	"github.com/compatkit/compatkit/pkg/host"
	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/spec"
)

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
