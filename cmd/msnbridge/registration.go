package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/matrix"
)

// newToken returns 64 characters of base64url from 48 random bytes.
func newToken() string {
	b := make([]byte, 48)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// generateRegistration writes the registration for the config at
// configPath. It uses the config's tokens when it has them, so that the
// registration and the config agree; otherwise it generates fresh ones and
// says that they must be copied into the config.
func generateRegistration(configPath, regPath string, stdout, stderr io.Writer) int {
	cfg, err := config.LoadUnvalidated(configPath)
	if err != nil {
		printProblems(stderr, configPath, err)
		return 1
	}
	var generated []string
	if cfg.Matrix.ASToken == "" {
		cfg.Matrix.ASToken = newToken()
		generated = append(generated, "as_token")
	}
	if cfg.Matrix.HSToken == "" {
		cfg.Matrix.HSToken = newToken()
		generated = append(generated, "hs_token")
	}
	// A registration needs the matrix section whether or not it is enabled
	// yet; everything else must be valid too, as the bridge will use it.
	check := *cfg
	check.Matrix.Enabled = true
	if err := check.Validate(); err != nil {
		printProblems(stderr, configPath, err)
		return 1
	}
	reg := matrix.NewRegistration(cfg.Matrix)
	if err := reg.Save(regPath); err != nil {
		fmt.Fprintf(stderr, "msnbridge: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote the appservice registration to %s; give it to the homeserver\n", regPath)
	if len(generated) > 0 {
		// The tokens are secrets: point at the file rather than print them.
		fmt.Fprintf(stdout, "generated new %v: copy as_token and hs_token from %s into %s as matrix.as_token and matrix.hs_token (or set %s and %s)\n",
			generated, regPath, configPath, config.EnvName("matrix.as_token"), config.EnvName("matrix.hs_token"))
	} else {
		fmt.Fprintf(stdout, "used the as_token and hs_token from %s\n", configPath)
	}
	return 0
}
