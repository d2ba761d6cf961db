package xmpp

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
)

func TestNewValidates(t *testing.T) {
	good := config.XMPP{JID: "msn.example.org", Server: "127.0.0.1:5347", Secret: "s"}
	if _, err := New(good, nilCore{}, zerolog.Nop()); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for name, mutate := range map[string]func(*config.XMPP){
		"no secret":       func(c *config.XMPP) { c.Secret = "" },
		"no server":       func(c *config.XMPP) { c.Server = "" },
		"server w/o port": func(c *config.XMPP) { c.Server = "localhost" },
		"JID with user":   func(c *config.XMPP) { c.JID = "user@msn.example.org" },
		"bad JID":         func(c *config.XMPP) { c.JID = "a@@b" },
	} {
		c := good
		mutate(&c)
		if _, err := New(c, nilCore{}, zerolog.Nop()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(good, nil, zerolog.Nop()); err == nil {
		t.Error("nil core accepted")
	}
}

// syncBuffer is a log sink safe for the gateway's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunRetries: a server that hangs up during the handshake is retried,
// Run ends with its context, and the secret never reaches the log.
func TestRunRetries(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	const secret = "do-not-log-this-secret"
	var logs syncBuffer
	g, err := New(config.XMPP{JID: "msn.example.org", Server: ln.Addr().String(), Secret: secret}, nilCore{}, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	g.minBackoff, g.maxBackoff = 5*time.Millisecond, 20*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Run(ctx) }()
	for i := range 4 {
		select {
		case <-accepted:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d connection attempts", i)
		}
	}
	if _, err := g.Deliver(ctx, bridge.UserID{Frontend: Kind, ID: "u@x"}, bridge.Notice{Text: "x"}); err != ErrNotConnected {
		t.Errorf("Deliver while disconnected: %v, want ErrNotConnected", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not end with its context")
	}
	out := logs.String()
	if !strings.Contains(out, "component connection ended") {
		t.Errorf("retries not logged: %s", out)
	}
	if strings.Contains(out, secret) {
		t.Errorf("secret in the log: %s", out)
	}
}

// nilCore is a core that permits nothing; for tests that never reach it.
type nilCore struct{ bridge.Core }

func (nilCore) Permission(bridge.UserID) bridge.Permission { return bridge.PermissionNone }
