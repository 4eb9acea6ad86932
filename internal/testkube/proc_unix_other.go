//go:build unix && !linux

package testkube

import "syscall"

func setParentDeathSignal(*syscall.SysProcAttr) {}
