package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"abgate/inference"
)

// rescanEvery is how often the model repository is rescanned for new,
// changed and removed models.
const rescanEvery = 10 * time.Second

// openRepository loads ONNX Runtime and the model repository (writing the
// demo models first with --demo). The caller closes the repository.
func openRepository(cfg *Config, log *slog.Logger) (*inference.Repository, error) {
	if err := inference.InitRuntime(cfg.ORTLib); err != nil {
		return nil, err
	}
	if cfg.Demo {
		written, err := inference.WriteDemoModels(cfg.Models)
		if err != nil {
			return nil, fmt.Errorf("demo models: %w", err)
		}
		for _, name := range written {
			log.Info("demo model written", "model", name, "repository", cfg.Models)
		}
	}
	if err := os.MkdirAll(cfg.Models, 0o755); err != nil {
		return nil, fmt.Errorf("model repository: %w", err)
	}
	return inference.NewRepository(cfg.Models, log), nil
}

// newInferenceServer returns the inference server over repo.
func newInferenceServer(cfg *Config, repo *inference.Repository, log *slog.Logger, reg prometheus.Registerer) *inference.Server {
	return inference.NewServer(repo, inference.Options{MaxBodyBytes: cfg.MaxInferBodyBytes, Version: Version}, log, reg)
}

// inferenceCmd runs `abgate inference`: the inference server alone, for a
// pool of model backends that routers forward to.
func inferenceCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseNoArgs("inference", args, getenv, stderr)
	if err != nil {
		return err
	}
	log := cfg.logger(stderr)
	repo, err := openRepository(cfg, log)
	if err != nil {
		return err
	}
	defer repo.Close()
	if err := repo.Scan(); err != nil {
		return fmt.Errorf("model repository %s: %w", cfg.Models, err)
	}
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	go repo.Watch(bgCtx, rescanEvery)

	reg := newRegistry()
	r := newEngine(log)
	newInferenceServer(cfg, repo, log, reg).Mount(r)
	mountMetrics(r, reg)
	if err := listenAndServe(ctx, cfg, r, log); err != nil {
		return err
	}
	stopBackground()
	repo.Close()
	log.Info("shutdown complete")
	return nil
}

// newHTTPServer returns the HTTP server of h that every command serves
// with (and the bench measures): header and idle timeouts, errors logged
// to log, and large inference bodies read whole.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	inference.WaitForBodies(srv)
	return srv
}

// listenAndServe serves h on cfg.Listen until ctx is done, then drains
// in-flight requests for at most cfg.ShutdownTimeout.
func listenAndServe(ctx context.Context, cfg *Config, h http.Handler, log *slog.Logger) error {
	srv := newHTTPServer(h, log)
	ln, err := listen(cfg.Listen)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("abgate serving", "addr", ln.Addr().String(), "version", Version)

	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests", "timeout", cfg.ShutdownTimeout)
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Warn("http drain incomplete", "err", err)
	}
	return nil
}
