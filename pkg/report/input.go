package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compatkit/compatkit/internal/fileutil"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/compatkit/compatkit/pkg/host"
	"github.com/compatkit/compatkit/pkg/oci"
)

// MaxInputBytes is the largest images or nodes file read.
const MaxInputBytes = 256 << 20

// ReadImages reads the images of a report from path: a text file with one reference per line
// (blank lines and lines starting with # are skipped; text after " #" too), or Kubernetes pods as
// `kubectl get pods -A -o json` prints them (a List of Pods, or one Pod; JSON or YAML), from which
// every container, init container and ephemeral container image is taken, deduplicated, with the
// pods that use it.
func ReadImages(path string) ([]Image, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	return ParseImages(data, path)
}

func readLimited(path string) ([]byte, error) {
	return fileutil.ReadLimited(path, MaxInputBytes)
}

type podList struct {
	Kind     string    `json:"kind"`
	Items    []podItem `json:"items"`
	Metadata podMeta   `json:"metadata"`
	Spec     podSpec   `json:"spec"`
}

type podItem struct {
	Kind     string  `json:"kind"`
	Metadata podMeta `json:"metadata"`
	Spec     podSpec `json:"spec"`
}

type podMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

type podSpec struct {
	Containers          []struct{ Image string } `json:"containers"`
	InitContainers      []struct{ Image string } `json:"initContainers"`
	EphemeralContainers []struct{ Image string } `json:"ephemeralContainers"`
}

// podImages gathers the images of pods, in the order they are first used, each with the pods
// that use it: what ParseImages takes from a pod list and ClusterImages from a cluster.
type podImages struct {
	idx map[string]int
	out []Image
}

// add adds the images of one pod: those of its init containers, containers and ephemeral
// containers, in that order (empty ones skipped).
func (p *podImages) add(namespace, name string, initContainers, containers, ephemeralContainers []string) {
	pod := name
	if namespace != "" {
		pod = namespace + "/" + pod
	}
	if p.idx == nil {
		p.idx = map[string]int{}
	}
	for _, refs := range [][]string{initContainers, containers, ephemeralContainers} {
		for _, r := range refs {
			if r == "" {
				continue
			}
			k, ok := p.idx[r]
			if !ok {
				k = len(p.out)
				p.idx[r] = k
				p.out = append(p.out, Image{Ref: r})
			}
			if n := len(p.out[k].Pods); n == 0 || p.out[k].Pods[n-1] != pod {
				p.out[k].Pods = append(p.out[k].Pods, pod)
			}
		}
	}
}

// ParseImages decodes the shapes ReadImages accepts; source names the input in errors.
func ParseImages(data []byte, source string) ([]Image, error) {
	trimmed := bytes.TrimSpace(data)
	if looksLikeObject(trimmed) {
		j, err := yaml.YAMLToJSON(trimmed)
		if err != nil {
			return nil, fmt.Errorf("%s: not a pod list: %v", source, err)
		}
		var l podList
		if err := json.Unmarshal(j, &l); err != nil {
			return nil, fmt.Errorf("%s: not a pod list: %v", source, err)
		}
		var items []podItem
		switch l.Kind {
		case "List", "PodList":
			items = l.Items
		case "Pod":
			items = []podItem{{Kind: "Pod", Metadata: l.Metadata, Spec: l.Spec}}
		default:
			return nil, fmt.Errorf("%s: kind %q: want a List of Pods (kubectl get pods -A -o json) or a text file of image references", source, l.Kind)
		}
		var pi podImages
		for i, it := range items {
			if it.Kind != "" && it.Kind != "Pod" {
				return nil, fmt.Errorf("%s: items[%d]: kind %q is not Pod", source, i, it.Kind)
			}
			images := func(cs []struct{ Image string }) []string {
				out := make([]string, len(cs))
				for i, c := range cs {
					out[i] = c.Image
				}
				return out
			}
			pi.add(it.Metadata.Namespace, it.Metadata.Name, images(it.Spec.InitContainers), images(it.Spec.Containers), images(it.Spec.EphemeralContainers))
		}
		if len(pi.out) == 0 {
			return nil, fmt.Errorf("%s: the pods list no container image", source)
		}
		return pi.out, nil
	}
	seen := map[string]bool{}
	var out []Image
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		if i := strings.Index(s, " #"); i >= 0 {
			s = s[:i]
		}
		s = strings.TrimSpace(s)
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if strings.ContainsAny(s, " \t") {
			return nil, fmt.Errorf("%s:%d: %q: want one image reference per line", source, line, s)
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, Image{Ref: s})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no image reference", source)
	}
	return out, nil
}

