package infer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	orasoci "oras.land/oras-go/v2/content/oci"

	"github.com/compatkit/compatkit/pkg/author"
	"github.com/compatkit/compatkit/pkg/oci"
)

// hostELF returns a glibc-linked binary of this machine, skipping when there is none.
func hostELF(t testing.TB) []byte {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("needs a Linux ELF binary")
	}
	for _, p := range []string{"/usr/bin/env", "/bin/true", "/usr/bin/true"} {
		if b, err := os.ReadFile(p); err == nil && isELF(b) {
			return b
		}
	}
	t.Skip("no /usr/bin/env or /bin/true")
	return nil
}

type entry struct {
	name, link string
	typ        byte
	body       []byte
	size       int64 // header size when body is nil
}

func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o755, Size: int64(len(e.body))}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(e.body)
		}
	}
	tw.Close()
	return b.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

func TestInferHostELFKernel(t *testing.T) {
	bin := hostELF(t)
	info, err := AnalyzeELF(bytes.NewReader(bin), int64(len(bin)))
	if err != nil {
		t.Fatal(err)
	}
	if info.ABITag == nil || info.ABITag[0] != 0 {
		t.Fatalf("no Linux NT_GNU_ABI_TAG in the host binary: %+v", info)
	}
	if info.ABITag[1] < 2 || info.ABITag[1] > 6 {
		t.Errorf("implausible ABI tag %v", info.ABITag)
	}
	if info.Arch != runtime.GOARCH && !(runtime.GOARCH == "amd64" && info.Arch == "amd64") {
		t.Errorf("arch %q, want %q", info.Arch, runtime.GOARCH)
	}
	t.Logf("host binary: %s, ABI tag %v, x86 ISA needed 0x%x", info.Arch, info.ABITag, info.X86ISANeeded)
}

// A synthetic NT_GNU_PROPERTY_TYPE_0 note with GNU_PROPERTY_X86_ISA_1_NEEDED = v3|baseline.
func TestInferGNUPropertyNote(t *testing.T) {
	var n bytes.Buffer
	le := binary.LittleEndian
	w := func(v uint32) { binary.Write(&n, le, v) }
	w(4)  // namesz
	w(16) // descsz
	w(ntGNUPropertyType0)
	n.WriteString("GNU\x00")
	w(gnuPropX86ISANeeded)
	w(4)
	w(0b101)
	w(0) // pad to 8
	// an ABI tag note after it
	w(4)
	w(16)
	w(ntGNUABITag)
	n.WriteString("GNU\x00")
	w(0)
	w(4)
	w(4)
	w(0)
	var info ELFInfo
	if err := ParseNotes(n.Bytes(), le, 8, &info); err != nil {
		t.Fatal(err)
	}
	if info.X86Level() != 3 {
		t.Errorf("level %d, want 3", info.X86Level())
	}
	if len(info.ABITag) != 4 || info.ABITag[1] != 4 || info.ABITag[2] != 4 {
		t.Errorf("ABI tag %v, want Linux 4.4.0", info.ABITag)
	}
	// truncated: an error, no panic
	if err := ParseNotes(n.Bytes()[:20], le, 8, &ELFInfo{}); err == nil {
		t.Error("a truncated note parsed")
	}
}

func TestInferLayerHostile(t *testing.T) {
	bin := hostELF(t)
	malformed := append([]byte("\x7fELF\x02\x01\x01"), bytes.Repeat([]byte{0xff}, 100)...)
	layer := tarOf(t,
		entry{name: "loop/a", link: "b", typ: tar.TypeSymlink},
		entry{name: "loop/b", link: "a", typ: tar.TypeSymlink},
		entry{name: "self", link: "self", typ: tar.TypeSymlink},
		entry{name: "hard", link: "usr/bin/env", typ: tar.TypeLink},
		entry{name: "usr/bin/.wh.gone", body: []byte("whiteout")},
		entry{name: "usr/bin/env", body: bin},
		entry{name: "bad.so", body: malformed},
		entry{name: "../../escape/env", body: bin},
		entry{name: "text", body: []byte("#!/bin/sh\necho hi\n")},
	)
	s := NewLayerScan(Limits{})
	if err := s.Scan(bytes.NewReader(gz(t, layer)), "sha256:l1"); err != nil {
		t.Fatal(err)
	}
	if len(s.ELFs) != 2 || s.ELFs[0].Path != "/usr/bin/env" || s.ELFs[1].Path != "/escape/env" {
		t.Errorf("ELFs %+v, want /usr/bin/env and /escape/env", s.ELFs)
	}
	if len(s.Skipped) != 1 || !strings.Contains(s.Skipped[0], "/bad.so") || !strings.Contains(s.Skipped[0], "malformed ELF") {
		t.Errorf("skipped %q, want the malformed /bad.so", s.Skipped)
	}

	// The same layer zstd'd reads the same.
	var zb bytes.Buffer
	zw, _ := zstd.NewWriter(&zb)
	zw.Write(layer)
	zw.Close()
	s = NewLayerScan(Limits{})
	if err := s.Scan(&zb, "sha256:z"); err != nil || len(s.ELFs) != 2 {
		t.Errorf("zstd layer: %v, %d ELFs", err, len(s.ELFs))
	}

	// Over the per-file limit: skipped, named.
	s = NewLayerScan(Limits{MaxFileSize: 1000})
	if err := s.Scan(bytes.NewReader(layer), "sha256:l2"); err != nil {
		t.Fatal(err)
	}
	if len(s.ELFs) != 0 || len(s.Skipped) != 3 || !strings.Contains(s.Skipped[0], "over --max-file-size") {
		t.Errorf("ELFs %d, skipped %q", len(s.ELFs), s.Skipped)
	}

	// More files than MaxFiles: ErrLimit naming the layer.
	s = NewLayerScan(Limits{MaxFiles: 3})
	err := s.Scan(bytes.NewReader(layer), "sha256:l3")
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "sha256:l3") || !strings.Contains(err.Error(), "--max-files") {
		t.Errorf("max files: %v", err)
	}

	// More compressed bytes than MaxBytes.
	s = NewLayerScan(Limits{MaxBytes: 2000})
	err = s.Scan(bytes.NewReader(gz(t, layer)), "sha256:l4")
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "--max-bytes") {
		t.Errorf("max bytes: %v", err)
	}

	// Truncated gzip: an error naming the layer and the path being read.
	z := gz(t, layer)
	s = NewLayerScan(Limits{})
	err = s.Scan(bytes.NewReader(z[:len(z)/2]), "sha256:trunc")
	if err == nil || !strings.Contains(err.Error(), "sha256:trunc") {
		t.Errorf("truncated gzip: %v", err)
	}
	t.Logf("truncated gzip: %v", err)

	// Garbage that is neither gzip nor tar.
	s = NewLayerScan(Limits{})
	if err := s.Scan(strings.NewReader(strings.Repeat("not a tar ", 100)), "sha256:junk"); err == nil || !strings.Contains(err.Error(), "sha256:junk") {
		t.Errorf("junk layer: %v", err)
	}

	// A header claiming a huge (sparse-like) size with no data: an error, nothing allocated.
	var hb bytes.Buffer
	tw := tar.NewWriter(&hb)
	tw.WriteHeader(&tar.Header{Name: "huge", Typeflag: tar.TypeReg, Size: 1 << 40, Mode: 0o644})
	hb.WriteString("\x7fELF")
	s = NewLayerScan(Limits{})
	if err := s.Scan(&hb, "sha256:huge"); err == nil && len(s.Skipped) == 0 {
		t.Error("a 1 TiB ELF header was neither an error nor skipped")
	}
}

func TestInferParseCUDA(t *testing.T) {
	c := ParseCUDA("cuda>=11.5 brand=tesla,driver>=418,driver<419 brand=tesla,driver>=450,driver<451 arch=x86_64", "11.5.2")
	if c.CUDA != "11.5" || len(c.Drivers) != 2 || c.Drivers[0] != (DriverRange{418, 418, "tesla"}) || c.Drivers[1].Min != 450 {
		t.Errorf("%+v", c)
	}
	if len(c.Ignored) != 1 || c.Ignored[0] != "arch=x86_64" {
		t.Errorf("ignored %q", c.Ignored)
	}
	if c := ParseCUDA("", "12.2.0"); c.CUDA != "12.2" || len(c.Drivers) != 0 {
		t.Errorf("CUDA_VERSION only: %+v", c)
	}
	if ParseCUDA("", "") != nil {
		t.Error("nothing set, something parsed")
	}
}

