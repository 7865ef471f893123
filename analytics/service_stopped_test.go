package analytics

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestStopped checks how RefreshRunning tells a refresh cut short by its
// context (which it does not log as a failure) from a failed one.
func TestStopped(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"driver words after cancel", cancelled, errors.New("interrupted (9)"), true},
		{"wrapped context.Canceled", live, fmt.Errorf("refresh: %w", context.Canceled), true},
		{"a failure", live, errors.New("no such table: exposures"), false},
	} {
		if got := stopped(c.ctx, c.err); got != c.want {
			t.Errorf("%s: stopped = %v, want %v", c.name, got, c.want)
		}
	}
}
