package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	orasoci "oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/author"
)

// buildHelloLayout builds examples/hello as examples/hello/build.sh does (three static Go binaries:
// linux/amd64 GOAMD64=v1, linux/amd64 GOAMD64=v3, linux/arm64) and packs them with
// examples/hello/mkimage into an OCI layout, tag 1.0.
func buildHelloLayout(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the example's binaries")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	root, _ := filepath.Abs("../..")
	tmp := t.TempDir()
	run := func(env []string, args ...string) {
		t.Helper()
		c := exec.Command(goBin, args...)
		c.Dir = root
		c.Env = append(os.Environ(), env...)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, b := range []struct{ name, arch, amd64 string }{
		{"v1", "amd64", "v1"}, {"v3", "amd64", "v3"}, {"arm64", "arm64", ""},
	} {
		run([]string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + b.arch, "GOAMD64=" + b.amd64},
			"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", filepath.Join(tmp, b.name), "./examples/hello")
	}
	out := filepath.Join(tmp, "oci")
	run([]string{"SOURCE_DATE_EPOCH=1735689600"}, "run", "./examples/hello/mkimage", "-out", out, "-tag", "1.0",
		"-bin", "linux/amd64="+filepath.Join(tmp, "v1"),
		"-bin", "linux/amd64/v3="+filepath.Join(tmp, "v3"),
		"-bin", "linux/arm64/v8="+filepath.Join(tmp, "arm64"))
	return out
}

// The spec inferred from the example image names the levels the hand-written one does, vets, and
// select picks the same manifest with it as with examples/hello/compat.cue on every profile.
func TestInferExample(t *testing.T) {
	layout := buildHelloLayout(t)
	tmp := t.TempDir()
	out, stderr, code := runCLI(t, "infer", "--oci-layout", layout+":1.0")
	if code != 0 {
		t.Fatalf("infer: exit %d: %s", code, stderr)
	}
	if n := strings.Count(stderr, "infer: reading 1 layers"); n != 3 {
		t.Errorf("want one progress line per manifest, got:\n%s", stderr)
	}
	for _, want := range []string{
		`"linux/amd64": {`, `"linux/amd64/v3": {`, `"linux/arm64/v8": {`,
		`matchFeatures: [levels.v3]`, `matchFeatures: [levels.v1]`, `GOAMD64=v3 (debug/buildinfo)`,
		`ASIMD: {op: "Exists"}, FP: {op: "Exists"}`, `weight: 90`, `// kernel 3.2 or later: /hello`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inferred spec lacks %q:\n%s", want, out)
		}
	}
	spec := writeFile(t, tmp, "compat.cue", out)
	res, err := author.Compile(context.Background(), []string{spec}, author.Options{})
	if err != nil {
		t.Fatalf("the inferred spec does not compile: %v\n%s", err, out)
	}
	for p, tag := range map[string]string{"linux/amd64": "x86-64-v1", "linux/amd64/v3": "x86-64-v3", "linux/arm64/v8": "armv8"} {
		s := res.Platforms[p]
		if s == nil || len(s.Compatibilities) != 1 || s.Compatibilities[0].Tag != tag {
			t.Errorf("%s: %+v, want one set tagged %s", p, s, tag)
		}
	}
	if _, stderr, code := runCLI(t, "vet", spec); code != 0 {
		t.Fatalf("vet: %s", stderr)
	}
	yout, stderr, code := runCLI(t, "infer", "--oci-layout", layout+":1.0", "--platform", "linux/amd64/v3", "-o", "yaml")
	if code != 0 || !strings.Contains(yout, "# linux/amd64/v3") || strings.Contains(yout, "linux/arm64") || !strings.Contains(yout, "AVX2") {
		t.Errorf("-o yaml --platform linux/amd64/v3: exit %d, %s\n%s", code, stderr, yout)
	}

	hand, inferred := filepath.Join(tmp, "hand"), filepath.Join(tmp, "inferred")
	for _, d := range []string{hand, inferred} {
		if err := os.CopyFS(d, os.DirFS(layout)); err != nil {
			t.Fatal(err)
		}
	}
	if _, stderr, code := runCLI(t, "attach", "--oci-layout", hand+":1.0", "--spec", "../../examples/hello/compat.cue"); code != 0 {
		t.Fatalf("attach the example's spec: %s", stderr)
	}
	if _, stderr, code := runCLI(t, "attach", "--oci-layout", inferred+":1.0", "--spec", spec); code != 0 {
		t.Fatalf("attach the inferred spec: %s", stderr)
	}
	profiles, _ := filepath.Glob("../../examples/profiles/*.json")
	if len(profiles) == 0 {
		t.Fatal("no profiles")
	}
	// Every shipped profile, and this host ("": features discovered here).
	for _, p := range append(profiles, "") {
		var host []string
		if p != "" {
			host = []string{"--features", p}
		}
		a, ea, ca := runCLI(t, append([]string{"select", "--oci-layout", hand + ":1.0"}, host...)...)
		b, eb, cb := runCLI(t, append([]string{"select", "--oci-layout", inferred + ":1.0"}, host...)...)
		_, da, _ := strings.Cut(strings.TrimSpace(a), "@")
		_, db, _ := strings.Cut(strings.TrimSpace(b), "@")
		if ca != 0 || da == "" {
			t.Errorf("%s: the hand-written spec selects nothing: exit %d %q %s", filepath.Base(p), ca, a, ea)
		}
		t.Logf("%s: %s", filepath.Base(p), db)
		if ca != cb || da != db {
			t.Errorf("%s: hand-written: exit %d %q %s; inferred: exit %d %q %s", filepath.Base(p), ca, a, ea, cb, b, eb)
		}
	}
}

