package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/matrix"
	"github.com/msnbridge/msnbridge/metrics"
	"github.com/msnbridge/msnbridge/store"
	"github.com/msnbridge/msnbridge/xmpp"
)

// run is the bridge's life: it opens the store, starts the core and the
// enabled frontends with cfg, and stops them when ctx ends (SIGINT,
// SIGTERM). It returns nil on a clean stop.
func run(ctx context.Context, cfg *config.Config, log *config.Logger) error {
	// Start-up is not cut short by a signal that arrives during it; the
	// services check ctx once running.
	setup := context.WithoutCancel(ctx)
	log.Debug().Object("config", cfg).Msg("configuration loaded")
	if !cfg.Matrix.Enabled && !cfg.XMPP.Enabled {
		log.Warn().Msg("neither matrix nor xmpp is enabled: nobody can use the bridge")
	}

	var opts []store.Option
	if cfg.Bridge.EncryptionKey != "" {
		sealer, err := store.NewSealerBase64(cfg.Bridge.EncryptionKey)
		if err != nil {
			return fmt.Errorf("bridge.encryption_key: %w", err)
		}
		opts = append(opts, store.WithSealer(sealer))
	} else {
		log.Warn().Msg("bridge.encryption_key is not set: nobody can log in until it is (passwords are stored encrypted)")
	}
	if cfg.Database.MaxOpenConns > 0 {
		opts = append(opts, store.WithPool(cfg.Database.MaxOpenConns, cfg.Database.MaxIdleConns))
	}
	st, err := store.Open(setup, cfg.Database.Type, cfg.Database.URI, log.Component("store"), opts...)
	if err != nil {
		return err
	}
	defer st.Close()

	var m *metrics.Metrics
	bopts := bridge.Options{
		MSN: cfg.MSN, Bridge: cfg.Bridge, Store: st,
		Log: log.Component("bridge"), MSNLog: log.Component("msnp"),
	}
	if cfg.HTTP.Listen != "" && cfg.HTTP.Metrics {
		m = metrics.New()
		bopts.Observer = m
	}
	core, err := bridge.New(bopts)
	if err != nil {
		return err
	}
	if m != nil {
		m.Watch(core.Stats)
	}

	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	var ops *opsServer
	if cfg.HTTP.Listen != "" {
		var frontends []string
		if cfg.Matrix.Enabled {
			frontends = append(frontends, "matrix")
		}
		if cfg.XMPP.Enabled {
			frontends = append(frontends, "xmpp")
		}
		// Up before the frontends, so that /health answers during start-up
		// and /ready says it is not ready yet.
		ops, err = newOpsServer(cfg.HTTP, core, m, frontends, log)
		if err != nil {
			return fmt.Errorf("http.listen: %w", err)
		}
		stops = append(stops, ops.stop)
	}
	// The frontends are made and registered first, the core loads its
	// logins, and only then do the frontends take work: a transaction the
	// homeserver retries at start-up must find its user's login, or it
	// would be answered and lost.
	var mx *matrix.Frontend
	if cfg.Matrix.Enabled {
		mx, err = matrix.New(cfg.Matrix, core, log.Component("matrix"))
		if err != nil {
			return err
		}
		// Refuse files over the core's limit before downloading them; with
		// files off (0) the core refuses them itself.
		mx.SetMaxFileSize(int64(cfg.Bridge.Files.MaxSize))
		core.AddFrontend(mx)
	}
	var gw *xmpp.Gateway
	if cfg.XMPP.Enabled {
		gw, err = xmpp.New(cfg.XMPP, core, log.Component("xmpp"))
		if err != nil {
			return err
		}
		core.AddFrontend(gw)
		if ops == nil && cfg.HTTP.PublicURL != "" {
			log.Warn().Msg("http.public_url is set but http.listen is not: files from MSN cannot be linked to the bridge")
		}
		if ops != nil && cfg.HTTP.PublicURL != "" {
			// Files from MSN, for XMPP servers without HTTP upload.
			h, err := gw.MediaHandler(cfg.HTTP.PublicURL)
			if err != nil {
				return fmt.Errorf("http.public_url: %w", err)
			}
			ops.mount("/media/", h)
		}
	}
	if err := core.Start(setup); err != nil {
		return err
	}
	// Stopping goes the other way round: the frontends stop taking work
	// first (and hand over what they had already accepted), then the core
	// finishes sending it and signs out of MSN.
	stops = append([]func(){core.Stop}, stops...)
	if mx != nil {
		if err := mx.Start(setup); err != nil {
			return err
		}
		stops = append(stops, mx.Stop)
	}
	if gw != nil {
		gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := gw.Run(gctx); err != nil && !errors.Is(err, context.Canceled) {
				xl := log.Component("xmpp")
				xl.Error().Err(err).Msg("XMPP gateway stopped")
			}
		}()
		stops = append(stops, func() { cancel(); wg.Wait() })
	}
	if ops != nil {
		ops.started.Store(true)
	}
	log.Info().
		Str("version", version).
		Bool("matrix", cfg.Matrix.Enabled).
		Bool("xmpp", cfg.XMPP.Enabled).
		Str("msn_server", cfg.MSN.Server).
		Str("http", cfg.HTTP.Listen).
		Msg("msnbridge running")
	<-ctx.Done()
	log.Info().Msg("msnbridge stopping")
	return nil
}
