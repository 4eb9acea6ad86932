package host

import (
	"errors"
	"fmt"
	"maps"

	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/compatkit/compatkit/pkg/spec"
	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
)

// NFDFeaturesDir is where NFD's local source reads feature files on a node.
const NFDFeaturesDir = "/etc/kubernetes/node-feature-discovery/features.d"

// WriteNFDLocalFile writes the compatkit.* attribute features of f in the format of NFD's local
// feature source (source/local/local.go): optional "# +expiry-time=<RFC 3339>" directive, then one
// "name=value" line per element, each preceded by "# +no-label" so that NFD publishes it as a raw
// feature only (values such as "unknown" or long versions need not be valid label values).
//
// NFD then reports the element <e> of compatkit.<name> as the element "compatkit.<name>.<e>" of
// its local.feature feature set (e.g. local.feature "compatkit.nvidia.driver.major"). Features
// that are not compatkit's own (NFD discovers them itself) are not written. A zero expiry writes
// no expiry directive.
func WriteNFDLocalFile(w io.Writer, f *Features, expiry time.Time) error {
	var b strings.Builder
	b.WriteString("# compatkit features for NFD's local source (compat-attach features --nfd-local-file)\n")
	if !expiry.IsZero() {
		fmt.Fprintf(&b, "# +expiry-time=%s\n", expiry.UTC().Format(time.RFC3339))
	}
	names := make([]string, 0, len(f.Attributes))
	for n := range f.Attributes {
		if strings.HasPrefix(n, "compatkit.") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		el := f.Attributes[n].Elements
		keys := make([]string, 0, len(el))
		for k := range el {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := el[k]
			if strings.ContainsAny(k, "=\n") || strings.Contains(v, "\n") {
				return fmt.Errorf("feature %s element %q: a name or value with a newline (or a name with =) cannot be written to an NFD feature file", n, k)
			}
			fmt.Fprintf(&b, "# +no-label\n%s.%s=%s\n", n, k, v)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteNFDLocalFileAt writes the file atomically (a temporary file in the same directory, then a
// rename), so NFD never reads a half-written file.
func WriteNFDLocalFileAt(path string, f *Features, expiry time.Time) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".compatkit-*")
	if err != nil {
		cause := errors.Unwrap(err)
		if cause == nil {
			cause = err
		}
		return fmt.Errorf("writing %s: cannot create a file in %s: %w", path, filepath.Dir(path), cause)
	}
	defer os.Remove(tmp.Name())
	if err := WriteNFDLocalFile(tmp, f, expiry); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// MirrorCompatkit adds to f, for every element E of a compatkit.X attribute feature set, the
// element "compatkit.X.E" of local.feature with the same value: what NFD's local source reports
// once WriteNFDLocalFile's file is installed. Specs compiled by compatkit test compatkit features
// in that form (spec.LocalizeCompatkit), so both NFD and compatkit can evaluate them. Existing
// local.feature elements are kept.
func MirrorCompatkit(f *Features) {
	if f == nil {
		return
	}
	local := nfdv1alpha1.AttributeFeatureSet{Elements: maps.Clone(f.Attributes[spec.LocalFeatureSet].Elements)}
	for n, set := range f.Attributes {
		if !strings.HasPrefix(n, spec.CompatkitFeaturePrefix) || n == UnknownFeature {
			continue
		}
		for k, v := range set.Elements {
			if local.Elements == nil {
				local.Elements = map[string]string{}
			}
			if _, exists := local.Elements[n+"."+k]; !exists {
				local.Elements[n+"."+k] = v
			}
		}
	}
	if local.Elements != nil {
		f.Attributes[spec.LocalFeatureSet] = local
	}
}
