package report

import (
	"fmt"
	"strings"

	"github.com/compatkit/compatkit/internal/safetext"
	"github.com/compatkit/compatkit/pkg/host"
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
	// Error: the image or a spec that applies could not be read or compiled ("unreadable"), or
	// the node's platform is unknown for an index.
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
	// Score is the chosen manifest's score, when Compatible (decide's rule: its own spec's, else
	// the nearest index spec's), as `check` and `select` give it.
	Score int `json:"score,omitempty"`
	// Platform is the platform of the manifest chosen from an index (the one `select` picks for
	// the node), or of the closest one when none fits.
	Platform string `json:"platform,omitempty"`
	// Position is that manifest's place in the index tree (oci.Tree), -1 for a single manifest or
	// when no manifest is a candidate.
	Position int `json:"position"`
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
	if f.Subject == "index" && (f.Set != "" || f.Rule != "") {
		s = "index spec: " + s // a rule of the index's spec (not the index's platforms) failed
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

// Detail prints the cell with its reason, on one line, with what came from a registry escaped
// (safetext.Line).
func (c *Cell) Detail() string { return safetext.Line(c.detail()) }

func (c *Cell) detail() string {
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

// addN counts n cells of status s.
func (t *Totals) addN(s Status, n int) {
	switch s {
	case Compatible:
		t.Compatible += n
	case Incompatible:
		t.Incompatible += n
	case NoSpec:
		t.NoSpec += n
	default:
		t.Error += n
	}
}

// plus adds u's counts, n times.
func (t *Totals) plus(u Totals, n int) {
	t.Compatible += u.Compatible * n
	t.Incompatible += u.Incompatible * n
	t.NoSpec += u.NoSpec * n
	t.Error += u.Error * n
	t.Breaks += u.Breaks * n
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
	// ImageIndex and NodeIndex locate the cell: Report.Cell(ImageIndex, NodeIndex).
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
			return fmt.Sprintf("no image would break: every image that runs on the %s runs on the %s", plural(s.BaselineNodes, "baseline node"), plural(s.Nodes, "target node"))
		}
		return fmt.Sprintf("%s would break on %s", plural(s.BrokenImages, "image"), plural(s.BrokenNodes, "node"))
	}
	return fmt.Sprintf("%s on %s: %d compatible, %d not compatible, %d without spec, %s",
		plural(s.Images, "image"), plural(s.Nodes, "node"), s.Totals.Compatible, s.Totals.Incompatible, s.Totals.NoSpec, plural(s.Totals.Error, "error"))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Report is the matrix of images by nodes. Cell(i, j) is image i on node j.
//
// The matrix is kept compact: images whose decisions cannot differ (same index tree shape and
// specs) share a row of outcomes, nodes with the same platform and features share a column, so
// 10,000 images on 5,000 nodes hold a few hundred rows by a few hundred columns, not 50 million
// cells. In JSON, each distinct cell is written once in "outcomes" and "cells" holds indexes into
// it (see MarshalJSON).
type Report struct {
	Summary Summary `json:"summary"`
	// Breaks lists the cells the migration breaks (with a baseline), by image then node.
	Breaks []Break    `json:"breaks,omitempty"`
	Images []ImageRow `json:"images"`
	Nodes  []NodeCol  `json:"nodes"`

	// table[rowOf[i]][colOf[j]] is image i on node j.
	table [][]*Cell
	rowOf []int
	colOf []int
}

// Cell returns the outcome of image i (an index of Images) on node j (an index of Nodes). Cells
// with the same outcome are the same pointer; do not modify them. It panics when i or j is out of
// range, as a slice index would.
func (r *Report) Cell(i, j int) *Cell {
	return r.table[r.rowOf[i]][r.colOf[j]]
}

// Row returns the outcomes of image i on every node, in the order of Nodes (a new slice).
func (r *Report) Row(i int) []*Cell {
	row := r.table[r.rowOf[i]]
	out := make([]*Cell, len(r.colOf))
	for j, c := range r.colOf {
		out[j] = row[c]
	}
	return out
}
