package testkube

import "syscall"

// setParentDeathSignal has the kernel kill the child when the test binary dies without running
// its cleanups (a panic on -timeout, a SIGKILL).
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
