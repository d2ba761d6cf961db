package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"maunium.net/go/mautrix/appservice"

	"github.com/msnbridge/msnbridge/bridge/config"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = realMain(args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "--version")
	if code != 0 || out != "msnbridge dev\n" {
		t.Errorf("--version: %d %q", code, out)
	}
}

func TestCheckExample(t *testing.T) {
	for _, flagName := range []string{"-c", "--config"} {
		code, out, errOut := runCLI(t, "--check", flagName, "../../config.example.yaml")
		if code != 0 || !strings.Contains(out, "OK") {
			t.Errorf("%s: --check on the example: %d %q %q", flagName, code, out, errOut)
		}
	}
}

func TestCheckListsEveryProblem(t *testing.T) {
	path := writeFile(t, "bad.yaml", "msn:\n  sever: x\nlogging:\n  level: loud\nxmpp:\n  enabled: true\n  jid: msn.localhost\n")
	code, out, errOut := runCLI(t, "--check", "-c", path)
	if code != 1 || out != "" {
		t.Fatalf("--check on a bad config: %d %q", code, out)
	}
	for _, want := range []string{"3 problem(s)", "line 2: msn.sever: unknown key",
		"line 4: logging.level: expected one of", "xmpp.secret: required"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestCheckMissingFile(t *testing.T) {
	code, _, errOut := runCLI(t, "--check", "-c", filepath.Join(t.TempDir(), "none.yaml"))
	if code != 1 || !strings.Contains(errOut, "none.yaml") {
		t.Errorf("missing file: %d %q", code, errOut)
	}
}

func TestBadFlags(t *testing.T) {
	if code, _, _ := runCLI(t, "--frobnicate"); code != 2 {
		t.Errorf("unknown flag: exit %d", code)
	}
	if code, _, errOut := runCLI(t, "stray"); code != 2 || !strings.Contains(errOut, "stray") {
		t.Errorf("stray argument: exit %d %q", code, errOut)
	}
}

func TestWriteExample(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if code, _, errOut := runCLI(t, "-e", path); code != 0 {
		t.Fatalf("-e: %d %s", code, errOut)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, config.Example) {
		t.Fatalf("-e wrote something else (%v)", err)
	}
	// It never overwrites a config.
	if code, _, _ := runCLI(t, "-e", path); code != 1 {
		t.Errorf("-e over an existing file: exit %d", code)
	}
}

const matrixConfig = `matrix:
  homeserver_url: http://127.0.0.1:18008
  domain: localhost
  public_url: http://127.0.0.1:18009
  listen: 127.0.0.1:18009
  bot_localpart: msnbot
  ghost_template: msn_{{.}}
`

func TestGenerateRegistrationNewTokens(t *testing.T) {
	cfgPath := writeFile(t, "config.yaml", matrixConfig)
	regPath := filepath.Join(t.TempDir(), "registration.yaml")
	code, out, errOut := runCLI(t, "-g", "-c", cfgPath, "-r", regPath)
	if code != 0 {
		t.Fatalf("-g: %d %s", code, errOut)
	}
	reg, err := appservice.LoadRegistration(regPath)
	if err != nil {
		t.Fatal(err)
	}
	if reg.ID != "msnbridge" || reg.URL != "http://127.0.0.1:18009" || reg.SenderLocalpart != "msnbot" ||
		reg.RateLimited == nil || *reg.RateLimited || !reg.EphemeralEvents || !reg.SoruEphemeralEvents {
		t.Errorf("registration: %+v", reg)
	}
	if len(reg.AppToken) < 32 || len(reg.ServerToken) < 32 || reg.AppToken == reg.ServerToken {
		t.Errorf("tokens not generated properly")
	}
	if strings.Contains(out, reg.AppToken) || strings.Contains(out+errOut, reg.ServerToken) {
		t.Error("the generated tokens were printed")
	}
	if !strings.Contains(out, "matrix.as_token") || !strings.Contains(out, "MSNBRIDGE_MATRIX_HS_TOKEN") {
		t.Errorf("no note about copying the tokens: %q", out)
	}
	users := reg.Namespaces.UserIDs
	if len(users) != 2 || !users[0].Exclusive || !users[1].Exclusive {
		t.Fatalf("users namespaces: %+v", users)
	}
	ghosts := regexp.MustCompile(users[0].Regex)
	bot := regexp.MustCompile(users[1].Regex)
	for id, want := range map[string][2]bool{
		"@msn_bob=40hotmail.com:localhost": {true, false},
		"@msnbot:localhost":                {false, true},
		"@msn_bob:otherhost":               {false, false},
		"@alice:localhost":                 {false, false},
	} {
		if ghosts.MatchString(id) != want[0] || bot.MatchString(id) != want[1] {
			t.Errorf("%s: ghost %v bot %v, want %v", id, ghosts.MatchString(id), bot.MatchString(id), want)
		}
	}
	// Another run generates other tokens.
	regPath2 := filepath.Join(t.TempDir(), "registration.yaml")
	if code, _, _ := runCLI(t, "-g", "-c", cfgPath, "-r", regPath2); code != 0 {
		t.Fatal("second -g failed")
	}
	reg2, _ := appservice.LoadRegistration(regPath2)
	if reg2.AppToken == reg.AppToken {
		t.Error("tokens are not fresh")
	}
}

func TestGenerateRegistrationUsesConfigTokens(t *testing.T) {
	cfgPath := writeFile(t, "config.yaml", matrixConfig+"  as_token: as-from-config\n")
	t.Setenv("MSNBRIDGE_MATRIX_HS_TOKEN", "hs-from-env")
	regPath := filepath.Join(t.TempDir(), "registration.yaml")
	code, out, errOut := runCLI(t, "-g", "-c", cfgPath, "-r", regPath)
	if code != 0 {
		t.Fatalf("-g: %d %s", code, errOut)
	}
	reg, err := appservice.LoadRegistration(regPath)
	if err != nil {
		t.Fatal(err)
	}
	if reg.AppToken != "as-from-config" || reg.ServerToken != "hs-from-env" {
		t.Errorf("tokens %q %q not taken from the config", reg.AppToken, reg.ServerToken)
	}
	if strings.Contains(out, "generated") {
		t.Errorf("claims to have generated tokens: %q", out)
	}
}

func TestGenerateRegistrationNeedsMatrixSection(t *testing.T) {
	cfgPath := writeFile(t, "config.yaml", "matrix:\n  domain: \"\"\n")
	regPath := filepath.Join(t.TempDir(), "registration.yaml")
	code, _, errOut := runCLI(t, "-g", "-c", cfgPath, "-r", regPath)
	if code != 1 || !strings.Contains(errOut, "matrix.domain: required") {
		t.Errorf("-g without a domain: %d %q", code, errOut)
	}
	if _, err := os.Stat(regPath); err == nil {
		t.Error("wrote a registration anyway")
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	cfg, err := config.Parse(config.Example)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database.URI = "file:" + filepath.Join(t.TempDir(), "bridge.db")
	var buf bytes.Buffer
	log, err := config.NewLogger(config.Logging{Level: "info", Format: "json"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := run(ctx, cfg, log); err != nil {
		t.Fatalf("run: %v", err)
	}
	if !strings.Contains(buf.String(), "msnbridge stopping") {
		t.Errorf("log: %s", buf.String())
	}
}

// TestSignalStopsTheBridge runs the whole command and stops it with SIGTERM,
// as a service manager would.
func TestSignalStopsTheBridge(t *testing.T) {
	db := "file:" + filepath.Join(t.TempDir(), "bridge.db")
	cfgPath := writeFile(t, "config.yaml", "logging:\n  format: json\ndatabase:\n  uri: "+db+"\n")
	r, w := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code := realMain([]string{"-c", cfgPath}, io.Discard, w)
		w.Close()
		done <- code
	}()
	lines := bufio.NewScanner(r)
	running := false
	for lines.Scan() {
		if strings.Contains(lines.Text(), "msnbridge running") {
			running = true
			break
		}
	}
	if !running {
		t.Fatal("never logged that it was running")
	}
	// The handler is installed before run logs "running".
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, r)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after SIGTERM", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop after SIGTERM")
	}
}
