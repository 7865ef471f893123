package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"abgate/migrations"
)

// migrate runs `abgate migrate up|status`.
func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, rest, err := parse("migrate", args, getenv, stderr)
	if err != nil {
		return err
	}
	if len(rest) != 1 || (rest[0] != "up" && rest[0] != "status") {
		fmt.Fprintln(stderr, "usage: abgate migrate [flags] up|status")
		return errUsage
	}
	log := cfg.logger(stderr)
	db, _, err := migrations.Open(ctx, cfg.DB, log)
	if err != nil {
		return err
	}
	defer closeDB(db, log)
	if rest[0] == "up" {
		applied, err := migrations.Up(ctx, db)
		if err != nil {
			return err
		}
		for _, m := range applied {
			fmt.Fprintf(stdout, "applied %04d_%s\n", m.Version, m.Name)
		}
		if len(applied) == 0 {
			fmt.Fprintln(stdout, "nothing to apply: the schema is current")
		}
		return nil
	}
	ms, err := migrations.Status(ctx, db)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "VERSION\tNAME\tAPPLIED")
	for _, m := range ms {
		applied := "pending"
		if m.AppliedAt != nil {
			applied = m.AppliedAt.UTC().Format("2006-01-02T15:04:05Z")
		}
		fmt.Fprintf(w, "%04d\t%s\t%s\n", m.Version, m.Name, applied)
	}
	return w.Flush()
}
