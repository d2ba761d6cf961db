//go:build integration

package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/msnbridge/msnbridge/matrix/matrixtest"
	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

// TestKill9MidConversation runs the real binary, kills it with SIGKILL in
// the middle of a conversation and starts it again: the login resumes, the
// portal is reused, and what each side sent arrives once.
func TestKill9MidConversation(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "msnbridge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	srv := msnptest.NewServer()
	defer srv.Close()
	srv.SetVersions(12)
	srv.AddAccount("alice@example.com", "pw-alice", "Alice")
	srv.AddAccount("bob@example.com", "pw-bob", "Bob")
	srv.AddContact("alice@example.com", "bob@example.com")

	cfg := e2eMatrixConfig(t, srv)
	cfg.Database.URI = "file:" + filepath.Join(dir, "bridge.db")
	// Trace level logs every MSN command; none may show a secret.
	cfg.Logging.Level, cfg.Logging.Format = "trace", "json"
	var logs lockedBuffer
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "-c", cfgPath)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		matrixtest.Eventually(t, "the appservice listener", 30*time.Second, func() bool {
			c, err := net.DialTimeout("tcp", cfg.Matrix.Listen, 200*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		return cmd
	}
	kill := func(cmd *exec.Cmd) {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
	cmd := start()
	defer func() { kill(cmd) }()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	user, _ := loginThroughBot(t, ctx, cfg, "k9", "alice@example.com", "pw-alice")

	bob := newMSNPeer(t, srv, "bob@example.com", "pw-bob")
	bobGhost := ghostOf(t, cfg.Matrix, "bob@example.com")
	if err := bob.Chat("alice@example.com").SendText(ctx, "before the crash", msnp.DefaultTextFormat()); err != nil {
		t.Fatal(err)
	}
	var portal id.RoomID
	matrixtest.Eventually(t, "the portal invite", 20*time.Second, func() bool {
		for _, r := range user.InvitedRooms() {
			for _, e := range user.Invites(r) {
				if e.Sender == bobGhost {
					portal = r
					return true
				}
			}
		}
		return false
	})
	if _, err := user.JoinRoomByID(ctx, portal); err != nil {
		t.Fatal(err)
	}
	user.WaitFor(t, "bob's first message", matrixtest.MessageFrom(bobGhost, portal, "before the crash"))

	// The user writes, and the bridge dies right after.
	if _, err := user.SendText(ctx, portal, "sent just before the kill"); err != nil {
		t.Fatal(err)
	}
	kill(cmd)
	cmd = start()

	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := srv.WaitOnline(wctx, "alice@example.com"); err != nil {
		t.Fatalf("the login did not resume after SIGKILL: %v", err)
	}
	matrixtest.Eventually(t, "alice back online for bob", 30*time.Second, func() bool {
		c, ok := bob.Contact("alice@example.com")
		return ok && c.Status == msnp.StatusOnline
	})
	// The homeserver retries the transaction the dead bridge never
	// answered; bob gets the message exactly once.
	matrixtest.Eventually(t, "the pre-kill message at bob", 60*time.Second, func() bool {
		for _, m := range bob.messages() {
			if m == "sent just before the kill" {
				return true
			}
		}
		return false
	})
	if err := bob.Chat("alice@example.com").SendText(ctx, "after the crash", msnp.DefaultTextFormat()); err != nil {
		t.Fatal(err)
	}
	user.WaitFor(t, "bob's message after the crash, in the same portal", matrixtest.MessageFrom(bobGhost, portal, "after the crash"))
	if _, err := user.SendText(ctx, portal, "after the crash too"); err != nil {
		t.Fatal(err)
	}
	matrixtest.Eventually(t, "the post-crash reply at bob", 20*time.Second, func() bool {
		for _, m := range bob.messages() {
			if m == "after the crash too" {
				return true
			}
		}
		return false
	})
	count := func(text string) int {
		n := 0
		for _, m := range bob.messages() {
			if m == text {
				n++
			}
		}
		return n
	}
	if n := count("sent just before the kill"); n != 1 {
		t.Errorf("bob got the pre-kill message %d times", n)
	}
	if n := user.Count(matrixtest.MessageFrom(bobGhost, "", "before the crash")); n != 1 {
		t.Errorf("the user saw bob's first message %d times", n)
	}
	for _, r := range user.InvitedRooms() {
		if r == portal {
			continue
		}
		for _, e := range user.Invites(r) {
			if e.Type == event.StateMember && e.Sender == bobGhost {
				t.Fatalf("a second portal %s was created for bob after the restart", r)
			}
		}
	}

	// Nothing secret reached the logs, though they hold every command.
	out := logs.String()
	if !strings.Contains(out, "USR") {
		t.Fatalf("the trace logs hold no MSN commands; the check below would prove nothing:\n%.2000s", out)
	}
	secrets := map[string]string{
		"the MSN password": "pw-alice", "the as_token": cfg.Matrix.ASToken, "the hs_token": cfg.Matrix.HSToken,
		"the encryption key": cfg.Bridge.EncryptionKey,
	}
	for what, secret := range secrets {
		if strings.Contains(out, secret) {
			t.Errorf("%s appears in the bridge's logs", what)
		}
	}
}

// lockedBuffer collects a child process's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
