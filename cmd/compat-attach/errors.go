package main

import (
	"errors"
	"fmt"
)

// Exit codes of compat-attach.
const (
	exitOK           = 0
	exitFailure      = 1
	exitUsage        = 2
	exitIncompatible = 3
)

// exitError ends the command with a given code after the output was printed; msg (optional) goes
// to stderr. It is for outcomes (exit 3: not compatible, nothing fits), not for mistakes.
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

// usageError is the one error type of a wrong command line (a flag, an argument, a combination):
// exit code exitUsage, "Error: ..." and, when next is set, "Next: ..." on stderr.
type usageError struct {
	err  error
	next string
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef makes a usageError from a message.
func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// usageNext makes a usageError with a recommendation.
func usageNext(err error, next string) error {
	return &usageError{err: err, next: next}
}

// asUsage reports whether err is (or wraps) a usageError.
func asUsage(err error) (*usageError, bool) {
	var ue *usageError
	ok := errors.As(err, &ue)
	return ue, ok
}