// The CUDA and base-image requirements render as CUE that compiles, with the expected rules.
func TestInferCUDACompiles(t *testing.T) {
	for _, c := range []struct {
		require, version string
		want             []string
	}{
		{"cuda>=11.5 brand=tesla,driver>=418,driver<419 brand=tesla,driver>=470,driver<471", "11.5.2", []string{"NVIDIA GPU", "NVIDIA driver for CUDA 11.5", "compatkit.nvidia.driver.major", "\"418\"", "\"470\""}},
		{"cuda>=12.2", "", []string{"NVIDIA GPU", "NVIDIA driver supporting CUDA 12.2", "compatkit.nvidia.cuda.major"}},
		{"", "12.4.1", []string{"NVIDIA driver supporting CUDA 12.4"}},
	} {
		m := &Manifest{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, Scan: NewLayerScan(Limits{}),
			CUDA: ParseCUDA(c.require, c.version), BaseName: "docker.io/nvidia/cuda:11.5.2-base", BaseDigest: "sha256:abc"}
		derive(m)
		r := &Result{Image: "x", Manifests: []*Manifest{m}}
		res, err := r.Compile(context.Background(), author.Options{})
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.require, err, r.CUE())
		}
		y, _ := res.Default.MarshalYAML()
		for _, w := range c.want {
			if !strings.Contains(string(y), w) {
				t.Errorf("%s: no %q in\n%s", c.require, w, y)
			}
		}
		if !strings.Contains(string(r.CUE()), "// base image: docker.io/nvidia/cuda:11.5.2-base@sha256:abc") {
			t.Errorf("no base comment:\n%s", r.CUE())
		}
	}
}

// Evidence from the image never escapes its comment line.
func TestInferCommentInjection(t *testing.T) {
	m := &Manifest{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, Scan: NewLayerScan(Limits{}),
		Warnings: []Evidence{{"/x\nweight: 100\n//", "y"}}}
	derive(m)
	r := &Result{Image: "x", Manifests: []*Manifest{m}}
	if _, err := r.Compile(context.Background(), author.Options{}); err != nil {
		t.Fatalf("%v\n%s", err, r.CUE())
	}
	if strings.Contains(string(r.CUE()), "\nweight: 100") {
		t.Errorf("newline in a path broke out of its comment:\n%s", r.CUE())
	}
}

func FuzzELF(f *testing.F) {
	if b, err := os.ReadFile("/usr/bin/env"); err == nil && len(b) < 1<<20 {
		f.Add(b)
	}
	f.Add([]byte("\x7fELF\x02\x01\x01\x00"))
	f.Add([]byte("\x04\x00\x00\x00\x10\x00\x00\x00\x05\x00\x00\x00GNU\x00\x02\x80\x00\xc0\x04\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var info ELFInfo
		_ = ParseNotes(b, binary.LittleEndian, 8, &info)
		_ = ParseNotes(b, binary.BigEndian, 4, &info)
		_, _ = AnalyzeELF(bytes.NewReader(b), int64(len(b)))
	})
}

func FuzzLayer(f *testing.F) {
	small := tarOf(f, entry{name: "a", link: "a", typ: tar.TypeSymlink}, entry{name: "bin", body: []byte("\x7fELF\x02\x01\x01\x00garbage")})
	f.Add(small)
	f.Add(gz(f, small))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewLayerScan(Limits{MaxFiles: 100, MaxFileSize: 1 << 20, MaxBytes: 1 << 22})
		_ = s.Scan(bytes.NewReader(b), "sha256:fuzz")
	})
}

// writeLayout writes an OCI layout in dir tagged "1.0": with one image (each a list of gzip'd
// layer blobs) a single linux/amd64 manifest, with more an index of them (variants v1, v2, ...).
// It returns the layers' descriptors, image by image.
func writeLayout(t *testing.T, dir string, images ...[][]byte) [][]ocispec.Descriptor {
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
	var all [][]ocispec.Descriptor
	var mans []ocispec.Descriptor
	for i, layers := range images {
		var ls []ocispec.Descriptor
		var diffs []digest.Digest
		for _, l := range layers {
			d := push(ocispec.MediaTypeImageLayerGzip, l)
			ls = append(ls, d)
			diffs = append(diffs, d.Digest)
		}
		all = append(all, ls)
		plat := ocispec.Platform{OS: "linux", Architecture: "amd64"}
		if len(images) > 1 {
			plat.Variant = "v" + string(rune('1'+i))
		}
		cfg, _ := json.Marshal(ocispec.Image{Platform: plat, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffs}})
		man, _ := json.Marshal(ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: push(ocispec.MediaTypeImageConfig, cfg), Layers: ls,
		})
		md := push(ocispec.MediaTypeImageManifest, man)
		md.Platform = &plat
		mans = append(mans, md)
	}
	root := mans[0]
	if len(mans) > 1 {
		idx, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: mans})
		root = push(ocispec.MediaTypeImageIndex, idx)
	}
	if err := store.Tag(ctx, root, "1.0"); err != nil {
		t.Fatal(err)
	}
	return all
}

