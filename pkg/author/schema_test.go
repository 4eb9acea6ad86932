package author

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
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

// TestSchemaValidates checks the JSON Schema with a JSON Schema validator: the example's specs
// pass, and the typos vet catches are caught by the schema too.
func TestSchemaValidates(t *testing.T) {
	raw, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatal(err)
	}
	validate := func(name, js string) error {
		t.Helper()
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(js))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return sch.Validate(v)
	}
	res, err := Compile(context.Background(), []string{"../../examples/hello/compat.cue"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for p, s := range res.Platforms {
		b, _ := json.Marshal(s)
		if err := validate(p, string(b)); err != nil {
			t.Errorf("the example's %s spec does not validate: %v", p, err)
		}
	}
	rule := func(r string) string {
		return `{"version": "v1alpha1", "compatibilities": [{"rules": [` + r + `]}]}`
	}
	for name, bad := range map[string]string{
		"unknown field":   `{"version": "v1alpha1", "compatibilities": [{"weigth": 3, "rules": []}]}`,
		"weight 101":      `{"version": "v1alpha1", "compatibilities": [{"weight": 101, "rules": []}]}`,
		"unknown feature": rule(`{"name": "r", "matchFeatures": [{"feature": "cpu.cpuids", "matchName": {"op": "Exists"}}]}`),
		"unknown op":      rule(`{"name": "r", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"X": {"op": "Equals"}}}]}`),
		"In no values":    rule(`{"name": "r", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"X": {"op": "In"}}}]}`),
		"Exists value":    rule(`{"name": "r", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"X": {"op": "Exists", "value": ["a"]}}}]}`),
		"version on In":   rule(`{"name": "r", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"X": {"op": "In", "value": ["a"], "type": "version"}}}]}`),
		"rule no matcher": rule(`{"name": "r"}`),
		"term no matcher": rule(`{"name": "r", "matchFeatures": [{"feature": "cpu.cpuid"}]}`),
	} {
		if err := validate(name, bad); err == nil {
			t.Errorf("%s: the schema accepts %s", name, bad)
		}
	}
}
