package router

// This file holds backendClient, the transport shared by the remote
// backends of a Pools. An http.Transport hands every exchange to two
// goroutines of its own per connection (one writes the request, one reads
// the answer) and back, which costs a proxy that does little else per
// request a good share of its CPU. So a RemoteBackend on a plain http://
// URL does its exchanges itself, on the caller's goroutine, over
// keep-alive connections that backendClient keeps per host; https://
// backends, and requests the direct path does not write byte for byte as
// the Transport would (unusual targets or header fields), go through the
// embedded http.Transport.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// backendClient is the transport of remote backends: an http.Transport
// for RoundTrip and https://, and pools of idle connections per host for
// the exchanges RemoteBackend.Forward does itself.
type backendClient struct {
	*http.Transport

	dialer      *net.Dialer
	maxIdle     int           // idle connections kept per host
	idleTimeout time.Duration // idle connections older than this are closed
	// checkAfter is the idle time after which a connection is checked for
	// a close by the backend before it is used.
	checkAfter time.Duration

	mu       sync.Mutex
	idle     map[string][]*backendConn // by dial address, the most recently used last
	sweeping bool                      // a sweep is scheduled
}

// backendConn is a keep-alive connection to a backend.
type backendConn struct {
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
}

// backendMaxHeader bounds the header of an answer, as the Transport's
// default MaxResponseHeaderBytes does.
const backendMaxHeader = 10 << 20

// backendTransport returns the transport pools share: keep-alive
// connections (256 idle ones per host, closed after 90 s idle), a 1 s dial
// timeout, no transparent compression (the client's Accept-Encoding and
// the backend's Content-Encoding pass through untouched).
func backendTransport() *backendClient {
	d := &net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}
	return &backendClient{
		Transport: &http.Transport{
			Proxy:                 nil, // backends are reached directly
			DialContext:           d.DialContext,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   5 * time.Second,
			ExpectContinueTimeout: time.Second,
			DisableCompression:    true,
			ForceAttemptHTTP2:     false,
		},
		dialer:      d,
		maxIdle:     256,
		idleTimeout: 90 * time.Second,
		checkAfter:  time.Second,
		idle:        map[string][]*backendConn{},
	}
}

// CloseIdleConnections closes the idle connections of both paths.
func (c *backendClient) CloseIdleConnections() {
	c.Transport.CloseIdleConnections()
	c.mu.Lock()
	idle := c.idle
	c.idle = map[string][]*backendConn{}
	c.mu.Unlock()
	for _, cs := range idle {
		for _, bc := range cs {
			bc.nc.Close()
		}
	}
}

// get returns an idle connection to addr that the backend has not closed,
// nil when there is none.
func (c *backendClient) get(addr string) *backendConn {
	for {
		now := time.Now()
		c.mu.Lock()
		cs := c.idle[addr]
		if len(cs) == 0 {
			c.mu.Unlock()
			return nil
		}
		bc := cs[len(cs)-1]
		cs[len(cs)-1] = nil
		c.idle[addr] = cs[:len(cs)-1]
		c.mu.Unlock()
		idle := now.Sub(bc.idleAt)
		if idle < c.idleTimeout && (idle < c.checkAfter || backendConnOpen(bc.nc)) {
			return bc
		}
		bc.nc.Close()
	}
}

// put keeps bc as an idle connection to addr, or closes it when addr has
// enough of them.
func (c *backendClient) put(addr string, bc *backendConn) {
	bc.idleAt = time.Now()
	c.mu.Lock()
	cs := c.idle[addr]
	if len(cs) >= c.maxIdle {
		c.mu.Unlock()
		bc.nc.Close()
		return
	}
	c.idle[addr] = append(cs, bc)
	sweep := !c.sweeping
	c.sweeping = true
	c.mu.Unlock()
	if sweep {
		time.AfterFunc(c.idleTimeout/3, c.sweep)
	}
}

