package main

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"

	"abgate/migrations/dbtest"
)

// tcpCut is a TCP proxy to a server that the test can cut: every
// connection through it is closed and new ones are closed at once until
// it is restored.
type tcpCut struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// newTCPCut listens on a free port of 127.0.0.1 and forwards to target.
func newTCPCut(t *testing.T, target string) *tcpCut {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpCut{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *tcpCut) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.forward(c)
		}()
	}
}

// forward copies between c and a new connection to the target.
func (p *tcpCut) forward(c net.Conn) {
	p.mu.Lock()
	down := p.down
	p.mu.Unlock()
	if down {
		c.Close()
		return
	}
	up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// cut closes every connection and refuses new ones until restore.
func (p *tcpCut) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

// restore lets connections through again.
func (p *tcpCut) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// TestPostgresOutageUnderLoad runs `abgate serve --demo` on PostgreSQL
// through a proxy that the test cuts for two seconds in the middle of a
// load of routed predictions: every prediction must still be answered
// (the request path never waits on the database), and after SIGTERM every
// answer must have its exposure row, written after the database came back.
// The PostgreSQL server itself is not touched: other tests share it.
func TestPostgresOutageUnderLoad(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPCut(t, u.Host)
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	u.Host = proxy.ln.Addr().String()
	srv := startServer(t, "--db", u.String(), "--shutdown-timeout", "20s")

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	load := startLoad(ctx, srv.addr, "out", 8, 60000)
	time.Sleep(700 * time.Millisecond)
	before := load.count()
	proxy.cut()
	t.Log("database cut")
	time.Sleep(2 * time.Second)
	during := load.count() - before
	proxy.restore()
	t.Log("database restored")
	load.wait()
	answered := load.count()
	after := answered - before - during
	t.Logf("%d answered before the cut, %d during it, %d after it; other answers %v", before, during, after, load.statuses)
	if before == 0 || during == 0 || after == 0 {
		t.Errorf("%d answers before the cut, %d during it and %d after it; want some of each", before, during, after)
	}
	if len(load.statuses) > 0 || len(load.errs) > 0 {
		t.Errorf("predictions not answered 200 with X-Experiment: %v; errors %d, e.g. %v", load.statuses, len(load.errs), load.errs[:min(1, len(load.errs))])
	}

	stopAfterOutage(t, srv)
	load.checkExposures(t, dbtest.Open(t, dsn))
}

// stopAfterOutage sends SIGTERM and checks that the server exits 0 after
// logging "exposures flushed" and "shutdown complete"; unlike stop, it
// accepts the errors logged while the database was cut.
func stopAfterOutage(t *testing.T, s *server) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-s.exited:
	case <-time.After(25 * time.Second):
		t.Fatal("abgate serve did not exit within 25s of SIGTERM")
	}
	if s.err != nil {
		t.Errorf("abgate serve after SIGTERM: %v; want exit code 0", s.err)
	}
	flushed, retried, last := false, false, ""
	for _, line := range logLines(t, s.stderr.String()) {
		msg, _ := line["msg"].(string)
		flushed = flushed || msg == "exposures flushed"
		retried = retried || msg == "exposure write failed; retrying"
		last = msg
	}
	if !retried {
		t.Error("no \"exposure write failed; retrying\" logged: the cut did not reach the exposure writer")
	}
	if !flushed || last != "shutdown complete" {
		t.Errorf("exposures flushed logged: %v, last message %q; want flushed and \"shutdown complete\"", flushed, last)
	}
}
