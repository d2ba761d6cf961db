// Command msnbridge-demo runs the MSN side of `make demo`: an in-process MSN
// server on loopback with a demo account and three friends who answer. It
// writes the msn settings the bridge needs as MSNBRIDGE_* environment lines
// (to -env FILE) and runs until interrupted.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/internal/demo"
)

func main() {
	envFile := flag.String("env", "", "write the bridge's msn settings (MSNBRIDGE_MSN_*) to this file")
	flag.Parse()
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly}).With().Timestamp().Str("component", "demo-msn").Logger()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	d, err := demo.Start(sctx, demo.Options{Log: log})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "msnbridge-demo:", err)
		os.Exit(1)
	}
	defer d.Close()
	cfg := d.Config()
	env := fmt.Sprintf("MSNBRIDGE_MSN_SERVER=%s\nMSNBRIDGE_MSN_LOGIN_URL=%s\nMSNBRIDGE_MSN_PROTOCOLS=MSNP12\n", cfg.Server, cfg.LoginURL)
	if *envFile != "" {
		// Written last and renamed into place: a reader that sees the file
		// sees the server up.
		tmp := *envFile + ".tmp"
		err := os.WriteFile(tmp, []byte(env), 0o600)
		if err == nil {
			err = os.Rename(tmp, *envFile)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "msnbridge-demo:", err)
			d.Close()
			os.Exit(1)
		}
	}
	log.Info().Str("server", cfg.Server).Int("friends", len(demo.Friends)).Msg("demo MSN server up")
	<-ctx.Done()
	log.Info().Msg("demo MSN server stopping")
}
