package router

// This file holds the client IP policy of the HTTP engines: the address a
// request came from is its RemoteAddr, unless it came from a configured
// trusted proxy, whose X-Forwarded-For is then believed.

import (
	"net"
	"strings"

	"github.com/gin-gonic/gin"

	"abgate"
)

// CheckTrustedProxies checks a list of trusted proxies: each entry is an
// IP address or a CIDR (IPv4 or IPv6). A bad entry is EINVALID.
func CheckTrustedProxies(proxies []string) error {
	for _, p := range proxies {
		if strings.Contains(p, "/") {
			if _, _, err := net.ParseCIDR(p); err != nil {
				return abgate.Errorf(abgate.EINVALID, "trusted proxy %q is not a CIDR", p)
			}
			continue
		}
		if net.ParseIP(p) == nil {
			return abgate.Errorf(abgate.EINVALID, "trusted proxy %q is neither an IP address nor a CIDR", p)
		}
	}
	return nil
}

// TrustProxies sets the client IP policy of e (what c.ClientIP returns):
// with no proxies (nil or empty) the client IP is the connection's remote
// address and X-Forwarded-For is ignored, whoever sends it; otherwise
// X-Forwarded-For is read, right to left, only on requests whose remote
// address is one of proxies (IP addresses or CIDRs), skipping the
// addresses of trusted proxies. X-Real-IP and platform headers are never
// believed. A bad entry is EINVALID and leaves e untouched.
func TrustProxies(e *gin.Engine, proxies []string) error {
	if err := CheckTrustedProxies(proxies); err != nil {
		return err
	}
	e.TrustedPlatform = ""
	e.RemoteIPHeaders = []string{"X-Forwarded-For"}
	if len(proxies) == 0 {
		e.ForwardedByClientIP = false
		return e.SetTrustedProxies(nil)
	}
	e.ForwardedByClientIP = true
	return e.SetTrustedProxies(proxies)
}