// layerOf returns a gzip'd tar holding files (path → content).
func layerOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(tb.Bytes())
	zw.Close()
	return zb.Bytes()
}

// writeImageLayout writes a single-platform linux/amd64 image (one manifest tagged tag) with the
// given layer blobs, config Env and manifest annotations into the OCI layout dir.
func writeImageLayout(t *testing.T, dir, tag string, layers [][]byte, env []string, annotations map[string]string) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	store, err := orasoci.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	push := func(mt string, b []byte) ocispec.Descriptor {
		d := content.NewDescriptorFromBytes(mt, b)
		if err := store.Push(ctx, d, bytes.NewReader(b)); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
		return d
	}
	var ls []ocispec.Descriptor
	var diffs []digest.Digest
	for _, l := range layers {
		d := push(ocispec.MediaTypeImageLayerGzip, l)
		ls = append(ls, d)
		diffs = append(diffs, d.Digest)
	}
	cfg, _ := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Config:   ocispec.ImageConfig{Env: env},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffs},
	})
	man, _ := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: push(ocispec.MediaTypeImageConfig, cfg), Layers: ls, Annotations: annotations,
	})
	md := push(ocispec.MediaTypeImageManifest, man)
	if err := store.Tag(ctx, md, tag); err != nil {
		t.Fatal(err)
	}
	return md
}

func hostBinary(t *testing.T) []byte {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("needs a linux/amd64 glibc binary")
	}
	for _, p := range []string{"/usr/bin/env", "/bin/true"} {
		if b, err := os.ReadFile(p); err == nil {
			return b
		}
	}
	t.Skip("no /usr/bin/env")
	return nil
}

