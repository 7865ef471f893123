package router

// This file holds the two ways of reaching a model: LocalBackend calls the
// in-process inference server's handler directly, RemoteBackend forwards
// over HTTP to a server registered by URL. Both are Forwarders; a Pool
// balances one model's requests over its Forwarders.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"abgate"
)

// Forwarder forwards one prediction request and returns the answer.
//
// target is the path and query the request goes to, already rewritten to
// the target model (for example "/v2/models/iris/infer" or
// "/predict?model=resnet"). header may be nil and is not modified; body is
// the whole request body and is not retained after Forward returns.
//
// Forward returns the status, headers and body of the answer, whatever the
// status: a 500 answer is an answer, not an error. An error means no answer
// came back (the backend could not be reached, timed out or ctx ended);
// errors are EUNAVAILABLE abgate errors that keep their cause, so that
// errors.Is(err, context.DeadlineExceeded) still works.
type Forwarder interface {
	Forward(ctx context.Context, method, target string, header http.Header, body []byte) (status int, respHeader http.Header, respBody []byte, err error)
}

// Compile-time checks.
var (
	_ Forwarder = (*LocalBackend)(nil)
	_ Forwarder = (*RemoteBackend)(nil)
	_ Forwarder = (*Pool)(nil)
)

// backendMaxResponse bounds the answer body read from a backend.
const backendMaxResponse = 256 << 20

// backendDefaultTimeout is the per-request timeout of a RemoteBackend whose
// timeout is zero.
const backendDefaultTimeout = 30 * time.Second

// LocalBackend forwards to an http.Handler in the same process (the Gin
// engine of the inference server in `abgate serve`) by calling its
// ServeHTTP with an in-memory ResponseWriter: no socket, no serialisation
// beyond what the handler itself does. The handler sees an empty
// RemoteAddr.
type LocalBackend struct {
	handler http.Handler
}

// NewLocalBackend returns a LocalBackend serving through h.
func NewLocalBackend(h http.Handler) *LocalBackend {
	return &LocalBackend{handler: h}
}

// String names the backend in metrics and logs: "local".
func (b *LocalBackend) String() string { return "local" }

// Forward implements Forwarder. The handler runs on the calling goroutine
// with ctx as its request context. A target that does not parse is
// EINVALID.
func (b *LocalBackend) Forward(ctx context.Context, method, target string, header http.Header, body []byte) (int, http.Header, []byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, nil, backendFail("local", "request cancelled", err)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, abgate.Errorf(abgate.EINVALID, "bad forward target %q", target)
	}
	if header != nil {
		req.Header = header.Clone()
	}
	req.RequestURI = target
	req.Host = "local"
	req.RemoteAddr = ""
	w := &backendRecorder{header: make(http.Header)}
	b.handler.ServeHTTP(w, req)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.status, w.header, w.body.Bytes(), nil
}

// backendRecorder is the ResponseWriter LocalBackend hands the handler.
type backendRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *backendRecorder) Header() http.Header { return w.header }

func (w *backendRecorder) WriteHeader(status int) {
	if w.status == 0 && status >= 200 { // informational answers are not the answer
		w.status = status
	}
}

func (w *backendRecorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}

func (w *backendRecorder) WriteString(s string) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.WriteString(s)
}

// Flush is a no-op: the whole answer is returned at once.
func (w *backendRecorder) Flush() {}

// RemoteBackend forwards to an inference server over HTTP.
type RemoteBackend struct {
	base      string // scheme://host[:port][/prefix], no trailing slash
	transport http.RoundTripper
	timeout   time.Duration

	// The direct path (backendconn.go), for an http:// base with a
	// backendClient transport; direct is nil otherwise.
	direct *backendClient
	addr   string // host:port to dial
	host   string // the Host field
	prefix string // the path of base
}

