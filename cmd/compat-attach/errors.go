package main

import "fmt"

// Exit codes of compat-attach.
const (
	exitOK           = 0
	exitFailure      = 1
	exitUsage        = 2
	exitIncompatible = 3
)

// exitError ends the command with a given code after the output was printed; msg (optional) goes
// to stderr.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return fmt.Sprintf("exit %d: %s", e.code, e.msg) }

// recommendedError is an error with what to do next, as oras prints it.
type recommendedError struct {
	err  error
	next string
}

func (e *recommendedError) Error() string { return e.err.Error() }
func (e *recommendedError) Unwrap() error { return e.err }

// withNext attaches a recommendation to err (nil stays nil).
func withNext(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return &recommendedError{err: err, next: fmt.Sprintf(format, args...)}
}

// usageError marks a wrong command line: exit code exitUsage.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }
