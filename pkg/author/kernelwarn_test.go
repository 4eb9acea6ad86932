package author

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKernelFullVersionWarning(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "k.yaml")
	doc := "version: v1alpha1\ncompatibilities:\n- rules:\n  - name: kernel\n    matchFeatures:\n    - feature: kernel.version\n      matchExpressions:\n        full: {op: Ge, value: [\"5.14.0\"], type: version}\n        major: {op: Gt, value: [\"4\"]}\n"
	if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Compile(context.Background(), []string{f}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ws := res.Warnings()
	if len(ws) != 1 || !strings.Contains(ws[0].Msg, "kernel.version.full") || !strings.Contains(ws[0].Item, "k.yaml") {
		t.Errorf("warnings: %v", ws)
	}
}
