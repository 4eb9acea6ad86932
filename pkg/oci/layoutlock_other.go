//go:build !unix

package oci

import "context"

// lockFile does nothing on systems without flock: layouts are not locked across processes there.
func lockFile(context.Context, string, bool) (func(), error) { return func() {}, nil }
