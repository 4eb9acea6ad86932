package infer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	_ "crypto/sha256" // digest algorithms of layer descriptors (go-digest needs them linked in)
	_ "crypto/sha512"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Limits bound what reading layers costs. Zero fields take the defaults.
type Limits struct {
	// MaxBytes bounds the compressed bytes read from all layers of one Infer call (what the
	// registry or layout serves, the bytes read to verify a layer's digest included); default
	// DefaultMaxBytes (2 GiB).
	MaxBytes int64
	// MaxUncompressedBytes bounds the bytes that decompressing all layers of one Infer call yields
	// (the tar streams, counted as the tar reader consumes them, skipped file contents included),
	// so that a small compressed layer cannot cost unbounded time (a compression bomb); default
	// DefaultMaxUncompressedBytes (16 GiB). An uncompressed layer counts its bytes here too.
	// Exceeding it is an error wrapping ErrLimit that names the layer and --max-uncompressed-bytes.
	MaxUncompressedBytes int64
	// MaxFiles bounds the tar entries examined across all layers; default DefaultMaxFiles.
	MaxFiles int
	// MaxFileSize is the largest regular file read as an ELF, in bytes (larger files are skipped
	// with a note); default DefaultMaxFileSize (256 MiB). At most this much is held in memory.
	MaxFileSize int64
}

// Defaults of Limits.
const (
	DefaultMaxBytes             int64 = 2 << 30
	DefaultMaxUncompressedBytes int64 = 16 << 30
	DefaultMaxFiles                   = 200000
	DefaultMaxFileSize          int64 = 256 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxUncompressedBytes <= 0 {
		l.MaxUncompressedBytes = DefaultMaxUncompressedBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = DefaultMaxFileSize
	}
	return l
}

// ErrLimit is wrapped by the errors of a layer that exceeds --max-bytes, --max-uncompressed-bytes
// or --max-files.
var ErrLimit = errors.New("limit exceeded")

// ELFFile is one ELF file found in a layer.
type ELFFile struct {
	// Layer is the digest of the layer holding it.
	Layer string
	// Path is its absolute path in the image ("/usr/bin/env").
	Path string
	// Info is what AnalyzeELF read.
	Info *ELFInfo
}

// LayerScan accumulates what scanning a manifest's layers finds. The layers are scanned in the
// manifest's order, base first, and later layers change what earlier ones hold as image-spec
// layer.md "Applying Changesets" says (see Scan), so one LayerScan serves one manifest.
type LayerScan struct {
	// Files is the number of tar entries examined.
	Files int
	// Bytes is the number of compressed bytes read.
	Bytes int64
	// ELFs lists the ELF executables and shared objects found that the layers scanned so far leave
	// in the image (none deleted by a whiteout or replaced by a later entry), in layer and tar order.
	ELFs []ELFFile
	// Skipped lists files not examined (over the size limit, malformed ELF): "layer path: why".
	Skipped []string

	limits       Limits
	uncompressed int64 // decompressed bytes read, against limits.MaxUncompressedBytes
	layers       int   // layers scanned: the index of the next one (a layer may appear twice)
	tree         *pathNode
}

// NewLayerScan returns an empty scan bounded by limits (zero fields: defaults).
func NewLayerScan(limits Limits) *LayerScan {
	return &LayerScan{limits: limits.withDefaults()}
}

// budgetReader counts the bytes read into *n and fails once they pass limit: the compressed bytes
// of the blobs (--max-bytes) and the decompressed bytes of the tar streams
// (--max-uncompressed-bytes).
type budgetReader struct {
	r     io.Reader
	n     *int64
	limit int64
	what  string // "compressed bytes read (--max-bytes)", ...
	layer string
}

func (c *budgetReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	if *c.n > c.limit {
		return n, fmt.Errorf("%w: layer %s: more than %d %s", ErrLimit, c.layer, c.limit, c.what)
	}
	return n, err
}

// verifyingReader hashes and counts what it reads.
type verifyingReader struct {
	r io.Reader
	w io.Writer
	n int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.w.Write(p[:n]) // a digest.Verifier never fails a write
	return n, err
}

