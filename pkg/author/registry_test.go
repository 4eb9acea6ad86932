package author

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cuelabs.dev/go/oci/ociregistry/ociclient"
	"cuelabs.dev/go/oci/ociregistry/ocimem"
	"cuelabs.dev/go/oci/ociregistry/ociserver"
	"cuelang.org/go/mod/modregistry"
	"cuelang.org/go/mod/module"
	"cuelang.org/go/mod/modzip"
)

// writeTree writes files (slash-separated path relative to dir -> content) below dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// startRegistry starts an in-memory OCI registry on 127.0.0.1 and points the cue tool's environment
// (CUE_REGISTRY, CUE_CACHE_DIR) at it. It returns a client to publish modules with.
func startRegistry(t *testing.T) *modregistry.Client {
	t.Helper()
	srv := httptest.NewServer(ociserver.New(ocimem.New(), nil))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	t.Setenv("CUE_REGISTRY", host+"+insecure")
	t.Setenv("CUE_CACHE_DIR", t.TempDir())
	t.Setenv("CUE_CONFIG_DIR", t.TempDir()) // no logins.json of the machine's user
	oc, err := ociclient.New(host, &ociclient.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	return modregistry.NewClient(oc)
}

// publish zips the module in files as version mv (like `cue mod publish`) and pushes it.
func publish(t *testing.T, c *modregistry.Client, mv string, files map[string]string) {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, files)
	v := module.MustParseVersion(mv)
	var zip bytes.Buffer
	if err := modzip.CreateFromDir(&zip, v, dir); err != nil {
		t.Fatal(err)
	}
	if err := c.PutModule(context.Background(), v, bytes.NewReader(zip.Bytes()), int64(zip.Len())); err != nil {
		t.Fatal(err)
	}
}

// slurmModule is a domain published as its own CUE module. It imports compatkit's schema, so it
// depends on compatkit.dev@v0, which the registry does not hold: compatkit's embedded module
// stands in for it.
var slurmModule = map[string]string{
	"cue.mod/module.cue": `module: "example.com/hpc@v0"
language: version: "v0.17.1"
source: kind: "self"
deps: "compatkit.dev@v0": v: "v0.1.0"
`,
	"slurm/slurm.cue": `// Package slurm: Slurm and MPI requirements.
package slurm

import "compatkit.dev/cue:compat"

// #Rule requires an MPI implementation.
#Rule: compat.#Rule & {
	name: "MPI available"
	matchFeatures: [{feature: "compatkit.mpi", matchExpressions: implementation: {op: "In", value: ["openmpi", "mpich"]}}]
}
`,
}

func TestRegistryImport(t *testing.T) {
	reg := startRegistry(t)
	publish(t, reg, "example.com/hpc@v0.1.0", slurmModule)

	for _, imp := range []string{"example.com/hpc/slurm@v0", "example.com/hpc/slurm"} {
		t.Run(imp, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, map[string]string{
				// The user's own module path is ignored: only deps are taken.
				"cue.mod/module.cue": `module: "example.com/images@v0"
language: version: "v0.17.1"
deps: "example.com/hpc@v0": v: "v0.1.0"
`,
				"specs/compat.cue": `package app

import (
	"compatkit.dev/cue:compat"
	"` + imp + `"
)

version: "v1alpha1"
compatibilities: [...compat.#Compatibility] & [{
	weight: 50
	rules: [slurm.#Rule]
}]
`,
			})
			res, err := Compile(context.Background(), []string{filepath.Join(dir, "specs", "compat.cue")}, Options{CUEPath: []string{}})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if res.Default == nil || len(res.Default.Compatibilities) != 1 || len(res.Default.Compatibilities[0].Rules) != 1 {
				t.Fatalf("compiled spec: %+v", res.Default)
			}
			r := res.Default.Compatibilities[0].Rules[0]
			b, _ := json.Marshal(r)
			t.Logf("rule from the registry: %s", b)
			// compatkit.mpi comes out in the form NFD evaluates: local.feature compatkit.mpi.<element>.
			if r.Name != "MPI available" || len(r.MatchFeatures) != 1 || r.MatchFeatures[0].Feature != "local.feature" ||
				r.MatchFeatures[0].MatchExpressions["compatkit.mpi.implementation"] == nil {
				t.Fatalf("rule = %s", b)
			}
		})
	}

	t.Run("missing version", func(t *testing.T) {
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{
			"cue.mod/module.cue": `module: "example.com/images@v0"
language: version: "v0.17.1"
deps: "example.com/hpc@v0": v: "v0.2.0"
`,
			"compat.cue": `package app

import "example.com/hpc/slurm@v0"

version: "v1alpha1"
compatibilities: [{rules: [slurm.#Rule]}]
`,
		})
		_, err := Compile(context.Background(), []string{filepath.Join(dir, "compat.cue")}, Options{CUEPath: []string{}})
		if err == nil {
			t.Fatal("Compile succeeded with a version the registry does not have")
		}
		t.Logf("error:\n%v", err)
		msg := err.Error()
		for _, want := range []string{filepath.Join(dir, "cue.mod", "module.cue"), "example.com/hpc", "v0.2.0", "CUE_REGISTRY"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error does not mention %q", want)
			}
		}
	})
}

// TestRegistryBadConfig checks that deps with an unusable CUE_REGISTRY name the module.cue.
func TestRegistryBadConfig(t *testing.T) {
	t.Setenv("CUE_REGISTRY", "::not a registry::")
	t.Setenv("CUE_CACHE_DIR", t.TempDir())
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"cue.mod/module.cue": "module: \"example.com/images@v0\"\nlanguage: version: \"v0.17.1\"\ndeps: \"example.com/hpc@v0\": v: \"v0.1.0\"\n",
		"compat.cue":         validCUE,
	})
	_, err := Compile(context.Background(), []string{filepath.Join(dir, "compat.cue")}, Options{CUEPath: []string{}})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "cue.mod", "module.cue")) || !strings.Contains(err.Error(), "CUE_REGISTRY") {
		t.Fatalf("err = %v, want one naming the module.cue and CUE_REGISTRY", err)
	}
	t.Logf("error: %v", err)
}

// TestNoRegistryWithoutDeps checks that a module.cue without deps changes nothing: no registry is
// set up, so an unusable CUE_REGISTRY does not matter.
func TestNoRegistryWithoutDeps(t *testing.T) {
	t.Setenv("CUE_REGISTRY", "::not a registry::")
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"cue.mod/module.cue": "module: \"example.com/images\"\n", // legacy, no language version
		"compat.cue":         validCUE,
	})
	if _, err := Compile(context.Background(), []string{filepath.Join(dir, "compat.cue")}, Options{CUEPath: []string{}}); err != nil {
		t.Fatal(err)
	}
}
