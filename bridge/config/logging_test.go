package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestSecretsNeverLogged(t *testing.T) {
	secrets := []string{"as-secret-1", "hs-secret-2", "xmpp-secret-3",
		"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "dbpass-4", "kvpass-5"}
	cfg := Defaults()
	cfg.Matrix.ASToken = secrets[0]
	cfg.Matrix.HSToken = secrets[1]
	cfg.XMPP.Secret = secrets[2]
	cfg.Bridge.EncryptionKey = secrets[3]
	cfg.Database.URI = "postgres://msn:" + secrets[4] + "@db.example/msn?sslmode=disable"

	for _, format := range []string{"json", "console"} {
		var buf bytes.Buffer
		log, err := NewLogger(Logging{Level: "debug", Format: format}, &buf)
		if err != nil {
			t.Fatal(err)
		}
		log.Info().Object("config", cfg).Msg("object")
		log.Info().Interface("config", cfg).Msg("interface")
		log.Info().Stringer("config", cfg).Msg("stringer")
		log.Info().Msg(fmt.Sprintf("%v %+v", cfg, *cfg))
		kv := *cfg
		kv.Database.URI = "host=db user=msn password=" + secrets[5] + " dbname=msn"
		log.Info().Object("config", kv).Msg("key/value dsn")
		out := buf.String()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s output contains secret %q:\n%s", format, s, out)
			}
		}
		// It did log the config, with the markers, and the non-secret values.
		if strings.Count(out, RedactedText) < 5 || !strings.Contains(out, "db.example") ||
			!strings.Contains(out, "ds.escargot.nina.chat:1863") {
			t.Errorf("%s output lacks the redacted config:\n%s", format, out)
		}
	}
	// Redacted leaves the original alone.
	if cfg.Matrix.ASToken != secrets[0] {
		t.Error("Redacted changed the config it was called on")
	}
}

func TestRedactURI(t *testing.T) {
	for in, want := range map[string]string{
		"file:msnbridge.db?_txlock=immediate":   "file:msnbridge.db?_txlock=immediate",
		"postgres://u:pw@h/db":                  "postgres://u:REDACTED@h/db",
		"postgres://u@h/db":                     "postgres://u@h/db",
		"host=h password='a b' user=u":          "host=h password=REDACTED user=u",
		"postgres://h/db?user=u&password=x&a=b": "postgres://h/db?user=u&password=REDACTED&a=b",
	} {
		if got := RedactURI(in); got != want {
			t.Errorf("RedactURI(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestComponentLevels(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(Logging{Level: "warn", Format: "json",
		Components: map[string]string{"msnp": "debug", "store": "error"}}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	msnp, store, bridge := log.Component("msnp"), log.Component("store"), log.Component("bridge")
	login := bridge.With().Str("login", "bob@hotmail.com").Logger()
	msnp.Debug().Msg("msnp-debug")
	store.Warn().Msg("store-warn")
	bridge.Info().Msg("bridge-info")
	bridge.Warn().Msg("bridge-warn")
	login.Warn().Msg("login")
	log.Info().Msg("root-info")

	var got []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		got = append(got, fmt.Sprint(rec["component"], "/", rec["message"], "/", rec["login"]))
	}
	want := []string{"msnp/msnp-debug/<nil>", "bridge/bridge-warn/<nil>", "bridge/login/bob@hotmail.com"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestNewLoggerRejectsBadLevel(t *testing.T) {
	if _, err := NewLogger(Logging{Level: "info", Components: map[string]string{"msnp": "chatty"}}, &bytes.Buffer{}); err == nil {
		t.Error("bad component level accepted")
	}
	if _, err := NewLogger(Logging{Level: "info", Format: "xml"}, &bytes.Buffer{}); err == nil {
		t.Error("bad format accepted")
	}
}