// Scan reads one layer blob r (tar, gzip'd tar or zstd'd tar: the compression is recognised from
// the first bytes, whatever the media type says) named layer (its digest, for messages), without
// writing anything to disk. Regular files that start with the ELF magic and are at most
// MaxFileSize bytes are read into memory and analysed; other files are skipped after 4 bytes;
// symbolic and hard links are not followed. Scan does not verify the blob against a digest, and
// stops reading r at the end of the tar stream.
//
// The layers of a manifest are scanned in order, and each applies to what the earlier ones left as
// image-spec layer.md "Applying Changesets" and "Whiteouts" say: a whiteout ".wh.NAME" deletes
// NAME (and, for a directory, everything under it) from the earlier layers; an opaque whiteout
// ".wh..wh..opq" deletes everything the earlier layers hold in its directory; any other entry
// (file, link, directory, device) replaces what was at its path, and an entry that is not a
// directory also hides what the earlier layers held under that path. Within one layer the last
// entry for a path wins. An ELF found so deleted or replaced is dropped from ELFs. Other ".wh..wh."
// names (AUFS metadata) are ignored.
//
// An error names the layer and, inside it, the path being read; exceeding a limit (MaxBytes,
// MaxUncompressedBytes, MaxFiles) wraps ErrLimit. After an error the scan is incomplete and must
// not be used.
func (s *LayerScan) Scan(r io.Reader, layer string) error {
	_, err := s.scan(r, layer)
	return err
}

// scanDescriptor scans the blob r of the layer l like Scan, verifying while it streams that r
// holds l.Size bytes whose digest is l.Digest (image-spec descriptor.md "Digests": content must be
// verified against its digest before it is used). After the tar stream it reads the rest of r, at
// most l.Size+1 bytes in all, each counting against MaxBytes. When the size or the digest differ
// the error says the content does not match its digest; after any error, s must not be used.
func (s *LayerScan) scanDescriptor(r io.Reader, l ocispec.Descriptor) error {
	if err := l.Digest.Validate(); err != nil {
		return fmt.Errorf("layer %q: %v", l.Digest, err)
	}
	if l.Size < 0 {
		return fmt.Errorf("layer %s has a negative size", l.Digest)
	}
	v := l.Digest.Verifier()
	vr := &verifyingReader{r: io.LimitReader(r, l.Size+1), w: v}
	rest, err := s.scan(vr, l.Digest.String())
	if err != nil && errors.Is(err, ErrLimit) {
		return err
	}
	// The rest of the blob (the end of the compressed stream, the tar padding): once read, the
	// digest tells whether what was read is the layer; a failure here on a blob that failed already
	// (a broken connection) leaves the first error, which says what went wrong.
	if _, derr := io.Copy(io.Discard, rest); derr != nil {
		switch {
		case errors.Is(derr, ErrLimit):
			return derr
		case err != nil:
			return err
		}
		return fmt.Errorf("layer %s: reading the blob after the tar stream: %w", l.Digest, derr)
	}
	if vr.n != l.Size || !v.Verified() {
		var detail string
		switch {
		case vr.n > l.Size:
			detail = fmt.Sprintf(": more than the %d bytes its descriptor says", l.Size)
		case vr.n < l.Size:
			detail = fmt.Sprintf(": %d bytes, its descriptor says %d", vr.n, l.Size)
		}
		if err != nil {
			detail += fmt.Sprintf(" (reading it: %v)", err)
		}
		return fmt.Errorf("layer %s: content does not match its digest (the registry or layout served other bytes)%s", l.Digest, detail)
	}
	return err
}