func looksLikeObject(b []byte) bool {
	if bytes.HasPrefix(b, []byte("{")) {
		return true
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if bytes.HasPrefix(l, []byte("kind:")) || bytes.HasPrefix(l, []byte("apiVersion:")) {
			return true
		}
	}
	return false
}

// ReadNodes reads nodes from each path: what host.ReadNodes reads (a Node list, a NodeFeature
// list, a feature or profile file), or a directory, whose .json, .yaml and .yml files are read in
// name order. Each node gets its platform (NodePlatform): the compatkit.platform attribute of its
// features, or for Kubernetes Node objects their kubernetes.io/os and kubernetes.io/arch labels.
func ReadNodes(paths ...string) ([]Node, error) {
	var out []Node
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("reading nodes: %w", err)
		}
		files := []string{p}
		if fi.IsDir() {
			files = nil
			entries, err := os.ReadDir(p)
			if err != nil {
				return nil, fmt.Errorf("reading nodes: %w", err)
			}
			for _, e := range entries {
				ext := strings.ToLower(filepath.Ext(e.Name()))
				if !e.IsDir() && (ext == ".json" || ext == ".yaml" || ext == ".yml") {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
			sort.Strings(files)
			if len(files) == 0 {
				return nil, fmt.Errorf("reading nodes: %s has no .json, .yaml or .yml file", p)
			}
		}
		for _, f := range files {
			data, err := readLimited(f)
			if err != nil {
				return nil, fmt.Errorf("reading nodes: %w", err)
			}
			ns, err := ParseNodes(data, f)
			if err != nil {
				return nil, err
			}
			out = append(out, ns...)
		}
	}
	return out, nil
}

// ParseNodes decodes one input of ReadNodes (host.ParseNodes) and adds the platforms.
func ParseNodes(data []byte, source string) ([]Node, error) {
	hn, err := host.ParseNodes(data, source)
	if err != nil {
		return nil, err
	}
	return NodesFromHost(hn, KubeNodeLabels(data)), nil
}

// KubeNodeLabels returns the labels of the Kubernetes Node objects in data (a Node or a List of
// them) by node name; nil when data holds none. host.ParseNodes maps NFD's labels to features but
// drops the others, such as kubernetes.io/arch.
func KubeNodeLabels(data []byte) map[string]map[string]string {
	j, err := yaml.YAMLToJSON(bytes.TrimSpace(data))
	if err != nil {
		return nil
	}
	type obj struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Items []json.RawMessage `json:"items"`
	}
	var o obj
	if json.Unmarshal(j, &o) != nil {
		return nil
	}
	out := map[string]map[string]string{}
	add := func(x obj) {
		if x.Kind == "Node" {
			out[x.Metadata.Name] = x.Metadata.Labels
		}
	}
	add(o)
	for _, raw := range o.Items {
		var it obj
		if json.Unmarshal(raw, &it) == nil {
			add(it)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// NodesFromHost converts host nodes, taking each node's platform from its features or, for Node
// objects, from labels[name] (kubernetes.io/os and kubernetes.io/arch).
func NodesFromHost(hn []host.Node, labels map[string]map[string]string) []Node {
	out := make([]Node, len(hn))
	for i, n := range hn {
		out[i] = Node{Name: n.Name, Features: n.Features, FromLabels: n.FromLabels, Platform: NodePlatform(n.Features, labels[n.Name])}
	}
	return out
}

// NodePlatform is a node's platform, "os/arch/variant" (host.Platform: the x86-64 level of an
// amd64 node comes from its cpuid flags): from the compatkit.platform attribute of its features,
// else from its kubernetes.io/os and kubernetes.io/arch labels (or the beta.kubernetes.io/ ones);
// "" when neither says it.
func NodePlatform(f *host.Features, labels map[string]string) string {
	if p, err := host.Platform(f); err == nil {
		return oci.FormatPlatform(&p)
	}
	if os, arch := host.LabelPlatform(labels); arch != "" {
		view := nfdv1alpha1.NewFeatures()
		if f != nil {
			view.Flags = f.Flags
		}
		host.SetPlatform(view, ocispec.Platform{OS: os, Architecture: arch})
		if p, err := host.Platform(view); err == nil {
			return oci.FormatPlatform(&p)
		}
	}
	return ""
}
