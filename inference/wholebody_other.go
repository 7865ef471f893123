//go:build !linux

package inference

import "syscall"

// rcvlowatSupported: large bodies are read as they come outside Linux.
const rcvlowatSupported = false

func setRcvlowat(syscall.RawConn, int) {}
