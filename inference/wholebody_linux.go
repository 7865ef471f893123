package inference

import "syscall"

// rcvlowatSupported: Linux TCP sockets wake their readers only when
// SO_RCVLOWAT bytes are queued, the peer closes, or the receive window is
// nearly used up (so the mark never needs more room than the socket
// has). wholeReader never sets a mark above the bytes still to come.
const rcvlowatSupported = true

// setRcvlowat sets the socket's SO_RCVLOWAT to n bytes. A failure leaves
// the mark as it was: reads then wake as before.
func setRcvlowat(raw syscall.RawConn, n int) {
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n)
	})
}
