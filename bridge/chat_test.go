package bridge_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/msnp"
)

// recorder collects an msnp client's events for assertions.
type recorder struct {
	mu  sync.Mutex
	evs []msnp.Event
}

func (r *recorder) handle(ev msnp.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *recorder) texts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.evs {
		if m, ok := ev.(msnp.ConversationMessage); ok {
			out = append(out, m.Text)
		}
	}
	return out
}

func (r *recorder) find(match func(msnp.Event) bool) msnp.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.evs {
		if match(ev) {
			return ev
		}
	}
	return nil
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMessagingBothWays(t *testing.T) { testMessagingBothWays(t, msnp.MSNP12) }

func testMessagingBothWays(t *testing.T, proto msnp.Protocol) {
	e := newEnvProto(t, proto)
	e.login(t)
	ctx := context.Background()
	var rec recorder
	bob := e.bob(t, rec.handle)
	if err := bob.SetStatus(ctx, msnp.StatusOnline); err != nil {
		t.Fatal(err)
	}
	portal, err := e.b.DirectPortal(ctx, e.user, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}

	// MSN to the frontend, with formatting.
	f := msnp.DefaultTextFormat()
	f.Italic = true
	f.Color = msnp.RGB{R: 0xff}
	if err := bob.Chat("alice@example.com").SendText(ctx, "hello alice", f); err != nil {
		t.Fatal(err)
	}
	m := e.fe.waitFor(t, "bob's message", func(ev bridge.Event) bool {
		m, ok := ev.(bridge.Message)
		return ok && m.Text.Body == "hello alice"
	}).(bridge.Message)
	if m.Portal != portal.ID || m.Sender != "bob@example.com" || !m.Text.Italic || m.Text.Color != "#ff0000" || m.MSNID == "" {
		t.Fatalf("message %+v", m)
	}

	// The frontend to MSN: accepted, reported, received once.
	for _, id := range []string{"$m1", "$m1", "$m2"} { // $m1 twice: a retried transaction
		body := "first"
		if id == "$m2" {
			body = "second"
		}
		if err := e.b.SendMessage(ctx, e.user, portal.ID, bridge.OutgoingMessage{FrontendID: id, Text: bridge.Text{Body: body, Bold: true}}); err != nil {
			t.Fatal(err)
		}
		if id == "$m1" {
			e.fe.waitFor(t, "delivery of "+id, func(ev bridge.Event) bool {
				d, ok := ev.(bridge.DeliveryResult)
				return ok && d.FrontendID == id && d.Err == nil
			})
		}
	}
	e.fe.waitFor(t, "delivery of $m2", func(ev bridge.Event) bool {
		d, ok := ev.(bridge.DeliveryResult)
		return ok && d.FrontendID == "$m2" && d.Err == nil
	})
	eventually(t, "bob receiving both", func() bool { return len(rec.texts()) >= 2 })
	if got := rec.texts(); len(got) != 2 || got[0] != "first" || got[1] != "second" {
		t.Fatalf("bob received %q, want [first second] exactly once each", got)
	}
	bm := rec.find(func(ev msnp.Event) bool { _, ok := ev.(msnp.ConversationMessage); return ok }).(msnp.ConversationMessage)
	if !bm.Format.Bold || bm.From != "alice@example.com" {
		t.Errorf("bob's copy: %+v", bm)
	}

	// Typing and nudges.
	if err := bob.Chat("alice@example.com").SendTyping(ctx); err != nil {
		t.Fatal(err)
	}
	e.fe.waitFor(t, "bob typing", func(ev bridge.Event) bool {
		ty, ok := ev.(bridge.Typing)
		return ok && ty.Portal == portal.ID && ty.Sender == "bob@example.com" && ty.Active
	})
	if err := bob.Chat("alice@example.com").SendNudge(ctx); err != nil {
		t.Fatal(err)
	}
	e.fe.waitFor(t, "bob's nudge", func(ev bridge.Event) bool {
		n, ok := ev.(bridge.Nudge)
		return ok && n.Portal == portal.ID && n.Sender == "bob@example.com"
	})
	if err := e.b.SendNudge(ctx, e.user, portal.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob receiving a nudge", func() bool {
		return rec.find(func(ev msnp.Event) bool { _, ok := ev.(msnp.ConversationNudge); return ok }) != nil
	})
	if err := e.b.SendTyping(ctx, e.user, portal.ID, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob seeing alice type", func() bool {
		return rec.find(func(ev msnp.Event) bool { _, ok := ev.(msnp.ConversationTyping); return ok }) != nil
	})
}

