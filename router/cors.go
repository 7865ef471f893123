package router

// This file holds CORS for browser clients of the prediction and feedback
// endpoints: preflight answers and response headers for the origins of a
// configured allow-list, nothing at all for the others.

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"abgate"
)

// CORSOptions configure a CORS. Zero fields take the defaults named on
// them.
type CORSOptions struct {
	// Origins are the allowed origins, each "scheme://host[:port]" as a
	// browser sends it in the Origin header (compared without regard to
	// case). Empty means no CORS: NewCORS returns nil.
	Origins []string
	// UnitHeader is the request header carrying the unit id, allowed in
	// cross-origin requests; "" means X-User-ID.
	UnitHeader string
	// MaxAge is how long browsers may cache a preflight answer; 0 means
	// 10 minutes.
	MaxAge time.Duration
}

// CORS answers preflight requests and adds the CORS headers to the answers
// of the endpoints it wraps, for allowed origins only. A nil *CORS does
// nothing. It is safe for concurrent use.
type CORS struct {
	origins      map[string]bool
	allowHeaders string
	maxAge       string
}

// corsMethods are the methods allowed cross-origin.
const corsMethods = "POST, OPTIONS"

// corsExposeHeaders are the answer headers browsers may read.
const corsExposeHeaders = "X-Request-ID, " + HeaderExperiment + ", " + HeaderVariant + ", " + HeaderModel

// NewCORS returns the CORS of opts; nil (no CORS) when opts.Origins is
// empty. An origin that is not "scheme://host[:port]" (a "*", a path, a
// query) is EINVALID: the allow-list names origins exactly, since the
// answers carry credentials (the unit cookie).
func NewCORS(opts CORSOptions) (*CORS, error) {
	if len(opts.Origins) == 0 {
		return nil, nil
	}
	if opts.UnitHeader == "" {
		opts.UnitHeader = DefaultUnitHeader
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 10 * time.Minute
	}
	c := &CORS{
		origins: make(map[string]bool, len(opts.Origins)),
		allowHeaders: strings.Join([]string{"Content-Type", http.CanonicalHeaderKey(opts.UnitHeader), "X-Request-ID",
			"Inference-Header-Content-Length", "Authorization"}, ", "),
		maxAge: strconv.Itoa(int(opts.MaxAge / time.Second)),
	}
	for _, o := range opts.Origins {
		if err := checkOrigin(o); err != nil {
			return nil, err
		}
		c.origins[strings.ToLower(o)] = true
	}
	return c, nil
}

// checkOrigin checks that o is an origin: scheme://host[:port] and
// nothing else.
func checkOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#") {
		return abgate.Errorf(abgate.EINVALID, "CORS origin %q must be scheme://host[:port], like https://app.example.com", o)
	}
	return nil
}

// allowed returns the request's Origin when it is on the allow-list.
func (c *CORS) allowed(r *http.Request) (string, bool) {
	o := r.Header.Get("Origin")
	if o == "" {
		return "", false
	}
	return o, c.origins[strings.ToLower(o)]
}

// Handler returns the middleware of the wrapped endpoints: for an allowed
// Origin, Access-Control-Allow-Origin (that origin, never "*"),
// -Allow-Credentials and -Expose-Headers (X-Request-ID, X-Experiment,
// X-Variant, X-Model); Vary: Origin on every answer. A nil *CORS returns a
// middleware that does nothing.
func (c *CORS) Handler() gin.HandlerFunc {
	return func(gc *gin.Context) {
		if c == nil {
			return
		}
		if gc.Request.Method == http.MethodOptions {
			return // preflight answers its own
		}
		h := gc.Writer.Header()
		addVary(h, "Origin")
		if o, ok := c.allowed(gc.Request); ok {
			h.Set("Access-Control-Allow-Origin", o)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
	}
}

// Mount adds to r the preflight handlers (OPTIONS) of paths: 204, and for
// an allowed Origin asking for an allowed method, the allow headers
// (origin, credentials, methods POST and OPTIONS, headers Content-Type,
// the unit header, X-Request-ID, Inference-Header-Content-Length and
// Authorization) and Access-Control-Max-Age. Unlisted origins get no CORS
// header. A nil *CORS mounts nothing (OPTIONS stays 405).
func (c *CORS) Mount(r gin.IRouter, paths ...string) {
	if c == nil {
		return
	}
	for _, p := range paths {
		r.OPTIONS(p, c.preflight)
	}
}

func (c *CORS) preflight(gc *gin.Context) {
	h := gc.Writer.Header()
	addVary(h, "Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers")
	h.Set("Allow", corsMethods)
	o, ok := c.allowed(gc.Request)
	if m := gc.GetHeader("Access-Control-Request-Method"); ok && (m == http.MethodPost || m == http.MethodOptions) {
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Set("Access-Control-Allow-Methods", corsMethods)
		h.Set("Access-Control-Allow-Headers", c.allowHeaders)
		h.Set("Access-Control-Max-Age", c.maxAge)
	}
	gc.AbortWithStatus(http.StatusNoContent)
}

// addVary adds names to the Vary header of h, once each.
func addVary(h http.Header, names ...string) {
	for _, n := range names {
		present := false
		for _, v := range h.Values("Vary") {
			for f := range strings.SplitSeq(v, ",") {
				if strings.EqualFold(strings.TrimSpace(f), n) {
					present = true
				}
			}
		}
		if !present {
			h.Add("Vary", n)
		}
	}
}