// scan is Scan; it returns the reader of what follows the tar stream in r as well, through which
// the rest of r is read and counted.
func (s *LayerScan) scan(r io.Reader, layer string) (rest io.Reader, err error) {
	br := bufio.NewReader(&budgetReader{r: r, n: &s.Bytes, limit: s.limits.MaxBytes, what: "compressed bytes read (--max-bytes)", layer: layer})
	rest = br
	magic, _ := br.Peek(4)
	var zr io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gr, err := gzip.NewReader(br)
		if err != nil {
			return rest, fmt.Errorf("layer %s: gzip: %w", layer, err)
		}
		defer gr.Close()
		zr = gr
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		dr, err := zstd.NewReader(br, zstd.WithDecoderMaxMemory(256<<20), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return rest, fmt.Errorf("layer %s: zstd: %w", layer, err)
		}
		defer dr.Close()
		zr = dr
	}
	tr := tar.NewReader(&budgetReader{r: zr, n: &s.uncompressed, limit: s.limits.MaxUncompressedBytes, what: "uncompressed bytes read (--max-uncompressed-bytes)", layer: layer})
	idx := s.layers
	s.layers++
	if s.tree == nil {
		s.tree = &pathNode{}
	}
	// found holds this layer's ELFs by path (the last entry for a path wins); they join s.tree,
	// which holds the earlier layers' only, when the layer has been read.
	found := map[string]*elfEntry{}
	var order []*elfEntry
	var head [4]byte
	prev := "" // the entry read last, for messages
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, ErrLimit) {
				if prev != "" {
					return rest, fmt.Errorf("%w (reading %s, or the entry after it)", err, prev)
				}
				return rest, err
			}
			return rest, fmt.Errorf("layer %s: reading the tar stream after %d entries: %w", layer, s.Files, err)
		}
		prev = "/" + strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		s.Files++
		if s.Files > s.limits.MaxFiles {
			return rest, fmt.Errorf("%w: layer %s: more than %d files examined (--max-files)", ErrLimit, layer, s.limits.MaxFiles)
		}
		name := "/" + strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		dir, base := path.Split(name)
		switch {
		case base == ".wh..wh..opq":
			s.tree.remove(dir, false)
			continue
		case strings.HasPrefix(base, ".wh..wh."):
			continue // AUFS metadata (.wh..wh.plnk, .wh..wh.aufs)
		case strings.HasPrefix(base, ".wh."):
			if n := base[len(".wh."):]; n != "" && n != "." && n != ".." {
				s.tree.remove(dir+n, true)
			}
			continue
		}
		// Any other entry replaces what was at its path: in this layer, and in the earlier ones.
		if e := found[name]; e != nil {
			e.dead = true
			delete(found, name)
		}
		if h.Typeflag == tar.TypeDir {
			s.tree.replace(name)
		} else {
			s.tree.remove(name, true)
		}
		if h.Typeflag == tar.TypeLink {
			// A hard link is the same file under another name (it is not followed: the target is
			// an entry of this layer or an earlier one): an ELF there counts under this path too,
			// also once the target's own name is deleted.
			target := "/" + strings.TrimPrefix(path.Clean("/"+h.Linkname), "/")
			t := found[target]
			if t == nil || t.dead {
				t = s.tree.lookup(target)
			}
			if t != nil && !t.dead {
				e := &elfEntry{file: ELFFile{Layer: layer, Path: name, Info: t.file.Info}, layer: idx}
				found[name] = e
				order = append(order, e)
			}
			continue
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeGNUSparse {
			continue // directories, symbolic links (never followed), devices
		}
		if h.Size < 4 {
			continue
		}
		if _, err := io.ReadFull(tr, head[:]); err != nil {
			if errors.Is(err, ErrLimit) {
				return rest, fmt.Errorf("%w (reading %s)", err, name)
			}
			return rest, fmt.Errorf("layer %s: %s: %w", layer, name, err)
		}
		if !isELF(head[:]) {
			continue
		}
		if h.Size > s.limits.MaxFileSize {
			s.Skipped = append(s.Skipped, fmt.Sprintf("%s %s: ELF of %d bytes, over --max-file-size %d: not read", layer, name, h.Size, s.limits.MaxFileSize))
			continue
		}
		buf := make([]byte, h.Size)
		copy(buf, head[:])
		if _, err := io.ReadFull(tr, buf[4:]); err != nil {
			if errors.Is(err, ErrLimit) {
				return rest, fmt.Errorf("%w (reading %s)", err, name)
			}
			return rest, fmt.Errorf("layer %s: %s: reading %d bytes: %w", layer, name, h.Size, err)
		}
		info, err := AnalyzeELF(bytes.NewReader(buf), h.Size)
		if err != nil {
			s.Skipped = append(s.Skipped, fmt.Sprintf("%s %s: %v: skipped", layer, name, err))
			continue
		}
		e := &elfEntry{file: ELFFile{Layer: layer, Path: name, Info: info}, layer: idx}
		found[name] = e
		order = append(order, e)
	}
	// The layer is read: its surviving ELFs join the tree, and ELFs lists what is left.
	live := make([]*elfEntry, 0, len(s.tree.live)+len(order))
	for _, e := range s.tree.live {
		if !e.dead {
			live = append(live, e)
		}
	}
	for _, e := range order {
		if !e.dead {
			s.tree.insert(e)
			live = append(live, e)
		}
	}
	s.tree.live = live
	s.ELFs = make([]ELFFile, len(live))
	for i, e := range live {
		s.ELFs[i] = e.file
	}
	return rest, nil
}