func inferLayout(t *testing.T, dir string, limits Limits) (*Result, error) {
	t.Helper()
	ctx := context.Background()
	tg, err := oci.Open(ctx, dir+":1.0", oci.Options{OCILayout: true})
	if err != nil {
		t.Fatal(err)
	}
	return Infer(ctx, tg, Options{Limits: limits})
}

// A layer blob is verified against its descriptor while it streams: other bytes (a wrong digest,
// a blob longer or shorter than its size) are an error naming the layer, and no result.
func TestInferLayerDigest(t *testing.T) {
	bin := hostELF(t)
	blob := gz(t, tarOf(t, entry{name: "usr/bin/env", body: bin}))
	good := content.NewDescriptorFromBytes(ocispec.MediaTypeImageLayerGzip, blob)

	s := NewLayerScan(Limits{})
	if err := s.scanDescriptor(bytes.NewReader(blob), good); err != nil || len(s.ELFs) != 1 {
		t.Fatalf("good layer: %v, %d ELFs", err, len(s.ELFs))
	}
	if s.Bytes != int64(len(blob)) {
		t.Errorf("read %d bytes of a %d-byte blob: the rest after the tar stream was not read", s.Bytes, len(blob))
	}
	const mismatch = "content does not match its digest (the registry or layout served other bytes)"
	check := func(what string, b []byte, d ocispec.Descriptor, want ...string) {
		t.Helper()
		s := NewLayerScan(Limits{})
		err := s.scanDescriptor(bytes.NewReader(b), d)
		if err == nil {
			t.Errorf("%s: no error", what)
			return
		}
		for _, w := range append(want, "layer "+d.Digest.String()+": "+mismatch) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want %q", what, err, w)
			}
		}
		if errors.Is(err, ErrLimit) {
			t.Errorf("%s: %v wraps ErrLimit", what, err)
		}
		t.Logf("%s: %v", what, err)
	}
	wrong := good
	wrong.Digest = digest.FromString("another layer")
	check("wrong digest", blob, wrong)
	check("longer blob", append(append([]byte{}, blob...), "trailing"...), good, "more than the")
	long := good
	long.Size += 100
	check("shorter blob", blob, long, "its descriptor says")
	check("truncated blob", blob[:len(blob)-4], good)
	check("other bytes", bytes.Repeat([]byte{0}, len(blob)), good)
	if err := NewLayerScan(Limits{}).scanDescriptor(bytes.NewReader(blob), ocispec.Descriptor{Digest: "sha256:zz", Size: good.Size}); err == nil {
		t.Error("an invalid digest was accepted")
	}

	// Through Infer: a layout whose blob file holds other bytes of the same size.
	dir := filepath.Join(t.TempDir(), "oci")
	ls := writeLayout(t, dir, [][]byte{blob})
	d := ls[0][0]
	other := gz(t, tarOf(t, entry{name: "usr/bin/other", body: bin}))
	other = append(other, make([]byte, max(0, len(blob)-len(other)))...)[:len(blob)]
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Digest.Encoded()), other, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := inferLayout(t, dir, Limits{})
	if err == nil || res != nil || !strings.Contains(err.Error(), "layer "+d.Digest.String()+": "+mismatch) {
		t.Fatalf("Infer of a layout serving other bytes: %v, %v", res, err)
	}
}

