package main

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// canSendFile reports whether sendFile works here.
const canSendFile = true

// sendFile writes the first n bytes of f to c with sendfile(2), waiting
// for c to take more when its buffer is full, until c's write deadline.
// The offset in f is the call's own: goroutines may send the same file at
// once.
func sendFile(c net.Conn, f *os.File, n int64) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errors.New("sendfile: not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	src := int(f.Fd())
	var off int64
	var sendErr error
	err = rc.Write(func(fd uintptr) bool {
		for off < n {
			m, err := syscall.Sendfile(int(fd), src, &off, int(n-off))
			switch {
			case err == syscall.EAGAIN:
				return false // wait until the socket takes more
			case err == syscall.EINTR:
			case err != nil:
				sendErr = os.NewSyscallError("sendfile", err)
				return true
			case m == 0:
				sendErr = io.ErrUnexpectedEOF // f is shorter than n
				return true
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return sendErr
}
