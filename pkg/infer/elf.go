package infer

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ELF note constants (GNU binutils, elf/common.h; Linux Standard Base "ELF Note Sections").
const (
	ntGNUABITag         = 1          // NT_GNU_ABI_TAG: OS, major, minor, patch
	ntGNUPropertyType0  = 5          // NT_GNU_PROPERTY_TYPE_0: program properties
	gnuPropX86ISANeeded = 0xc0008002 // GNU_PROPERTY_X86_ISA_1_NEEDED: x86-64 ISA levels needed
	maxNoteBytes        = 1 << 20    // a note section larger than this is not read
)

// ErrMalformedELF is wrapped by AnalyzeELF's errors for files that start with the ELF magic but do
// not parse (truncated headers, sections outside the file, corrupt notes).
var ErrMalformedELF = errors.New("malformed ELF")

// ELFInfo is what AnalyzeELF reads of one ELF file.
type ELFInfo struct {
	// Type is the ELF file type (ET_EXEC, ET_DYN, ...).
	Type elf.Type
	// Machine is e_machine, e.g. EM_X86_64.
	Machine elf.Machine
	// Arch is Machine as a GOARCH-style OCI architecture ("amd64", "arm64", "ppc64le", ...), ""
	// when unknown.
	Arch string
	// ABITag is the NT_GNU_ABI_TAG note (.note.ABI-tag): [os, major, minor, patch], nil if absent.
	// os 0 is Linux, and major.minor.patch the oldest kernel the binary runs on.
	ABITag []uint32
	// X86ISANeeded is the GNU_PROPERTY_X86_ISA_1_NEEDED bit mask of .note.gnu.property (bit 0
	// baseline, 1 x86-64-v2, 2 v3, 3 v4); 0 if absent.
	X86ISANeeded uint32
	// Go holds the Go build information (debug/buildinfo) of a Go binary, nil otherwise.
	Go *GoInfo
}

// GoInfo is the build information of a Go binary.
type GoInfo struct {
	// Version is the toolchain, e.g. "go1.26.8".
	Version string
	// Settings holds the build settings (GOAMD64, GOARM64, CGO_ENABLED, GOOS, GOARCH, ...).
	Settings map[string]string
}

// X86Level returns the highest x86-64 level (1-4) of X86ISANeeded, 0 when no bit is set.
func (e *ELFInfo) X86Level() int {
	level := 0
	for i := 0; i < 4; i++ {
		if e.X86ISANeeded&(1<<i) != 0 {
			level = i + 1
		}
	}
	return level
}

// archOf maps an ELF machine (and byte order) to an OCI architecture name.
func archOf(m elf.Machine, order binary.ByteOrder, class elf.Class) string {
	switch m {
	case elf.EM_X86_64:
		return "amd64"
	case elf.EM_AARCH64:
		return "arm64"
	case elf.EM_386:
		return "386"
	case elf.EM_ARM:
		return "arm"
	case elf.EM_PPC64:
		if order == binary.LittleEndian {
			return "ppc64le"
		}
		return "ppc64"
	case elf.EM_S390:
		if class == elf.ELFCLASS64 {
			return "s390x"
		}
		return "s390"
	case elf.EM_RISCV:
		if class == elf.ELFCLASS64 {
			return "riscv64"
		}
		return "riscv32"
	case elf.EM_LOONGARCH:
		return "loong64"
	case elf.EM_MIPS:
		return "mips"
	}
	return ""
}

// AnalyzeELF reads the ELF file r of size bytes: header, the .note.ABI-tag and .note.gnu.property
// notes (from SHT_NOTE sections, or PT_NOTE segments when the section headers are stripped) and,
// for Go binaries, the build information. It reads no more than size bytes and at most 1 MiB of
// notes; a file that does not parse gives an error wrapping ErrMalformedELF. It never panics on
// hostile input: a panic inside debug/elf is turned into that error.
func AnalyzeELF(r io.ReaderAt, size int64) (info *ELFInfo, err error) {
	defer func() {
		if p := recover(); p != nil {
			info, err = nil, fmt.Errorf("%w: the ELF reader failed: %v", ErrMalformedELF, p)
		}
	}()
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedELF, err)
	}
	info = &ELFInfo{Type: f.Type, Machine: f.Machine, Arch: archOf(f.Machine, f.ByteOrder, f.Class)}
	align := uint64(4)
	if f.Class == elf.ELFCLASS64 {
		align = 8 // .note.gnu.property entries are 8-aligned in ELF64 (gABI, "Program Property")
	}
	seen := false
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOTE {
			continue
		}
		data, err := readBounded(s.Open(), s.Size, size)
		if err != nil {
			return nil, fmt.Errorf("%w: section %s: %v", ErrMalformedELF, s.Name, err)
		}
		seen = true
		if err := parseNotes(data, f.ByteOrder, s.Addralign, align, info); err != nil {
			return nil, fmt.Errorf("%w: section %s: %v", ErrMalformedELF, s.Name, err)
		}
	}
	if !seen {
		for _, p := range f.Progs {
			if p.Type != elf.PT_NOTE {
				continue
			}
			data, err := readBounded(p.Open(), p.Filesz, size)
			if err != nil {
				return nil, fmt.Errorf("%w: PT_NOTE segment: %v", ErrMalformedELF, err)
			}
			if err := parseNotes(data, f.ByteOrder, p.Align, align, info); err != nil {
				return nil, fmt.Errorf("%w: PT_NOTE segment: %v", ErrMalformedELF, err)
			}
		}
	}
	if bi, err := buildinfo.Read(r); err == nil && bi != nil {
		g := &GoInfo{Version: bi.GoVersion, Settings: map[string]string{}}
		for _, s := range bi.Settings {
			g.Settings[s.Key] = s.Value
		}
		info.Go = g
	}
	return info, nil
}