// A compression bomb (10 MB of zeros gzip'd to a few KB) stops at --max-uncompressed-bytes, and the
// budget is shared by the manifests of an index.
func TestInferUncompressedLimit(t *testing.T) {
	bomb := gz(t, tarOf(t, entry{name: "zeros", body: make([]byte, 10<<20)}))
	if len(bomb) > 100<<10 {
		t.Fatalf("the bomb is %d bytes compressed", len(bomb))
	}
	start := time.Now()
	s := NewLayerScan(Limits{MaxUncompressedBytes: 1 << 20})
	err := s.Scan(bytes.NewReader(bomb), "sha256:bomb")
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "sha256:bomb") || !strings.Contains(err.Error(), "--max-uncompressed-bytes") || !strings.Contains(err.Error(), "/zeros") {
		t.Errorf("bomb: %v", err)
	}
	if s.uncompressed > 2<<20 {
		t.Errorf("read %d uncompressed bytes past a 1 MiB limit", s.uncompressed)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the bomb took %v", d)
	}
	// Uncompressed tar counts too; the default lets the bomb through.
	s = NewLayerScan(Limits{MaxUncompressedBytes: 1 << 20})
	if err := s.Scan(bytes.NewReader(tarOf(t, entry{name: "zeros", body: make([]byte, 2<<20)})), "sha256:tar"); !errors.Is(err, ErrLimit) {
		t.Errorf("plain tar: %v", err)
	}
	if err := NewLayerScan(Limits{}).Scan(bytes.NewReader(bomb), "sha256:bomb"); err != nil {
		t.Errorf("default limit: %v", err)
	}

	// Two manifests of 6 MB each: one fits in 8 MB, both do not; each alone does.
	six := gz(t, tarOf(t, entry{name: "zeros", body: make([]byte, 6<<20)}))
	six2 := gz(t, tarOf(t, entry{name: "zeros2", body: make([]byte, 6<<20)}))
	dir := filepath.Join(t.TempDir(), "oci")
	ls := writeLayout(t, dir, [][]byte{six}, [][]byte{six2})
	_, err = inferLayout(t, dir, Limits{MaxUncompressedBytes: 8 << 20})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "--max-uncompressed-bytes") || !strings.Contains(err.Error(), ls[1][0].Digest.String()) {
		t.Errorf("index over the shared budget: %v", err)
	}
	if res, err := inferLayout(t, dir, Limits{MaxUncompressedBytes: 16 << 20}); err != nil || len(res.Manifests) != 2 {
		t.Errorf("index within the budget: %v", err)
	}
}

