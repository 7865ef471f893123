package router

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scriptedBackend is a TCP server that reads each request (up to its
// header and a Content-Length body) and writes the next answer of its
// script verbatim; an answer ending in "\x00close" is written, then the
// connection closed. It counts connections and requests.
type scriptedBackend struct {
	ln       net.Listener
	answers  chan string
	conns    atomic.Int32
	requests atomic.Int32
	lastReq  atomic.Value // string: the last request's head
}

func newScriptedBackend(t *testing.T, answers ...string) *scriptedBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedBackend{ln: ln, answers: make(chan string, len(answers))}
	for _, a := range answers {
		s.answers <- a
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			go s.serve(c)
		}
	}()
	return s
}

func (s *scriptedBackend) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		var head strings.Builder
		_ = req.Header.Write(&head)
		s.lastReq.Store(req.Method + " " + req.RequestURI + " " + req.Host + "\n" + head.String())
		s.requests.Add(1)
		var a string
		select {
		case a = <-s.answers:
		default:
			a = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
		}
		a, closeAfter := strings.CutSuffix(a, "\x00close")
		if _, err := io.WriteString(c, a); err != nil || closeAfter {
			return
		}
	}
}

func (s *scriptedBackend) url() string { return "http://" + s.ln.Addr().String() }

func TestRemoteBackendDirect(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answer   string
		status   int
		body     string
		header   http.Header // expected fields of the answer
		reused   bool        // the next request reuses the connection
		wantFail string      // the error names this, when not ""
	}{
		{name: "content length", answer: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
			status: 200, body: "{}", header: http.Header{"Content-Type": {"application/json"}}, reused: true},
		{name: "chunked with trailer", answer: "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nx-a: 2\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n",
			status: 201, body: "abcde", header: http.Header{"X-A": {"1", "2"}}, reused: true},
		{name: "interim answers first", answer: "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
			status: 200, body: "x", reused: true},
		{name: "connection close", answer: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\ny\x00close",
			status: 200, body: "y", header: http.Header{"Connection": nil}},
		{name: "body to the end", answer: "HTTP/1.0 200 OK\r\n\r\nuntil closed\x00close",
			status: 200, body: "until closed"},
		{name: "folded field and hop-by-hop fields", answer: "HTTP/1.1 200 OK\r\nX-Long: a\r\n b\r\nKeep-Alive: timeout=5\r\nConnection: X-Hop\r\nX-Hop: 1\r\nContent-Length: 0\r\n\r\n",
			status: 200, header: http.Header{"X-Long": {"a b"}, "Keep-Alive": nil, "X-Hop": nil, "Content-Length": nil}, reused: true},
		{name: "no content", answer: "HTTP/1.1 204 No Content\r\n\r\n", status: 204, reused: true},
		{name: "cut short", answer: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc\x00close", wantFail: "backend answer cut short"},
		{name: "closed without an answer", answer: "\x00close", wantFail: "backend unreachable"},
		{name: "malformed status", answer: "HTTP/1.1 2000 OK\r\n\r\n\x00close", wantFail: "malformed status line"},
		{name: "conflicting lengths", answer: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab\x00close", wantFail: "Content-Length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"
			s := newScriptedBackend(t, tc.answer, next)
			client := backendTransport()
			defer client.CloseIdleConnections()
			b, err := NewRemoteBackend(s.url()+"/base", client, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if b.direct == nil {
				t.Fatal("no direct path for an http:// backend")
			}
			header := http.Header{"User-Agent": {"ua"}, "X-Request-Id": {"r1"}}
			status, h, body, err := b.Forward(t.Context(), http.MethodPost, "/v2/models/m/infer?x=1", header, []byte("in"))
			if tc.wantFail != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantFail) {
					t.Fatalf("err %v, want one naming %q", err, tc.wantFail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.status || string(body) != tc.body {
				t.Errorf("answer %d %q, want %d %q", status, body, tc.status, tc.body)
			}
			for k, want := range tc.header {
				if got := h[k]; strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("answer field %s = %q, want %q", k, got, want)
				}
			}
			req, _ := s.lastReq.Load().(string)
			for _, want := range []string{"POST /base/v2/models/m/infer?x=1 " + s.ln.Addr().String() + "\n", "User-Agent: ua\r\n", "X-Request-Id: r1\r\n", "Content-Length: 2\r\n"} {
				if !strings.Contains(req, want) {
					t.Errorf("backend saw %q, want it to contain %q", req, want)
				}
			}
			// The next request reuses the connection or dials anew.
			if _, _, body, err := b.Forward(t.Context(), http.MethodGet, "/next", nil, nil); err != nil || string(body) != "next" {
				t.Fatalf("next request: %q, %v", body, err)
			}
			wantConns := int32(2)
			if tc.reused {
				wantConns = 1
			}
			if got := s.conns.Load(); got != wantConns {
				t.Errorf("%d connections for two requests, want %d", got, wantConns)
			}
		})
	}
}

