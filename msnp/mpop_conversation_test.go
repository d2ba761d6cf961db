package msnp_test

import (
	"testing"

	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

// Two endpoints of one account in one conversation (MSNP16+ MPOP, FACTS.md
// §6): the bridge signs in beside the user's own Messenger, each with its
// own machine GUID.
const (
	bridgeGUID = "{A1A1A1A1-0000-4000-8000-000000000001}"
	ownGUID    = "{A2A2A2A2-0000-4000-8000-000000000002}"
)

// mpopSetup signs alice in twice on MSNP18 (the bridge, then her own
// Messenger) and bob once, all online.
func mpopSetup(t *testing.T) (s *msnptest.Server, bridge, own, b *msnp.Client, bridgeEv, ownEv, bev *events) {
	t.Helper()
	s = newServer(t)
	s.AddAccount(alice, "pw", "Alice")
	s.AddAccount(bob, "pw", "Bob")
	s.AddContact(alice, bob)
	cfg := config(s, msnp.MSNP18)
	cfg.MachineGUID = bridgeGUID
	bridge, bridgeEv = connect(t, cfg, alice, "pw")
	online(t, bridge, bridgeEv)
	cfg.MachineGUID = ownGUID
	own, ownEv = connect(t, cfg, alice, "pw")
	online(t, own, ownEv)
	b, bev = connect(t, config(s, msnp.MSNP18), bob, "pw")
	online(t, b, bev)
	return
}

// notKicked fails if either endpoint was signed out.
func notKicked(t *testing.T, evs ...*events) {
	t.Helper()
	for _, ev := range evs {
		for _, e := range ev.all() {
			if d, ok := e.(msnp.Disconnected); ok {
				t.Fatalf("an endpoint was signed out: %+v", d)
			}
		}
	}
}

// TestConversationTwoEndpoints: bob's invitation rings both of alice's
// endpoints and both see what he says; what alice says from her own
// Messenger reaches bob once and reaches the bridge as a Self message
// ("sent by you elsewhere"); what the bridge says never comes back to it.
func TestConversationTwoEndpoints(t *testing.T) {
	s, bridge, own, b, bridgeEv, ownEv, bev := mpopSetup(t)
	if err := b.Chat(alice).SendText(ctxT(t), "hello alice", msnp.DefaultTextFormat()); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []*events{bridgeEv, ownEv} {
		inv := ev.next(t, "SwitchboardInvite", is[msnp.SwitchboardInvite]).(msnp.SwitchboardInvite)
		if inv.Inviter != bob {
			t.Fatalf("invitation %+v", inv)
		}
	}
	// Bob's client sent as soon as one endpoint joined; once both are in,
	// both see everything.
	if err := s.WaitSBParticipants(ctxT(t), bob, 3); err != nil {
		t.Fatal(err)
	}
	if err := b.Chat(alice).SendText(ctxT(t), "are you both there?", msnp.DefaultTextFormat()); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []*events{bridgeEv, ownEv} {
		m := messageWith(t, ev, "are you both there?")
		if m.From != bob || m.Self || m.Conversation.ID != bob || m.Conversation.Group {
			t.Fatalf("got %+v", m)
		}
	}

	// Alice answers from her own Messenger.
	if err := own.Chat(bob).SendText(ctxT(t), "from my own messenger", msnp.DefaultTextFormat()); err != nil {
		t.Fatal(err)
	}
	if m := messageWith(t, bev, "from my own messenger"); m.From != alice || m.Self || m.Conversation.ID != alice {
		t.Fatalf("bob got %+v", m)
	}
	m := messageWith(t, bridgeEv, "from my own messenger")
	if !m.Self || m.From != alice || m.Conversation.ID != bob || m.Conversation.Group || len(m.Conversation.Participants) != 1 || m.Conversation.Participants[0] != bob {
		t.Fatalf("the bridge got %+v, want a Self message in its conversation with bob", m)
	}

	// The bridge speaks: bob and her own Messenger see it, the bridge
	// does not get it back.
	if err := bridge.Chat(bob).SendText(ctxT(t), "from the bridge", msnp.DefaultTextFormat()); err != nil {
		t.Fatal(err)
	}
	if m := messageWith(t, bev, "from the bridge"); m.From != alice || m.Self {
		t.Fatalf("bob got %+v", m)
	}
	if m := messageWith(t, ownEv, "from the bridge"); !m.Self || m.Conversation.ID != bob {
		t.Fatalf("her own Messenger got %+v", m)
	}
	// A message from bob after it orders the bridge's events: anything
	// echoed would have come before.
	if err := b.Chat(alice).SendText(ctxT(t), "sync", msnp.DefaultTextFormat()); err != nil {
		t.Fatal(err)
	}
	messageWith(t, bridgeEv, "sync")
	messageWith(t, ownEv, "sync")
	selfSeen := 0
	for _, e := range bridgeEv.all() {
		if m, ok := e.(msnp.ConversationMessage); ok && m.Self {
			selfSeen++
			if m.Text == "from the bridge" {
				t.Fatalf("the bridge's own message came back to it: %+v", m)
			}
		}
	}
	if selfSeen != 1 {
		t.Fatalf("the bridge saw %d Self messages, want 1", selfSeen)
	}
	count := map[string]int{}
	for _, txt := range deliveredTexts(t, s, bob) {
		count[txt]++
	}
	if count["from my own messenger"] != 1 || count["from the bridge"] != 1 {
		t.Fatalf("bob was relayed %v", count)
	}
	if n := s.SwitchboardsOpened(); n != 1 {
		t.Fatalf("%d switchboards opened, want bob's one", n)
	}
	notKicked(t, bridgeEv, ownEv)
}