// Whiteouts and later layers (image-spec layer.md "Whiteouts", "Applying Changesets") delete or
// replace the ELFs of earlier layers.
func TestInferWhiteouts(t *testing.T) {
	bin := hostELF(t)
	script := []byte("#!/bin/sh\necho hi\n")
	scan := func(layers ...[]byte) *LayerScan {
		t.Helper()
		s := NewLayerScan(Limits{})
		for i, l := range layers {
			if err := s.Scan(bytes.NewReader(l), "sha256:l"+string(rune('1'+i))); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	paths := func(s *LayerScan) string {
		var p []string
		for _, e := range s.ELFs {
			p = append(p, e.Layer+":"+e.Path)
		}
		return strings.Join(p, " ")
	}
	want := func(what string, s *LayerScan, w string) {
		t.Helper()
		if got := paths(s); got != w {
			t.Errorf("%s: ELFs %q, want %q", what, got, w)
		}
	}
	base := tarOf(t, entry{name: "usr/bin/a", body: bin}, entry{name: "opt/x/b", body: bin})
	want("whiteout and opaque whiteout", scan(base, tarOf(t, entry{name: "usr/bin/.wh.a"}, entry{name: "opt/x/.wh..wh..opq"})), "")
	want("no whiteout", scan(base, tarOf(t, entry{name: "usr/bin/.wh.other"})), "sha256:l1:/usr/bin/a sha256:l1:/opt/x/b")
	// An opaque whiteout hides the lower layers only: its own layer's entries stay; so does a
	// whiteout, and an ancestor's opaque whiteout hides everything below.
	want("opaque keeps its layer", scan(base, tarOf(t, entry{name: "opt/x/c", body: bin}, entry{name: "opt/x/.wh..wh..opq"}, entry{name: "usr/bin/a", body: bin}, entry{name: "usr/bin/.wh.a"})),
		"sha256:l2:/opt/x/c sha256:l2:/usr/bin/a")
	want("ancestor opaque", scan(base, tarOf(t, entry{name: "opt/.wh..wh..opq"})), "sha256:l1:/usr/bin/a")
	want("root opaque", scan(base, tarOf(t, entry{name: ".wh..wh..opq"})), "")
	want("directory whiteout", scan(base, tarOf(t, entry{name: ".wh.opt"})), "sha256:l1:/usr/bin/a")
	want("AUFS metadata", scan(base, tarOf(t, entry{name: ".wh..wh.plnk/1.2"}, entry{name: "opt/x/.wh..wh.aufs"})), "sha256:l1:/usr/bin/a sha256:l1:/opt/x/b")

	// Replaced by a later layer: a script, a symlink, a directory, a file where a directory was.
	want("script", scan(base, tarOf(t, entry{name: "usr/bin/a", body: script})), "sha256:l1:/opt/x/b")
	want("symlink", scan(base, tarOf(t, entry{name: "./usr/bin/a", link: "b", typ: tar.TypeSymlink})), "sha256:l1:/opt/x/b")
	want("hard link", scan(base, tarOf(t, entry{name: "usr/bin/a", link: "usr/bin/c", typ: tar.TypeLink})), "sha256:l1:/opt/x/b")
	want("directory", scan(base, tarOf(t, entry{name: "usr/bin/a/", typ: tar.TypeDir})), "sha256:l1:/opt/x/b")
	want("file over a directory", scan(base, tarOf(t, entry{name: "opt/x", body: script})), "sha256:l1:/usr/bin/a")
	want("directory entry of a parent", scan(base, tarOf(t, entry{name: "opt/x/", typ: tar.TypeDir})), "sha256:l1:/usr/bin/a sha256:l1:/opt/x/b")
	want("file under a former file", scan(base, tarOf(t, entry{name: "usr/bin/a/z", body: script})), "sha256:l1:/opt/x/b")
	// A hard link is the same file: it counts under its own name, also once the target's name is
	// whited out, and across layers; a link to nothing (or to a script) is no ELF.
	linked := tarOf(t, entry{name: "usr/bin/a", body: bin}, entry{name: "usr/local/bin/app", link: "usr/bin/a", typ: tar.TypeLink})
	want("hard link, target whited out", scan(linked, tarOf(t, entry{name: "usr/bin/.wh.a"})), "sha256:l1:/usr/local/bin/app")
	want("hard link across layers", scan(base, tarOf(t, entry{name: "usr/local/b", link: "opt/x/b", typ: tar.TypeLink})), "sha256:l1:/usr/bin/a sha256:l1:/opt/x/b sha256:l2:/usr/local/b")
	want("hard link to a script", scan(tarOf(t, entry{name: "s", body: script}, entry{name: "t", link: "s", typ: tar.TypeLink})), "")
	// An ELF replacing a script counts, from its layer, after the earlier layers' ELFs.
	want("ELF over a script", scan(tarOf(t, entry{name: "usr/bin/a", body: script}, entry{name: "opt/x/b", body: bin}), tarOf(t, entry{name: "usr/bin/a", body: bin})),
		"sha256:l1:/opt/x/b sha256:l2:/usr/bin/a")
	want("ELF over an ELF", scan(base, tarOf(t, entry{name: "usr/bin/a", body: bin})), "sha256:l1:/opt/x/b sha256:l2:/usr/bin/a")
	// Within one layer the last entry wins.
	want("same layer, script last", scan(tarOf(t, entry{name: "bin/x", body: bin}, entry{name: "bin/x", body: script})), "")
	want("same layer, ELF last", scan(tarOf(t, entry{name: "bin/x", body: script}, entry{name: "bin/x", body: bin})), "sha256:l1:/bin/x")
	// The same layer twice: the index, not the digest, tells the layers apart.
	a := tarOf(t, entry{name: "bin/a", body: bin})
	wh := tarOf(t, entry{name: "bin/.wh.a"})
	s := NewLayerScan(Limits{})
	for i, l := range [][]byte{a, wh, a} {
		if err := s.Scan(bytes.NewReader(l), []string{"sha256:a", "sha256:wh", "sha256:a"}[i]); err != nil {
			t.Fatal(err)
		}
		if n := len(s.ELFs); n != 1-i%2 {
			t.Errorf("after layer %d: %d ELFs, want %d", i+1, n, 1-i%2)
		}
	}

	// Through Infer: the kernel rule of a deleted binary is gone.
	dir := filepath.Join(t.TempDir(), "oci")
	writeLayout(t, dir, [][]byte{gz(t, base), gz(t, tarOf(t, entry{name: "usr/bin/.wh.a"}, entry{name: "opt/.wh.x"}))})
	res, err := inferLayout(t, dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if m := res.Manifests[0]; len(m.Scan.ELFs) != 0 || m.Kernel != nil {
		t.Errorf("whited-out binaries counted: %+v, kernel %v (%s)", m.Scan.ELFs, m.Kernel, m.KernelEvidence)
	}
	dir = filepath.Join(t.TempDir(), "oci")
	writeLayout(t, dir, [][]byte{gz(t, base), gz(t, tarOf(t, entry{name: "usr/bin/.wh.a"}))})
	if res, err := inferLayout(t, dir, Limits{}); err != nil || res.Manifests[0].Kernel == nil || res.Manifests[0].KernelEvidence.Path != "/opt/x/b" {
		t.Errorf("the surviving binary: %v %+v", err, res)
	}
}
