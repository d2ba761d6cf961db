package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func problemsOf(t *testing.T, err error) Problems {
	t.Helper()
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error %v (%T) is not Problems", err, err)
	}
	return ps
}

func TestExampleParsesAndValidates(t *testing.T) {
	cfg, err := Parse(Example)
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	def := Defaults()
	// The example documents the defaults: the values it sets must be them.
	if cfg.MSN.Server != def.MSN.Server || cfg.MSN.RSTURL != def.MSN.RSTURL ||
		!slices.Equal(cfg.MSN.Protocols, DefaultProtocols) || cfg.MSN.DialTimeout != 30*time.Second ||
		cfg.MSN.Client != def.MSN.Client || cfg.Database != def.Database ||
		cfg.Matrix.GhostTemplate != def.Matrix.GhostTemplate || cfg.Matrix.Listen != def.Matrix.Listen {
		t.Errorf("example differs from Defaults():\n%+v\n%+v", cfg.MSN, def.MSN)
	}
	if cfg.Bridge.Permissions["@admin:example.org"] != "admin" {
		t.Errorf("permissions = %v", cfg.Bridge.Permissions)
	}
}

func TestRootExampleIsTheEmbeddedOne(t *testing.T) {
	root, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(root, Example) {
		t.Fatal("config.example.yaml differs from bridge/config/example.yaml; copy it over")
	}
}

func TestEmptyFileIsDefaults(t *testing.T) {
	cfg, err := Parse(nil)
	if err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if cfg.MSN.Server != "ds.escargot.nina.chat:1863" || cfg.Logging.Level != "info" {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}

func TestUnknownKeyNamesKeyAndLine(t *testing.T) {
	_, err := Parse([]byte("msn:\n  server: a.b:1863\nmatrix:\n  homeserver_ur: http://x\n"))
	ps := problemsOf(t, err)
	if len(ps) != 1 {
		t.Fatalf("want 1 problem, got %d: %v", len(ps), ps)
	}
	if got, want := ps[0].Error(), "line 4: matrix.homeserver_ur: unknown key"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestWrongTypes(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"matrix:\n  enabled: yes please\n", "line 2: matrix.enabled: expected true or false"},
		{"msn:\n  dial_timeout: soon\n", "line 2: msn.dial_timeout: expected a duration"},
		{"database:\n  max_open_conns: many\n", "line 2: database.max_open_conns: expected a whole number"},
		{"msn:\n  protocols: MSNP18\n", "line 2: msn.protocols: expected a list"},
		{"msn:\n  server: [a, b]\n", "line 2: msn.server: expected a string, got a list"},
		{"msn: 3\n", "line 1: msn: expected a mapping"},
		{"logging:\n  components: [msnp]\n", "line 2: logging.components: expected a mapping"},
	} {
		_, err := Parse([]byte(tc.yaml))
		ps := problemsOf(t, err)
		if len(ps) != 1 || !strings.HasPrefix(ps[0].Error(), tc.want) {
			t.Errorf("%q: got %v, want one problem starting %q", tc.yaml, ps, tc.want)
		}
	}
}

func TestEveryProblemListed(t *testing.T) {
	src := `msn:
  server: nohostport
  protocols: [MSNP18, MSNP13]
  colour: blue
database:
  type: mysql
logging:
  level: loud
bridge:
  permissions:
    "*": superuser
  encryption_key: c2hvcnQ=
`
	_, err := Parse([]byte(src))
	ps := problemsOf(t, err)
	want := []string{
		"line 2: msn.server: expected host:port",
		"line 3: msn.protocols[1]: unknown protocol \"MSNP13\"",
		"line 4: msn.colour: unknown key",
		"line 6: database.type: expected sqlite3 or postgres",
		"line 8: logging.level: expected one of",
		"line 11: bridge.permissions.*: expected admin, user or none",
		"line 12: bridge.encryption_key: must be the base64 of 32 bytes",
	}
	if len(ps) != len(want) {
		t.Fatalf("want %d problems, got %d:\n%v", len(want), len(ps), ps)
	}
	for i, w := range want {
		if !strings.HasPrefix(ps[i].Error(), w) {
			t.Errorf("problem %d: got %q, want prefix %q", i, ps[i].Error(), w)
		}
	}
	// The joined error carries every one of them.
	if strings.Count(err.Error(), "\n") != len(want)-1 {
		t.Errorf("joined error: %q", err.Error())
	}
	if strings.Contains(err.Error(), "c2hvcnQ=") {
		t.Error("the error echoes the encryption key")
	}
}

