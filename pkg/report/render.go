package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/compatkit/compatkit/internal/safetext"
)

// Formats lists the output formats Write accepts.
var Formats = []string{"table", "json", "markdown", "html"}

// Write prints rep in format (one of Formats).
func Write(w io.Writer, rep *Report, format string) error {
	switch format {
	case "table":
		return WriteTable(w, rep)
	case "json":
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		if len(rep.Images)*len(rep.Nodes) <= 10000 {
			enc.SetIndent("", "  ") // large matrices stay compact
		}
		if err := enc.Encode(rep); err != nil {
			return err
		}
		// Strings from registries may hold characters a terminal acts on: \u escapes, still JSON.
		_, err := w.Write(safetext.JSON(b.Bytes()))
		return err
	case "markdown":
		return WriteMarkdown(w, rep)
	case "html":
		return WriteHTML(w, rep)
	}
	return fmt.Errorf("unknown report format %q: use one of %v", format, Formats)
}

// reason is one distinct explanation of non-running cells of an image, with the nodes it applies to.
type reason struct {
	Image  string
	Detail string
	Nodes  []string
}

// reasons groups the incompatible and error cells of each image by their explanation. Images that
// share a row of the matrix share its reasons: the work grows with distinct rows, not images.
func reasons(rep *Report) []reason {
	type rowReason struct {
		detail string
		nodes  []string
	}
	byRow := map[int][]rowReason{}
	details := map[*Cell]string{}
	var out []reason
	for i := range rep.Images {
		r := rep.rowOf[i]
		rr, ok := byRow[r]
		if !ok {
			idx := map[string]int{}
			for j, c := range rep.colOf {
				cell := rep.table[r][c]
				if cell.Status.Runs() {
					continue
				}
				d, ok := details[cell]
				if !ok {
					d = cell.Detail()
					details[cell] = d
				}
				k, ok := idx[d]
				if !ok {
					k = len(rr)
					idx[d] = k
					rr = append(rr, rowReason{detail: d})
				}
				rr[k].nodes = append(rr[k].nodes, rep.Nodes[j].Name)
			}
			byRow[r] = rr
		}
		for _, x := range rr {
			out = append(out, reason{Image: rep.Images[i].Ref, Detail: x.detail, Nodes: x.nodes})
		}
	}
	return out
}

func nodeList(names []string, max int) string {
	if len(names) <= max {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:max], ", ") + fmt.Sprintf(" and %d more", len(names)-max)
}

