//go:build integration

package xmpp

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/xmpp/xmpptest"
)

// TestMUCWithProsody runs the gateway's group chat rooms against the real
// Prosody of scripts/prosody.sh with real XMPP clients; only the core is
// fake.

// mucCall is one call the gateway made into mucCore.
type mucCall struct {
	name     string
	portal   bridge.PortalID
	passport string
	room     string
	text     string
}

// mucCore is the fake core: group portals from a map; the calls that
// change something are recorded. What the test never reaches is left to
// the embedded nil interface (a call would panic, and the gateway's
// handler would answer internal-server-error, failing the test).
type mucCore struct {
	bridge.Core
	calls   chan mucCall
	mu      sync.Mutex
	portals map[bridge.PortalID]bridge.Portal
}

func (f *mucCore) Permission(bridge.UserID) bridge.Permission { return bridge.PermissionUser }

func (f *mucCore) Status(context.Context, bridge.UserID) (bridge.LoginStatus, error) {
	return bridge.LoginStatus{Passport: "alice@hotmail.com", State: bridge.LoginConnected, Status: bridge.StatusOnline}, nil
}

// SetStatus is called for the client's own presence, which Prosody
// forwards to the privileged gateway.
func (f *mucCore) SetStatus(context.Context, bridge.UserID, bridge.Status) error { return nil }

// FrontendValue: Prosody adds an XEP-0153 <photo/> to the users' presence,
// which the gateway looks up (userpicture.go); nothing is stored here.
func (f *mucCore) FrontendValue(context.Context, string, string) (string, error) { return "", nil }

func (f *mucCore) Portal(_ context.Context, _ bridge.UserID, id bridge.PortalID) (bridge.Portal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.portals[id]
	if !ok {
		return p, errors.New("no such portal")
	}
	return p, nil
}

func (f *mucCore) SetPortalRoom(_ context.Context, _ bridge.UserID, id bridge.PortalID, room string) error {
	f.mu.Lock()
	p := f.portals[id]
	p.Room = room
	f.portals[id] = p
	f.mu.Unlock()
	f.calls <- mucCall{name: "SetPortalRoom", portal: id, room: room}
	return nil
}

func (f *mucCore) Invite(_ context.Context, _ bridge.UserID, id bridge.PortalID, passport string) error {
	f.calls <- mucCall{name: "Invite", portal: id, passport: passport}
	return nil
}

func (f *mucCore) LeavePortal(_ context.Context, _ bridge.UserID, id bridge.PortalID) error {
	f.calls <- mucCall{name: "LeavePortal", portal: id}
	return nil
}

func (f *mucCore) SendMessage(_ context.Context, _ bridge.UserID, id bridge.PortalID, m bridge.OutgoingMessage) error {
	f.calls <- mucCall{name: "SendMessage", portal: id, text: m.Text.Body}
	return nil
}

func (f *mucCore) SendTyping(_ context.Context, _ bridge.UserID, id bridge.PortalID, active bool) error {
	text := "paused"
	if active {
		text = "composing"
	}
	f.calls <- mucCall{name: "SendTyping", portal: id, text: text}
	return nil
}

func (f *mucCore) SendNudge(_ context.Context, _ bridge.UserID, id bridge.PortalID) error {
	f.calls <- mucCall{name: "SendNudge", portal: id}
	return nil
}

// waitCallAny returns the next call, whatever it is.
func (f *mucCore) waitCallAny(t *testing.T) mucCall {
	t.Helper()
	select {
	case c := <-f.calls:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no call into the core")
		return mucCall{}
	}
}

func (f *mucCore) waitCall(t *testing.T, name string) mucCall {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case c := <-f.calls:
			if c.name == name {
				return c
			}
			t.Logf("core call %s (waiting for %s)", c.name, name)
		case <-timeout:
			t.Fatalf("no %s call into the core", name)
		}
	}
}

func mucStatusCodes(n *xmpptest.Node) []string {
	var out []string
	for _, s := range n.Child(nsMUCUser, "x").All("", "status") {
		out = append(out, s.Attr("code"))
	}
	return out
}

