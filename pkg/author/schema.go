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
