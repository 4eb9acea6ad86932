package infer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/pkg/author"
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