// WriteTable prints the summary, what breaks, the matrix (images as rows, nodes as columns; "ok
// N" compatible with score N, FAIL not compatible, "-" no spec, ERR error), the totals and the
// reasons of the FAIL and ERR cells.
func WriteTable(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "Summary: %s\n", rep.Summary)
	if rep.Summary.Baseline && len(rep.Breaks) > 0 {
		fmt.Fprintln(w, "\nWould break (runs on the baseline, not on the target):")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  IMAGE\tNODE\tBASELINE\tNOW")
		for _, b := range rep.Breaks {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", b.Image, b.Node, b.Baseline, b.Now.Detail())
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := []string{"IMAGE"}
	for _, n := range rep.Nodes {
		header = append(header, n.Name)
	}
	header = append(header, "OK", "FAIL", "NOSPEC", "ERR")
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for i := range rep.Images {
		cols := []string{rep.Images[i].Ref}
		for _, c := range rep.Row(i) {
			cols = append(cols, c.Short())
		}
		t := rep.Images[i].Totals
		cols = append(cols, fmt.Sprint(t.Compatible), fmt.Sprint(t.Incompatible), fmt.Sprint(t.NoSpec), fmt.Sprint(t.Error))
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	for _, k := range []struct {
		name string
		get  func(Totals) int
	}{{"OK", func(t Totals) int { return t.Compatible }}, {"FAIL", func(t Totals) int { return t.Incompatible }},
		{"NOSPEC", func(t Totals) int { return t.NoSpec }}, {"ERR", func(t Totals) int { return t.Error }}} {
		cols := []string{k.name}
		for _, n := range rep.Nodes {
			cols = append(cols, fmt.Sprint(k.get(n.Totals)))
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rs := reasons(rep); len(rs) > 0 {
		fmt.Fprintln(w, "\nWhy:")
		for _, r := range rs {
			fmt.Fprintf(w, "  %s on %s:\n      %s\n", r.Image, nodeList(r.Nodes, 8), r.Detail)
		}
	}
	writeSBOMText(w, rep, "")
	return nil
}

func writeSBOMText(w io.Writer, rep *Report, bullet string) {
	any := false
	for _, row := range rep.Images {
		if len(row.SBOMs) == 0 && row.SBOMError == "" {
			continue
		}
		if !any {
			fmt.Fprintln(w, "\nSBOMs:")
			any = true
		}
		fmt.Fprintf(w, "%s  %s\n", bullet, row.Ref)
		if row.SBOMError != "" {
			fmt.Fprintf(w, "%s      error: %s\n", bullet, safetext.Line(row.SBOMError))
		}
		for _, s := range row.SBOMs {
			fmt.Fprintf(w, "%s      %s\n", bullet, safetext.Line(s.String()))
		}
	}
}

// String prints the SBOM on one line.
func (s SBOM) String() string {
	on := s.Subject
	if s.Platform != "" {
		on += " (" + s.Platform + ")"
	}
	return fmt.Sprintf("%s %s %s (%s) of %s", s.Format, s.Source, s.Manifest, s.Type, on)
}

func mdEscape(s string) string {
	r := strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;", "*", `\*`, "_", `\_`, "`", "\\`")
	return r.Replace(s)
}

// WriteMarkdown prints the report as GitHub-flavoured Markdown: summary, what breaks, the matrix
// and the reasons.
func WriteMarkdown(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "# Compatibility report\n\n**%s**\n\n", mdEscape(rep.Summary.String()))
	if rep.Summary.Baseline && len(rep.Breaks) > 0 {
		fmt.Fprintln(w, "## Would break\n\n| image | node | baseline | now |\n|---|---|---|---|")
		for _, b := range rep.Breaks {
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", mdEscape(b.Image), mdEscape(b.Node), mdEscape(b.Baseline), mdEscape(b.Now.Detail()))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, "## Matrix\n\n| image |")
	for _, n := range rep.Nodes {
		fmt.Fprintf(w, " %s |", mdEscape(n.Name))
	}
	fmt.Fprint(w, " ok | fail | no spec | error |\n|---|")
	for range rep.Nodes {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w, "---|---|---|---|")
	for i := range rep.Images {
		fmt.Fprintf(w, "| %s |", mdEscape(rep.Images[i].Ref))
		for _, c := range rep.Row(i) {
			fmt.Fprintf(w, " %s |", mdEscape(c.Short()))
		}
		t := rep.Images[i].Totals
		fmt.Fprintf(w, " %d | %d | %d | %d |\n", t.Compatible, t.Incompatible, t.NoSpec, t.Error)
	}
	fmt.Fprint(w, "| **compatible** |")
	for _, n := range rep.Nodes {
		fmt.Fprintf(w, " %d |", n.Totals.Compatible)
	}
	fmt.Fprintln(w, " | | | |")
	if rs := reasons(rep); len(rs) > 0 {
		fmt.Fprint(w, "\n## Why\n\n")
		for _, r := range rs {
			fmt.Fprintf(w, "- `%s` on %s: %s\n", strings.ReplaceAll(r.Image, "`", ""), mdEscape(nodeList(r.Nodes, 8)), mdEscape(r.Detail))
		}
	}
	var sb strings.Builder
	writeSBOMText(&sb, rep, "")
	if sb.Len() > 0 {
		fmt.Fprintf(w, "\n## SBOMs\n\n```%s```\n", sb.String())
	}
	return nil
}

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"class": func(c *Cell) string { return string(c.Status) },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Compatibility report</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;white-space:nowrap}
th.node{writing-mode:vertical-rl;transform:rotate(180deg)}
td.compatible{background:#d7f5d7}td.incompatible{background:#f9d0d0}
td.nospec{background:#eee}td.error{background:#ffe3a3}
.summary{font-size:1.2em;font-weight:bold}
</style></head><body>
<h1>Compatibility report</h1>
<p class="summary">{{.Summary}}</p>
<p>{{.Summary.Images}} images, {{.Summary.Nodes}} nodes ({{.Summary.DistinctFeatureSets}} distinct feature sets), {{.Summary.DistinctSpecs}} distinct specs.</p>
{{if .Breaks}}<h2>Would break</h2>
<table><tr><th>image</th><th>node</th><th>baseline</th><th>now</th></tr>
{{range .Breaks}}<tr><td>{{.Image}}</td><td>{{.Node}}</td><td>{{.Baseline}}</td><td class="incompatible">{{.Now.Detail}}</td></tr>
{{end}}</table>{{end}}
<h2>Matrix</h2>
<table><tr><th>image</th>{{range .Nodes}}<th class="node" title="{{.Platform}}">{{.Name}}</th>{{end}}<th>ok</th><th>fail</th><th>no spec</th><th>error</th></tr>
{{range $i, $img := .Images}}<tr><td title="{{$img.Digest}}">{{$img.Ref}}</td>{{range $.Row $i}}<td class="{{class .}}" title="{{.Detail}}">{{.Short}}</td>{{end}}<td>{{$img.Totals.Compatible}}</td><td>{{$img.Totals.Incompatible}}</td><td>{{$img.Totals.NoSpec}}</td><td>{{$img.Totals.Error}}</td></tr>
{{end}}<tr><th>compatible</th>{{range .Nodes}}<td>{{.Totals.Compatible}}</td>{{end}}</tr>
</table>
{{with .Reasons}}<h2>Why</h2><ul>
{{range .}}<li><code>{{.Image}}</code> on {{.NodeList}}: {{.Detail}}</li>
{{end}}</ul>{{end}}
{{if .HasSBOMs}}<h2>SBOMs</h2><ul>
{{range .Images}}{{if or .SBOMs .SBOMError}}<li><code>{{.Ref}}</code><ul>{{if .SBOMError}}<li>error: {{.SBOMError}}</li>{{end}}{{range .SBOMs}}<li>{{.String}}</li>{{end}}</ul></li>{{end}}
{{end}}</ul>{{end}}
</body></html>
`))

type htmlReason struct {
	reason
	NodeList string
}

// WriteHTML prints the report as one self-contained HTML page (no external resource), every
// value escaped by html/template.
func WriteHTML(w io.Writer, rep *Report) error {
	var rs []htmlReason
	for _, r := range reasons(rep) {
		rs = append(rs, htmlReason{reason: r, NodeList: nodeList(r.Nodes, 20)})
	}
	has := false
	for _, row := range rep.Images {
		has = has || len(row.SBOMs) > 0 || row.SBOMError != ""
	}
	return htmlTmpl.Execute(w, struct {
		*Report
		Reasons  []htmlReason
		HasSBOMs bool
	}{rep, rs, has})
}

// SortBreaksFirst reorders the images of rep so that those the migration breaks come first (in
// their original order), then the others; Breaks' ImageIndex follow.
func SortBreaksFirst(rep *Report) {
	order := make([]int, len(rep.Images))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return rep.Images[order[a]].Totals.Breaks > 0 && rep.Images[order[b]].Totals.Breaks == 0
	})
	pos := make([]int, len(order))
	imgs := make([]ImageRow, len(order))
	rows := make([]int, len(order))
	for to, from := range order {
		imgs[to], rows[to], pos[from] = rep.Images[from], rep.rowOf[from], to
	}
	rep.Images, rep.rowOf = imgs, rows
	for k := range rep.Breaks {
		rep.Breaks[k].ImageIndex = pos[rep.Breaks[k].ImageIndex]
	}
}

// jsonReport is the JSON form of a Report: each distinct cell once in Outcomes, and Cells as
// indexes into it, so that a million cells stay a few megabytes.
type jsonReport struct {
	Summary  Summary    `json:"summary"`
	Breaks   []Break    `json:"breaks,omitempty"`
	Images   []ImageRow `json:"images"`
	Nodes    []NodeCol  `json:"nodes"`
	Outcomes []*Cell    `json:"outcomes"`
	// Cells[i][j] is the index in Outcomes of image i on node j.
	Cells [][]int `json:"cells"`
}

// MarshalJSON writes the report with each distinct cell once, in "outcomes", and "cells" as a
// matrix of indexes into it: image i on node j is .outcomes[.cells[i][j]].
func (r *Report) MarshalJSON() ([]byte, error) {
	j := jsonReport{Summary: r.Summary, Breaks: r.Breaks, Images: r.Images, Nodes: r.Nodes, Cells: make([][]int, len(r.rowOf)), Outcomes: []*Cell{}}
	idx := map[*Cell]int{}
	rows := make(map[int][]int, len(r.table)) // images sharing a row share its indexes
	for i, ri := range r.rowOf {
		out, ok := rows[ri]
		if !ok {
			out = make([]int, len(r.colOf))
			for k, c := range r.colOf {
				cell := r.table[ri][c]
				n, ok := idx[cell]
				if !ok {
					n = len(j.Outcomes)
					idx[cell] = n
					j.Outcomes = append(j.Outcomes, cell)
				}
				out[k] = n
			}
			rows[ri] = out
		}
		j.Cells[i] = out
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Report) UnmarshalJSON(b []byte) error {
	var j jsonReport
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if len(j.Cells) != len(j.Images) {
		return fmt.Errorf("cells: %d rows for %d images", len(j.Cells), len(j.Images))
	}
	*r = Report{Summary: j.Summary, Breaks: j.Breaks, Images: j.Images, Nodes: j.Nodes,
		table: make([][]*Cell, len(j.Cells)), rowOf: make([]int, len(j.Cells)), colOf: make([]int, len(j.Nodes))}
	for k := range r.colOf {
		r.colOf[k] = k
	}
	for i, row := range j.Cells {
		if len(row) != len(j.Nodes) {
			return fmt.Errorf("cells[%d]: %d cells for %d nodes", i, len(row), len(j.Nodes))
		}
		r.rowOf[i] = i
		r.table[i] = make([]*Cell, len(row))
		for k, n := range row {
			if n < 0 || n >= len(j.Outcomes) || j.Outcomes[n] == nil {
				return fmt.Errorf("cells[%d][%d]: outcome %d out of range", i, k, n)
			}
			r.table[i][k] = j.Outcomes[n]
		}
	}
	return nil
}
