package oci

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"oras.land/oras-go/v2/registry/remote/retry"
)

// Bounds of talking to registries.
const (
	// DefaultRequestTimeout bounds the wait for a registry's answer to one request (its headers);
	// a whole exchange, body and retries included, is bounded by twice that.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultMaxBytes bounds what one Session reads from registries, in bytes: 256 MiB.
	DefaultMaxBytes = 256 << 20
	// MaxRedirects is how many redirects one request follows.
	MaxRedirects = 10
)

// retryPolicy is oras-go's default policy without the retry of timeouts: a registry that did not
// answer within the timeout is not waited for again (a command's time stays near the timeout
// times its round trips).
var retryPolicy retry.Policy = &retry.GenericPolicy{
	Retryable: func(resp *http.Response, err error) (bool, error) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false, err
		}
		return retry.DefaultPredicate(resp, err)
	},
	Backoff:  retry.DefaultBackoff,
	MinWait:  200 * time.Millisecond,
	MaxWait:  3 * time.Second,
	MaxRetry: 5,
}

// ErrRefusedAddress means a connection was refused by NewGuardedHTTPClient's guard.
var ErrRefusedAddress = errors.New("refused address")

// ErrByteBudget means a Session read more from registries than its MaxBytes.
var ErrByteBudget = errors.New("byte budget exceeded")

// NewHTTPClient returns the HTTP client a Target uses when Options.HTTPClient is nil: oras-go's
// retry transport (5xx, 429 and connection resets retried with backoff, Retry-After honoured; a
// registry that did not answer in time is not asked again) over a transport whose dial and TLS
// handshake take at most 10 s and which waits at most timeout (<= 0: DefaultRequestTimeout) for an
// answer; a whole exchange, retries and body included, takes at most twice that, and at most
// MaxRedirects redirects are followed.
func NewHTTPClient(timeout time.Duration) *http.Client { return NewGuardedHTTPClient(timeout, nil) }

// NewGuardedHTTPClient is NewHTTPClient whose connections are refused, before they are made, to
// the addresses refuse reports (nil: none): it is checked on the address actually dialled, after
// DNS resolution and on every redirect, so that neither a redirect nor a DNS answer reaches, say,
// a cloud metadata endpoint (169.254.169.254) from a service that reads registries on others'
// behalf. The error names the address.
func NewGuardedHTTPClient(timeout time.Duration, refuse func(net.IP) bool) *http.Client {
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if refuse != nil {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); ip != nil && refuse(ip) {
				return fmt.Errorf("%w: connecting to %s is not allowed", ErrRefusedAddress, address)
			}
			return nil
		}
	}
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		ForceAttemptHTTP2:     true,
	}
	rt := retry.NewTransport(base)
	rt.Policy = func() retry.Policy { return retryPolicy }
	return &http.Client{
		Transport: rt,
		Timeout:   2 * timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= MaxRedirects {
				return fmt.Errorf("%s: more than %d redirects (a redirect loop?)", req.URL.Redacted(), MaxRedirects)
			}
			return nil
		},
	}
}

// budgetTransport counts the bytes of every answer against a Session's budget.
type budgetTransport struct {
	next http.RoundTripper
	s    *Session
}

func (b budgetTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.next.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	resp.Body = &budgetBody{ReadCloser: resp.Body, s: b.s}
	return resp, nil
}

type budgetBody struct {
	io.ReadCloser
	s *Session
}

func (b *budgetBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.s.read.Add(int64(n)) > b.s.maxBytes() {
		return n, fmt.Errorf("%w: more than %d bytes read from registries (the --max-bytes of one command)", ErrByteBudget, b.s.maxBytes())
	}
	return n, err
}

// withBudget wraps hc so that what it reads counts against s's budget.
func withBudget(hc *http.Client, s *Session) *http.Client {
	c := *hc
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = budgetTransport{next: next, s: s}
	return &c
}

// charge counts n bytes read from the Cache against the budget.
func (s *Session) charge(n int64) error {
	if s.read.Add(n) > s.maxBytes() {
		return fmt.Errorf("%w: more than %d bytes read from registries and the cache (the --max-bytes of one command)", ErrByteBudget, s.maxBytes())
	}
	return nil
}

// BytesRead returns how many bytes the Session read from registries and its Cache.
func (s *Session) BytesRead() int64 { return s.read.Load() }

func (s *Session) maxBytes() int64 {
	if s.MaxBytes > 0 {
		return s.MaxBytes
	}
	return DefaultMaxBytes
}
