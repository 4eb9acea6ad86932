package author

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/encoding/jsonschema"
)

//go:generate go run ../../cmd/compat-attach schema -f ../../schema/compat.schema.json

// SchemaID is the $id of the generated JSON Schema.
const SchemaID = "https://compatkit.dev/schema/compat.schema.json"

// JSONSchema generates a JSON Schema (draft 2020-12) of compat.#Document from the embedded CUE
// module, for editors (YAML and JSON spec files). Definitions are named after their CUE
// definitions, qualified by package ("compat.Rule"); schemas stay open (ExplicitOpen) because
// JSON Schema's additionalProperties cannot express CUE's closedness through embedding. The
// output is deterministic: schema/compat.schema.json is this function's output.
func JSONSchema() ([]byte, error) {
	fsys, _, err := moduleFS([]string{})
	if err != nil {
		return nil, err
	}
	cfg := &load.Config{FS: fsys, Dir: "/"}
	insts := load.Instances([]string{"./cue"}, cfg)
	if insts[0].Err != nil {
		return nil, insts[0].Err
	}
	cctx := cuecontext.New()
	root := cctx.BuildInstance(insts[0])
	if err := root.Err(); err != nil {
		return nil, err
	}
	doc := root.LookupPath(cue.ParsePath("#Document"))
	expr, err := jsonschema.Generate(doc, &jsonschema.GenerateConfig{
		ExplicitOpen: true,
		NamesFunc: func(refs []*jsonschema.CUERef) {
			for _, r := range refs {
				name := strings.ReplaceAll(strings.TrimPrefix(r.Path.String(), "#"), ".#", ".")
				r.Name = "compat." + name
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("generating the JSON Schema: %w", err)
	}
	v := cctx.BuildExpr(expr)
	if err := v.Err(); err != nil {
		return nil, err
	}
	raw, err := v.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if err := completeRuleSchemas(root, m); err != nil {
		return nil, err
	}
	m["$id"] = SchemaID
	m["title"] = "compatkit compatibility document (compat.#Document)"
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// completeRuleSchemas writes the schemas of compat.Rule, compat.Term and compat.MatchExpression,
// which jsonschema.Generate leaves empty (their CUE definitions hold conditional error() guards),
// from the same CUE definitions: field docs, the operator and feature-name enums, operator arity,
// and closedness (additionalProperties: false), so that editors flag what vet flags.
func completeRuleSchemas(root cue.Value, m map[string]any) error {
	defs, ok := m["$defs"].(map[string]any)
	if !ok {
		return fmt.Errorf("generating the JSON Schema: no $defs")
	}
	doc := func(path string) string { return docOf(root.LookupPath(cue.ParsePath(path))) }
	alternatives := func(path string) ([]string, error) {
		var out []string
		v := root.LookupPath(cue.ParsePath(path))
		op, args := v.Expr()
		if op != cue.OrOp {
			return nil, fmt.Errorf("generating the JSON Schema: %s is not a disjunction", path)
		}
		for _, a := range args {
			s, err := a.String()
			if err != nil {
				return nil, fmt.Errorf("generating the JSON Schema: %s: %w", path, err)
			}
			out = append(out, s)
		}
		return out, nil
	}
	ops, err := alternatives("#Op")
	if err != nil {
		return err
	}
	features, err := alternatives("#NFDFeatureName")
	if err != nil {
		return err
	}
	ref := func(name string) map[string]any { return map[string]any{"$ref": "#/$defs/compat." + name} }
	arity := func(values []string, schema map[string]any) map[string]any {
		return map[string]any{
			"if":   map[string]any{"properties": map[string]any{"op": map[string]any{"enum": values}}, "required": []string{"op"}},
			"then": map[string]any{"properties": map[string]any{"value": schema}},
		}
	}
	strs := func(extra map[string]any) map[string]any {
		s := map[string]any{"type": "array", "items": map[string]any{"type": "string"}}
		for k, v := range extra {
			s[k] = v
		}
		return s
	}
	defs["compat.MatchExpression"] = map[string]any{
		"description":          doc("#MatchExpression"),
		"type":                 "object",
		"additionalProperties": false,
		"required":             []string{"op"},
		"properties": map[string]any{
			"op":    map[string]any{"description": doc("#MatchExpression.op"), "enum": ops},
			"value": strs(map[string]any{"description": doc("#MatchExpression.value")}),
			"type":  map[string]any{"description": doc("#MatchExpression.type"), "enum": []string{"version"}},
		},
		"allOf": []any{
			arity([]string{"In", "NotIn", "InRegexp"}, map[string]any{"minItems": 1}),
			arity([]string{"Exists", "DoesNotExist", "IsTrue", "IsFalse"}, map[string]any{"maxItems": 0}),
			arity([]string{"Gt", "Ge", "Lt", "Le"}, map[string]any{"minItems": 1, "maxItems": 1}),
			arity([]string{"GtLt", "GeLe"}, map[string]any{"minItems": 2, "maxItems": 2}),
			map[string]any{
				"if":   map[string]any{"required": []string{"type"}},
				"then": map[string]any{"properties": map[string]any{"op": map[string]any{"enum": []string{"Gt", "Ge", "Lt", "Le", "GtLt", "GeLe"}}}},
			},
			map[string]any{
				"if":   map[string]any{"properties": map[string]any{"op": map[string]any{"enum": []string{"In", "NotIn", "InRegexp", "Gt", "Ge", "Lt", "Le", "GtLt", "GeLe"}}}, "required": []string{"op"}},
				"then": map[string]any{"required": []string{"value"}},
			},
		},
	}
	defs["compat.Term"] = map[string]any{
		"description":          doc("#Term"),
		"type":                 "object",
		"additionalProperties": false,
		"required":             []string{"feature"},
		"properties": map[string]any{
			"feature": map[string]any{"description": doc("#Term.feature"), "anyOf": []any{
				map[string]any{"enum": features},
				map[string]any{"type": "string", "pattern": `^compatkit\.[a-z0-9][a-z0-9_.-]*$`},
			}},
			"matchExpressions": map[string]any{"description": doc("#Term.matchExpressions"), "type": "object", "additionalProperties": ref("MatchExpression")},
			"matchName":        map[string]any{"description": doc("#Term.matchName"), "$ref": "#/$defs/compat.MatchExpression"},
		},
		"anyOf": []any{map[string]any{"required": []string{"matchExpressions"}}, map[string]any{"required": []string{"matchName"}}},
	}
	defs["compat.Rule"] = map[string]any{
		"description":          doc("#Rule"),
		"type":                 "object",
		"additionalProperties": false,
		"required":             []string{"name"},
		"properties": map[string]any{
			"name":          map[string]any{"description": doc("#Rule.name"), "type": "string", "minLength": 1},
			"vars":          map[string]any{"description": doc("#Rule.vars"), "type": "object", "additionalProperties": map[string]any{"type": "string"}},
			"varsTemplate":  map[string]any{"description": doc("#Rule.varsTemplate"), "type": "string"},
			"matchFeatures": map[string]any{"description": doc("#Rule.matchFeatures"), "type": "array", "items": ref("Term")},
			"matchAny": map[string]any{"description": doc("#Rule.matchAny"), "type": "array", "items": map[string]any{
				"type": "object", "additionalProperties": false, "required": []string{"matchFeatures"},
				"properties": map[string]any{"matchFeatures": map[string]any{"type": "array", "minItems": 1, "items": ref("Term")}},
			}},
		},
		"anyOf": []any{map[string]any{"required": []string{"matchFeatures"}}, map[string]any{"required": []string{"matchAny"}}},
	}
	if c, ok := defs["compat.Compatibility"].(map[string]any); ok {
		c["additionalProperties"] = false
	}
	return nil
}
