package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/store"
)

const usageText = `Usage: msnbridge [flags]

  -c, --config FILE     configuration file (default config.yaml)
  -e FILE               write the example configuration to FILE and exit
  -g                    generate the Matrix appservice registration and exit
  -r FILE               where -g writes the registration (default registration.yaml)
      --check           validate the configuration, list every problem, exit 0 or 1
      --generate-key    print a new bridge.encryption_key and exit
      --version         print the version and exit

Every configuration value can be overridden with MSNBRIDGE_<SECTION>_<KEY>
(see config.example.yaml).
`

// realMain is the whole command line: it parses args, does what they ask and
// returns the exit status.
func realMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("msnbridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usageText) }
	var (
		configPath   string
		examplePath  string
		registration string
		generate     bool
		check        bool
		showVersion  bool
		generateKey  bool
	)
	fs.StringVar(&configPath, "c", "config.yaml", "")
	fs.StringVar(&configPath, "config", "config.yaml", "")
	fs.StringVar(&examplePath, "e", "", "")
	fs.BoolVar(&generate, "g", false, "")
	fs.StringVar(&registration, "r", "registration.yaml", "")
	fs.BoolVar(&check, "check", false, "")
	fs.BoolVar(&showVersion, "version", false, "")
	fs.BoolVar(&generateKey, "generate-key", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "msnbridge: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}

	switch {
	case showVersion:
		fmt.Fprintln(stdout, "msnbridge", version)
		return 0
	case generateKey:
		// The same key format the store's sealer reads: base64 of 32
		// random bytes.
		fmt.Fprintln(stdout, store.GenerateKey())
		return 0
	case examplePath != "":
		return writeExample(examplePath, stderr)
	case generate:
		return generateRegistration(configPath, registration, stdout, stderr)
	}

	cfg, err := config.Load(configPath)
	if err != nil {
		printProblems(stderr, configPath, err)
		return 1
	}
	if check {
		fmt.Fprintf(stdout, "%s: OK\n", configPath)
		return 0
	}

	log, err := config.NewLogger(cfg.Logging, stderr)
	if err != nil { // Load validated the section; this is a bug if it happens.
		fmt.Fprintf(stderr, "msnbridge: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error().Err(err).Msg("msnbridge stopped with an error")
		return 1
	}
	return 0
}

// printProblems writes every configuration problem on its own line.
func printProblems(w io.Writer, path string, err error) {
	var ps config.Problems
	if errors.As(err, &ps) {
		fmt.Fprintf(w, "%s: %d problem(s):\n", path, len(ps))
		for _, p := range ps {
			fmt.Fprintf(w, "  %s\n", p.Error())
		}
		return
	}
	fmt.Fprintf(w, "%s: %v\n", path, err)
}

// writeExample writes the example configuration, never over an existing
// file (that is most likely someone's edited config).
func writeExample(path string, stderr io.Writer) int {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "msnbridge: %v\n", err)
		return 1
	}
	if _, err := f.Write(config.Example); err != nil {
		f.Close()
		fmt.Fprintf(stderr, "msnbridge: writing %s: %v\n", path, err)
		return 1
	}
	if err := f.Close(); err != nil {
		fmt.Fprintf(stderr, "msnbridge: writing %s: %v\n", path, err)
		return 1
	}
	fmt.Fprintf(stderr, "wrote the example configuration to %s\n", path)
	return 0
}