// NewRemoteBackend returns a RemoteBackend for base, an http:// or
// https:// URL without credentials, query or fragment (EINVALID otherwise).
// Requests go through transport, which pools share (nil: a new transport
// from backendTransport, not shared); with the transport of
// backendTransport, requests to an http:// base are exchanged on the
// caller's goroutine (backendconn.go). timeout bounds each request from
// sending to the last byte of the answer; zero means 30 s.
func NewRemoteBackend(base string, transport http.RoundTripper, timeout time.Duration) (*RemoteBackend, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, abgate.Errorf(abgate.EINVALID, "backend %q must be an http:// or https:// URL with a host and no credentials, query or fragment", base)
	}
	if transport == nil {
		transport = backendTransport()
	}
	if timeout <= 0 {
		timeout = backendDefaultTimeout
	}
	b := &RemoteBackend{base: strings.TrimRight(u.String(), "/"), transport: transport, timeout: timeout}
	if c, ok := transport.(*backendClient); ok && u.Scheme == "http" {
		prefix, ok := strings.CutPrefix(b.base, "http://"+u.Host)
		if ok && (prefix == "" || backendPlainTarget(prefix)) {
			b.direct, b.host, b.prefix = c, u.Host, prefix
			b.addr = u.Host
			if u.Port() == "" {
				b.addr = net.JoinHostPort(u.Hostname(), "80")
			}
		}
	}
	return b, nil
}

// String names the backend in metrics and logs: its base URL.
func (b *RemoteBackend) String() string { return b.base }

// backendHopHeaders are the hop-by-hop headers a proxy must not forward
// (RFC 9110 §7.6.1).
var backendHopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// backendCleanHeader returns a copy of h without hop-by-hop headers,
// including those named by Connection.
func backendCleanHeader(h http.Header) http.Header {
	out := h.Clone()
	if out == nil {
		return make(http.Header)
	}
	backendStripHeader(out)
	return out
}

// backendStripHeader removes the hop-by-hop headers from h, including
// those named by Connection, and Content-Length.
func backendStripHeader(h http.Header) {
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range backendHopHeaders {
		h.Del(name)
	}
	h.Del("Content-Length") // recomputed from the body
}

// backendSendsAsIs reports whether a request can carry h itself: it has
// a User-Agent (so the transport adds none of its own) and nothing that
// backendStripHeader removes. Most requests do, and are then sent without
// a copy of their header.
func backendSendsAsIs(h http.Header) bool {
	if _, ok := h["User-Agent"]; !ok {
		return false
	}
	for k := range h {
		switch k {
		case "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
			"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length":
			return false
		}
	}
	return true
}

// Forward implements Forwarder. The request carries header without its
// hop-by-hop fields; so does the answer. A failure to connect, a timeout
// and an answer over 256 MiB are EUNAVAILABLE errors.
func (b *RemoteBackend) Forward(ctx context.Context, method, target string, header http.Header, body []byte) (int, http.Header, []byte, error) {
	if !strings.HasPrefix(target, "/") {
		return 0, nil, nil, abgate.Errorf(abgate.EINVALID, "bad forward target %q", target)
	}
	if !backendSendsAsIs(header) {
		header = backendCleanHeader(header)
		if _, ok := header["User-Agent"]; !ok {
			header.Set("User-Agent", "") // do not add Go's default
		}
	}
	if b.direct != nil && backendDirect(method, target, header) {
		return b.forwardDirect(ctx, method, target, header, body)
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, b.base+target, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, abgate.Errorf(abgate.EINVALID, "bad forward target %q", target)
	}
	// NewRequest sets GetBody for a bytes.Reader, so the transport itself
	// replays the request on a pooled connection the server closed before
	// anything was written.
	req.Header = header // the transport only reads it
	resp, err := b.transport.RoundTrip(req)
	if err != nil {
		return 0, nil, nil, backendFail(b.base, "backend unreachable", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, backendMaxResponse+1))
	if err != nil {
		return 0, nil, nil, backendFail(b.base, "backend answer cut short", err)
	}
	if len(data) > backendMaxResponse {
		return 0, nil, nil, backendFail(b.base, "backend answer too large", errors.New("answer over 256 MiB"))
	}
	backendStripHeader(resp.Header) // the answer's header is this call's own
	return resp.StatusCode, resp.Header, data, nil
}

// backendError is a failure to get an answer from a backend: an
// EUNAVAILABLE abgate error for users, its cause for logs and errors.Is.
type backendError struct {
	public *abgate.Error
	cause  error
}

func backendFail(backend, what string, cause error) error {
	return &backendError{public: abgate.Errorf(abgate.EUNAVAILABLE, "%s", what), cause: fmt.Errorf("%s: %w", backend, cause)}
}

func (e *backendError) Error() string   { return e.public.Message + ": " + e.cause.Error() }
func (e *backendError) Unwrap() []error { return []error{e.public, e.cause} }

// backendNotSent reports whether err shows that the request never left
// this process: the connection could not be established, so no backend
// saw it. Timeouts and failures after the connection was made are not.
func backendNotSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
