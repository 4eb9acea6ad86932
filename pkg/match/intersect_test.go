package match_test

import (
	"errors"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/compatkit/compatkit/pkg/match"
)

func req(key string, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: corev1.NodeSelectorOpIn, Values: values}
}

func sel(terms ...[]corev1.NodeSelectorRequirement) *corev1.NodeSelector {
	s := &corev1.NodeSelector{}
	for _, t := range terms {
		s.NodeSelectorTerms = append(s.NodeSelectorTerms, corev1.NodeSelectorTerm{MatchExpressions: t})
	}
	return s
}

// TestIntersect: the product of the terms, duplicates and implied terms removed, so that
// intersecting with itself changes nothing; matchFields are kept; empty terms of a pod's selector
// match nothing and are dropped; a selector of only empty terms is reported.
func TestIntersect(t *testing.T) {
	a, ok := match.FromNodeSelector(sel([]corev1.NodeSelectorRequirement{req("zone", "a")}, []corev1.NodeSelectorRequirement{req("zone", "b")}))
	if !ok {
		t.Fatal("not ok")
	}
	b, _ := match.FromNodeSelector(sel([]corev1.NodeSelectorRequirement{req("arch", "amd64")}, []corev1.NodeSelectorRequirement{req("arch", "amd64"), req("avx2", "true")}))
	got, err := match.Intersect(a, b)
	if err != nil {
		t.Fatal(err)
	}
	// (zone a ∨ zone b) ∧ (amd64 ∨ amd64 ∧ avx2) = zone a ∧ amd64 ∨ zone b ∧ amd64
	if terms := got.Terms(); len(terms) != 2 || len(terms[0].MatchExpressions) != 2 || len(terms[1].MatchExpressions) != 2 {
		t.Errorf("terms: %+v", terms)
	}
	again, err := match.Intersect(got, got)
	if err != nil || fmt.Sprint(again.Terms()) != fmt.Sprint(got.Terms()) {
		t.Errorf("not idempotent: %+v", again.Terms())
	}
	fields := &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{}, {MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}}}}}
	f, ok := match.FromNodeSelector(fields)
	if !ok || len(f.Terms()) != 1 {
		t.Fatalf("the empty term is not dropped: %+v", f.Terms())
	}
	got, _ = match.Intersect(f, b)
	if terms := got.Terms(); len(terms) != 1 || len(terms[0].MatchFields) != 1 || len(terms[0].MatchExpressions) != 1 {
		t.Errorf("matchFields: %+v", terms)
	}
	if _, ok := match.FromNodeSelector(&corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{}}}); ok {
		t.Error("a selector of empty terms (no node) is ok")
	}
	if a, ok := match.FromNodeSelector(nil); !ok || a.NodeAffinity().RequiredDuringSchedulingIgnoredDuringExecution != nil {
		t.Error("nil is not the unconstrained affinity")
	}
	// Products past the bound are an error before they are built.
	var wide [][]corev1.NodeSelectorRequirement
	for i := range 64 {
		wide = append(wide, []corev1.NodeSelectorRequirement{req(fmt.Sprint("k", i), "v")})
	}
	w, _ := match.FromNodeSelector(sel(wide...))
	var tl *match.TooLargeError
	if _, err := match.Intersect(w, w, w); !errors.As(err, &tl) {
		t.Errorf("64^3 terms: %v", err)
	}
}
