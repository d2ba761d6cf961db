package config

import (
	"strings"
	"testing"
)

// TestHTTPSection: the listener is off by default; provisioning demands a
// listener and a long enough secret, and problems never echo the secret.
func TestHTTPSection(t *testing.T) {
	cfg, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Listen != "" || cfg.HTTP.Provisioning || !cfg.HTTP.Metrics {
		t.Fatalf("http defaults = %+v; want off, metrics on once listening", cfg.HTTP)
	}

	_, err = Parse([]byte("http:\n  provisioning: true\n"))
	ps := problemsOf(t, err)
	lines := map[string]int{}
	for _, p := range ps {
		lines[p.Path] = p.Line
	}
	if len(ps) != 2 || lines["http.provisioning"] != 2 || lines["http.provisioning_secret"] != 1 {
		t.Fatalf("want http.provisioning (line 2) and http.provisioning_secret (the section, line 1):\n%v", ps)
	}

	_, err = Parse([]byte("http:\n  listen: 127.0.0.1:29351\n  provisioning: true\n  provisioning_secret: hunter2\n"))
	ps = problemsOf(t, err)
	if len(ps) != 1 || ps[0].Path != "http.provisioning_secret" || ps[0].Line != 4 {
		t.Fatalf("short secret: %v", ps)
	}
	if strings.Contains(ps.Error(), "hunter2") {
		t.Fatalf("the problem echoes the secret: %v", ps)
	}

	_, err = Parse([]byte("http:\n  listen: nonsense\n"))
	if ps = problemsOf(t, err); len(ps) != 1 || ps[0].Path != "http.listen" {
		t.Fatalf("bad listen: %v", ps)
	}

	const secret = "0123456789abcdef0123"
	cfg, err = ParseWithEnv([]byte("http:\n  listen: 127.0.0.1:29351\n  provisioning: true\n"),
		func(k string) (string, bool) { return secret, k == "MSNBRIDGE_HTTP_PROVISIONING_SECRET" })
	if err != nil {
		t.Fatalf("secret from the environment: %v", err)
	}
	if cfg.HTTP.ProvisioningSecret != secret {
		t.Fatalf("secret = %q", cfg.HTTP.ProvisioningSecret)
	}
	if strings.Contains(cfg.String(), secret) {
		t.Fatal("the printed configuration shows the provisioning secret")
	}
}

// TestHTTPPublicURL: public_url must be an http(s) URL.
func TestHTTPPublicURL(t *testing.T) {
	cfg, err := Parse([]byte("http:\n  listen: 127.0.0.1:29351\n  public_url: https://msn.example.org/bridge\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.PublicURL != "https://msn.example.org/bridge" {
		t.Fatalf("public_url = %q", cfg.HTTP.PublicURL)
	}
	_, err = Parse([]byte("http:\n  listen: 127.0.0.1:29351\n  public_url: ftp://x\n"))
	if ps := problemsOf(t, err); len(ps) != 1 || ps[0].Path != "http.public_url" || ps[0].Line != 3 {
		t.Fatalf("ftp public_url: %v", ps)
	}
}