// readBounded reads n bytes of r, refusing more than maxNoteBytes or more than the file's size.
func readBounded(r io.Reader, n uint64, fileSize int64) ([]byte, error) {
	if n > maxNoteBytes || (fileSize >= 0 && n > uint64(fileSize)) {
		return nil, fmt.Errorf("note of %d bytes (limit %d, file %d bytes)", n, maxNoteBytes, fileSize)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// ParseNotes reads the ELF notes in data (the contents of a SHT_NOTE section or PT_NOTE segment,
// byte order order, alignment align: 4 or 8) into info: NT_GNU_ABI_TAG and the x86 ISA level of
// NT_GNU_PROPERTY_TYPE_0. Notes of other owners and types are skipped. A note that runs past the
// end of data is an error. It is exported for the fuzz target and other readers of raw notes.
func ParseNotes(data []byte, order binary.ByteOrder, align uint64, info *ELFInfo) error {
	return parseNotes(data, order, align, align, info)
}

func parseNotes(data []byte, order binary.ByteOrder, align, propAlign uint64, info *ELFInfo) error {
	if align != 8 {
		align = 4
	}
	up := func(n uint64) uint64 { return (n + align - 1) &^ (align - 1) }
	off := uint64(0)
	end := uint64(len(data))
	for off+12 <= end {
		namesz := uint64(order.Uint32(data[off:]))
		descsz := uint64(order.Uint32(data[off+4:]))
		typ := order.Uint32(data[off+8:])
		off += 12
		if namesz > end-off {
			return fmt.Errorf("note name of %d bytes at offset %d runs past the end (%d bytes)", namesz, off, end)
		}
		name := strings.TrimRight(string(data[off:off+namesz]), "\x00")
		// The descriptor and the next note start at the next multiple of align (binutils'
		// ELF_NOTE_DESC_OFFSET and ELF_NOTE_NEXT_OFFSET).
		off = up(off + namesz)
		if off > end || descsz > end-off {
			return fmt.Errorf("note descriptor of %d bytes runs past the end (%d bytes)", descsz, end)
		}
		desc := data[off : off+descsz]
		off = up(off + descsz)
		if name != "GNU" {
			continue
		}
		switch typ {
		case ntGNUABITag:
			if len(desc) >= 16 {
				info.ABITag = []uint32{order.Uint32(desc), order.Uint32(desc[4:]), order.Uint32(desc[8:]), order.Uint32(desc[12:])}
			}
		case ntGNUPropertyType0:
			if err := parseProperties(desc, order, propAlign, info); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseProperties reads the program properties of one NT_GNU_PROPERTY_TYPE_0 note.
func parseProperties(desc []byte, order binary.ByteOrder, align uint64, info *ELFInfo) error {
	if align != 8 {
		align = 4
	}
	off := uint64(0)
	end := uint64(len(desc))
	for off+8 <= end {
		typ := order.Uint32(desc[off:])
		sz := uint64(order.Uint32(desc[off+4:]))
		off += 8
		if sz > end-off {
			return fmt.Errorf("program property 0x%x of %d bytes runs past its note", typ, sz)
		}
		if typ == gnuPropX86ISANeeded && sz >= 4 {
			info.X86ISANeeded |= order.Uint32(desc[off:])
		}
		off += (sz + align - 1) &^ (align - 1)
	}
	return nil
}

// isELF reports whether b starts with the ELF magic.
func isELF(b []byte) bool { return bytes.HasPrefix(b, []byte(elf.ELFMAG)) }
