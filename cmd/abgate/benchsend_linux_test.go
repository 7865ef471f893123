package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// TestSendFile sends a file over TCP with sendFile: the bytes arrive in
// order, several goroutines may send the same file at once (each from
// its own offset), a file shorter than asked is io.ErrUnexpectedEOF, and
// a peer that stops reading makes the send fail at the write deadline.
func TestSendFile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := make([]byte, 3<<20) // more than the socket buffers hold
	for i := range data {
		data[i] = byte(i * 7 / 5)
	}
	f, err := os.CreateTemp(t.TempDir(), "send")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}

	received := make(chan []byte, 4)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				b, _ := io.ReadAll(conn)
				received <- b
			}()
		}
	}()
	send := func(n int64) error {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		return sendFile(conn, f, n)
	}
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- send(int64(len(data))) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if b := <-received; !bytes.Equal(b, data) {
			t.Fatalf("received %d bytes, not the %d sent", len(b), len(data))
		}
	}

	if err := send(int64(len(data)) + 10); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("file shorter than asked: %v, want io.ErrUnexpectedEOF", err)
	}
	<-received

	// A peer that never reads, with small socket buffers on both sides:
	// the send stops at the deadline.
	small := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	silent, err := small.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		conn, err := silent.Accept()
		if err == nil {
			time.Sleep(3 * time.Second)
			conn.Close()
		}
	}()
	conn, err := net.Dial("tcp", silent.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
	start := time.Now()
	err = sendFile(conn, f, int64(len(data)))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("peer that does not read: %v, want the deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("send to a peer that does not read returned after %v", d)
	}
}

// syscallSleep sleeps the calling thread for d with nanosleep(2).
func syscallSleep(d time.Duration) error {
	ts := syscall.NsecToTimespec(int64(d))
	return syscall.Nanosleep(&ts, nil)
}

// TestThreadSwitches: the process's context switches, summed over its
// threads, grow by at least one for each sleep of a thread.
func TestThreadSwitches(t *testing.T) {
	before := threadSwitches()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for range 20 {
			// A sleep of the locked thread itself, not of the goroutine.
			if err := syscallSleep(time.Millisecond); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	<-done
	if got := threadSwitches() - before; got < 20 {
		t.Errorf("thread switches grew by %g over 20 sleeps of a thread; want at least 20", got)
	}
}