func TestMUCWithProsody(t *testing.T) {
	xe := xmpptest.EnvFromOS(t)
	gw := xe.JID
	core := &mucCore{calls: make(chan mucCall, 100), portals: map[bridge.PortalID]bridge.Portal{
		"grp1": {ID: "grp1", Kind: bridge.PortalGroup, Members: []string{"bob@hotmail.com", "carol@hotmail.com"}},
		"grp2": {ID: "grp2", Kind: bridge.PortalGroup, Members: []string{"bob@hotmail.com", "dave@hotmail.com"}},
	}}
	g, err := New(config.XMPP{Enabled: true, JID: gw, Server: xe.Component, Secret: xe.Secret},
		core, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error)
	go func() { runDone <- g.Run(ctx) }()
	stopGateway := sync.OnceValue(func() error { cancel(); return <-runDone })
	t.Cleanup(func() { _ = stopGateway() })
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := g.WaitConnected(wctx); err != nil {
		t.Fatal("component never connected")
	}

	aliceName := "mucalice" + xmpptest.NewID()[:8]
	alice := xe.Dial(t, aliceName)
	user := bridge.UserID{Frontend: Kind, ID: alice.Bare()}
	room := "group-grp1@" + gw
	deliver := func(ev bridge.Event) {
		t.Helper()
		if _, err := g.Deliver(ctx, user, ev); err != nil {
			t.Fatalf("Deliver(%T): %v", ev, err)
		}
	}
	fromRoom := func(n *xmpptest.Node, nick string) bool {
		return n.Attr("from") == room+"/"+nick
	}

	// Friendly names come from the contact list; carol's from the
	// membership event only.
	deliver(bridge.Presence{Contact: bridge.Contact{Passport: "bob@hotmail.com", FriendlyName: "Bob", Status: bridge.StatusOnline, OnContactList: true}})
	deliver(bridge.Message{Portal: "grp1", Sender: "bob@hotmail.com", Text: bridge.Text{Body: "hello group"}, Time: time.Now()})

	inv := alice.Expect(t, "the direct invitation", func(n *xmpptest.Node) bool {
		return n.Name.Local == "message" && n.Child(nsConference, "x") != nil
	})
	if got := inv.Child(nsConference, "x").Attr("jid"); got != room {
		t.Fatalf("invited to %q, want %q", got, room)
	}
	if c := core.waitCall(t, "SetPortalRoom"); c.portal != "grp1" || c.room != room {
		t.Errorf("SetPortalRoom(%s, %s), want grp1, %s", c.portal, c.room, room)
	}
	deliver(bridge.Membership{Portal: "grp1", Passport: "carol@hotmail.com", Name: "Carol", Joined: true})

	t.Run("disco", func(t *testing.T) {
		alice.SendRaw(t, `<iq xmlns='jabber:client' type='get' id='d1' to='`+room+`'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
		r := alice.Expect(t, "disco#info of the room", func(n *xmpptest.Node) bool { return n.Name.Local == "iq" && n.Attr("id") == "d1" })
		q := r.Child(nsDiscoInfo, "query")
		id := q.Child("", "identity")
		if r.Attr("type") != "result" || id.Attr("category") != "conference" || id.Attr("type") != "text" {
			t.Fatalf("disco#info %s, identity %+v", r.Attr("type"), id)
		}
		found := false
		for _, f := range q.All("", "feature") {
			found = found || f.Attr("var") == nsMUC
		}
		if !found {
			t.Error("the room does not advertise MUC")
		}
	})

	t.Run("message before joining is refused", func(t *testing.T) {
		alice.SendRaw(t, `<message xmlns='jabber:client' type='groupchat' id='early' to='group-grp2@`+gw+`'><body>too early</body></message>`)
		n := alice.Expect(t, "an error", func(n *xmpptest.Node) bool { return n.Name.Local == "message" && n.Attr("id") == "early" })
		if n.Attr("type") != "error" || n.Condition() != "not-acceptable" {
			t.Fatalf("got type %q condition %q, want error not-acceptable", n.Attr("type"), n.Condition())
		}
	})

	t.Run("join", func(t *testing.T) {
		// "Bob" is taken by bob: the gateway renames alice.
		alice.SendRaw(t, `<presence xmlns='jabber:client' to='`+room+`/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		inRoom := func(n *xmpptest.Node) bool {
			return n.Name.Local == "presence" && strings.HasPrefix(n.Attr("from"), room+"/")
		}
		// Expect takes the oldest match: the occupants must come before the
		// self-presence (XEP-0045 §7.2.3).
		seen := map[string]bool{}
		for len(seen) < 2 {
			n := alice.Expect(t, "occupant presence", inRoom)
			if codes := mucStatusCodes(n); len(codes) > 0 {
				t.Fatalf("self-presence (%v) before the occupants %v", codes, seen)
			}
			item := n.Child(nsMUCUser, "x").Child("", "item")
			if n.Attr("type") != "" || item.Attr("role") != "participant" || item.Attr("affiliation") != "none" {
				t.Fatalf("occupant %s: type %q item %+v", n.Attr("from"), n.Attr("type"), item)
			}
			seen[strings.TrimPrefix(n.Attr("from"), room+"/")+" "+item.Attr("jid")] = true
		}
		if !seen[`Bob bob\40hotmail.com@`+gw] || !seen[`Carol carol\40hotmail.com@`+gw] {
			t.Fatalf("occupants %v, want Bob and Carol with their contact JIDs", seen)
		}
		self := alice.Expect(t, "self-presence", inRoom)
		if self.Attr("from") != room+"/Bob (you)" || strings.Join(mucStatusCodes(self), ",") != "100,110,210" {
			t.Fatalf("self-presence from %q codes %v, want %q 100,110,210", self.Attr("from"), mucStatusCodes(self), room+"/Bob (you)")
		}
		fromTheRoom := func(n *xmpptest.Node) bool {
			return n.Name.Local == "message" && (n.Attr("from") == room || strings.HasPrefix(n.Attr("from"), room+"/"))
		}
		m := alice.Expect(t, "the message kept for the user", fromTheRoom)
		if m.Attr("type") != "groupchat" || !fromRoom(m, "Bob") || m.Body() != "hello group" || m.Child("urn:xmpp:delay", "delay") == nil {
			t.Fatalf("history message type %q from %q body %q", m.Attr("type"), m.Attr("from"), m.Body())
		}
		// The subject ends the join.
		if s := alice.Expect(t, "the subject", fromTheRoom); s.Attr("from") != room || s.Child("", "subject") == nil {
			t.Fatalf("no subject after the join, got a message from %q", s.Attr("from"))
		}
	})

	t.Run("groupchat from MSN", func(t *testing.T) {
		deliver(bridge.Message{Portal: "grp1", Sender: "carol@hotmail.com", Text: bridge.Text{Body: "hi from carol", Bold: true}})
		m := alice.Expect(t, "carol's message", func(n *xmpptest.Node) bool { return n.Name.Local == "message" && n.Body() != "" })
		if m.Attr("type") != "groupchat" || !fromRoom(m, "Carol") || m.Child("", "body").Text() != "*hi from carol*" {
			t.Fatalf("message type %q from %q body %q", m.Attr("type"), m.Attr("from"), m.Child("", "body").Text())
		}
	})

	t.Run("notice in the room", func(t *testing.T) {
		deliver(bridge.Notice{Portal: "grp1", Text: "the file transfer could not be bridged"})
		m := alice.Expect(t, "the notice", func(n *xmpptest.Node) bool { return n.Name.Local == "message" && n.Attr("from") == room })
		if m.Attr("type") != "groupchat" || m.Attr("from") != room || m.Child("", "body").Text() != "the file transfer could not be bridged" {
			t.Fatalf("notice type %q from %q body %q", m.Attr("type"), m.Attr("from"), m.Child("", "body").Text())
		}
	})

	t.Run("typing", func(t *testing.T) {
		deliver(bridge.Typing{Portal: "grp1", Sender: "carol@hotmail.com", Active: true})
		m := alice.Expect(t, "carol typing", func(n *xmpptest.Node) bool {
			return n.Name.Local == "message" && n.Child(nsChatStates, "composing") != nil
		})
		if m.Attr("type") != "groupchat" || !fromRoom(m, "Carol") || m.Child(nsChatStates, "composing") == nil || m.Child("", "body") != nil {
			t.Fatalf("typing: message type %q from %q", m.Attr("type"), m.Attr("from"))
		}
		alice.SendRaw(t, `<message xmlns='jabber:client' type='groupchat' to='`+room+`'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`)
		if c := core.waitCall(t, "SendTyping"); c.portal != "grp1" || c.text != "composing" {
			t.Fatalf("SendTyping(%s, %s)", c.portal, c.text)
		}
	})

	t.Run("nudges", func(t *testing.T) {
		deliver(bridge.Nudge{Portal: "grp1", Sender: "carol@hotmail.com"})
		m := alice.Expect(t, "carol's nudge", func(n *xmpptest.Node) bool {
			return n.Name.Local == "message" && n.Child(nsAttention, "attention") != nil
		})
		if m.Attr("type") != "groupchat" || !fromRoom(m, "Carol") || m.Child("", "body").Text() != "/me sent a nudge!" {
			t.Fatalf("nudge: message type %q from %q body %q", m.Attr("type"), m.Attr("from"), m.Child("", "body").Text())
		}
		alice.SendRaw(t, `<message xmlns='jabber:client' type='groupchat' to='`+room+`'><attention xmlns='urn:xmpp:attention:0'/></message>`)
		if c := core.waitCall(t, "SendNudge"); c.portal != "grp1" {
			t.Fatalf("SendNudge(%s)", c.portal)
		}
	})

	t.Run("groupchat to MSN", func(t *testing.T) {
		alice.SendRaw(t, `<message xmlns='jabber:client' type='groupchat' id='out1' to='`+room+`'><body>hi all</body></message>`)
		if c := core.waitCall(t, "SendMessage"); c.portal != "grp1" || c.text != "hi all" {
			t.Fatalf("SendMessage(%s, %q)", c.portal, c.text)
		}
		m := alice.Expect(t, "the reflection", func(n *xmpptest.Node) bool { return n.Name.Local == "message" && n.Attr("id") == "out1" })
		if m.Attr("id") != "out1" || m.Attr("type") != "groupchat" || !fromRoom(m, "Bob (you)") || m.Child("", "body").Text() != "hi all" {
			t.Fatalf("reflection id %q type %q from %q", m.Attr("id"), m.Attr("type"), m.Attr("from"))
		}
	})

	t.Run("member leaves", func(t *testing.T) {
		deliver(bridge.Membership{Portal: "grp1", Passport: "carol@hotmail.com", Joined: false})
		n := alice.Expect(t, "carol leaving", func(n *xmpptest.Node) bool {
			return n.Name.Local == "presence" && strings.HasPrefix(n.Attr("from"), room+"/")
		})
		if n.Attr("type") != "unavailable" || !fromRoom(n, "Carol") {
			t.Fatalf("presence type %q from %q, want carol unavailable", n.Attr("type"), n.Attr("from"))
		}
	})

	t.Run("invite a contact", func(t *testing.T) {
		alice.SendRaw(t, `<message xmlns='jabber:client' to='`+room+`'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='dave\40hotmail.com@`+gw+`'/></x></message>`)
		if c := core.waitCall(t, "Invite"); c.portal != "grp1" || c.passport != "dave@hotmail.com" {
			t.Fatalf("Invite(%s, %s)", c.portal, c.passport)
		}
	})

	t.Run("second resource", func(t *testing.T) {
		phone := xe.Login(t, t, aliceName, "test-password-"+aliceName)
		phone.SendRaw(t, `<presence xmlns='jabber:client' to='`+room+`/phone'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		self := phone.Expect(t, "self-presence", func(n *xmpptest.Node) bool {
			return n.Name.Local == "presence" && len(mucStatusCodes(n)) > 0
		})
		if !fromRoom(self, "phone") {
			t.Fatalf("phone joined as %q", self.Attr("from"))
		}
		// A nick change is refused, from the nick asked for.
		phone.SendRaw(t, `<presence xmlns='jabber:client' to='`+room+`/tablet'/>`)
		e := phone.Expect(t, "nick change refused", func(n *xmpptest.Node) bool { return n.Name.Local == "presence" && n.Attr("type") == "error" })
		if !fromRoom(e, "tablet") || e.Condition() != "not-acceptable" {
			t.Fatalf("nick change: error from %q condition %q", e.Attr("from"), e.Condition())
		}
		// Messages reach both resources.
		deliver(bridge.Message{Portal: "grp1", Sender: "bob@hotmail.com", Text: bridge.Text{Body: "to both"}})
		for _, c := range []*xmpptest.Client{alice, phone} {
			m := c.Expect(t, "bob's message", func(n *xmpptest.Node) bool { return n.Name.Local == "message" && n.Body() == "to both" })
			if !fromRoom(m, "Bob") || m.Child("", "body").Text() != "to both" {
				t.Fatalf("%s got %q from %q", c.JID, m.Child("", "body").Text(), m.Attr("from"))
			}
		}
		// One resource leaving leaves the switchboard alone.
		phone.SendRaw(t, `<presence xmlns='jabber:client' type='unavailable' to='`+room+`/phone'/>`)
		phone.Expect(t, "self-presence unavailable", func(n *xmpptest.Node) bool {
			return n.Name.Local == "presence" && n.Attr("type") == "unavailable" && fromRoom(n, "phone")
		})
		// Both resources' stanzas go through one queue, in order: once
		// alice's message reaches the core, the phone's leave is done.
		alice.SendRaw(t, `<message xmlns='jabber:client' type='groupchat' id='still' to='`+room+`'><body>still here</body></message>`)
		for c := core.waitCallAny(t); c.name != "SendMessage"; c = core.waitCallAny(t) {
			if c.name == "LeavePortal" {
				t.Fatal("LeavePortal when another resource is still in the room")
			}
		}
		alice.Expect(t, "the reflection", func(n *xmpptest.Node) bool { return n.Name.Local == "message" && n.Attr("id") == "still" })
	})

	t.Run("leave", func(t *testing.T) {
		alice.SendRaw(t, `<presence xmlns='jabber:client' type='unavailable' to='`+room+`/Bob (you)'/>`)
		n := alice.Expect(t, "self-presence unavailable", func(n *xmpptest.Node) bool {
			return n.Name.Local == "presence" && strings.HasPrefix(n.Attr("from"), room+"/")
		})
		if n.Attr("type") != "unavailable" || !fromRoom(n, "Bob (you)") || strings.Join(mucStatusCodes(n), ",") != "110" {
			t.Fatalf("presence type %q from %q codes %v", n.Attr("type"), n.Attr("from"), mucStatusCodes(n))
		}
		if c := core.waitCall(t, "LeavePortal"); c.portal != "grp1" {
			t.Fatalf("LeavePortal(%s)", c.portal)
		}
		alice.SendRaw(t, `<message xmlns='jabber:client' type='groupchat' id='late' to='`+room+`'><body>after leaving</body></message>`)
		e := alice.Expect(t, "an error", func(n *xmpptest.Node) bool { return n.Name.Local == "message" && n.Attr("id") == "late" })
		if e.Condition() != "not-acceptable" {
			t.Fatalf("after leaving: condition %q", e.Condition())
		}
	})

	t.Run("shutdown", func(t *testing.T) {
		room2 := "group-grp2@" + gw
		alice.SendRaw(t, `<presence xmlns='jabber:client' to='`+room2+`/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		alice.Expect(t, "joined the second room", func(n *xmpptest.Node) bool {
			return n.Name.Local == "presence" && n.Attr("from") == room2+"/Alice" && len(mucStatusCodes(n)) > 0
		})
		if err := stopGateway(); err != nil {
			t.Fatal(err)
		}
		n := alice.Expect(t, "out of the room at shutdown", func(n *xmpptest.Node) bool {
			return n.Name.Local == "presence" && n.Attr("from") == room2+"/Alice" && n.Attr("type") == "unavailable"
		})
		if codes := strings.Join(mucStatusCodes(n), ","); codes != "110,332" {
			t.Errorf("status codes %s, want 110,332", codes)
		}
	})
}
