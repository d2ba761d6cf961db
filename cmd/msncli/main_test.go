package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/msnp"
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

// bobClient logs bob in with the library and sets him online.
func bobClient(t *testing.T, s *msnptest.Server, handler func(msnp.Event)) *msnp.Client {
	t.Helper()
	c, err := msnp.New(msnp.Config{Server: s.NSAddr(), LoginURL: s.LoginURL()}, "bob@example.com", "pw", handler)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetStatus(ctx, msnp.StatusOnline); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSend(t *testing.T) {
	s, args := setup(t, "pw")
	got := make(chan msnp.ConversationMessage, 1)
	bobClient(t, s, func(ev msnp.Event) {
		if m, ok := ev.(msnp.ConversationMessage); ok {
			got <- m
		}
	})
	var out, errb bytes.Buffer
	if code := run(append(args, "send", "bob@example.com", "hello from the shell"), &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	select {
	case m := <-got:
		if m.Text != "hello from the shell" || m.From != "alice@example.com" {
			t.Fatalf("bob got %+v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bob got nothing")
	}
	found := false
	for _, m := range lines(t, out.String()) {
		found = found || m["event"] == "Sent" && m["to"] == "bob@example.com"
	}
	if !found {
		t.Fatalf("no Sent line:\n%s", out.String())
	}
}

func TestSendToOfflineContact(t *testing.T) {
	_, args := setup(t, "pw")
	var out, errb bytes.Buffer
	if code := run(append(args, "send", "bob@example.com", "anyone?"), &out, &errb); code != exitNotSent {
		t.Fatalf("exit %d, want %d: %s", code, exitNotSent, errb.String())
	}
	if !strings.Contains(errb.String(), "not online") {
		t.Fatalf("stderr does not say why: %q", errb.String())
	}
	if code := run(append(args, "send", "bob@example.com"), &out, &errb); code != exitUsage {
		t.Fatalf("send without text: exit %d", code)
	}
}

// syncBuffer is a bytes.Buffer that the command writes from its goroutines
// while the test waits for lines.
type syncBuffer struct {
	mu   sync.Mutex
	cond *sync.Cond
	buf  bytes.Buffer
}

func newSyncBuffer() *syncBuffer {
	b := &syncBuffer{}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.cond.Broadcast()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitLine waits for a JSON line whose "event" is event and returns it.
func (b *syncBuffer) waitLine(t *testing.T, event string) map[string]any {
	t.Helper()
	timer := time.AfterFunc(10*time.Second, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(10 * time.Second)
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for _, l := range strings.Split(b.buf.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["event"] == event {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s line in:\n%s", event, b.buf.String())
		}
		b.cond.Wait()
	}
}

func TestListenPrintsConversations(t *testing.T) {
	s, args := setup(t, "pw")
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := newSyncBuffer(), newSyncBuffer()
	code := make(chan int, 1)
	go func() { code <- runContext(ctx, append(args, "listen"), out, errb) }()
	defer func() {
		cancel()
		<-code
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := s.WaitStatus(wctx, "alice@example.com", "NLN"); err != nil {
		t.Fatal(err)
	}
	b := bobClient(t, s, nil)
	cv := b.Chat("alice@example.com")
	f := msnp.TextFormat{Font: "Arial", Bold: true, Color: msnp.RGB{R: 0xff}}
	if err := cv.SendText(wctx, "hi alice", f); err != nil {
		t.Fatal(err)
	}
	m := out.waitLine(t, "ConversationMessage")
	if m["text"] != "hi alice" || m["from"] != "bob@example.com" || m["conversation"] != "bob@example.com" ||
		m["group"] != false || m["format"] != f.Header() {
		t.Fatalf("message line %v", m)
	}
	if err := cv.SendTyping(wctx); err != nil {
		t.Fatal(err)
	}
	if m := out.waitLine(t, "ConversationTyping"); m["from"] != "bob@example.com" {
		t.Fatalf("typing line %v", m)
	}
	if err := cv.SendNudge(wctx); err != nil {
		t.Fatal(err)
	}
	if m := out.waitLine(t, "ConversationNudge"); m["conversation"] != "bob@example.com" {
		t.Fatalf("nudge line %v", m)
	}
	inv := out.waitLine(t, "SwitchboardInvite")
	if _, ok := inv["cookie"]; ok || strings.Contains(out.String(), "CKI") {
		t.Fatalf("a switchboard cookie was printed: %v", inv)
	}
}
