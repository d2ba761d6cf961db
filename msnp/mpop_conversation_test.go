package msnp_test

import (
	"strings"
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

// TestConversationStartedElsewhere: alice's own Messenger (WLM 2009)
// opens a switchboard, CALs her own account to bring her other endpoints
// in, then CALs bob. The bridge answers the invitation from its own
// account and waits there for a contact: once bob joins it is the
// bridge's conversation with bob, where what she types on her own
// Messenger is a Self message and the bridge's replies go.
func TestConversationStartedElsewhere(t *testing.T) {
	s, bridge, own, _, bridgeEv, ownEv, bev := mpopSetup(t)
	addr, cookie, err := own.RequestSwitchboard(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	joined := make(chan string, 8)
	msgs := make(chan msnp.SBMessage, 8)
	wlm, err := msnp.DialSwitchboard(ctxT(t), addr, own.EndpointID(), cookie, &msnp.SwitchboardOptions{Handler: func(ev msnp.SwitchboardEvent) {
		switch e := ev.(type) {
		case msnp.SBJoined:
			joined <- e.Participant.Passport + ";" + e.Endpoint
		case msnp.SBMessage:
			msgs <- e
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer wlm.Close()
	awaitJoin := func(who string) {
		t.Helper()
		for {
			select {
			case j := <-joined:
				if j == who {
					return
				}
			case <-ctxT(t).Done():
				t.Fatalf("%s never joined", who)
			}
		}
	}
	if _, err := wlm.Call(ctxT(t), alice); err != nil {
		t.Fatal(err)
	}
	if inv := bridgeEv.next(t, "SwitchboardInvite", is[msnp.SwitchboardInvite]).(msnp.SwitchboardInvite); inv.Inviter != alice {
		t.Fatalf("invitation %+v", inv)
	}
	awaitJoin(alice + ";" + strings.ToLower(bridgeGUID))
	if _, err := wlm.Call(ctxT(t), bob); err != nil {
		t.Fatal(err)
	}
	awaitJoin(bob + ";")
	if _, err := wlm.SendMessage(ctxT(t), msnp.AckAlways, msnp.NewTextMessage("started on my own messenger", msnp.DefaultTextFormat()).Bytes()); err != nil {
		t.Fatal(err)
	}
	if m := messageWith(t, bev, "started on my own messenger"); m.From != alice || m.Self {
		t.Fatalf("bob got %+v", m)
	}
	m := messageWith(t, bridgeEv, "started on my own messenger")
	if !m.Self || m.Conversation.ID != bob || m.Conversation.Group {
		t.Fatalf("the bridge got %+v, want a Self message in its conversation with bob", m)
	}
	// The bridge replies in that switchboard: bob and her own Messenger
	// see it, and no other switchboard is opened.
	if err := bridge.Chat(bob).SendText(ctxT(t), "reply from the bridge", msnp.DefaultTextFormat()); err != nil {
		t.Fatal(err)
	}
	if m := messageWith(t, bev, "reply from the bridge"); m.From != alice {
		t.Fatalf("bob got %+v", m)
	}
	select {
	case e := <-msgs:
		if e.From != alice || string(e.Message.Body) != "reply from the bridge" {
			t.Fatalf("her own Messenger got %+v", e)
		}
	case <-ctxT(t).Done():
		t.Fatal("her own Messenger never saw the bridge's reply")
	}
	if n := s.SwitchboardsOpened(); n != 1 {
		t.Fatalf("%d switchboards opened, want her Messenger's one", n)
	}
	notKicked(t, bridgeEv, ownEv)
}

// TestConversationOwnEndpointLeavesAlone: her own Messenger brings the
// bridge into a switchboard and leaves before calling anyone: the bridge
// does not stay there alone.
func TestConversationOwnEndpointLeavesAlone(t *testing.T) {
	s, _, own, _, bridgeEv, _, _ := mpopSetup(t)
	addr, cookie, err := own.RequestSwitchboard(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	wlm, err := msnp.DialSwitchboard(ctxT(t), addr, own.EndpointID(), cookie, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wlm.Call(ctxT(t), alice); err != nil {
		t.Fatal(err)
	}
	bridgeEv.next(t, "SwitchboardInvite", is[msnp.SwitchboardInvite])
	if err := s.WaitSBParticipants(ctxT(t), alice, 2); err != nil {
		t.Fatal(err)
	}
	wlm.Close()
	if err := s.WaitSBSessions(ctxT(t), alice, 0); err != nil {
		t.Fatalf("the bridge stayed in the switchboard: %v", err)
	}
}
