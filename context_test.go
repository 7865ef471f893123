package abgate

import (
	"context"
	"testing"
)

// TestContextWithRequestID checks the request-id context: the id comes
// back, the parent's values and cancellation pass through it, and a
// context without one gives "".
func TestContextWithRequestID(t *testing.T) {
	type otherKey struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), otherKey{}, "other"))
	ctx := NewContextWithRequestID(parent, "req-1")
	if got := RequestIDFromContext(ctx); got != "req-1" {
		t.Errorf("RequestIDFromContext = %q, want req-1", got)
	}
	if got := ctx.Value(otherKey{}); got != "other" {
		t.Errorf("a parent's value = %v, want other", got)
	}
	inner := NewContextWithRequestID(ctx, "req-2")
	child, stop := context.WithCancel(inner)
	defer stop()
	if got := RequestIDFromContext(child); got != "req-2" {
		t.Errorf("the innermost id = %q, want req-2", got)
	}
	if got := RequestIDFromContext(parent); got != "" {
		t.Errorf("a context without an id gives %q", got)
	}
	cancel()
	<-child.Done()
	if child.Err() != context.Canceled || ctx.Err() != context.Canceled {
		t.Errorf("after the parent's cancel: %v, %v", child.Err(), ctx.Err())
	}
}
