package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/store"
)

func TestGenerateKey(t *testing.T) {
	code, out, _ := runCLI(t, "--generate-key")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if err != nil || len(key) != 32 {
		t.Fatalf("%q is not the base64 of 32 bytes", out)
	}
	if _, err := store.NewSealerBase64(strings.TrimSpace(out)); err != nil {
		t.Fatalf("the store does not take the key: %v", err)
	}
	_, again, _ := runCLI(t, "--generate-key")
	if again == out {
		t.Fatal("two runs printed the same key")
	}
}

// TestRunServesHTTP: with http.listen set, the running bridge answers
// /health, /ready, /metrics and the provisioning API.
func TestRunServesHTTP(t *testing.T) {
	const secret = "0123456789abcdef-secret"
	cfg, err := config.Parse([]byte("http:\n  listen: 127.0.0.1:1\n  provisioning: true\n  provisioning_secret: " + secret +
		"\nmatrix:\n  enabled: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	addr, stop := runWithHTTP(t, cfg, func(line string) {
		if strings.Contains(line, secret) {
			t.Fatalf("the secret was logged: %s", line)
		}
	})
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/health", ""); code != 200 {
		t.Errorf("/health: %d", code)
	}
	if code, body := get("/ready", ""); code != 200 {
		t.Errorf("/ready: %d %s", code, body)
	}
	if code, body := get("/metrics", ""); code != 200 || !strings.Contains(body, `msnbridge_logins{state="connected"} 0`) {
		t.Errorf("/metrics: %d %.300s", code, body)
	}
	// No frontend runs in this configuration, so every user is refused.
	if code, body := get("/_msnbridge/provision/v1/status?user=matrix:@a:example.org", secret); code != 400 || !strings.Contains(body, "not running") {
		t.Errorf("provisioning status: %d %s", code, body)
	}
	if code, _ := get("/_msnbridge/provision/v1/status?user=matrix:@a:example.org", ""); code != 401 {
		t.Errorf("provisioning without the secret: %d", code)
	}
	stop()
	if _, err := http.Get("http://" + addr + "/health"); err == nil {
		t.Error("the http listener still answers after run returned")
	}
}

// TestRunServesMedia: with XMPP and http.public_url, the listener serves
// the gateway's /media/ (a file id the core does not have gets the
// gateway's own 404, not the mux's).
func TestRunServesMedia(t *testing.T) {
	cfg, err := config.Parse([]byte("http:\n  listen: 127.0.0.1:1\n  public_url: https://msn.example.org\n" +
		"matrix:\n  enabled: false\nxmpp:\n  enabled: true\n  jid: msn.example.org\n  server: 127.0.0.1:1\n  secret: s3cret\n"))
	if err != nil {
		t.Fatal(err)
	}
	addr, stop := runWithHTTP(t, cfg, nil)
	defer stop()
	resp, err := http.Get("http://" + addr + "/media/0123456789abcdef0123456789abcdef/notes.txt")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "expire") {
		t.Errorf("GET an unknown file: %d %q, want the gateway's 404", resp.StatusCode, body)
	}
}

// runWithHTTP starts run with cfg (listening on any free port, with a
// fresh database and media directory) and returns the HTTP listener's
// address once the bridge says it is running, and a stop function that
// cancels run and checks it returned cleanly. Every log line until then
// goes through check (nil for none).
func runWithHTTP(t *testing.T, cfg *config.Config, check func(line string)) (addr string, stop func()) {
	t.Helper()
	cfg.HTTP.Listen = "127.0.0.1:0" // any free port; the log says which
	cfg.Database.URI = "file:" + filepath.Join(t.TempDir(), "bridge.db")
	cfg.Bridge.EncryptionKey = store.GenerateKey()
	cfg.Bridge.Files.Dir = t.TempDir()
	r, w := io.Pipe()
	log, err := config.NewLogger(config.Logging{Level: "info", Format: "json"}, w)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, log); w.Close() }()
	lines := bufio.NewScanner(r)
	for lines.Scan() {
		if check != nil {
			check(lines.Text())
		}
		var entry map[string]any
		if err := json.Unmarshal(lines.Bytes(), &entry); err != nil {
			continue
		}
		if entry["message"] == "http listener up" {
			addr, _ = entry["addr"].(string)
		}
		if entry["message"] == "msnbridge running" {
			break
		}
	}
	go io.Copy(io.Discard, r)
	if addr == "" {
		cancel()
		t.Fatal("never logged the http listener's address")
	}
	return addr, func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("run did not stop")
		}
	}
}
