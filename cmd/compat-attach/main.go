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
	"strings"
	"syscall"
	"time"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
	"github.com/compatkit/compatkit/pkg/oci"
)

// interruptGrace is how long a command may take to stop after SIGINT or SIGTERM cancelled its
// context: network calls return at once, but a CUE evaluation does not look at the context.
const interruptGrace = 2 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		stop() // a second signal now ends the process the default way
		select {
		case <-done:
		case <-time.After(interruptGrace):
			fmt.Fprintln(os.Stderr, "Interrupted.")
			os.Exit(130)
		}
	}()
	err := newRootCmd().ExecuteContext(ctx)
	close(done)
	interrupted := ctx.Err() != nil
	stop()
	if interrupted && err != nil {
		// Stopped by a signal: say so once, and exit as shells expect (128 + SIGINT).
		fmt.Fprintln(os.Stderr, "Interrupted.")
		os.Exit(130)
	}
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err (if any) and maps it to the process exit code: 0 success, 1 error, 2 usage,
// 3 incompatible (check) or nothing fits. What it prints goes through display.Safe: an error body
// from a registry cannot drive the terminal.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	stderr = display.Safe(stderr)
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, ee.msg)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "Error:", err)
	if isUsageError(err) || errors.Is(err, oci.ErrInvalidReference) {
		if ue, ok := asUsage(err); ok && ue.next != "" {
			fmt.Fprintln(stderr, "Next:", ue.next)
		}
		fmt.Fprintln(stderr, "Run with --help for usage.")
		return exitUsage
	}
	var re *recommendedError
	if errors.As(err, &re) && re.next != "" {
		fmt.Fprintln(stderr, "Next:", re.next)
	}
	return exitFailure
}

// isUsageError recognises the errors cobra returns for a wrong command line (unknown command or
// flag, wrong number of arguments, missing required flag), which exit with exitUsage. cobra has no
// error types for them, so they are told by their fixed messages; flag errors are also marked by
// usageError through the root's FlagErrorFunc.
func isUsageError(err error) bool {
	if _, ok := asUsage(err); ok {
		return true
	}
	msg := err.Error()
	for _, prefix := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "required flag(s)",
		"accepts ", "requires at least", "requires at most", "flag needs an argument", "invalid argument"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}
