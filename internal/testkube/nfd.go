package testkube

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// nodeFeatureCRD is NFD v0.19's NodeFeature CRD (deployment/base/nfd-crds), descriptions left out.
const nodeFeatureCRD = `{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
 "metadata": {"name": "nodefeatures.nfd.k8s-sigs.io"},
 "spec": {"group": "nfd.k8s-sigs.io", "scope": "Namespaced",
  "names": {"kind": "NodeFeature", "listKind": "NodeFeatureList", "plural": "nodefeatures", "singular": "nodefeature"},
  "versions": [{"name": "v1alpha1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
   "type": "object", "required": ["spec"], "properties": {
    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
    "spec": {"type": "object", "properties": {
     "labels": {"type": "object", "additionalProperties": {"type": "string"}},
     "features": {"type": "object", "properties": {
      "attributes": {"type": "object", "additionalProperties": {"type": "object", "required": ["elements"], "properties": {
       "elements": {"type": "object", "additionalProperties": {"type": "string"}}}}},
      "flags": {"type": "object", "additionalProperties": {"type": "object", "required": ["elements"], "properties": {
       "elements": {"type": "object", "additionalProperties": {"type": "object"}}}}},
      "instances": {"type": "object", "additionalProperties": {"type": "object", "required": ["elements"], "properties": {
       "elements": {"type": "array", "items": {"type": "object", "required": ["attributes"], "properties": {
        "attributes": {"type": "object", "additionalProperties": {"type": "string"}}}}}}}}}}}}}}}}]}}`

// NodeFeatureResource is NFD's NodeFeature resource (nfd.k8s-sigs.io/v1alpha1 nodefeatures).
var NodeFeatureResource = schema.GroupVersionResource{Group: "nfd.k8s-sigs.io", Version: "v1alpha1", Resource: "nodefeatures"}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Dynamic returns a dynamic client of the admin's Config.
func (c *Cluster) Dynamic() (dynamic.Interface, error) { return dynamic.NewForConfig(c.Config) }

// InstallNodeFeatureCRD installs NFD v0.19's NodeFeature CRD and waits until it is served (listed
// and discovered), or ctx ends.
func (c *Cluster) InstallNodeFeatureCRD(ctx context.Context) error {
	dyn, err := c.Dynamic()
	if err != nil {
		return err
	}
	var crd unstructured.Unstructured
	if err := crd.UnmarshalJSON([]byte(nodeFeatureCRD)); err != nil {
		return err
	}
	if _, err := dyn.Resource(crdResource).Create(ctx, &crd, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the NodeFeature CRD: %w", err)
	}
	for {
		_, err := dyn.Resource(NodeFeatureResource).List(ctx, metav1.ListOptions{Limit: 1})
		rl, derr := c.Client.Discovery().ServerResourcesForGroupVersion(NodeFeatureResource.GroupVersion().String())
		if err == nil && derr == nil && len(rl.APIResources) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the NodeFeature CRD is not served: %v %v", err, derr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// NodeFeature is a NodeFeature object of node, as nfd-worker publishes it (features is the JSON
// of spec.features).
func NodeFeature(ns, name, node, features string) *unstructured.Unstructured {
	var o unstructured.Unstructured
	o.SetAPIVersion("nfd.k8s-sigs.io/v1alpha1")
	o.SetKind("NodeFeature")
	o.SetNamespace(ns)
	o.SetName(name)
	o.SetLabels(map[string]string{"nfd.node.kubernetes.io/node-name": node})
	var f map[string]any
	if err := json.Unmarshal([]byte(features), &f); err != nil {
		panic(err)
	}
	o.Object["spec"] = map[string]any{"features": f, "labels": map[string]any{}}
	return &o
}