// sweep closes the connections idle for longer than idleTimeout, and
// schedules itself again while connections are idle.
func (c *backendClient) sweep() {
	cutoff := time.Now().Add(-c.idleTimeout)
	var stale []*backendConn
	c.mu.Lock()
	for addr, cs := range c.idle {
		n := 0 // cs is in the order of idleAt
		for n < len(cs) && cs[n].idleAt.Before(cutoff) {
			n++
		}
		stale = append(stale, cs[:n]...)
		clear(cs[:n])
		if n == len(cs) {
			delete(c.idle, addr)
		} else {
			c.idle[addr] = cs[n:]
		}
	}
	again := len(c.idle) > 0
	c.sweeping = again
	c.mu.Unlock()
	for _, bc := range stale {
		bc.nc.Close()
	}
	if again {
		time.AfterFunc(c.idleTimeout/3, c.sweep)
	}
}

// backendLongAgo is a deadline in the past: setting it ends the I/O in
// progress on a connection.
var backendLongAgo = time.Unix(1, 0)

// backendExchangeError is a failed exchange; answered tells whether the
// answer's header had arrived.
type backendExchangeError struct {
	err      error
	answered bool
}

func (e *backendExchangeError) Error() string { return e.err.Error() }
func (e *backendExchangeError) Unwrap() error { return e.err }

// forwardDirect does one exchange with the backend over a connection of
// client, on the calling goroutine, within b.timeout and ctx. header has
// no hop-by-hop field left, and the request line and header fields are
// valid (backendDirect).
func (b *RemoteBackend) forwardDirect(ctx context.Context, method, target string, header http.Header, body []byte) (int, http.Header, []byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, nil, backendFail(b.base, "backend unreachable", err)
	}
	deadline := time.Now().Add(b.timeout)
	timeoutWins := true // the deadline is b.timeout's, not ctx's
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, timeoutWins = d, false
	}
	c := b.direct
	bc := c.get(b.addr)
	if bc == nil {
		dctx, cancel := context.WithDeadline(ctx, deadline)
		nc, err := c.dialer.DialContext(dctx, "tcp", b.addr)
		cancel()
		if err != nil {
			return 0, nil, nil, backendFail(b.base, "backend unreachable", err)
		}
		bc = &backendConn{nc: nc, br: bufio.NewReaderSize(nc, 4096), bw: bufio.NewWriterSize(nc, 4096)}
	}
	_ = bc.nc.SetDeadline(deadline)
	stop := func() bool { return true }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { _ = bc.nc.SetDeadline(backendLongAgo) })
	}
	status, h, data, keep, err := bc.exchange(method, b.host, b.prefix+target, header, body)
	if !stop() {
		keep = false // the deadline is being moved: the connection is spent
	}
	if err == nil && keep {
		_ = bc.nc.SetDeadline(time.Time{})
		c.put(b.addr, bc)
	} else {
		bc.nc.Close()
	}
	if err == nil {
		backendStripHeader(h)
		return status, h, data, nil
	}
	what := "backend unreachable"
	var xe *backendExchangeError
	if errors.As(err, &xe) && xe.answered {
		what = "backend answer cut short"
	}
	switch {
	case errors.Is(err, errBackendAnswerTooLarge):
		what = "backend answer too large"
	case ctx.Err() != nil:
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
	case timeoutWins && errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("%w (timeout %v): %w", context.DeadlineExceeded, b.timeout, err)
	}
	return 0, nil, nil, backendFail(b.base, what, err)
}

// errBackendAnswerTooLarge is an answer body over backendMaxResponse.
var errBackendAnswerTooLarge = errors.New("answer over 256 MiB")

