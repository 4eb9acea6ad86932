package infer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Limits bound what reading layers costs. Zero fields take the defaults.
type Limits struct {
	// MaxBytes bounds the compressed bytes read from all layers of one Infer call; default
	// DefaultMaxBytes (2 GiB).
	MaxBytes int64
	// MaxFiles bounds the tar entries examined across all layers; default DefaultMaxFiles.
	MaxFiles int
	// MaxFileSize is the largest regular file read as an ELF, in bytes (larger files are skipped
	// with a note); default DefaultMaxFileSize (256 MiB). At most this much is held in memory.
	MaxFileSize int64
}

// Defaults of Limits.
const (
	DefaultMaxBytes    int64 = 2 << 30
	DefaultMaxFiles          = 200000
	DefaultMaxFileSize int64 = 256 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = DefaultMaxFileSize
	}
	return l
}

// ErrLimit is wrapped by the errors of a layer that exceeds --max-bytes or --max-files.
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

// LayerScan accumulates what scanning a manifest's layers finds.
type LayerScan struct {
	// Files is the number of tar entries examined.
	Files int
	// Bytes is the number of compressed bytes read.
	Bytes int64
	// ELFs lists the ELF executables and shared objects found, in layer and tar order.
	ELFs []ELFFile
	// Skipped lists files not examined (over the size limit, malformed ELF): "layer path: why".
	Skipped []string

	limits Limits
}

// NewLayerScan returns an empty scan bounded by limits (zero fields: defaults).
func NewLayerScan(limits Limits) *LayerScan {
	return &LayerScan{limits: limits.withDefaults()}
}

// countingReader counts the compressed bytes read and fails past the budget.
type countingReader struct {
	r     io.Reader
	s     *LayerScan
	layer string
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.s.Bytes += int64(n)
	if c.s.Bytes > c.s.limits.MaxBytes {
		return n, fmt.Errorf("%w: layer %s: more than %d compressed bytes read (--max-bytes)", ErrLimit, c.layer, c.s.limits.MaxBytes)
	}
	return n, err
}

// Scan reads one layer blob r (tar, gzip'd tar or zstd'd tar: the compression is recognised from
// the first bytes, whatever the media type says) named layer (its digest, for messages), without
// writing anything to disk. Regular files that start with the ELF magic and are at most
// MaxFileSize bytes are read into memory and analysed; other files are skipped after 4 bytes;
// symbolic and hard links are not followed; whiteouts (.wh.*) are ignored. An error names the
// layer and, inside it, the path being read.
func (s *LayerScan) Scan(r io.Reader, layer string) error {
	br := bufio.NewReader(&countingReader{r: r, s: s, layer: layer})
	magic, _ := br.Peek(4)
	var tr *tar.Reader
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("layer %s: gzip: %w", layer, err)
		}
		defer zr.Close()
		tr = tar.NewReader(zr)
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxMemory(256<<20), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return fmt.Errorf("layer %s: zstd: %w", layer, err)
		}
		defer zr.Close()
		tr = tar.NewReader(zr)
	default:
		tr = tar.NewReader(br)
	}
	var head [4]byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if errors.Is(err, ErrLimit) {
				return err
			}
			return fmt.Errorf("layer %s: reading the tar stream after %d entries: %w", layer, s.Files, err)
		}
		s.Files++
		if s.Files > s.limits.MaxFiles {
			return fmt.Errorf("%w: layer %s: more than %d files examined (--max-files)", ErrLimit, layer, s.limits.MaxFiles)
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeGNUSparse {
			continue // directories, links (never followed), devices
		}
		name := "/" + strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if strings.HasPrefix(path.Base(name), ".wh.") {
			continue
		}
		if h.Size < 4 {
			continue
		}
		if _, err := io.ReadFull(tr, head[:]); err != nil {
			if errors.Is(err, ErrLimit) {
				return err
			}
			return fmt.Errorf("layer %s: %s: %w", layer, name, err)
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
				return err
			}
			return fmt.Errorf("layer %s: %s: reading %d bytes: %w", layer, name, h.Size, err)
		}
		info, err := AnalyzeELF(bytes.NewReader(buf), h.Size)
		if err != nil {
			s.Skipped = append(s.Skipped, fmt.Sprintf("%s %s: %v: skipped", layer, name, err))
			continue
		}
		s.ELFs = append(s.ELFs, ELFFile{Layer: layer, Path: name, Info: info})
	}
}
