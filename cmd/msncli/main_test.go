package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

func setup(t *testing.T, password string) (*msnptest.Server, []string) {
	s := msnptest.NewServer()
	t.Cleanup(s.Close)
	s.AddAccount("alice@example.com", "pw", "Alice")
	s.AddAccount("bob@example.com", "pw", "Bob")
	s.AddContact("alice@example.com", "bob@example.com")
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return s, []string{"--server", s.NSAddr(), "--login-url", s.LoginURL(), "--passport", "alice@example.com", "--password-file", pw}
}

func lines(t *testing.T, out string) []map[string]any {
	var ms []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		ms = append(ms, m)
	}
	return ms
}

func TestLogin(t *testing.T) {
	_, args := setup(t, "pw")
	var out, errb bytes.Buffer
	if code := run(append(args, "--protocol", "MSNP11", "login"), &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	ms := lines(t, out.String())
	if ms[0]["event"] != "LoggedIn" || ms[0]["protocol"] != "MSNP11" || ms[0]["friendly_name"] != "Alice" {
		t.Errorf("first line %v", ms[0])
	}
	if last := ms[len(ms)-1]; last["event"] != "Disconnected" || last["reason"] != "logged-out" {
		t.Errorf("last line %v", last)
	}
}

// TestLoginSSO: MSNP18 with --rst-url, the GUID given; MSNP15 without a
// GUID; and a fallback to MSNP12 from a server without SSO.
func TestLoginSSO(t *testing.T) {
	s, args := setup(t, "pw")
	sso := append(args, "--rst-url", s.RSTURL(), "--machine-guid", "f52973b6-c926-4bad-9ba8-7c1e840e4ab0")
	for _, tc := range []struct {
		proto, want, guid string
	}{
		{"", "MSNP18", "{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}"},
		{"MSNP15", "MSNP15", ""},
		{"MSNP14", "MSNP14", ""},
		{"MSNP13", "MSNP13", ""},
	} {
		a := sso
		if tc.proto != "" {
			a = append(a, "--protocol", tc.proto)
		}
		var out, errb bytes.Buffer
		if code := run(append(a, "contacts"), &out, &errb); code != exitOK {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		ms := lines(t, out.String())
		if ms[0]["event"] != "LoggedIn" || ms[0]["protocol"] != tc.want || (tc.guid != "" && ms[0]["machine_guid"] != tc.guid) || ms[0]["friendly_name"] != "Alice" {
			t.Errorf("first line %v", ms[0])
		}
		if ms[1]["event"] != "Contact" || ms[1]["passport"] != "bob@example.com" || ms[1]["lists"] != float64(11) {
			t.Errorf("contact line %v", ms[1])
		}
	}
	s.SetVersions(8, 9, 10, 11, 12)
	var out, errb bytes.Buffer
	if code := run(append(sso, "login"), &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if ms := lines(t, out.String()); ms[0]["protocol"] != "MSNP12" {
		t.Errorf("fallback: %v", ms[0])
	}
	errb.Reset()
	if code := run(append(args, "--protocol", "MSNP18", "login"), &out, &errb); code != exitUsage {
		t.Errorf("MSNP18 without --rst-url: exit %d", code)
	}
}

func TestContacts(t *testing.T) {
	_, args := setup(t, "pw")
	var out, errb bytes.Buffer
	if code := run(append(args, "contacts"), &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var found bool
	for _, m := range lines(t, out.String()) {
		if m["event"] == "Contact" && m["passport"] == "bob@example.com" && m["lists"] == float64(11) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no contact line for bob:\n%s", out.String())
	}
}

func TestStatus(t *testing.T) {
	s, args := setup(t, "pw")
	var out, errb bytes.Buffer
	if code := run(append(args, "status", "bsy", "at work"), &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if got := s.PSM("alice@example.com"); got != "at work" {
		t.Errorf("server PSM %q", got)
	}
}

func TestExitCodes(t *testing.T) {
	_, args := setup(t, "wrong")
	var out, errb bytes.Buffer
	if code := run(append(args, "login"), &out, &errb); code != exitAuth {
		t.Errorf("wrong password: exit %d, want %d (%s)", code, exitAuth, errb.String())
	}
	_, args = setup(t, "pw")
	args[1] = "127.0.0.1:1" // nothing listens there
	if code := run(append(args, "login"), &out, &errb); code != exitNetwork {
		t.Errorf("dead server: exit %d, want %d", code, exitNetwork)
	}
	for _, bad := range [][]string{{"login"}, append(args[:len(args):len(args)], "frobnicate"), append(args[:len(args):len(args)], "status", "XYZ")} {
		if code := run(bad, &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", bad, code, exitUsage)
		}
	}
	s, args := setup(t, "pw")
	s.SetVersions(8)
	if code := run(append(args, "--protocol", "MSNP12", "login"), &out, &errb); code != exitOK {
		t.Errorf("fallback to MSNP8: exit %d (%s)", code, errb.String())
	}
	s.RefuseLogins(500)
	if code := run(append(args, "login"), &out, &errb); code != exitProtocol {
		t.Errorf("server error: exit %d, want %d", code, exitProtocol)
	}
}

func TestListen(t *testing.T) {
	s, args := setup(t, "pw")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb bytes.Buffer
	code := make(chan int, 1)
	go func() { code <- runContext(ctx, append(args, "listen"), &out, &errb) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := s.WaitStatus(wctx, "alice@example.com", "NLN"); err != nil {
		t.Fatal(err)
	}
	s.Kick("alice@example.com", "OTH")
	select {
	case c := <-code:
		if c != exitNetwork {
			t.Fatalf("exit %d after being kicked, want %d", c, exitNetwork)
		}
	case <-wctx.Done():
		t.Fatal("listen did not stop")
	}
	cancel()
	ms := lines(t, out.String())
	if last := ms[len(ms)-1]; last["event"] != "Disconnected" || last["reason"] != "other-login" {
		t.Fatalf("last line %v", last)
	}
}
