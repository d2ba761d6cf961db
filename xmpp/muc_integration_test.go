//go:build integration

package xmpp

import (
	"context"
	"encoding/xml"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
)

// TestMUCWithProsody runs the gateway's group chat rooms against the real
// Prosody of scripts/prosody.sh with a real XMPP client; only the core is
// fake. Its helpers are its own (muc-prefixed) so that it does not depend
// on where the other integration test keeps its.

func mucEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run `eval \"$(scripts/prosody.sh start)\"` first (scripts/test.sh does)", name)
	}
	return v
}

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

// mucClient is a real XMPP client of the test's Prosody.
type mucClient struct {
	jid  jid.JID
	sess *xmpp.Session
	in   chan *node
}

// mucDial registers name (when register) and connects a new resource of it.
func mucDial(t *testing.T, name string, register bool) *mucClient {
	t.Helper()
	const password = "test-password"
	domain := mucEnv(t, "MSNBRIDGE_TEST_XMPP_DOMAIN")
	if register {
		out, err := exec.Command("prosodyctl", "--config", mucEnv(t, "MSNBRIDGE_TEST_XMPP_CONFIG"), "register", name, domain, password).CombinedOutput()
		if err != nil {
			t.Fatalf("prosodyctl register %s: %v: %s", name, err, out)
		}
	}
	addr := jid.MustParse(name + "@" + domain)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := net.Dial("tcp", mucEnv(t, "MSNBRIDGE_TEST_XMPP_C2S"))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := xmpp.NewSession(ctx, addr.Domain(), addr, conn, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
			xmpp.SASL("", password, sasl.ScramSha1, sasl.Plain),
			xmpp.BindResource(),
		}}
	}))
	if err != nil {
		t.Fatalf("client %s: %v", name, err)
	}
	c := &mucClient{jid: sess.LocalAddr(), sess: sess, in: make(chan *node, 100)}
	go func() {
		_ = sess.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			n := &node{}
			if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(n); err == nil {
				c.in <- n
			}
			return nil
		}))
	}()
	t.Cleanup(func() { sess.Close(); conn.Close() })
	c.send(t, `<presence xmlns='jabber:client'/>`)
	return c
}

func (c *mucClient) send(t *testing.T, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.sess.Send(ctx, xml.NewDecoder(strings.NewReader(s))); err != nil {
		t.Fatalf("send %s: %v", s, err)
	}
}

// expect returns the next stanza matching ok, failing on any stanza from
// the room that does not match and is listed in strict.
func (c *mucClient) expect(t *testing.T, what string, ok func(*node) bool) *node {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case n := <-c.in:
			if ok(n) {
				return n
			}
			t.Logf("%s: skipping <%s from=%q type=%q> while waiting for %s", c.jid, n.Name.Local, n.attr("from"), n.attr("type"), what)
		case <-timeout:
			t.Fatalf("%s: never received %s", c.jid, what)
		}
	}
}

func mucStatusCodes(n *node) []string {
	var out []string
	for _, s := range n.child(nsMUCUser, "x").children("", "status") {
		out = append(out, s.attr("code"))
	}
	return out
}

func mucErrCondition(n *node) string {
	for _, c := range n.child("", "error").Nodes {
		if c.Name.Space == nsStanzas && c.Name.Local != "text" {
			return c.Name.Local
		}
	}
	return ""
}