// exchange writes one request and reads its answer; keep reports whether
// the connection can serve another request.
func (bc *backendConn) exchange(method, host, uri string, header http.Header, body []byte) (status int, h http.Header, data []byte, keep bool, err error) {
	w := bc.bw
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(uri)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")
	if ua := header["User-Agent"]; len(ua) > 0 && ua[0] != "" {
		w.WriteString("User-Agent: ")
		w.WriteString(textproto.TrimString(ua[0]))
		w.WriteString("\r\n")
	}
	for k, vs := range header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		for _, v := range vs {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(textproto.TrimString(v))
			w.WriteString("\r\n")
		}
	}
	if len(body) > 0 || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		w.WriteString("Content-Length: ")
		var nb [20]byte
		w.Write(strconv.AppendInt(nb[:0], int64(len(body)), 10))
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	w.Write(body)
	if err := w.Flush(); err != nil {
		return 0, nil, nil, false, &backendExchangeError{err: err}
	}

	r := bc.br
	var proto10 bool
	for {
		line, err := backendReadLine(r, nil)
		if err != nil {
			return 0, nil, nil, false, &backendExchangeError{err: err}
		}
		proto10, status, err = backendStatusLine(line)
		if err != nil {
			return 0, nil, nil, false, &backendExchangeError{err: err}
		}
		h, err = backendReadHeader(r)
		if err != nil {
			return 0, nil, nil, false, &backendExchangeError{err: err}
		}
		if status >= 200 || status == http.StatusSwitchingProtocols {
			break
		}
		// 1xx informational answers precede the answer.
	}
	keep = !proto10 && !backendHeaderHas(h, "Connection", "close")
	fail := func(err error) (int, http.Header, []byte, bool, error) {
		return 0, nil, nil, false, &backendExchangeError{err: err, answered: true}
	}
	switch te := h["Transfer-Encoding"]; {
	case status < 200 || status == http.StatusNoContent || status == http.StatusNotModified || method == http.MethodHead:
		if status == http.StatusSwitchingProtocols {
			keep = false
		}
	case len(te) > 0:
		if len(te) != 1 || !strings.EqualFold(textproto.TrimString(te[0]), "chunked") {
			return fail(fmt.Errorf("unsupported transfer encoding %q", te))
		}
		if data, err = io.ReadAll(io.LimitReader(httputil.NewChunkedReader(r), backendMaxResponse+1)); err != nil {
			return fail(err)
		}
		if len(data) > backendMaxResponse {
			return fail(errBackendAnswerTooLarge)
		}
		for { // trailer fields, which the answer does not keep
			line, err := backendReadLine(r, nil)
			if err != nil {
				return fail(err)
			}
			if len(line) == 0 {
				break
			}
		}
	case len(h["Content-Length"]) > 0:
		cl := h["Content-Length"]
		n, err := strconv.ParseInt(textproto.TrimString(cl[0]), 10, 64)
		for _, v := range cl[1:] {
			if textproto.TrimString(v) != textproto.TrimString(cl[0]) {
				err = errors.New("conflicting Content-Length")
			}
		}
		if err != nil || n < 0 {
			return fail(fmt.Errorf("bad Content-Length %q", cl))
		}
		if n > backendMaxResponse {
			return fail(errBackendAnswerTooLarge)
		}
		data = make([]byte, n)
		if _, err := io.ReadFull(r, data); err != nil {
			return fail(err)
		}
	default: // the body runs to the end of the connection
		keep = false
		if data, err = io.ReadAll(io.LimitReader(r, backendMaxResponse+1)); err != nil {
			return fail(err)
		}
		if len(data) > backendMaxResponse {
			return fail(errBackendAnswerTooLarge)
		}
	}
	if r.Buffered() > 0 {
		keep = false // bytes past the answer: the connection is out of step
	}
	return status, h, data, keep, nil
}

// backendReadLine reads a line without its CRLF (or LF), appending to buf
// when the line does not fit in r's buffer.
func backendReadLine(r *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if len(buf)+len(line) > backendMaxHeader {
				return nil, errors.New("answer header too large")
			}
			buf = append(buf, line...)
			continue
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
				if len(buf) == 0 && len(line) == 0 {
					err = errors.New("connection closed by the backend before an answer")
				}
			}
			return nil, err
		}
		if buf != nil {
			line = append(buf, line...)
		}
		line = line[:len(line)-1]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		return line, nil
	}
}

