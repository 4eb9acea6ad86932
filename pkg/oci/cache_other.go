//go:build !unix

package oci

// Open flags of cache reads (none on this system: the file's mode is checked after opening).
const (
	syscallNoFollow = 0
	syscallNonBlock = 0
)
