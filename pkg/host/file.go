package host

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
	"sigs.k8s.io/yaml"
)

// MaxFeatureFileBytes is the largest feature file ReadFeatures accepts, in bytes.
const MaxFeatureFileBytes = 16 << 20

// ErrFeatureFile means a feature file could not be read as features.
var ErrFeatureFile = errors.New("invalid feature file")

// ReadFeatureFile reads saved features from path ("-" is standard input); see ParseFeatures.
func ReadFeatureFile(path string) (*Features, error) {
	var r io.Reader
	if path == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("reading features: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxFeatureFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading features from %s: %w", path, err)
	}
	return ParseFeatures(data, path)
}

// ParseFeatures decodes features from JSON or YAML in one of these shapes:
//
//   - NFD's Features, as printed by `nfd export features` and `compat-attach features`:
//     {"flags": {...}, "attributes": {...}, "instances": {...}};
//   - a NodeFeature object (nfd.k8s-sigs.io/v1alpha1), whose spec.features holds the Features.
//
// Unknown top-level fields are errors, so a wrong file is not silently taken as "no features".
func ParseFeatures(data []byte, source string) (*Features, error) {
	if len(data) > MaxFeatureFileBytes {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", source, ErrFeatureFile, MaxFeatureFileBytes)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("%s: %w: empty", source, ErrFeatureFile)
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", source, ErrFeatureFile, err)
	}
	var probe struct {
		Kind string `json:"kind"`
		Spec struct {
			Features json.RawMessage `json:"features"`
		} `json:"spec"`
	}
	if len(j) > 0 && j[0] != '{' {
		return nil, fmt.Errorf("%s: %w: want a JSON or YAML object (the output of `nfd export features` or `compat-attach features`)", source, ErrFeatureFile)
	}
	if err := json.Unmarshal(j, &probe); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", source, ErrFeatureFile, err)
	}
	switch probe.Kind {
	case "List", "NodeList", "Node", "NodeFeatureList":
		return nil, fmt.Errorf("%s: %w: a Kubernetes %s holds several nodes or only labels: use `select --node NAME --nodes %s` or `report --nodes %s`", source, ErrFeatureFile, probe.Kind, source, source)
	}
	if probe.Kind == "NodeFeature" {
		if len(probe.Spec.Features) == 0 {
			return nil, fmt.Errorf("%s: %w: NodeFeature without spec.features", source, ErrFeatureFile)
		}
		j = probe.Spec.Features
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	f := nfdv1alpha1.NewFeatures()
	if err := dec.Decode(f); err != nil {
		return nil, fmt.Errorf("%s: %w: %v (want the JSON of `nfd export features` or `compat-attach features`)", source, ErrFeatureFile, err)
	}
	if len(f.Flags)+len(f.Attributes)+len(f.Instances) == 0 {
		return nil, fmt.Errorf("%s: %w: no flags, attributes or instances", source, ErrFeatureFile)
	}
	if f.Flags == nil {
		f.Flags = map[string]nfdv1alpha1.FlagFeatureSet{}
	}
	if f.Attributes == nil {
		f.Attributes = map[string]nfdv1alpha1.AttributeFeatureSet{}
	}
	if f.Instances == nil {
		f.Instances = map[string]nfdv1alpha1.InstanceFeatureSet{}
	}
	MirrorCompatkit(f)
	// Profiles saved by NFD (or before kernel.version.release existed) get it once here, not on
	// every evaluation.
	NormalizeKernelVersion(f)
	return f, nil
}