// A glibc-linked binary of this machine gives the kernel rule of its ABI tag (Linux 3.2.0), the
// config's NVIDIA_REQUIRE_CUDA the driver/CUDA rule, the base annotations a comment.
func TestInferKernelCUDABase(t *testing.T) {
	bin := hostBinary(t)
	dir := filepath.Join(t.TempDir(), "oci")
	writeImageLayout(t, dir, "1.0", [][]byte{layerOf(t, map[string][]byte{"usr/bin/env": bin, "etc/motd": []byte("hi")})},
		[]string{"PATH=/usr/bin", "NVIDIA_REQUIRE_CUDA=cuda>=11.5 brand=tesla,driver>=418,driver<419 brand=tesla,driver>=470,driver<471", "CUDA_VERSION=11.5.2"},
		map[string]string{"org.opencontainers.image.base.name": "docker.io/library/debian:13", "org.opencontainers.image.base.digest": "sha256:" + strings.Repeat("a", 64)})
	out, stderr, code := runCLI(t, "infer", "--oci-layout", dir+":1.0")
	if code != 0 {
		t.Fatalf("infer: exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"// kernel 3.2 or later: /usr/bin/env: .note.ABI-tag (NT_GNU_ABI_TAG): Linux 3.2.0 or later",
		`matchExpressions: {major: {op: "In", value: ["3"]}, minor: {op: "Ge", value: ["2"]}}`,
		`name: "NVIDIA driver for CUDA 11.5"`, `"driver.major": {op: "In", value: ["418"]}`,
		"NVIDIA_REQUIRE_CUDA=cuda>=11.5", "// base image: docker.io/library/debian:13@sha256:aaaa",
		"x86-64-v1: /usr/bin/env: .note.gnu.property GNU_PROPERTY_X86_ISA_1_NEEDED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "platforms:") {
		t.Errorf("a single manifest gives a top-level spec:\n%s", out)
	}
	spec := writeFile(t, t.TempDir(), "compat.cue", out)
	if _, stderr, code := runCLI(t, "vet", spec); code != 0 {
		t.Fatalf("vet: %s\n%s", stderr, out)
	}
	y, stderr, code := runCLI(t, "infer", "--oci-layout", dir+":1.0", "-o", "yaml")
	if code != 0 || !strings.Contains(y, "compatkit.nvidia.driver.major") || !strings.Contains(y, "pci.device") {
		t.Errorf("-o yaml: exit %d %s\n%s", code, stderr, y)
	}
}

// Hostile or oversized layers: clear errors naming the layer, or skips; never a crash.
func TestInferHostileLayers(t *testing.T) {
	bin := hostBinary(t)
	dir := filepath.Join(t.TempDir(), "oci")
	good := layerOf(t, map[string][]byte{"usr/bin/env": bin, "a": []byte("1"), "b": []byte("2"), "c": []byte("3")})
	trunc := good[:len(good)/2]
	writeImageLayout(t, dir, "trunc", [][]byte{trunc}, nil, nil)
	td := digest.FromBytes(trunc).String()
	_, stderr, code := runCLI(t, "infer", "--oci-layout", dir+":trunc")
	if code != 1 || !strings.Contains(stderr, "layer "+td) {
		t.Errorf("truncated gzip: exit %d, %s", code, stderr)
	}

	writeImageLayout(t, dir, "good", [][]byte{good}, nil, nil)
	_, stderr, code = runCLI(t, "infer", "--oci-layout", dir+":good", "--max-files", "2")
	if code != 1 || !strings.Contains(stderr, "--max-files") || !strings.Contains(stderr, digest.FromBytes(good).String()) {
		t.Errorf("--max-files 2: exit %d, %s", code, stderr)
	}
	_, stderr, code = runCLI(t, "infer", "--oci-layout", dir+":good", "--max-bytes", "100")
	if code != 1 || !strings.Contains(stderr, "--max-bytes") {
		t.Errorf("--max-bytes 100: exit %d, %s", code, stderr)
	}
	out, stderr, code := runCLI(t, "infer", "--oci-layout", dir+":good", "--max-file-size", "1000")
	if code != 0 || !strings.Contains(stderr, "over --max-file-size 1000") || !strings.Contains(out, "// skipped: ") || strings.Contains(out, "kernel") {
		t.Errorf("--max-file-size 1000: exit %d, %s\n%s", code, stderr, out)
	}

	malformed := append([]byte("\x7fELF\x02\x01\x01"), bytes.Repeat([]byte{0xee}, 200)...)
	writeImageLayout(t, dir, "malformed", [][]byte{layerOf(t, map[string][]byte{"bin/bad": malformed})}, nil, nil)
	out, stderr, code = runCLI(t, "infer", "--oci-layout", dir+":malformed")
	if code != 0 || !strings.Contains(stderr, "/bin/bad: malformed ELF") {
		t.Errorf("malformed ELF: exit %d, %s\n%s", code, stderr, out)
	}
	if _, stderr, code := runCLI(t, "infer", "--oci-layout", dir+":good", "--platform", "linux"); code != 2 {
		t.Errorf("bad --platform: exit %d, %s", code, stderr)
	}
}

// The same through a registry: the layers are streamed from it, the kernel rule inferred.
func TestInferRegistry(t *testing.T) {
	bin := hostBinary(t)
	dir := filepath.Join(t.TempDir(), "oci")
	writeImageLayout(t, dir, "1.0", [][]byte{layerOf(t, map[string][]byte{"usr/bin/env": bin})}, nil, nil)
	src, err := orasoci.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg := testregistry.NewOCI(t)
	repo, err := remote.NewRepository(reg.Host() + "/app")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	if _, err := oras.Copy(context.Background(), src, "1.0", repo, "1.0", oras.DefaultCopyOptions); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCLI(t, "infer", "--plain-http", reg.Host()+"/app:1.0")
	if code != 0 || !strings.Contains(out, "// kernel 3.2 or later: /usr/bin/env") || !strings.Contains(stderr, "infer: reading 1 layers") {
		t.Errorf("exit %d, %s\n%s", code, stderr, out)
	}
}

// infer --attach --sign attaches and signs the inferred document in one step, as attach --spec
// would; a second run with --skip-unchanged pushes nothing; attach flags without --attach are a
// usage error.
func TestInferAttach(t *testing.T) {
	layout := buildHelloLayout(t)
	tmp := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "test")
	keys := tmp + "/k"
	if _, stderr, code := runCLI(t, "generate-key-pair", "--output-key-prefix", keys); code != 0 {
		t.Fatal(stderr)
	}
	if _, stderr, code := runCLI(t, "infer", "--oci-layout", layout+":1.0", "--sign", "--key", keys+".key"); code != 2 || !strings.Contains(stderr, "--attach") {
		t.Errorf("--sign without --attach: exit %d %s", code, stderr)
	}
	saved := filepath.Join(tmp, "saved")
	out, stderr, code := runCLI(t, "infer", "--oci-layout", layout+":1.0", "--attach", "--save-to", saved, "--sign", "--key", keys+".key")
	if code != 0 {
		t.Fatalf("infer --attach --sign: exit %d: %s", code, stderr)
	}
	if strings.Count(out, "Attached") != 3 || !strings.Contains(stderr, "infer: attaching this document") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out, stderr)
	}
	if _, err := os.Stat(filepath.Join(saved, "compat.cue")); err != nil {
		t.Errorf("--save-to: %v", err)
	}
	// Every platform's spec is signed by the key: verify says so.
	vout, stderr, code := runCLI(t, "verify", "--oci-layout", layout+":1.0", "--key", keys+".pub")
	if code != 0 || strings.Count(vout, "VERIFIED") < 3 {
		t.Errorf("verify: exit %d\n%s\n%s", code, vout, stderr)
	}
	// The signed inferred specs decide under the key: a v2 host gets the v1 build, by its spec.
	sel, stderr, code := runCLI(t, "select", "--oci-layout", layout+":1.0", "--key", keys+".pub", "--require-trusted",
		"--features", "../../examples/profiles/x86-64-v2-no-avx2.json", "-o", "json")
	var got struct {
		Ranking []struct {
			Platform string `json:"platform"`
			HasSpec  bool   `json:"hasSpec"`
			Score    int    `json:"score"`
		} `json:"ranking"`
	}
	if err := json.Unmarshal([]byte(sel), &got); code != 0 || err != nil || len(got.Ranking) == 0 ||
		got.Ranking[0].Platform != "linux/amd64" || !got.Ranking[0].HasSpec || got.Ranking[0].Score != 50 {
		t.Errorf("select on a v2 host under the key: exit %d %v %+v %s", code, err, got, stderr)
	}
	out, stderr, code = runCLI(t, "infer", "--oci-layout", layout+":1.0", "--attach", "--skip-unchanged")
	if code != 0 || strings.Contains(out, "Attached") {
		t.Errorf("second run with --skip-unchanged: exit %d\n%s\n%s", code, out, stderr)
	}
}
