package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"
)

// benchClient is the load generator of the inference harness: HTTP/1.1
// over kept-alive connections, one request in flight per connection. It
// shares the machine's cores with the server it measures, so it does as
// little as it can: each request, head and body, goes out in one system
// call: sendfile(2) from a copy of the request in a temporary file where
// the platform has it (the kernel then hands the file's pages to the
// loopback instead of copying the request from the client's memory), or
// one writev, the way wrk and Triton's perf_analyzer write theirs, where
// it does not or where the request asks for it (the harness measures
// which of the two costs less for each body). The server reads the same
// bytes either way. net/http's client copies a body through 32 KiB
// chunks, with a goroutine hand-off each way per request.
type benchClient struct {
	addr string          // host:port
	idle chan *benchConn // connections free for a request
	dial func() (net.Conn, error)

	// sendFile makes prepare copy requests into files, sent with
	// sendfile(2); files are those copies, closed by close.
	sendFile bool
	files    []*os.File
}

// benchConn is one connection of a benchClient.
type benchConn struct {
	c  net.Conn
	br *bufio.Reader
}

// newBenchClient returns a client of the server at addr (host:port) that
// keeps up to idle connections open between requests, and sends the
// requests it prepares with sendfile(2) when sendFile is set and the
// platform has it.
func newBenchClient(addr string, idle int, sendFile bool) *benchClient {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &benchClient{
		addr:     addr,
		idle:     make(chan *benchConn, idle),
		dial:     func() (net.Conn, error) { return d.Dial("tcp", addr) },
		sendFile: sendFile && canSendFile,
	}
}

// prepare readies r to be sent by c: when c sends files and r is not
// marked writev, it copies the request, head and body, into a temporary
// file that is removed from its directory at once and closed by
// c.close. It is not safe to call while c sends requests.
func (c *benchClient) prepare(r *benchRequest) error {
	if !c.sendFile || r.writev {
		return nil
	}
	f, err := os.CreateTemp("", "abgate-bench-*")
	if err != nil {
		return fmt.Errorf("bench client: %w", err)
	}
	_ = os.Remove(f.Name())
	c.files = append(c.files, f)
	if _, err := f.Write(r.head); err != nil {
		return fmt.Errorf("bench client: %w", err)
	}
	if _, err := f.Write(r.body); err != nil {
		return fmt.Errorf("bench client: %w", err)
	}
	r.file = f
	return nil
}

// close closes the idle connections and the files of the prepared
// requests.
func (c *benchClient) close() {
	for _, f := range c.files {
		f.Close()
	}
	c.files = nil
	for {
		select {
		case bc := <-c.idle:
			bc.c.Close()
		default:
			return
		}
	}
}

// benchRequest is a request that a load sends again and again: its head is
// formatted once.
type benchRequest struct {
	head []byte
	body []byte
	path string
	// file holds head and body when a benchClient that sends files
	// prepared the request (see benchClient.prepare), unless writev
	// asks for the request to be written from memory.
	file   *os.File
	writev bool
}

// newBenchRequest formats the head of a POST of body to rawURL with the
// given content type and extra headers.
func newBenchRequest(rawURL, contentType string, body []byte, header map[string]string) (*benchRequest, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", err
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, "", fmt.Errorf("bench client: %q is not an http:// URL", rawURL)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n", u.RequestURI(), u.Host, contentType, len(body))
	keys := make([]string, 0, len(header))
	for k := range header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\r\n", http.CanonicalHeaderKey(k), header[k])
	}
	b.WriteString("\r\n")
	return &benchRequest{head: []byte(b.String()), body: body, path: u.RequestURI()}, u.Host, nil
}

// errStale is a kept-alive connection that the server closed before the
// request's answer began: the request is sent again on a new connection.
var errStale = errors.New("kept-alive connection closed by the server")

// do sends r and reads the answer's body into buf. An answer other than
// 200 is an *httpError.
func (c *benchClient) do(ctx context.Context, r *benchRequest, buf *bytes.Buffer) error {
	for attempt := 0; ; attempt++ {
		bc, reused, err := c.get()
		if err != nil {
			return fmt.Errorf("POST %s: %w", r.path, err)
		}
		status, keep, err := bc.roundTrip(ctx, r, buf, reused)
		if err != nil {
			bc.c.Close()
			if errors.Is(err, errStale) && attempt == 0 {
				continue
			}
			return fmt.Errorf("POST %s: %w", r.path, err)
		}
		if keep {
			c.put(bc)
		} else {
			bc.c.Close()
		}
		if status != http.StatusOK {
			return &httpError{status: status, msg: fmt.Sprintf("POST %s: HTTP %d: %s", r.path, status, snippet(buf.Bytes()))}
		}
		return nil
	}
}

// get returns an idle connection, or a new one.
func (c *benchClient) get() (*benchConn, bool, error) {
	select {
	case bc := <-c.idle:
		return bc, true, nil
	default:
	}
	conn, err := c.dial()
	if err != nil {
		return nil, false, err
	}
	return &benchConn{c: conn, br: bufio.NewReaderSize(conn, 16<<10)}, false, nil
}

// put keeps bc for the next request, or closes it when enough are kept.
func (c *benchClient) put(bc *benchConn) {
	select {
	case c.idle <- bc:
	default:
		bc.c.Close()
	}
}

// roundTrip writes r and reads its answer into buf; it returns the status
// and whether the connection may carry another request.
func (bc *benchConn) roundTrip(ctx context.Context, r *benchRequest, buf *bytes.Buffer, reused bool) (int, bool, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(benchRequestTimeout)
	}
	if err := bc.c.SetDeadline(deadline); err != nil {
		return 0, false, err
	}
	var err error
	if r.file != nil {
		err = sendFile(bc.c, r.file, int64(len(r.head)+len(r.body)))
	} else {
		bufs := net.Buffers{r.head, r.body}
		_, err = bufs.WriteTo(bc.c)
	}
	if err != nil {
		if reused {
			return 0, false, fmt.Errorf("%w: %v", errStale, err)
		}
		return 0, false, err
	}
	if _, err := bc.br.Peek(1); err != nil {
		if reused && (errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isConnReset(err)) {
			return 0, false, fmt.Errorf("%w: %v", errStale, err)
		}
		return 0, false, fmt.Errorf("read answer: %w", err)
	}
	resp, err := http.ReadResponse(bc.br, nil)
	if err != nil {
		return 0, false, fmt.Errorf("read answer: %w", err)
	}
	buf.Reset()
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength))
	}
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, false, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, !resp.Close, nil
}

// isConnReset reports whether err is a connection reset by the peer.
func isConnReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset by peer") || strings.Contains(err.Error(), "broken pipe")
}