func TestDuplicateKeyAndAlias(t *testing.T) {
	_, err := Parse([]byte("xmpp:\n  jid: a.b\n  jid: c.d\n"))
	if ps := problemsOf(t, err); len(ps) != 1 || ps[0].Error() != "line 3: xmpp.jid: key given twice" {
		t.Errorf("duplicate: %v", ps)
	}
	_, err = Parse([]byte("xmpp:\n  jid: &j a.b\n  secret: *j\n"))
	if ps := problemsOf(t, err); len(ps) != 1 || !strings.Contains(ps[0].Error(), "aliases are not supported") {
		t.Errorf("alias: %v", ps)
	}
}

func TestHostPorts(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"msn:\n  server: :1863\n", "line 2: msn.server: needs a host name"},
		{"msn:\n  server: host:99999\n", "line 2: msn.server: port must be 1-65535"},
		{"xmpp:\n  server: localhost\n", "line 2: xmpp.server: expected host:port"},
	} {
		_, err := Parse([]byte(tc.yaml))
		if ps := problemsOf(t, err); len(ps) != 1 || !strings.HasPrefix(ps[0].Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, ps, tc.want)
		}
	}
	// The appservice may listen on every interface.
	if _, err := Parse([]byte("matrix:\n  listen: :29350\n")); err != nil {
		t.Errorf("listen on every interface: %v", err)
	}
}

func TestSecondDocumentRejected(t *testing.T) {
	_, err := Parse([]byte("msn:\n  server: a:1\n---\nmsn:\n  server: b:2\n"))
	if ps := problemsOf(t, err); len(ps) != 1 || !strings.Contains(ps[0].Error(), "more than one YAML document") {
		t.Errorf("two documents: %v", ps)
	}
}

func TestSyntaxError(t *testing.T) {
	_, err := Parse([]byte("msn:\n  server: [\n"))
	if ps := problemsOf(t, err); len(ps) != 1 || !strings.Contains(ps[0].Error(), "line") {
		t.Errorf("syntax error: %v", ps)
	}
}

