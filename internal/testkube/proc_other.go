//go:build !unix

package testkube

import "os/exec"

func setProcessGroup(*exec.Cmd) {}

// signalGroup kills the process (no process groups here; SIGTERM is not available).
func signalGroup(cmd *exec.Cmd, _ bool) { _ = cmd.Process.Kill() }