func TestMUCWithProsody(t *testing.T) {
	gw := mucEnv(t, "MSNBRIDGE_TEST_XMPP_JID")
	core := &mucCore{calls: make(chan mucCall, 100), portals: map[bridge.PortalID]bridge.Portal{
		"grp1": {ID: "grp1", Kind: bridge.PortalGroup, Members: []string{"bob@hotmail.com", "carol@hotmail.com"}},
		"grp2": {ID: "grp2", Kind: bridge.PortalGroup, Members: []string{"bob@hotmail.com", "dave@hotmail.com"}},
	}}
	g, err := New(config.XMPP{Enabled: true, JID: gw, Server: mucEnv(t, "MSNBRIDGE_TEST_XMPP_COMPONENT"), Secret: mucEnv(t, "MSNBRIDGE_TEST_XMPP_SECRET")},
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

	aliceName := "mucalice" + newID()[:8]
	alice := mucDial(t, aliceName, true)
	user := bridge.UserID{Frontend: Kind, ID: alice.jid.Bare().String()}
	room := "group-grp1@" + gw
	deliver := func(ev bridge.Event) {
		t.Helper()
		if _, err := g.Deliver(ctx, user, ev); err != nil {
			t.Fatalf("Deliver(%T): %v", ev, err)
		}
	}
	fromRoom := func(n *node, nick string) bool {
		return n.attr("from") == room+"/"+nick
	}

	// Friendly names come from the contact list; carol's from the
	// membership event only.
	deliver(bridge.Presence{Contact: bridge.Contact{Passport: "bob@hotmail.com", FriendlyName: "Bob", Status: bridge.StatusOnline, OnContactList: true}})
	deliver(bridge.Message{Portal: "grp1", Sender: "bob@hotmail.com", Text: bridge.Text{Body: "hello group"}, Time: time.Now()})

	inv := alice.expect(t, "the direct invitation", func(n *node) bool {
		return n.Name.Local == "message" && n.child(nsConference, "x") != nil
	})
	if got := inv.child(nsConference, "x").attr("jid"); got != room {
		t.Fatalf("invited to %q, want %q", got, room)
	}
	if c := core.waitCall(t, "SetPortalRoom"); c.portal != "grp1" || c.room != room {
		t.Errorf("SetPortalRoom(%s, %s), want grp1, %s", c.portal, c.room, room)
	}
	deliver(bridge.Membership{Portal: "grp1", Passport: "carol@hotmail.com", Name: "Carol", Joined: true})

	t.Run("disco", func(t *testing.T) {
		alice.send(t, `<iq xmlns='jabber:client' type='get' id='d1' to='`+room+`'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
		r := alice.expect(t, "disco#info of the room", func(n *node) bool { return n.Name.Local == "iq" && n.attr("id") == "d1" })
		q := r.child(nsDiscoInfo, "query")
		id := q.child("", "identity")
		if r.attr("type") != "result" || id.attr("category") != "conference" || id.attr("type") != "text" {
			t.Fatalf("disco#info %s, identity %+v", r.attr("type"), id)
		}
		found := false
		for _, f := range q.children("", "feature") {
			found = found || f.attr("var") == nsMUC
		}
		if !found {
			t.Error("the room does not advertise MUC")
		}
	})

	t.Run("message before joining is refused", func(t *testing.T) {
		alice.send(t, `<message xmlns='jabber:client' type='groupchat' id='early' to='group-grp2@`+gw+`'><body>too early</body></message>`)
		n := alice.expect(t, "an error", func(n *node) bool { return n.Name.Local == "message" && n.attr("id") == "early" })
		if n.attr("type") != "error" || mucErrCondition(n) != "not-acceptable" {
			t.Fatalf("got type %q condition %q, want error not-acceptable", n.attr("type"), mucErrCondition(n))
		}
	})

	t.Run("join", func(t *testing.T) {
		// "Bob" is taken by bob: the gateway renames alice.
		alice.send(t, `<presence xmlns='jabber:client' to='`+room+`/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		seen := map[string]bool{}
		for len(seen) < 2 {
			n := alice.expect(t, "occupant presence", func(n *node) bool {
				return n.Name.Local == "presence" && strings.HasPrefix(n.attr("from"), room+"/")
			})
			if codes := mucStatusCodes(n); len(codes) > 0 {
				t.Fatalf("self-presence (%v) before the occupants %v", codes, seen)
			}
			item := n.child(nsMUCUser, "x").child("", "item")
			if n.attr("type") != "" || item.attr("role") != "participant" || item.attr("affiliation") != "none" {
				t.Fatalf("occupant %s: type %q item %+v", n.attr("from"), n.attr("type"), item)
			}
			seen[strings.TrimPrefix(n.attr("from"), room+"/")+" "+item.attr("jid")] = true
		}
		if !seen[`Bob bob\40hotmail.com@`+gw] || !seen[`Carol carol\40hotmail.com@`+gw] {
			t.Fatalf("occupants %v, want Bob and Carol with their contact JIDs", seen)
		}
		self := alice.expect(t, "self-presence", func(n *node) bool { return n.Name.Local == "presence" })
		if self.attr("from") != room+"/Bob (you)" || strings.Join(mucStatusCodes(self), ",") != "100,110,210" {
			t.Fatalf("self-presence from %q codes %v, want %q 100,110,210", self.attr("from"), mucStatusCodes(self), room+"/Bob (you)")
		}
		m := alice.expect(t, "the message that came before the join", func(n *node) bool { return n.Name.Local == "message" })
		if m.attr("type") != "groupchat" || !fromRoom(m, "Bob") || m.child("", "body").text() != "hello group" || m.child("urn:xmpp:delay", "delay") == nil {
			t.Fatalf("history message type %q from %q body %q", m.attr("type"), m.attr("from"), m.child("", "body").text())
		}
		s := alice.expect(t, "the subject", func(n *node) bool { return n.Name.Local == "message" })
		if s.attr("from") != room || s.child("", "subject") == nil {
			t.Fatalf("no subject after the join, got message from %q", s.attr("from"))
		}
	})

	t.Run("groupchat from MSN", func(t *testing.T) {
		deliver(bridge.Message{Portal: "grp1", Sender: "carol@hotmail.com", Text: bridge.Text{Body: "hi from carol", Bold: true}})
		m := alice.expect(t, "carol's message", func(n *node) bool { return n.Name.Local == "message" })
		if m.attr("type") != "groupchat" || !fromRoom(m, "Carol") || m.child("", "body").text() != "*hi from carol*" {
			t.Fatalf("message type %q from %q body %q", m.attr("type"), m.attr("from"), m.child("", "body").text())
		}
	})

	t.Run("notice in the room", func(t *testing.T) {
		deliver(bridge.Notice{Portal: "grp1", Text: "the file transfer could not be bridged"})
		m := alice.expect(t, "the notice", func(n *node) bool { return n.Name.Local == "message" })
		if m.attr("type") != "groupchat" || m.attr("from") != room || m.child("", "body").text() != "the file transfer could not be bridged" {
			t.Fatalf("notice type %q from %q body %q", m.attr("type"), m.attr("from"), m.child("", "body").text())
		}
	})

	t.Run("typing", func(t *testing.T) {
		deliver(bridge.Typing{Portal: "grp1", Sender: "carol@hotmail.com", Active: true})
		m := alice.expect(t, "carol typing", func(n *node) bool { return n.Name.Local == "message" })
		if m.attr("type") != "groupchat" || !fromRoom(m, "Carol") || m.child(nsChatStates, "composing") == nil || m.child("", "body") != nil {
			t.Fatalf("typing: message type %q from %q", m.attr("type"), m.attr("from"))
		}
		alice.send(t, `<message xmlns='jabber:client' type='groupchat' to='`+room+`'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`)
		if c := core.waitCall(t, "SendTyping"); c.portal != "grp1" || c.text != "composing" {
			t.Fatalf("SendTyping(%s, %s)", c.portal, c.text)
		}
	})

	t.Run("groupchat to MSN", func(t *testing.T) {
		alice.send(t, `<message xmlns='jabber:client' type='groupchat' id='out1' to='`+room+`'><body>hi all</body></message>`)
		if c := core.waitCall(t, "SendMessage"); c.portal != "grp1" || c.text != "hi all" {
			t.Fatalf("SendMessage(%s, %q)", c.portal, c.text)
		}
		m := alice.expect(t, "the reflection", func(n *node) bool { return n.Name.Local == "message" })
		if m.attr("id") != "out1" || m.attr("type") != "groupchat" || !fromRoom(m, "Bob (you)") || m.child("", "body").text() != "hi all" {
			t.Fatalf("reflection id %q type %q from %q", m.attr("id"), m.attr("type"), m.attr("from"))
		}
	})

	t.Run("member leaves", func(t *testing.T) {
		deliver(bridge.Membership{Portal: "grp1", Passport: "carol@hotmail.com", Joined: false})
		n := alice.expect(t, "carol leaving", func(n *node) bool { return n.Name.Local == "presence" })
		if n.attr("type") != "unavailable" || !fromRoom(n, "Carol") {
			t.Fatalf("presence type %q from %q, want carol unavailable", n.attr("type"), n.attr("from"))
		}
	})

	t.Run("invite a contact", func(t *testing.T) {
		alice.send(t, `<message xmlns='jabber:client' to='`+room+`'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='dave\40hotmail.com@`+gw+`'/></x></message>`)
		if c := core.waitCall(t, "Invite"); c.portal != "grp1" || c.passport != "dave@hotmail.com" {
			t.Fatalf("Invite(%s, %s)", c.portal, c.passport)
		}
	})

	t.Run("second resource", func(t *testing.T) {
		phone := mucDial(t, aliceName, false)
		phone.send(t, `<presence xmlns='jabber:client' to='`+room+`/phone'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		self := phone.expect(t, "self-presence", func(n *node) bool {
			return n.Name.Local == "presence" && len(mucStatusCodes(n)) > 0
		})
		if !fromRoom(self, "phone") {
			t.Fatalf("phone joined as %q", self.attr("from"))
		}
		// A nick change is refused, from the nick asked for.
		phone.send(t, `<presence xmlns='jabber:client' to='`+room+`/tablet'/>`)
		e := phone.expect(t, "nick change refused", func(n *node) bool { return n.Name.Local == "presence" && n.attr("type") == "error" })
		if !fromRoom(e, "tablet") || mucErrCondition(e) != "not-acceptable" {
			t.Fatalf("nick change: error from %q condition %q", e.attr("from"), mucErrCondition(e))
		}
		// Messages reach both resources.
		deliver(bridge.Message{Portal: "grp1", Sender: "bob@hotmail.com", Text: bridge.Text{Body: "to both"}})
		for _, c := range []*mucClient{alice, phone} {
			m := c.expect(t, "bob's message", func(n *node) bool { return n.Name.Local == "message" && n.child("", "body") != nil })
			if !fromRoom(m, "Bob") || m.child("", "body").text() != "to both" {
				t.Fatalf("%s got %q from %q", c.jid, m.child("", "body").text(), m.attr("from"))
			}
		}
		// One resource leaving leaves the switchboard alone.
		phone.send(t, `<presence xmlns='jabber:client' type='unavailable' to='`+room+`/phone'/>`)
		phone.expect(t, "self-presence unavailable", func(n *node) bool { return n.Name.Local == "presence" && n.attr("type") == "unavailable" })
		// Both resources' stanzas go through one queue, in order: once
		// alice's message reaches the core, the phone's leave is done.
		alice.send(t, `<message xmlns='jabber:client' type='groupchat' id='still' to='`+room+`'><body>still here</body></message>`)
		for c := core.waitCallAny(t); c.name != "SendMessage"; c = core.waitCallAny(t) {
			if c.name == "LeavePortal" {
				t.Fatal("LeavePortal when another resource is still in the room")
			}
		}
		alice.expect(t, "the reflection", func(n *node) bool { return n.Name.Local == "message" && n.attr("id") == "still" })
	})

	t.Run("leave", func(t *testing.T) {
		alice.send(t, `<presence xmlns='jabber:client' type='unavailable' to='`+room+`/Bob (you)'/>`)
		n := alice.expect(t, "self-presence unavailable", func(n *node) bool {
			return n.Name.Local == "presence" && strings.HasPrefix(n.attr("from"), room+"/")
		})
		if n.attr("type") != "unavailable" || !fromRoom(n, "Bob (you)") || strings.Join(mucStatusCodes(n), ",") != "110" {
			t.Fatalf("presence type %q from %q codes %v", n.attr("type"), n.attr("from"), mucStatusCodes(n))
		}
		if c := core.waitCall(t, "LeavePortal"); c.portal != "grp1" {
			t.Fatalf("LeavePortal(%s)", c.portal)
		}
		alice.send(t, `<message xmlns='jabber:client' type='groupchat' id='late' to='`+room+`'><body>after leaving</body></message>`)
		e := alice.expect(t, "an error", func(n *node) bool { return n.Name.Local == "message" && n.attr("id") == "late" })
		if mucErrCondition(e) != "not-acceptable" {
			t.Fatalf("after leaving: condition %q", mucErrCondition(e))
		}
	})

	t.Run("shutdown", func(t *testing.T) {
		room2 := "group-grp2@" + gw
		alice.send(t, `<presence xmlns='jabber:client' to='`+room2+`/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		alice.expect(t, "joined the second room", func(n *node) bool {
			return n.Name.Local == "presence" && n.attr("from") == room2+"/Alice" && len(mucStatusCodes(n)) > 0
		})
		if err := stopGateway(); err != nil {
			t.Fatal(err)
		}
		n := alice.expect(t, "out of the room at shutdown", func(n *node) bool {
			return n.Name.Local == "presence" && n.attr("from") == room2+"/Alice" && n.attr("type") == "unavailable"
		})
		if codes := strings.Join(mucStatusCodes(n), ","); codes != "110,332" {
			t.Errorf("status codes %s, want 110,332", codes)
		}
	})
}
