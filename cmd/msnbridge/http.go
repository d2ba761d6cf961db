package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/metrics"
	"github.com/msnbridge/msnbridge/provisioning"
)

// opsServer is the operator's HTTP listener (config section http): health,
// readiness, metrics and the provisioning API.
type opsServer struct {
	mux     *http.ServeMux
	srv     *http.Server
	ln      net.Listener
	started atomic.Bool // the frontends and the core are running
}

// newOpsServer binds cfg.Listen at once, so that a taken port stops the
// bridge at start-up rather than later.
func newOpsServer(cfg config.HTTP, core *bridge.Bridge, m *metrics.Metrics, frontends []string, log *config.Logger) (*opsServer, error) {
	mux := http.NewServeMux()
	o := &opsServer{mux: mux}
	mux.Handle("GET /health", metrics.Health())
	mux.Handle("GET /ready", metrics.Ready(map[string]metrics.Check{
		"store": core.Ping,
		"frontends": func(context.Context) error {
			if !o.started.Load() {
				return errors.New("starting")
			}
			return nil
		},
	}))
	if m != nil {
		mux.Handle("GET /metrics", m.Handler())
	}
	if cfg.Provisioning {
		api, err := provisioning.New(provisioning.Options{Core: core, Secret: cfg.ProvisioningSecret,
			Frontends: frontends, Log: log.Component("bridge")})
		if err != nil {
			return nil, err
		}
		mux.Handle(provisioning.Prefix, api)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	o.ln = ln
	log.Info().Str("addr", ln.Addr().String()).Bool("metrics", m != nil).Bool("provisioning", cfg.Provisioning).
		Msg("http listener up")
	o.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := o.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("the http listener stopped")
		}
	}()
	return o, nil
}

// mount adds a handler for a frontend, e.g. the XMPP gateway's /media/.
func (o *opsServer) mount(pattern string, h http.Handler) { o.mux.Handle(pattern, h) }

func (o *opsServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = o.srv.Shutdown(ctx)
}
