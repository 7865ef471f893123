package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestBenchClient sends requests through the lean load generator to a
// net/http server, with sendfile and with writev: the request arrives
// whole with its headers, answers of fixed length and chunked ones are
// read, an answer other than 200 is an *httpError with the status, and
// connections are kept alive.
func TestBenchClient(t *testing.T) {
	t.Run("sendfile", func(t *testing.T) {
		if !canSendFile {
			t.Skip("no sendfile on this platform")
		}
		testBenchClient(t, true)
	})
	t.Run("writev", func(t *testing.T) { testBenchClient(t, false) })
}

func testBenchClient(t *testing.T, sendFile bool) {
	var conns atomic.Int32
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				t.Errorf("read body: %v", err)
			}
			switch r.URL.Path {
			case "/echo":
				if got := r.Header.Get("Content-Type") + "|" + r.Header.Get("Inference-Header-Content-Length") + "|" + r.URL.RawQuery; got != "application/octet-stream|12|x=1" || r.ContentLength != int64(len(body)) {
					t.Errorf("echo request: headers and query %q, Content-Length %d for %d bytes", got, r.ContentLength, len(body))
				}
				_, _ = w.Write(body)
			case "/chunked":
				for i := range 3 {
					_, _ = w.Write(bytes.Repeat([]byte{byte('a' + i)}, 5000))
					w.(http.Flusher).Flush()
				}
			case "/missing":
				http.Error(w, "no such model", http.StatusNotFound)
			}
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	base := "http://" + ln.Addr().String()
	c := newBenchClient(ln.Addr().String(), 4, sendFile)
	t.Cleanup(c.close)
	if c.sendFile != sendFile {
		t.Fatalf("client sends files: %t, want %t", c.sendFile, sendFile)
	}
	prepare := func(r *benchRequest) *benchRequest {
		t.Helper()
		if err := c.prepare(r); err != nil {
			t.Fatal(err)
		}
		if (r.file != nil) != sendFile {
			t.Fatalf("prepared request has a file: %t, want %t", r.file != nil, sendFile)
		}
		return r
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	body := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB, many TCP segments
	echo, _, err := newBenchRequest(base+"/echo?x=1", "application/octet-stream", body, map[string]string{"inference-header-content-length": "12"})
	if err != nil {
		t.Fatal(err)
	}
	prepare(echo)
	var buf bytes.Buffer
	for i := range 5 {
		if err := c.do(ctx, echo, &buf); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if !bytes.Equal(buf.Bytes(), body) {
			t.Fatalf("request %d: echoed %d bytes, want the %d sent", i, buf.Len(), len(body))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("5 requests in a row opened %d connections, want 1 kept alive", n)
	}

	chunked, _, _ := newBenchRequest(base+"/chunked", "application/json", []byte("{}"), nil)
	prepare(chunked)
	if err := c.do(ctx, chunked, &buf); err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("a", 5000) + strings.Repeat("b", 5000) + strings.Repeat("c", 5000); buf.String() != want {
		t.Errorf("chunked answer read as %d bytes, want 15000", buf.Len())
	}

	missing, _, _ := newBenchRequest(base+"/missing", "application/json", []byte("{}"), nil)
	prepare(missing)
	err = c.do(ctx, missing, &buf)
	var he *httpError
	if !errors.As(err, &he) || he.status != http.StatusNotFound || !strings.Contains(he.msg, "no such model") {
		t.Errorf("error %v, want an httpError 404 naming the answer", err)
	}
	// The connection survives a 404: the next request reuses it.
	if err := c.do(ctx, echo, &buf); err != nil {
		t.Fatal(err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections after a 404, want 1", n)
	}
}

// TestBenchClientHead checks the request head: method, target with its
// query, Host, Content-Type, Content-Length and the extra headers.
func TestBenchClientHead(t *testing.T) {
	r, host, err := newBenchRequest("http://127.0.0.1:8080/v2/models/m/infer?a=b", "application/json", []byte(`{"x":1}`), map[string]string{"x-b": "2", "x-a": "1"})
	if err != nil {
		t.Fatal(err)
	}
	want := "POST /v2/models/m/infer?a=b HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nContent-Length: 7\r\nX-A: 1\r\nX-B: 2\r\n\r\n"
	if host != "127.0.0.1:8080" || string(r.head) != want {
		t.Errorf("head %q for host %q, want %q", r.head, host, want)
	}
	req, err := http.ReadRequest(bufio.NewReader(io.MultiReader(bytes.NewReader(r.head), bytes.NewReader(r.body))))
	if err != nil {
		t.Fatalf("net/http cannot read the head: %v", err)
	}
	if req.ContentLength != 7 || req.Header.Get("X-A") != "1" {
		t.Errorf("net/http read Content-Length %d, X-A %q", req.ContentLength, req.Header.Get("X-A"))
	}
	for _, bad := range []string{"https://127.0.0.1/x", "127.0.0.1:80/x", "http:///x"} {
		if _, _, err := newBenchRequest(bad, "application/json", nil, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestBenchClientStale sends a request on a kept-alive connection that the
// server closed meanwhile: the client sends it again on a new connection,
// once; a server that closes every connection before answering is an
// error.
func TestBenchClientStale(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	closeAll := atomic.Bool{}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				// Answer one request, then close: a kept-alive connection
				// the server drops.
				req, err := http.ReadRequest(br)
				if err != nil || closeAll.Load() {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	c := newBenchClient(ln.Addr().String(), 4, true)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, _, _ := newBenchRequest("http://"+ln.Addr().String()+"/", "text/plain", []byte("hi"), nil)
	if err := c.prepare(r); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for i := range 3 {
		if err := c.do(ctx, r, &buf); err != nil || buf.String() != "ok" {
			t.Fatalf("request %d: %v, answer %q", i, err, buf.String())
		}
	}
	if n := accepted.Load(); n != 3 {
		t.Errorf("%d connections for 3 requests on a server that closes after each, want 3", n)
	}
	closeAll.Store(true)
	if err := c.do(ctx, r, &buf); err == nil {
		t.Error("a server that closes before answering: no error")
	} else if !strings.Contains(err.Error(), "POST /") {
		t.Errorf("error %q does not name the request", err)
	}
}

// TestBenchSendChoice checks the lean generator's choice between
// sendfile and writev: the harness measures both for a body, prints the
// two costs and the cheaper way, decides once per body, and its requests
// of that body then go out that way (a file prepared for sendfile only).
func TestBenchSendChoice(t *testing.T) {
	if !canSendFile {
		t.Skip("no sendfile on this platform")
	}
	var out bytes.Buffer
	h := &benchHarness{
		opts:       benchOptions{Duration: 800 * time.Millisecond, Rounds: 4, Concurrency: 4, Client: clientLean},
		out:        &out,
		clients:    map[string]*benchClient{},
		sendChoice: map[*byte]bool{},
	}
	t.Cleanup(func() {
		for _, c := range h.clients {
			c.close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	body := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
	file, err := h.sendsFile(ctx, "application/octet-stream", body, nil)
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^# lean client, a body of 262144 bytes: ([0-9]+) µs of CPU a request with sendfile, ([0-9]+) with writev \(a handler's read of it included\): (sendfile|writev)\n$`)
	m := line.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("output %q, want one line with both costs and the choice", out.String())
	}
	f, _ := strconv.Atoi(m[1])
	v, _ := strconv.Atoi(m[2])
	if f <= 0 || v <= 0 {
		t.Errorf("costs %d and %d µs, want both positive", f, v)
	}
	switch {
	case file != (m[3] == "sendfile"):
		t.Errorf("sendsFile returned %t, but printed %s", file, m[3])
	case f < v && !file, f > v && file:
		t.Errorf("chose %s at %d µs with sendfile and %d with writev: not the cheaper", m[3], f, v)
	}

	// The same body again: the choice is kept, not measured again.
	out.Reset()
	again, err := h.sendsFile(ctx, "application/octet-stream", body, nil)
	if err != nil || again != file || out.Len() != 0 {
		t.Errorf("second call: %t, %v, printed %q; want %t, no error, nothing printed", again, err, out.String(), file)
	}

	// A load of the body to a server goes out the chosen way and arrives
	// whole.
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, err := io.ReadAll(r.Body)
		if err != nil || !bytes.Equal(got, body) {
			http.Error(w, "body differs", http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	op := h.post(ctx, "http://"+ln.Addr().String()+"/", "application/octet-stream", body, nil)
	var buf bytes.Buffer
	if err := op(ctx, &buf); err != nil || buf.String() != "ok" {
		t.Fatalf("request: %v, answer %q", err, buf.String())
	}
	c := h.clients[ln.Addr().String()]
	if c == nil {
		t.Fatal("no client for the server")
	}
	if files := len(c.files); (files == 1) != file || files > 1 {
		t.Errorf("client prepared %d files for a body sent with sendfile %t", files, file)
	}
}
