package main

import (
	"context"

	"github.com/msnbridge/msnbridge/bridge/config"
)

// run is the bridge's life: it starts the store, the core and the enabled
// frontends with cfg, and stops them when ctx ends (SIGINT, SIGTERM). It
// returns nil on a clean stop.
//
// The core and frontends are not wired in yet: for now it logs what it
// would run and waits for ctx.
func run(ctx context.Context, cfg *config.Config, log *config.Logger) error {
	log.Debug().Object("config", cfg).Msg("configuration loaded")
	if !cfg.Matrix.Enabled && !cfg.XMPP.Enabled {
		log.Warn().Msg("neither matrix nor xmpp is enabled: nobody can use the bridge")
	}
	log.Info().
		Str("version", version).
		Bool("matrix", cfg.Matrix.Enabled).
		Bool("xmpp", cfg.XMPP.Enabled).
		Str("msn_server", cfg.MSN.Server).
		Msg("msnbridge running")
	<-ctx.Done()
	log.Info().Msg("msnbridge stopping")
	return nil
}
