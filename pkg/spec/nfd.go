package spec

import (
	"encoding/json"
	"fmt"

	compatv1alpha1 "sigs.k8s.io/node-feature-discovery/api/image-compatibility/v1alpha1"
	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
)

// ToNFD converts s to NFD's own Go type, through its JSON form, exactly as NFD would read the
// artifact.
func (s *Spec) ToNFD() (*compatv1alpha1.Spec, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var out compatv1alpha1.Spec
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("converting to NFD v1alpha1: %w", err)
	}
	return &out, nil
}

// ToNFD converts one rule to NFD's GroupRule.
func (r *Rule) ToNFD() (*nfdv1alpha1.GroupRule, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var out nfdv1alpha1.GroupRule
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("converting rule %q to NFD: %w", r.Name, err)
	}
	return &out, nil
}