func TestMessageToOfflineContactFails(t *testing.T) {
	e := newEnv(t)
	e.srv.AddAccount("carol@example.com", "carolpw", "Carol")
	e.srv.AddContact("alice@example.com", "carol@example.com")
	e.login(t)
	ctx := context.Background()
	portal, err := e.b.DirectPortal(ctx, e.user, "carol@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.b.SendMessage(ctx, e.user, portal.ID, bridge.OutgoingMessage{FrontendID: "$x", Text: bridge.Text{Body: "are you there?"}}); err != nil {
		t.Fatal(err)
	}
	d := e.fe.waitFor(t, "a failed delivery", func(ev bridge.Event) bool {
		d, ok := ev.(bridge.DeliveryResult)
		return ok && d.FrontendID == "$x"
	}).(bridge.DeliveryResult)
	if d.Err == nil {
		t.Fatal("a message to an offline contact was reported accepted")
	}
}

func TestGroupConversation(t *testing.T) { testGroupConversation(t, msnp.MSNP12) }

func testGroupConversation(t *testing.T, proto msnp.Protocol) {
	e := newEnvProto(t, proto)
	e.srv.AddAccount("carol@example.com", "carolpw", "Carol")
	e.srv.AddContact("alice@example.com", "carol@example.com")
	e.srv.AddContact("bob@example.com", "carol@example.com")
	e.login(t)
	ctx := context.Background()
	var bobRec, carolRec recorder
	bob := e.bob(t, bobRec.handle)
	carol, err := msnp.New(e.peerConfig(), "carol@example.com", "carolpw", carolRec.handle)
	if err != nil {
		t.Fatal(err)
	}
	if err := carol.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer carol.Close()
	for _, c := range []*msnp.Client{bob, carol} {
		if err := c.SetStatus(ctx, msnp.StatusOnline); err != nil {
			t.Fatal(err)
		}
	}
	if err := bob.Chat("alice@example.com").SendText(ctx, "one to one first", msnp.DefaultTextFormat()); err != nil {
		t.Fatal(err)
	}
	if err := bob.Chat("alice@example.com").Invite(ctx, "carol@example.com"); err != nil {
		t.Fatal(err)
	}
	var group bridge.PortalID
	e.fe.waitFor(t, "carol joining a group portal", func(ev bridge.Event) bool {
		m, ok := ev.(bridge.Membership)
		if ok && m.Passport == "carol@example.com" && m.Joined {
			group = m.Portal
		}
		return ok && m.Passport == "carol@example.com" && m.Joined
	})
	direct, _ := e.b.DirectPortal(ctx, e.user, "bob@example.com")
	if group == direct.ID {
		t.Fatal("the group conversation reused the direct portal")
	}
	p, err := e.b.Portal(ctx, e.user, group)
	if err != nil || p.Kind != bridge.PortalGroup {
		t.Fatalf("group portal %+v, %v", p, err)
	}
	if err := e.b.SendMessage(ctx, e.user, group, bridge.OutgoingMessage{FrontendID: "$g1", Text: bridge.Text{Body: "hello both"}}); err != nil {
		t.Fatal(err)
	}
	e.fe.waitFor(t, "group delivery", func(ev bridge.Event) bool {
		d, ok := ev.(bridge.DeliveryResult)
		return ok && d.FrontendID == "$g1" && d.Err == nil
	})
	eventually(t, "bob and carol receiving the group message", func() bool {
		has := func(r *recorder) bool {
			for _, s := range r.texts() {
				if s == "hello both" {
					return true
				}
			}
			return false
		}
		return has(&bobRec) && has(&carolRec)
	})
}
