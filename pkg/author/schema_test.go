package author

import (
	"bytes"
	"os"
	"testing"
)

// TestSchemaUpToDate: regenerating the JSON Schema gives the committed schema/compat.schema.json
// (regenerate with `go generate ./pkg/author` or `compat-attach schema -f schema/compat.schema.json`).
func TestSchemaUpToDate(t *testing.T) {
	got, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../schema/compat.schema.json")
	if err != nil && os.Getenv("COMPATKIT_UPDATE_SCHEMA") != "1" {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		if os.Getenv("COMPATKIT_UPDATE_SCHEMA") == "1" {
			if err := os.WriteFile("../../schema/compat.schema.json", got, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Error("schema/compat.schema.json is out of date: run `go generate ./pkg/author`")
	}
	if !bytes.Contains(got, []byte(`"compat.Rule"`)) || !bytes.Contains(got, []byte("preferred")) {
		t.Errorf("unexpected schema:\n%.2000s", got)
	}
}
