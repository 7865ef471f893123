//go:build !linux

package main

import (
	"errors"
	"net"
	"os"
)

// canSendFile reports whether sendFile works here: the bench client
// writes requests with writev instead.
const canSendFile = false

// sendFile is not used where canSendFile is false.
func sendFile(net.Conn, *os.File, int64) error {
	return errors.New("sendfile is not supported on this platform")
}
