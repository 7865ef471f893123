package experiments

import (
	"context"

	"abgate"
)

// The demo experiment that `abgate serve --demo` seeds.
const (
	DemoExperiment = "demo"
	DemoRoute      = "classifier"
	DemoModelV1    = "classifier-v1" // logistic regression, the control
	DemoModelV2    = "classifier-v2" // small MLP, the treatment
)

// DemoDefinition returns the definition of the demo experiment: route
// classifier, control v1 and treatment v2 at 50/50.
func DemoDefinition() Definition {
	return Definition{
		Key:         DemoExperiment,
		Name:        "Demo: logistic regression vs MLP",
		Description: "Seeded by --demo: does the MLP (v2) convert better than the logistic regression (v1)?",
		Route:       DemoRoute,
		Variants: []Variant{
			{Key: "v1", Model: DemoModelV1, Weight: 1, Control: true},
			{Key: "v2", Model: DemoModelV2, Weight: 1},
		},
		Metrics: []Metric{
			{Key: "conversion", Type: MetricBinomial, Role: RolePrimary},
			{Key: "revenue", Type: MetricContinuous, Role: RoleSecondary},
			{Key: "accuracy", Type: MetricAccuracy, Role: RoleSecondary},
			{Key: "latency", Type: MetricLatency, Role: RoleGuardrail},
		},
	}
}

// SeedDemo registers the demo models as local models and, when no
// experiment called "demo" exists yet, creates and starts it. It is
// idempotent: an existing demo experiment is left as it is.
func (s *Store) SeedDemo(ctx context.Context) error {
	ctx = abgate.NewContextWithActor(ctx, abgate.Actor{Name: "system", Role: RoleAdmin})
	for _, m := range []string{DemoModelV1, DemoModelV2} {
		if err := s.EnsureLocalModel(ctx, m); err != nil {
			return err
		}
	}
	if _, err := s.Experiment(ctx, DemoExperiment); err == nil {
		return nil
	} else if abgate.ErrorCode(err) != abgate.ENOTFOUND {
		return err
	}
	if _, err := s.CreateExperiment(ctx, DemoDefinition()); abgate.ErrorCode(err) == abgate.ECONFLICT {
		return nil // another process seeded it since the read above
	} else if err != nil {
		return err
	}
	_, err := s.Transition(ctx, DemoExperiment, ActionStart, nil)
	return err
}
