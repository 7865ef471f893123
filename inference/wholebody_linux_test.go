package inference

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"abgate/inference/modelgen"
)

// wholeBodyServer serves the CNN through a server prepared by
// WaitForBodies, with front in front of the inference handlers, and
// returns its address and a function that returns the server side of the
// latest connection.
func wholeBodyServer(t *testing.T, front func(w http.ResponseWriter, r *http.Request, next http.Handler)) (string, func() *net.TCPConn) {
	t.Helper()
	needORT(t)
	repo := cnnRepository(t)
	gin.SetMode(gin.TestMode)
	r := gin.New()
	NewServer(repo, Options{MaxBodyBytes: 8 << 20}, nil, prometheus.NewRegistry()).Mount(r)
	var h http.Handler = r
	if front != nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { front(w, req, r) })
	}
	hs := httptest.NewUnstartedServer(h)
	serverConn := lastConn(hs)
	WaitForBodies(hs.Config)
	hs.Start()
	t.Cleanup(hs.Close)
	return hs.Listener.Addr().String(), serverConn
}

// lastConn sets hs to keep the server side of its latest connection and
// returns a function that returns it (nil before the first).
func lastConn(hs *httptest.Server) func() *net.TCPConn {
	var (
		mu   sync.Mutex
		last *net.TCPConn
	)
	hs.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		mu.Lock()
		last, _ = c.(*net.TCPConn)
		mu.Unlock()
		return ctx
	}
	return func() *net.TCPConn {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// dial connects to addr for at most 30 s, until t ends.
func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c.(*net.TCPConn)
}

// rcvlowat reads the SO_RCVLOWAT of c's socket. Accepted sockets start
// at 0, which Linux takes as 1: a byte wakes the reader.
func rcvlowat(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// cnnBinaryRequest returns the head and body of a binary request for the
// CNN, and the answer the server gives to its JSON twin.
func cnnBinaryRequest(t *testing.T, seed uint64) (string, []byte, []float32) {
	t.Helper()
	img := cnnImage(seed)
	body, n, err := AppendBinaryInferRequest(nil, &InferRequest{Inputs: []InferInput{{Tensor: img}}})
	if err != nil {
		t.Fatal(err)
	}
	head := "POST /v2/models/cnn/infer HTTP/1.1\r\nHost: abgate\r\nContent-Type: application/octet-stream\r\n" +
		InferenceHeaderContentLength + ": " + strconv.Itoa(n) + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	return head, body, cnnReference(t, img)
}

// cnnRepository returns a scanned repository of the CNN, with one
// session, closed when t ends.
func cnnRepository(t *testing.T) *Repository {
	t.Helper()
	needORT(t)
	dir := t.TempDir()
	cnn, _ := modelgen.CNN()
	writeTestModel(t, dir, "cnn", "1", cnn, "instances: 1\n")
	repo := NewRepository(dir, nil)
	if err := repo.Scan(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(repo.Close)
	return repo
}

// cnnReference computes the CNN's probabilities of img in process.
func cnnReference(t *testing.T, img Tensor) []float32 {
	t.Helper()
	m, err := cnnRepository(t).Get("cnn", "")
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Run(context.Background(), []Tensor{img}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out {
		if o.Name == "probabilities" {
			return o.Data.([]float32)
		}
	}
	t.Fatalf("no probabilities among %v", out)
	return nil
}

// readAnswer reads one response from br and checks that it is a 200
// whose probabilities are want.
func readAnswer(t *testing.T, br *bufio.Reader, want []float32) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	got := decodeAnswer(t, resp, b)
	for _, o := range got.Outputs {
		if o.Name != "probabilities" {
			continue
		}
		data := o.Data.([]float32)
		if len(data) != len(want) {
			t.Fatalf("probabilities %v, want %v", data, want)
		}
		for i := range want {
			if data[i] != want[i] {
				t.Fatalf("probabilities %v, want %v", data, want)
			}
		}
		return
	}
	t.Fatalf("no probabilities in %s", b)
}

// TestWaitForBodies: a large body sent in parts is waited for with the
// socket's low mark at the bytes still to come, answered as when sent at
// once, and the mark is back at one byte for the next request on the
// connection.
func TestWaitForBodies(t *testing.T) {
	addr, serverConn := wholeBodyServer(t, nil)
	head, body, want := cnnBinaryRequest(t, 3)
	c := dial(t, addr)
	br := bufio.NewReader(c)

	const first = 100 << 10
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(body[:first]); err != nil {
		t.Fatal(err)
	}
	// The server reads what came and then waits for the rest: its mark
	// is the body's bytes not read yet, no fewer than those not sent.
	var sc *net.TCPConn
	mark := 0
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if sc = serverConn(); sc != nil {
			if mark = rcvlowat(t, sc); mark > 1 {
				break
			}
		}
	}
	if rest := len(body) - first; mark < rest || mark > len(body) {
		t.Fatalf("SO_RCVLOWAT while waiting = %d, want between the %d bytes not sent and the body's %d", mark, rest, len(body))
	}
	// The rest, in two parts.
	if _, err := c.Write(body[first : first+200<<10]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := c.Write(body[first+200<<10:]); err != nil {
		t.Fatal(err)
	}
	readAnswer(t, br, want)
	if got := rcvlowat(t, sc); got > 1 {
		t.Errorf("SO_RCVLOWAT after the body = %d, want 1", got)
	}

	// The next request on the connection, sent at once.
	head2, body2, want2 := cnnBinaryRequest(t, 4)
	if _, err := c.Write(append([]byte(head2), body2...)); err != nil {
		t.Fatal(err)
	}
	readAnswer(t, br, want2)
	if got := rcvlowat(t, sc); got > 1 {
		t.Errorf("SO_RCVLOWAT after the second body = %d, want 1", got)
	}
}

// TestWaitForBodiesShortBody: a client that sends less than it declared
// and stops sending gets a 400, not a server waiting for ever.
func TestWaitForBodiesShortBody(t *testing.T) {
	addr, _ := wholeBodyServer(t, nil)
	head, body, _ := cnnBinaryRequest(t, 5)
	c := dial(t, addr)
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "read request body") {
		t.Errorf("%d %s, want 400 naming the read of the body", resp.StatusCode, b)
	}
}

// TestWaitForBodiesReplacedBody: a body that a handler in front replaced
// (as the router's local backend does, with the client's connection in
// the context) is read as it is, and the connection's mark is untouched.
func TestWaitForBodiesReplacedBody(t *testing.T) {
	var marks []int
	var mu sync.Mutex
	var serverConn func() *net.TCPConn
	addr, sc := wholeBodyServer(t, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(&markReader{r: bytes.NewReader(b), mark: func() {
			mu.Lock()
			marks = append(marks, rcvlowat(t, serverConn()))
			mu.Unlock()
		}})
		next.ServeHTTP(w, r2)
	})
	serverConn = sc
	head, body, want := cnnBinaryRequest(t, 6)
	c := dial(t, addr)
	if _, err := c.Write(append([]byte(head), body...)); err != nil {
		t.Fatal(err)
	}
	readAnswer(t, bufio.NewReader(c), want)
	mu.Lock()
	defer mu.Unlock()
	if len(marks) < 2 {
		t.Fatalf("the replaced body was read %d times, want several", len(marks))
	}
	for i, m := range marks {
		if m > 1 {
			t.Fatalf("SO_RCVLOWAT at read %d of the replaced body = %d, want at most 1", i, m)
		}
	}
}

