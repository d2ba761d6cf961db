package matrix

import (
	"regexp"
	"testing"

	"maunium.net/go/mautrix/id"

	"github.com/msnbridge/msnbridge/bridge/config"
)

func testConfig() config.Matrix {
	return config.Matrix{
		Enabled:       true,
		HomeserverURL: "http://127.0.0.1:18008",
		Domain:        "example.org",
		Listen:        "127.0.0.1:0",
		PublicURL:     "http://127.0.0.1:18009",
		ID:            "msnbridge",
		BotLocalpart:  "msnbot",
		ASToken:       "as-secret",
		HSToken:       "hs-secret",
	}
}

func TestNewRegistration(t *testing.T) {
	cfg := testConfig()
	reg := NewRegistration(cfg)
	if reg.ID != "msnbridge" || reg.URL != "http://127.0.0.1:18009" || reg.AppToken != "as-secret" ||
		reg.ServerToken != "hs-secret" || reg.SenderLocalpart != "msnbot" {
		t.Fatalf("registration fields: %+v", reg)
	}
	if reg.RateLimited == nil || *reg.RateLimited {
		t.Error("ghosts must not be rate limited")
	}
	if !reg.EphemeralEvents || !reg.SoruEphemeralEvents {
		t.Error("ephemeral events not requested")
	}
	if len(reg.Namespaces.UserIDs) != 2 {
		t.Fatalf("want 2 user namespaces, got %+v", reg.Namespaces.UserIDs)
	}
	g, _ := newGhostNamer(cfg.GhostTemplate, cfg.Domain)
	matches := func(u id.UserID) bool {
		for _, ns := range reg.Namespaces.UserIDs {
			if !ns.Exclusive {
				t.Errorf("namespace %q is not exclusive", ns.Regex)
			}
			if regexp.MustCompile(ns.Regex).MatchString(string(u)) {
				return true
			}
		}
		return false
	}
	for _, u := range []id.UserID{"@msnbot:example.org", g.GhostID("alice@example.com"), g.GhostID("Zoë+x@Y.com")} {
		if !matches(u) {
			t.Errorf("%s is not in the namespaces", u)
		}
	}
	for _, u := range []id.UserID{"@alice:example.org", "@msnbot:other.org", "@msnbotx:example.org",
		"@msn_alice=40x.com:example.org.evil", "@xmsn_a:example.org"} {
		if matches(u) {
			t.Errorf("%s wrongly in the namespaces", u)
		}
	}
	out, err := reg.YAML()
	if err != nil || !regexp.MustCompile(`receive_ephemeral: true`).MatchString(out) {
		t.Errorf("YAML: %v\n%s", err, out)
	}
}