// backendStatusLine parses "HTTP/1.x SSS reason".
func backendStatusLine(line []byte) (proto10 bool, status int, err error) {
	rest, ok := bytes.CutPrefix(line, []byte("HTTP/1."))
	if !ok || len(rest) < 5 || (rest[0] != '0' && rest[0] != '1') || rest[1] != ' ' ||
		(len(rest) > 5 && rest[5] != ' ') {
		return false, 0, fmt.Errorf("malformed status line %q", line)
	}
	for _, c := range rest[2:5] {
		if c < '0' || c > '9' {
			return false, 0, fmt.Errorf("malformed status line %q", line)
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 {
		return false, 0, fmt.Errorf("malformed status line %q", line)
	}
	return rest[0] == '0', status, nil
}

// backendReadHeader reads header fields up to the empty line. The values,
// and the keys that are canonical already, share one string.
func backendReadHeader(r *bufio.Reader) (http.Header, error) {
	block := make([]byte, 0, 512)
	var lines int
	for {
		line, err := backendReadLine(r, nil)
		if err != nil {
			return nil, err
		}
		if len(line) == 0 {
			break
		}
		if len(block)+len(line) > backendMaxHeader {
			return nil, errors.New("answer header too large")
		}
		if line[0] == ' ' || line[0] == '\t' { // obsolete line folding
			if lines == 0 {
				return nil, fmt.Errorf("malformed header line %q", line)
			}
			block = append(block[:len(block)-1], ' ')
			line = bytes.TrimLeft(line, " \t")
		} else {
			lines++
		}
		block = append(block, line...)
		block = append(block, '\n')
	}
	h := make(http.Header, lines)
	vals := make([]string, lines)
	s := string(block)
	for s != "" {
		line, rest, _ := strings.Cut(s, "\n")
		s = rest
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" || !backendToken(k) {
			return nil, fmt.Errorf("malformed header line %q", line)
		}
		k = textproto.CanonicalMIMEHeaderKey(k)
		v = textproto.TrimString(v)
		if vv, ok := h[k]; ok {
			h[k] = append(vv, v)
		} else {
			vals[0] = v
			h[k] = vals[:1:1]
			vals = vals[1:]
		}
	}
	return h, nil
}

// backendHeaderHas reports whether a comma-separated field of h lists
// token, case-insensitively.
func backendHeaderHas(h http.Header, key, token string) bool {
	for _, v := range h[key] {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(part), token) {
				return true
			}
		}
	}
	return false
}

// backendDirect reports whether a request can take the direct path: its
// method, target and header fields are written by it exactly as the
// Transport would write them (a target of plain characters that parsing
// as a URL leaves unchanged, valid field names and values).
func backendDirect(method, target string, header http.Header) bool {
	if !backendToken(method) || !backendPlainTarget(target) {
		return false
	}
	for k, vs := range header {
		if !backendToken(k) {
			return false
		}
		for _, v := range vs {
			for i := 0; i < len(v); i++ {
				if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
					return false
				}
			}
		}
	}
	return true
}

// backendToken reports whether s is an HTTP token (a method or a field
// name).
func backendToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// backendPlainTarget reports whether the path and query t is made of
// characters that url.Parse and URL.RequestURI leave as they are: in the
// path, unreserved and sub-delimiter characters, ':', '@', '/' and valid
// percent escapes; in the query, any visible ASCII character but '#'.
func backendPlainTarget(t string) bool {
	if t == "" || t[0] != '/' {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c == '?':
			for j := i + 1; j < len(t); j++ {
				if c := t[j]; c <= ' ' || c >= 0x7f || c == '#' {
					return false
				}
			}
			return true
		case c == '%':
			if i+2 >= len(t) || !backendHex(t[i+1]) || !backendHex(t[i+2]) {
				return false
			}
			i += 2
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-_.~/!$&'()*+,;=:@", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func backendHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
