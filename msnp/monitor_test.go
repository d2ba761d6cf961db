package msnp_test

import (
	"context"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/msnp"
)

// TestRoundTripHook: every QNG answering a PNG reports its round trip, and
// the first comes with the presence-sync ping right after sign-in.
func TestRoundTripHook(t *testing.T) {
	s := newServer(t)
	s.AddAccount(alice, "pw", "Alice")
	rtts := make(chan time.Duration, 16)
	cfg := config(s, msnp.MSNP12)
	cfg.OnRoundTrip = func(d time.Duration) {
		select {
		case rtts <- d:
		default:
		}
	}
	c, ev := connect(t, cfg, alice, "pw")
	online(t, c, ev)
	select {
	case d := <-rtts:
		if d < 0 || d > wait {
			t.Fatalf("round trip %v is not a plausible loopback time", d)
		}
	case <-time.After(wait):
		t.Fatal("no round trip reported after sign-in")
	}
}

// TestOpenSwitchboards counts the switchboards of both ends of a chat.
func TestOpenSwitchboards(t *testing.T) {
	_, cs, evs := chatSetup(t, msnp.MSNP12, alice, bob)
	if n := cs[0].OpenSwitchboards(); n != 0 {
		t.Fatalf("before any chat: %d switchboards open", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := cs[0].Chat(bob).SendText(ctx, "hi", msnp.DefaultTextFormat()); err != nil {
		t.Fatal(err)
	}
	nextMessage(t, evs[1])
	if n := cs[0].OpenSwitchboards(); n != 1 {
		t.Fatalf("sender: %d switchboards open, want 1", n)
	}
	if n := cs[1].OpenSwitchboards(); n != 1 {
		t.Fatalf("receiver: %d switchboards open, want 1", n)
	}
	if err := cs[0].Chat(bob).Leave(); err != nil {
		t.Fatal(err)
	}
	if n := cs[0].OpenSwitchboards(); n != 0 {
		t.Fatalf("after Leave: %d switchboards open", n)
	}
}
