package admission

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/host"
)

// FeatureSet is the features that one or more nodes share: nodes whose NFD labels (and
// kubernetes.io/os and arch) are equal have one set, so that a decision is made once per set, not
// once per node.
type FeatureSet struct {
	// ID is a digest of the labels the set is built from.
	ID string
	// Host is the host decisions are made for (features rebuilt from the labels, as `check
	// --node` does: host.FeaturesFromLabels, unlabelled cpuid flags inferred, host.InferUnlabelledCPUID).
	Host decide.Host
	// Nodes counts the nodes of the set.
	Nodes int
}

// labelPrefixes are the node labels a feature set is built from.
var labelPrefixes = []string{"feature.node.kubernetes.io/", host.LabelOS, host.LabelArch, host.LabelBetaOS, host.LabelBetaArch}

func relevant(k string) bool {
	for _, p := range labelPrefixes {
		if k == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(k, p)) {
			return true
		}
	}
	return false
}

// featureSetID digests the relevant labels of a node.
func featureSetID(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		if relevant(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// newFeatureSet builds the set of a node's labels.
func newFeatureSet(id string, labels map[string]string) *FeatureSet {
	f := host.FeaturesFromLabels(labels)
	host.InferUnlabelledCPUID(f)
	host.MirrorCompatkit(f)
	var fallback *ocispec.Platform
	if os, arch := host.LabelPlatform(labels); arch != "" {
		fallback = &ocispec.Platform{OS: os, Architecture: arch}
	}
	return &FeatureSet{ID: id, Host: decide.NewHost("feature set "+id, f, fallback)}
}

// Nodes is the cluster's nodes de-duplicated into feature sets: fed by a Node informer (or by
// tests) through Upsert and Delete. It is safe for concurrent use.
type Nodes struct {
	mu     sync.RWMutex
	byName map[string]string      // node name → set ID
	sets   map[string]*FeatureSet // by ID
	synced bool
}

// NewNodes returns an empty Nodes.
func NewNodes() *Nodes {
	return &Nodes{byName: map[string]string{}, sets: map[string]*FeatureSet{}}
}

// Upsert records node's labels.
func (n *Nodes) Upsert(node *corev1.Node) {
	id := featureSetID(node.Labels)
	n.mu.Lock()
	defer n.mu.Unlock()
	if old, ok := n.byName[node.Name]; ok {
		if old == id {
			return
		}
		n.dropLocked(old)
	}
	s, ok := n.sets[id]
	if !ok {
		s = newFeatureSet(id, node.Labels)
		n.sets[id] = s
	}
	s.Nodes++
	n.byName[node.Name] = id
}

// Delete forgets a node.
func (n *Nodes) Delete(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if id, ok := n.byName[name]; ok {
		n.dropLocked(id)
		delete(n.byName, name)
	}
}

func (n *Nodes) dropLocked(id string) {
	if s, ok := n.sets[id]; ok {
		s.Nodes--
		if s.Nodes <= 0 {
			delete(n.sets, id)
		}
	}
}

// Set returns the feature set of the named node.
func (n *Nodes) Set(name string) (*FeatureSet, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	s, ok := n.sets[n.byName[name]]
	return s, ok
}

// Counts returns the number of nodes and of feature sets.
func (n *Nodes) Counts() (nodes, sets int) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.byName), len(n.sets)
}

// SetSynced marks the initial listing done (readyz answers ok from then on).
func (n *Nodes) SetSynced() {
	n.mu.Lock()
	n.synced = true
	n.mu.Unlock()
}

// Synced reports whether the initial listing is done.
func (n *Nodes) Synced() bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.synced
}