// markReader calls mark before each read, and reads at most 64 KiB at a
// time, as a body coming over a network would arrive.
type markReader struct {
	r    io.Reader
	mark func()
}

func (m *markReader) Read(p []byte) (int, error) {
	m.mark()
	if len(p) > 64<<10 {
		p = p[:64<<10]
	}
	return m.r.Read(p)
}

// TestWholeBody: which requests' bodies are read whole.
func TestWholeBody(t *testing.T) {
	connBody := func(body io.ReadCloser) context.Context {
		return context.WithValue(context.Background(), connBodyKey{}, &connBody{body: body})
	}
	large := io.NopCloser(bytes.NewReader(make([]byte, wholeBodyMin)))
	other := io.NopCloser(bytes.NewReader(make([]byte, wholeBodyMin)))
	tests := []struct {
		name   string
		ctx    context.Context
		body   io.ReadCloser
		length int64
		whole  bool
	}{
		{"the connection's body", connBody(large), large, wholeBodyMin, true},
		{"a replaced body", connBody(large), other, wholeBodyMin, false},
		{"a small body", connBody(large), large, wholeBodyMin - 1, false},
		{"a body of unknown length", connBody(large), large, -1, false},
		{"no prepared connection", context.Background(), large, wholeBodyMin, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(tt.ctx, "POST", "/v2/models/m/infer", nil)
			r.Body, r.ContentLength = tt.body, tt.length
			got, done := wholeBody(r)
			if whole := done != nil; whole != tt.whole {
				t.Fatalf("read whole: %v, want %v", whole, tt.whole)
			}
			if !tt.whole && got != io.Reader(tt.body) {
				t.Errorf("reader %T, want the request's body", got)
			}
		})
	}
}

// TestWaitForBodiesExpectContinue: a client that sends its body only
// after "100 Continue" is not kept waiting for a body it has not sent.
func TestWaitForBodiesExpectContinue(t *testing.T) {
	addr, _ := wholeBodyServer(t, nil)
	head, body, want := cnnBinaryRequest(t, 7)
	c := dial(t, addr)
	head = strings.Replace(head, "\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n", 1)
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("first line %q, want 100 Continue", line)
	}
	if blank, err := br.ReadString('\n'); err != nil || blank != "\r\n" {
		t.Fatalf("after 100 Continue: %q, %v", blank, err)
	}
	if _, err := c.Write(body); err != nil {
		t.Fatal(err)
	}
	readAnswer(t, br, want)
}

// TestReadBody: a handler beside the Server reads a large body sent in
// parts as the Server's handlers do, waiting with the socket's low mark at
// the bytes still to come, and gets every byte.
func TestReadBody(t *testing.T) {
	body := make([]byte, 600<<10)
	for i := range body {
		body[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := ReadBody(r, make([]byte, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got <- b
		_, _ = io.WriteString(w, "read")
	}))
	serverConn := lastConn(hs)
	WaitForBodies(hs.Config)
	hs.Start()
	t.Cleanup(hs.Close) // after the client's connection closes

	c := dial(t, hs.Listener.Addr().String())
	const first = 100 << 10
	head := "POST /x HTTP/1.1\r\nHost: abgate\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := c.Write(append([]byte(head), body[:first]...)); err != nil {
		t.Fatal(err)
	}
	mark := 0
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && mark <= 1; time.Sleep(5 * time.Millisecond) {
		if sc := serverConn(); sc != nil {
			mark = rcvlowat(t, sc)
		}
	}
	if rest := len(body) - first; mark < rest || mark > len(body) {
		t.Fatalf("SO_RCVLOWAT while waiting = %d, want between the %d bytes not sent and the body's %d", mark, rest, len(body))
	}
	if _, err := c.Write(body[first:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s, want 200", resp.StatusCode, answer)
	}
	if b := <-got; !bytes.Equal(b, body) {
		t.Errorf("ReadBody gave %d bytes, not the %d sent", len(b), len(body))
	}
}