func TestEnvOverrides(t *testing.T) {
	key := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // base64 of 32 bytes
	env := map[string]string{
		"MSNBRIDGE_MATRIX_ENABLED":        "true",
		"MSNBRIDGE_MATRIX_AS_TOKEN":       "as-from-env",
		"MSNBRIDGE_MATRIX_HS_TOKEN":       "hs-from-env",
		"MSNBRIDGE_XMPP_SECRET":           "xmpp-from-env",
		"MSNBRIDGE_BRIDGE_ENCRYPTION_KEY": key,
		"MSNBRIDGE_DATABASE_URI":          "postgres://u:p@db/msn",
		"MSNBRIDGE_DATABASE_TYPE":         "postgres",
		"MSNBRIDGE_MSN_CLIENT_VERSION":    "8.5.1302",
		"MSNBRIDGE_MSN_PROTOCOLS":         "MSNP12, MSNP8",
		"MSNBRIDGE_MSN_DIAL_TIMEOUT":      "5s",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := ParseWithEnv([]byte("matrix:\n  as_token: from-file\n  homeserver_url: http://hs\n  domain: x.org\n  public_url: http://as\n"), lookup)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Matrix.ASToken != "as-from-env" || cfg.Matrix.HSToken != "hs-from-env" || !cfg.Matrix.Enabled ||
		cfg.XMPP.Secret != "xmpp-from-env" || cfg.Bridge.EncryptionKey != key ||
		cfg.Database.URI != "postgres://u:p@db/msn" || cfg.Database.Type != "postgres" ||
		cfg.MSN.Client.Version != "8.5.1302" || !slices.Equal(cfg.MSN.Protocols, []string{"MSNP12", "MSNP8"}) ||
		cfg.MSN.DialTimeout != 5*time.Second {
		t.Errorf("overrides not applied: %+v", cfg.Redacted())
	}

	// A bad value from the environment names the variable.
	env = map[string]string{"MSNBRIDGE_MATRIX_ENABLED": "perhaps", "MSNBRIDGE_LOGGING_LEVEL": "loud"}
	_, err = ParseWithEnv(nil, lookup)
	ps := problemsOf(t, err)
	if len(ps) != 2 ||
		!strings.HasPrefix(ps[0].Error(), "MSNBRIDGE_MATRIX_ENABLED: matrix.enabled: expected true or false") ||
		!strings.HasPrefix(ps[1].Error(), "MSNBRIDGE_LOGGING_LEVEL: logging.level: expected one of") {
		t.Errorf("env problems: %v", ps)
	}
}

func TestLoadAppliesProcessEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("xmpp:\n  enabled: true\n  jid: msn.localhost\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "xmpp.secret: required") {
		t.Fatalf("without the secret: %v", err)
	}
	t.Setenv("MSNBRIDGE_XMPP_SECRET", "s3cret")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.XMPP.Secret != "s3cret" {
		t.Errorf("secret = %q", cfg.XMPP.Secret)
	}
}

func TestRequiredWhenFrontendEnabled(t *testing.T) {
	// Disabled frontends need nothing.
	if _, err := Parse([]byte("matrix:\n  enabled: false\n  domain: \"\"\n")); err != nil {
		t.Fatalf("disabled matrix: %v", err)
	}
	_, err := Parse([]byte("matrix:\n  enabled: true\n  homeserver_url: \"\"\n  domain: \"\"\nxmpp:\n  enabled: true\n"))
	ps := problemsOf(t, err)
	var got []string
	for _, p := range ps {
		got = append(got, p.Path)
	}
	// In file order: an absent key is reported at its section's line.
	want := []string{"matrix.public_url", "matrix.as_token", "matrix.hs_token",
		"matrix.homeserver_url", "matrix.domain", "xmpp.jid", "xmpp.secret"}
	if !slices.Equal(got, want) {
		t.Errorf("required problems at %v, want %v\n%v", got, want, ps)
	}
	// The problem points at the line that set the empty value, or at the
	// section when the key is absent.
	if ps[0].Line != 1 || ps[3].Line != 3 || ps[4].Line != 4 || ps[5].Line != 5 {
		t.Errorf("lines: %v", ps)
	}
	if !strings.Contains(ps[1].Error(), "MSNBRIDGE_MATRIX_AS_TOKEN") {
		t.Errorf("the required token does not mention its variable: %v", ps[3])
	}
}

func TestGhostNamespace(t *testing.T) {
	m := Defaults().Matrix
	m.Domain = "example.org"
	if got := m.GhostUserRegex(); got != `@msn_.*:example\.org` {
		t.Errorf("GhostUserRegex = %q", got)
	}
	if got := m.GhostLocalpart("bob=40hotmail.com"); got != "msn_bob=40hotmail.com" {
		t.Errorf("GhostLocalpart = %q", got)
	}
	for _, bad := range []string{"msn_", "{{.}}", "MSN_{{.}}", "{{.}}_{{.}}"} {
		_, err := Parse([]byte("matrix:\n  ghost_template: \"" + bad + "\"\n"))
		if ps := problemsOf(t, err); len(ps) != 1 || ps[0].Path != "matrix.ghost_template" {
			t.Errorf("template %q: %v", bad, ps)
		}
	}
}
