package analytics

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"abgate"
)

// DemoReferenceRows is the size of the demo models' reference profiles.
const DemoReferenceRows = 2000

// SeedDemoReferences gives each of models (the demo classifiers, inputs
// age, income, tenure_months, sessions_per_week) a reference profile drawn
// from the distributions their weights were fitted around, unless it has
// one, so that the demo's drift page has something to compare the
// captured traffic with. The draw is fixed (seeded).
func (s *Service) SeedDemoReferences(ctx context.Context, models []string) error {
	rng := rand.New(rand.NewPCG(2026, 11))
	var b strings.Builder
	for range DemoReferenceRows {
		age := math.Max(18, math.Round(40+12*rng.NormFloat64()))
		income := math.Max(0, math.Round(60000+25000*rng.NormFloat64()))
		tenure := math.Max(0, math.Round(24+18*rng.NormFloat64()))
		sessions := math.Max(0, math.Round(3+2.5*rng.NormFloat64()))
		fmt.Fprintf(&b, `{"age": %g, "income": %g, "tenure_months": %g, "sessions_per_week": %g}`+"\n", age, income, tenure, sessions)
	}
	for _, m := range models {
		if _, _, err := s.Reference(ctx, m, ""); err == nil {
			continue
		} else if abgate.ErrorCode(err) != abgate.ENOTFOUND {
			return err
		}
		p, err := BuildProfile(m, strings.NewReader(b.String()), ReferenceOptions{})
		if err != nil {
			return err
		}
		if err := s.SaveReference(ctx, p); err != nil {
			return err
		}
	}
	return nil
}
