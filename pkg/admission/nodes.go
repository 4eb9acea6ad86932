package admission

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

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
	// FromNodeFeature is true when the features are NFD's NodeFeature objects' (every flag and
	// attribute), false when they were rebuilt from node labels.
	FromNodeFeature bool
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

// newFeatureSet builds the set of a node's labels and, when NFD published NodeFeature objects for
// it, their merged features (nf): those have every cpuid flag and attribute, where labels omit
// some, so they decide instead of the labels; the platform comes from the labels when the
// features do not say it.
func newFeatureSet(id string, labels map[string]string, nf *host.Features) *FeatureSet {
	os, arch := host.LabelPlatform(labels)
	if nf != nil {
		f := nf.DeepCopy()
		if _, err := host.Platform(f); err != nil && arch != "" {
			host.SetPlatform(f, ocispec.Platform{OS: os, Architecture: arch})
			if p, err := host.Platform(f); err == nil {
				host.SetPlatform(f, p) // with the variant the flags show
			}
		}
		host.MirrorCompatkit(f)
		return &FeatureSet{ID: id, Host: decide.NewHost("feature set "+id, f, nil), FromNodeFeature: true}
	}
	f := host.FeaturesFromLabels(labels)
	host.InferUnlabelledCPUID(f)
	host.MirrorCompatkit(f)
	var fallback *ocispec.Platform
	if arch != "" {
		fallback = &ocispec.Platform{OS: os, Architecture: arch}
	}
	return &FeatureSet{ID: id, Host: decide.NewHost("feature set "+id, f, fallback)}
}

// Nodes is the cluster's nodes de-duplicated into feature sets: fed by informers on Nodes and
// NFD's NodeFeature objects (WatchNodes), or by tests, through Upsert, Delete, UpsertNodeFeature
// and DeleteNodeFeature. It is safe for concurrent use.
type Nodes struct {
	mu     sync.RWMutex
	intern map[string]*interned            // features by content digest: nodes with equal NodeFeatures share one copy
	labels map[string]map[string]string    // node name → its relevant labels
	nfs    map[string]map[string]host.Node // node name → NodeFeature object key → its features
	byName map[string]string               // node name → set ID
	sets   map[string]*FeatureSet          // by ID
	synced bool
}

// NewNodes returns an empty Nodes.
func NewNodes() *Nodes {
	return &Nodes{intern: map[string]*interned{}, labels: map[string]map[string]string{}, nfs: map[string]map[string]host.Node{},
		byName: map[string]string{}, sets: map[string]*FeatureSet{}}
}

// Upsert records node's labels.
func (n *Nodes) Upsert(node *corev1.Node) {
	l := map[string]string{}
	for k, v := range node.Labels {
		if relevant(k) {
			l[k] = v
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.labels[node.Name] = l
	n.placeLocked(node.Name)
}

// Delete forgets a node.
func (n *Nodes) Delete(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.labels, name)
	if id, ok := n.byName[name]; ok {
		n.dropLocked(id)
		delete(n.byName, name)
	}
}

// interned is one content of NodeFeature features and how many objects have it.
type interned struct {
	f     *host.Features
	refs  int
	added time.Time
}

// Intern keeps features f under the digest of their content and returns it; equal contents are
// kept once (a thousand nodes of one model and kernel hold one copy of NFD's thousands of
// kernel.config elements).
func (n *Nodes) Intern(f *host.Features) string {
	b, _ := json.Marshal(f)
	h := sha256.Sum256(b)
	d := hex.EncodeToString(h[:16])
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.intern[d]; !ok {
		n.intern[d] = &interned{f: f, added: time.Now()}
	}
	return d
}

// Interned returns the features kept under digest d.
func (n *Nodes) Interned(d string) (*host.Features, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	e, ok := n.intern[d]
	if !ok {
		return nil, false
	}
	return e.f, true
}

// UpsertNodeFeature records the features of one NodeFeature object (key: namespace/name) of
// node.Name (host.NodeFromNodeFeature); equal features are kept once (Intern).
func (n *Nodes) UpsertNodeFeature(key string, node host.Node) {
	if node.Features != nil {
		f, _ := n.Interned(n.Intern(node.Features))
		node.Features = f
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.refLocked(node.Features, +1)
	if old, ok := n.nfs[node.Name][key]; ok {
		n.refLocked(old.Features, -1)
	}
	for name, objs := range n.nfs { // an object relabelled to another node
		if old, ok := objs[key]; ok && name != node.Name {
			n.refLocked(old.Features, -1)
			delete(objs, key)
			n.placeLocked(name)
		}
	}
	if n.nfs[node.Name] == nil {
		n.nfs[node.Name] = map[string]host.Node{}
	}
	n.nfs[node.Name][key] = node
	n.placeLocked(node.Name)
}

// DeleteNodeFeature forgets a NodeFeature object.
func (n *Nodes) DeleteNodeFeature(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for name, objs := range n.nfs {
		if old, ok := objs[key]; ok {
			n.refLocked(old.Features, -1)
			delete(objs, key)
			if len(objs) == 0 {
				delete(n.nfs, name)
			}
			n.placeLocked(name)
		}
	}
}

// refLocked counts a reference to interned features f (delta +1 or -1) and forgets the contents
// no object has any more (and those interned a minute ago that none took).
func (n *Nodes) refLocked(f *host.Features, delta int) {
	if f == nil {
		return
	}
	now := time.Now()
	for d, e := range n.intern {
		if e.f == f {
			e.refs += delta
		}
		if e.refs <= 0 && (e.f == f && delta < 0 || now.Sub(e.added) > time.Minute) {
			delete(n.intern, d)
		}
	}
}

// placeLocked (re)computes the feature set of a node known by its labels.
func (n *Nodes) placeLocked(name string) {
	labels, ok := n.labels[name]
	if !ok {
		return // a NodeFeature of a node not (yet) listed
	}
	id := featureSetID(labels)
	var nf *host.Features
	if objs := n.nfs[name]; len(objs) > 0 {
		keys := slices.Sorted(maps.Keys(objs))
		list := make([]host.Node, 0, len(keys))
		for _, k := range keys {
			list = append(list, objs[k])
		}
		merged := host.MergeNodeFeatures(list)
		if len(merged) > 0 && merged[0].Features != nil {
			nf = merged[0].Features
			b, _ := json.Marshal(nf)
			h := sha256.Sum256(b)
			id += "-nf" + hex.EncodeToString(h[:8])
		}
	}
	if old, ok := n.byName[name]; ok {
		if old == id {
			return
		}
		n.dropLocked(old)
	}
	s, ok := n.sets[id]
	if !ok {
		s = newFeatureSet(id, labels, nf)
		n.sets[id] = s
	}
	s.Nodes++
	n.byName[name] = id
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
