package main

import (
	"context"
	"fmt"
	"image"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"abgate/analytics"
	"abgate/experiments"
	"abgate/inference"
	"abgate/migrations"
	"abgate/router"
)

// modelSyncEvery is how often the router rereads the model catalogue to
// update its backend pools.
const modelSyncEvery = 2 * time.Second

// routing is the router's parts: the snapshot Watcher, the backend pools,
// the exposure log, the proxy of the prediction endpoints and the feedback
// API, with the background work that keeps the snapshot and the pools
// current.
type routing struct {
	pools     *router.Pools
	exposures *router.ExposureLog
	proxy     *router.Proxy
	feedback  *router.FeedbackAPI
	cors      *router.CORS // nil: no CORS
	log       *slog.Logger

	cancel      context.CancelFunc
	done        chan struct{}
	captureDone chan struct{} // closed when the drift capture has flushed
}

// startRouting builds the router over db and starts its background work.
// local is the in-process inference handler that serves local models (nil
// for the router alone: local models then have no backend). Call close
// after the HTTP server has drained. featureNames names the columns of
// local models' input tensors for the drift capture (nil: none known).
func startRouting(ctx context.Context, cfg *Config, db *gorm.DB, store *experiments.Store, local http.Handler, featureNames func(model, input string) []string, log *slog.Logger, reg prometheus.Registerer) (*routing, error) {
	watcher, err := router.NewWatcher(ctx, db, router.WatcherOptions{}, log)
	if err != nil {
		return nil, err
	}
	models, err := store.Models(ctx)
	if err != nil {
		return nil, fmt.Errorf("model catalogue: %w", err)
	}
	pools, err := router.NewPools(models, local, router.PoolOptions{}, log, reg)
	if err != nil {
		return nil, err
	}
	es, err := router.NewExposureStore(db)
	if err != nil {
		pools.Close()
		return nil, err
	}
	xlog := router.NewExposureLog(es, router.ExposureLogOptions{}, log, reg)
	var capture *analytics.Capture
	popts := router.ProxyOptions{
		UnitHeader:   cfg.UnitHeader,
		DefaultRoute: cfg.DefaultRoute,
		MaxBodyBytes: cfg.MaxInferBodyBytes,
	}
	if cfg.DriftSampleRate > 0 {
		svc := analytics.NewService(db, store, log, analytics.Options{})
		capture = analytics.NewCapture(svc, analytics.CaptureOptions{Rate: cfg.DriftSampleRate, FeatureNames: featureNames, Images: decodeImages}, log, reg)
		popts.Capture = capture.Offer
	}
	proxy, err := router.NewProxy(watcher, pools, xlog, store, popts, log, reg)
	if err != nil {
		_ = xlog.Close(ctx)
		pools.Close()
		return nil, err
	}
	feedback := router.NewFeedbackAPI(db, proxy, log)
	feedback.MaxBodyBytes = cfg.MaxBodyBytes
	cors, err := router.NewCORS(router.CORSOptions{Origins: cfg.CORSOrigins, UnitHeader: cfg.UnitHeader})
	if err != nil {
		_ = xlog.Close(ctx)
		pools.Close()
		return nil, err
	}

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rt := &routing{pools: pools, exposures: xlog, proxy: proxy, feedback: feedback, cors: cors, log: log, cancel: cancel,
		done: make(chan struct{}), captureDone: make(chan struct{})}
	go func() {
		defer close(rt.captureDone)
		if capture != nil {
			capture.Run(bg)
		}
	}()
	go func() {
		defer close(rt.done)
		go func() { _ = watcher.Run(bg) }()
		t := time.NewTicker(modelSyncEvery)
		defer t.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-t.C:
			}
			ms, err := store.Models(bg)
			if err == nil {
				err = pools.Update(ms)
			}
			if err != nil && bg.Err() == nil {
				log.Warn("model catalogue not reloaded", "err", err)
			}
		}
	}()
	return rt, nil
}

// decodeImages decodes the images of a /predict or /predict/batch body as
// the image API reads them, for the drift capture.
func decodeImages(contentType string, body []byte, batch bool) ([]image.Image, error) {
	raws, err := inference.ParseImageRequest(contentType, body, batch)
	if err != nil {
		return nil, err
	}
	imgs := make([]image.Image, 0, len(raws))
	for _, raw := range raws {
		img, err := inference.DecodeImage(raw, 0)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
	}
	return imgs, nil
}

// mount adds the routed prediction endpoints and POST /v1/feedback to r,
// with their CORS preflight handlers and headers when origins are
// configured.
func (rt *routing) mount(r gin.IRouter) {
	g := r
	if rt.cors != nil {
		g = r.Group("", rt.cors.Handler())
		rt.cors.Mount(r, "/v2/models/:model/infer", "/predict", "/predict/batch", "/v1/feedback")
	}
	rt.proxy.Mount(g)
	rt.feedback.Mount(g)
}

// close stops the background work, waits for shadow copies in flight,
// flushes the exposure log (within ctx) and closes the pools.
func (rt *routing) close(ctx context.Context) {
	rt.cancel()
	<-rt.done
	if err := rt.proxy.Close(ctx); err != nil {
		rt.log.Warn("shadow copies still in flight at shutdown", "err", err)
	}
	<-rt.captureDone
	if err := rt.exposures.Close(ctx); err != nil {
		rt.log.Error("exposure flush incomplete", "err", err)
	} else {
		rt.log.Info("exposures flushed")
	}
	rt.pools.Close()
}

// routerCmd runs `abgate router`: the router alone, forwarding to remote
// backends only, for scale-out in front of `abgate inference` servers.
func routerCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseNoArgs("router", args, getenv, stderr)
	if err != nil {
		return err
	}
	log := cfg.logger(stderr)
	db, err := openDB(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeDB(db, log)
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	go migrations.RunPartitionMaintenance(bgCtx, db, log, 24*time.Hour)

	store := experiments.NewStore(db, log)
	reg := newRegistry()
	rt, err := startRouting(ctx, cfg, db, store, nil, nil, log, reg)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	r := newEngine(log)
	if err := router.TrustProxies(r, cfg.TrustedProxies); err != nil {
		rt.close(ctx)
		return err
	}
	mountHealth(r, db)
	rt.mount(r)
	mountMetrics(r, reg)
	serveErr := listenAndServe(ctx, cfg, r, log)
	stopBackground()
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	rt.close(shutCtx)
	if serveErr != nil {
		return serveErr
	}
	closeDB(db, log)
	log.Info("shutdown complete")
	return nil
}
