// Command compat-attach writes, attaches, reads and checks image-compatibility specs: what an OCI
// image requires of a host, in Node Feature Discovery's v1alpha1 format, attached to existing
// images as OCI referrers. Run `compat-attach --help` for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err (if any) and maps it to the process exit code: 0 success, 1 error, 2 usage,
// 3 incompatible (check) or nothing fits.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, ee.msg)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "Error:", err)
	var re *recommendedError
	if errors.As(err, &re) && re.next != "" {
		fmt.Fprintln(stderr, "Next:", re.next)
	}
	return 1
}
