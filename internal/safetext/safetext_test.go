package safetext

import (
	"encoding/json"
	"testing"
)

func TestLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                     "plain",
		"a\nVerdict: OK":            `a\nVerdict: OK`,
		"\x1b[2J\u202etxet":         `\x1b[2J\u202etxet`,
		"del\x7f c1\u009b":          `del\x7f c1\x9b`,
		"bad \xff utf8":             `bad \xff utf8`,
		"tab\tcr\r":                 `tab\tcr\r`,
		"ls\u2028ps\u2029nel\u0085": `ls\u2028ps\u2029nel\x85`,
		"ünïcode ok 日本":             "ünïcode ok 日本",
	} {
		if got := Line(in); got != want {
			t.Errorf("Line(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Clean("two\nlines\t\x1b"); got != "two\nlines\t\\x1b" {
		t.Errorf("Clean: %q", got)
	}
}

func TestJSON(t *testing.T) {
	v := map[string]string{"d": "del\x7f c1\u009b bidi\u202e esc\x1b"}
	raw, _ := json.Marshal(v)
	out := JSON(raw)
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil || back["d"] != v["d"] {
		t.Fatalf("JSON(%s) = %s: %v %q", raw, out, err, back["d"])
	}
	if NeedsEscape(string(out)) {
		t.Fatalf("unsafe characters left in %q", out)
	}
}
