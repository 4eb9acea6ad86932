// Package fileutil reads input files with a size limit, so that a wrong argument (/dev/zero, a
// disk image, a log) fails at once with a clear error instead of exhausting memory.
package fileutil

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
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

// ReadInRoot reads the regular file rel inside root, at most limit bytes, for input that
// someone else prepared (a mounted root file system, a support dump): rel is resolved inside root
// (os.Root: a symbolic link that leads out of root, absolute ones included, is an error), and a
// FIFO, socket or device is an error instead of a read that may never end. The error names
// root/rel; one over limit wraps ErrTooLarge.
func ReadInRoot(root *os.Root, rel string, limit int64) ([]byte, error) {
	path := filepath.Join(root.Name(), rel)
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, st.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", path, ErrTooLarge, limit)
	}
	return data, nil
}

// unwrapPath drops the *PathError wrapper (whose path is relative to the root) and keeps its
// cause.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
