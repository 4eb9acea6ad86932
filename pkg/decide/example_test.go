package decide_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/oci"
)

// exampleDir holds the examples' layouts; TestMain removes it.
var exampleDir string

func TestMain(m *testing.M) {
	exampleDir, _ = os.MkdirTemp("", "decide-examples")
	code := m.Run()
	os.RemoveAll(exampleDir)
	os.Exit(code)
}

// exampleLayout writes the test image (linux/amd64, linux/amd64/v3, linux/arm64/v8) into an OCI
// layout with a spec on the v3 build (AVX2, weight 90), and returns "PATH:1.0".
func exampleLayout() string {
	dir, _ := os.MkdirTemp(exampleDir, "layout")
	dir = filepath.Join(dir, "oci")
	img, err := testregistry.WriteLayoutDir(context.Background(), dir, "1.0", testregistry.Shape{})
	if err != nil {
		panic(err)
	}
	tg, _ := oci.Open(context.Background(), dir+":1.0", oci.Options{OCILayout: true})
	_, _ = tg.PushSpec(context.Background(), img.Manifests[1], flagSpec(90, "x86-64-v3", "AVX2"), nil, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	return dir + ":1.0"
}

// Which manifest of an index does a host get, and can it run it? The host is described by its
// features (here, a machine without AVX2: x86-64-v2); the platform is part of the decision.
func Example() {
	ctx := context.Background()
	t, err := oci.Open(ctx, exampleLayout(), oci.Options{OCILayout: true})
	if err != nil {
		panic(err)
	}
	img, err := decide.Open(ctx, t, nil) // nil: no trust policy
	if err != nil {
		panic(err)
	}
	for _, f := range []struct {
		name  string
		flags []string
	}{{"westmere", v2Flags}, {"haswell", v3Flags}} {
		h := decide.NewHost(f.name, machine("amd64", "6", f.flags...), nil)
		d, err := img.Decide(ctx, h, decide.Options{})
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s (%s): %s, %s, score %d\n", f.name, d.HostPlatform, d.Selected.Platform, d.Selected.Verdict, d.Selected.Score)
	}
	// Output:
	// westmere (linux/amd64/v2): linux/amd64, nospec, score 0
	// haswell (linux/amd64/v3): linux/amd64/v3, compatible, score 90
}

// Checking one entry, as `check --platform` does: the entry closest to the platform asked for,
// which must also run on the host.
func ExampleImage_Decide_pinned() {
	ctx := context.Background()
	t, _ := oci.Open(ctx, exampleLayout(), oci.Options{OCILayout: true})
	img, _ := decide.Open(ctx, t, nil)
	v3 := ocispec.Platform{OS: "linux", Architecture: "amd64", Variant: "v3"}
	d, _ := img.Decide(ctx, decide.NewHost("westmere", machine("amd64", "6", v2Flags...), nil), decide.Options{Platform: &v3, PinPlatform: true})
	c := d.Best()
	fmt.Println(c.Platform, c.Verdict)
	fmt.Println(c.Reason)
	// Output:
	// linux/amd64/v3 incompatible
	// platform linux/amd64/v3 needs an x86-64-v3 CPU; this host is linux/amd64/v2 (x86-64-v2), without AVX AVX2 BMI1 BMI2 F16C FMA3 LZCNT MOVBE OSXSAVE
}

// The host's platform comes from its features; features without one (`nfd export features`) need
// a platform to stand in, whose variant caps the x86-64 level the cpuid flags show.
func ExampleNewHost() {
	f := machine("", "6", v4Flags...)
	fmt.Println(decide.NewHost("nfd.json", f, nil).Platform.Architecture == "")
	h := decide.NewHost("nfd.json", f, &ocispec.Platform{OS: "linux", Architecture: "amd64"})
	fmt.Println(oci.FormatPlatform(&h.Platform))
	// Output:
	// true
	// linux/amd64/v4
}
