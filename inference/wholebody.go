package inference

import (
	"context"
	"io"
	"net"
	"net/http"
	"syscall"

	"abgate"
)

// Large request bodies are read whole: while the inference handlers read
// a body of declared length of at least wholeBodyMin bytes, the socket is
// told to report itself readable only once the rest of the body (up to
// wholeBodyMax bytes of it) has arrived. The handler then wakes and reads
// once where it would otherwise wake for each part that the network
// delivers: a 600 KB tensor arrives in ten or more.
const (
	wholeBodyMin = 64 << 10
	wholeBodyMax = 1 << 20
)

// WaitForBodies prepares srv so that the Server's handlers read large
// request bodies whole, as above. It chains srv.ConnContext and wraps
// srv.Handler (nil meaning http.DefaultServeMux), so it is called once,
// after both are set. It applies to HTTP/1 requests on TCP connections,
// and only on Linux, through the socket option SO_RCVLOWAT; elsewhere,
// and for bodies the handler does not read from the connection (those a
// handler in front has replaced), bodies are read as they come.
func WaitForBodies(srv *http.Server) {
	if !rcvlowatSupported {
		return
	}
	next := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if next != nil {
			ctx = next(ctx, c)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			if raw, err := tc.SyscallConn(); err == nil {
				ctx = context.WithValue(ctx, connBodyKey{}, &connBody{raw: raw})
			}
		}
		return ctx
	}
	h := srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cb, ok := r.Context().Value(connBodyKey{}).(*connBody); ok && r.ProtoMajor == 1 {
			// HTTP/1 serves a connection's requests one after another,
			// each in the connection's goroutine.
			cb.body = r.Body
		}
		h.ServeHTTP(w, r)
	})
}

// connBodyKey is the context key of a connection's connBody.
type connBodyKey struct{}

// connBody is the connection a request arrived on and the body net/http
// made for the request being served on it.
type connBody struct {
	raw  syscall.RawConn
	body io.ReadCloser
}

// wholeBody returns a reader of r's body that reads it whole, and a
// function to call when done with it, or r.Body and nil when r's body is
// not read from a connection prepared by WaitForBodies or is small or of
// unknown length.
func wholeBody(r *http.Request) (io.Reader, func()) {
	if r.ContentLength < wholeBodyMin {
		return r.Body, nil
	}
	cb, ok := r.Context().Value(connBodyKey{}).(*connBody)
	// cb.body holds one of net/http's body types, all comparable.
	if !ok || cb.body != r.Body {
		return r.Body, nil
	}
	w := &wholeReader{r: r.Body, raw: cb.raw, left: r.ContentLength}
	return w, w.done
}

// wholeReader reads a body of known length from a connection. Its first
// read takes what net/http has buffered (or what has come); before each
// later one, the socket's low mark is set to the rest of the body.
type wholeReader struct {
	r       io.Reader
	raw     syscall.RawConn
	left    int64 // bytes of the body not read yet
	started bool  // a read was made
	mark    int   // the socket's low mark as set, 0 while not raised
}

// Read implements io.Reader.
func (w *wholeReader) Read(p []byte) (int, error) {
	if mark := int(min(w.left, wholeBodyMax)); w.started && mark > 0 && mark != w.mark {
		setRcvlowat(w.raw, mark)
		w.mark = mark
	}
	w.started = true
	n, err := w.r.Read(p)
	w.left -= int64(n)
	return n, err
}

// done puts the socket's low mark back to one byte, for the next request
// on the connection and net/http's watch for the client going away.
func (w *wholeReader) done() {
	if w.mark != 0 {
		setRcvlowat(w.raw, 1)
		w.mark = 0
	}
}

// ReadBody reads the body of r, of declared length, into p as the
// Server's handlers read theirs: whole, on a server prepared by
// WaitForBodies. It returns the body, p[:r.ContentLength]; a body of
// unknown length or longer than p is an error. It is for handlers that
// stand beside the Server, such as the bench's measure of what HTTP alone
// costs.
func ReadBody(r *http.Request, p []byte) ([]byte, error) {
	switch {
	case r.ContentLength < 0:
		return nil, abgate.Errorf(abgate.EINVALID, "request body of unknown length; a Content-Length is expected")
	case r.ContentLength > int64(len(p)):
		return nil, abgate.Errorf(abgate.EINVALID, "request body of %d bytes is longer than the %d expected", r.ContentLength, len(p))
	}
	body, done := wholeBody(r)
	if done != nil {
		defer done()
	}
	p = p[:r.ContentLength]
	if _, err := io.ReadFull(body, p); err != nil {
		return nil, abgate.Errorf(abgate.EINVALID, "read request body: %v", err)
	}
	return p, nil
}
