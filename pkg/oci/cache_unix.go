//go:build unix

package oci

import "syscall"

// Open flags of cache reads: do not follow a symbolic link, do not block on a FIFO.
const (
	syscallNoFollow = syscall.O_NOFOLLOW
	syscallNonBlock = syscall.O_NONBLOCK
)