// TestRemoteBackendDirectStale checks that an idle connection the backend
// closed is not used: the request goes out on a new one.
func TestRemoteBackendDirectStale(t *testing.T) {
	s := newScriptedBackend(t,
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb")
	client := backendTransport()
	client.checkAfter = 0 // check every idle connection
	defer client.CloseIdleConnections()
	b, err := NewRemoteBackend(s.url(), client, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, body, err := b.Forward(t.Context(), http.MethodGet, "/", nil, nil); err != nil || string(body) != "a" {
		t.Fatalf("first request: %q, %v", body, err)
	}
	// The backend closes the idle connection.
	client.mu.Lock()
	for _, cs := range client.idle {
		for _, bc := range cs {
			bc.nc.(*net.TCPConn).CloseWrite() // a FIN, as from the backend's side
		}
	}
	client.mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	if _, _, body, err := b.Forward(t.Context(), http.MethodGet, "/", nil, nil); err != nil || string(body) != "b" {
		t.Fatalf("second request: %q, %v", body, err)
	}
	if got := s.conns.Load(); got != 2 {
		t.Errorf("%d connections, want 2", got)
	}
}

func TestRemoteBackendDirectTimeoutAndCancel(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block) // before Close, which waits for the handlers
	client := backendTransport()
	defer client.CloseIdleConnections()

	b, err := NewRemoteBackend(srv.URL, client, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = b.Forward(t.Context(), http.MethodPost, "/slow", nil, []byte("x"))
	if !errors.Is(err, context.DeadlineExceeded) || backendNotSent(err) {
		t.Errorf("timeout: %v, want context.DeadlineExceeded, not a dial error", err)
	}

	b, err = NewRemoteBackend(srv.URL, client, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, _, _, err = b.Forward(ctx, http.MethodPost, "/slow", nil, []byte("x"))
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Errorf("cancel: %v after %v, want context.Canceled at once", err, time.Since(start))
	}

	// Nothing listens: a dial error, which Pool retries elsewhere.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	b, _ = NewRemoteBackend("http://"+addr, client, time.Second)
	if _, _, _, err := b.Forward(t.Context(), http.MethodGet, "/", nil, nil); !backendNotSent(err) {
		t.Errorf("refused: %v, want a dial error", err)
	}
}

func TestBackendPlainTarget(t *testing.T) {
	for target, want := range map[string]bool{
		"/v2/models/iris/infer":                 true,
		"/v2/models/a%2Fb/versions/1/infer?x=1": true,
		"/predict?model=resnet&top_k=5":         true,
		"/p!$&'()*+,;=:@~-._":                   true,
		"/a b":                                  false,
		"/a%zz":                                 false,
		"/a%2":                                  false,
		"/a#frag":                               false,
		"/q?a=1#f":                              false,
		"/é":                                    false,
		"relative":                              false,
		"":                                      false,
	} {
		if got := backendPlainTarget(target); got != want {
			t.Errorf("backendPlainTarget(%q) = %v, want %v", target, got, want)
		}
	}
}