// elfEntry is an ELF found in the layer of index layer (the position in the manifest); dead once
// a later entry deleted or replaced it.
type elfEntry struct {
	file  ELFFile
	layer int
	dead  bool
}

// pathNode is a directory tree of the ELFs that the layers scanned so far leave, with only the
// nodes on the way to one. The root also lists the live entries in layer and tar order.
type pathNode struct {
	children map[string]*pathNode
	elf      *elfEntry
	live     []*elfEntry // root only
}

// find returns the node of the absolute path p, nil when no ELF is at or under it. The ELFs of
// p's ancestors are deleted on the way: an entry at p makes them directories.
func (t *pathNode) find(p string) (parent *pathNode, name string, n *pathNode) {
	n = t
	rest := strings.Trim(p, "/")
	for rest != "" {
		if n.elf != nil {
			n.elf.dead, n.elf = true, nil
		}
		name, rest, _ = strings.Cut(rest, "/")
		parent, n = n, n.children[name]
		if n == nil {
			return nil, "", nil
		}
	}
	return parent, name, n
}

// lookup returns the live ELF at the absolute path p, or nil; it changes nothing.
func (t *pathNode) lookup(p string) *elfEntry {
	n := t
	for _, name := range strings.Split(strings.Trim(p, "/"), "/") {
		if n = n.children[name]; n == nil {
			return nil
		}
	}
	if n.elf != nil && !n.elf.dead {
		return n.elf
	}
	return nil
}

// remove deletes the ELFs at and under the absolute path p; with self the node of p goes too.
func (t *pathNode) remove(p string, self bool) {
	parent, name, n := t.find(p)
	if n == nil {
		return
	}
	if self && parent != nil {
		delete(parent.children, name)
		kill(n)
		return
	}
	for _, c := range n.children {
		kill(c)
	}
	n.children = nil
	if n.elf != nil { // a directory now, or deleted
		n.elf.dead, n.elf = true, nil
	}
}

// replace deletes the ELF at the absolute path p (a directory replaces it), keeping what is under p.
func (t *pathNode) replace(p string) {
	if _, _, n := t.find(p); n != nil && n.elf != nil {
		n.elf.dead, n.elf = true, nil
	}
}

// insert adds e at its path.
func (t *pathNode) insert(e *elfEntry) {
	n := t
	rest := strings.Trim(e.file.Path, "/")
	for rest != "" {
		var name string
		name, rest, _ = strings.Cut(rest, "/")
		c := n.children[name]
		if c == nil {
			c = &pathNode{}
			if n.children == nil {
				n.children = map[string]*pathNode{}
			}
			n.children[name] = c
		}
		n = c
	}
	if n.elf != nil {
		n.elf.dead = true
	}
	n.elf = e
}

// kill marks every ELF of the subtree n dead (without recursion: a path may be deep).
func kill(n *pathNode) {
	stack := []*pathNode{n}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n.elf != nil {
			n.elf.dead = true
		}
		for _, c := range n.children {
			stack = append(stack, c)
		}
	}
}
