package author

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

const sugarRules = `
_A: {name: "A", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: AVX2: op: "Exists"}]}
_B: {name: "B", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: SSE42: op: "Exists"}]}
_R: {name: "R", matchFeatures: [{feature: "kernel.version", matchExpressions: major: {op: "Ge", value: ["4"]}}]}
`

// setsOf summarises a spec's sets as "weight tag rule,rule".
func setsOf(t *testing.T, res *Result, platform string) []string {
	t.Helper()
	s, err := res.For(platform)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range s.Compatibilities {
		var names []string
		for _, r := range c.Rules {
			names = append(names, r.Name)
		}
		out = append(out, fmt.Sprintf("%d %s %s", c.Weight, c.Tag, strings.Join(names, ",")))
	}
	return out
}

func TestSugarExpansion(t *testing.T) {
	dir := t.TempDir()
	f := write(t, dir, "c.cue", "package x\n"+sugarRules+`
required: [_R]
preferred: [{weight: 60, rules: [_B], tag: "b"}, {weight: 90, rules: [_A], tag: "a"}]
baseWeight: 10
tag: "base"
platforms: "linux/arm64": {
	required: [_R]
	when: [{name: "AMD", condition: [{feature: "cpu.model", matchExpressions: vendor_id: {op: "In", value: ["AMD"]}}], required: [_A], weight: 50},
		{name: "Intel", condition: [{feature: "cpu.model", matchExpressions: vendor_id: {op: "In", value: ["Intel"]}}], preferred: [{weight: 80, rules: [_B]}]}]
	otherwise: {weight: 1, tag: "other"}
}
platforms: "linux/amd64": {version: "v1alpha1", compatibilities: [{rules: [_R]}]}
`)
	res, err := Compile(context.Background(), []string{f}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(platform string, want ...string) {
		t.Helper()
		if got := setsOf(t, res, platform); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: got\n%s\nwant\n%s", platform, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	// Top level: weighted alternatives, highest first, then the required-only set at baseWeight.
	check("", "90 a R,A", "60 b R,B", "10 base R")
	// when: each case's condition is a rule of its sets; otherwise has no condition; no
	// unconditional set besides otherwise.
	check("linux/arm64", "80  R,when Intel,B", "50  R,when AMD,A", "1 other R", "0  R,when Intel")
	// A written-out platform spec is kept as it is.
	check("linux/amd64", "0  R")
	if res.Default.Compatibilities[0].Rules[1].MatchFeatures[0].MatchExpressions["AVX2"].Op != "Exists" {
		t.Error("rule A not copied")
	}
}

// TestSugarBound: the number of sets is linear in what is written (cases x preferred add up, not
// multiply), and more than #MaxSets (32) is an error.
func TestSugarBound(t *testing.T) {
	gen := func(cases, prefs int) string {
		var b strings.Builder
		b.WriteString("package x\n" + sugarRules + "required: [_R]\npreferred: [")
		for i := range prefs {
			fmt.Fprintf(&b, "{weight: %d, rules: [_A]},", 10+i)
		}
		b.WriteString("]\nwhen: [")
		for i := range cases {
			fmt.Fprintf(&b, `{name: "c%d", condition: [{feature: "cpu.model", matchExpressions: family: {op: "In", value: ["%d"]}}], preferred: [{weight: 99, rules: [_B]}]},`, i, i)
		}
		b.WriteString("]\n")
		return b.String()
	}
	dir := t.TempDir()
	// 4 cases, 5 top-level preferred: 4 x (1 own preferred + 5 + 1 base) = 28 sets; with 10 independent
	// preferences a product would be 2^10.
	res, err := Compile(context.Background(), []string{write(t, dir, "ok.cue", gen(4, 5))}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Default.Compatibilities); n != 28 {
		t.Errorf("got %d sets, want 28", n)
	}
	// 5 cases x 7 = 35 > 32.
	_, err = Compile(context.Background(), []string{write(t, dir, "big.cue", gen(5, 5))}, Options{})
	if err == nil || !strings.Contains(err.Error(), "expand to 35 compatibility sets, more than 32") {
		t.Errorf("got %v, want the bound error", err)
	}
}
