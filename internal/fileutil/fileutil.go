// Package fileutil reads input files with a size limit, so that a wrong argument (/dev/zero, a
// disk image, a log) fails at once with a clear error instead of exhausting memory.
package fileutil

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTooLarge is returned (wrapped) when a file exceeds its limit.
var ErrTooLarge = errors.New("file too large")

// ReadLimited reads path ("-" is standard input) if it holds at most limit bytes; otherwise the
// error names the path and the limit and wraps ErrTooLarge. It reads at most limit+1 bytes, so it
// also ends on endless inputs such as /dev/zero. Directories are errors.
func ReadLimited(path string, limit int64) ([]byte, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.IsDir() {
			return nil, fmt.Errorf("%s is a directory, not a file", path)
		}
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", path, ErrTooLarge, limit)
	}
	return data, nil
}
